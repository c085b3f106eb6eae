"""`memsync db ...`, `settings` and `demo`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from memsync.faces.cli.base import _settings, emit, log, main

if TYPE_CHECKING:
    pass

@main.group()
def db() -> None:
    """Database: migrate, status, url, stop (embedded server)."""


@db.command("migrate")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to keep retrying while the database refuses connections (a fresh server takes a few "
                   "seconds to accept TCP); then fail as without it.")
@click.pass_context
def db_migrate(ctx: click.Context, as_json: bool, wait_seconds: float) -> None:
    """Apply pending migrations (no-op when up to date)."""
    from memsync.runtime import resolve_dsn
    from memsync.storage import migrate
    from memsync.storage.db import wait_for_server

    dsn = resolve_dsn(_settings(ctx), migrate_new=False)  # this command applies and names them
    if wait_seconds:
        wait_for_server(dsn, wait_seconds, lambda why: log.warning(
            "waiting up to %.0fs for the database to accept connections: %s", wait_seconds, why))
    applied = migrate.migrate(dsn)
    emit({"applied": applied}, as_json,
         lambda d: "\n".join(f"applied {n}" for n in d["applied"]) or "database is up to date")


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def db_status(ctx: click.Context, as_json: bool) -> None:
    """List applied and pending migrations."""
    from dataclasses import asdict

    from memsync.runtime import resolve_dsn
    from memsync.storage import migrate

    rows = [asdict(s) for s in migrate.status(resolve_dsn(_settings(ctx)))]
    emit(rows, as_json, lambda d: "\n".join(f"{r['state']:<8} {r['name']}  {r['applied_at'] or ''}" for r in d))


@db.command("url")
@click.pass_context
def db_url(ctx: click.Context) -> None:
    """Print the DSN (starts the embedded server if needed)."""
    from memsync.runtime import resolve_dsn

    click.echo(resolve_dsn(_settings(ctx)))


@db.command("stop")
@click.pass_context
def db_stop(ctx: click.Context) -> None:
    """Stop the embedded server."""
    from memsync.storage import embedded

    settings = _settings(ctx)
    if settings.dsn:
        raise click.UsageError("MEMSYNC_DSN is set: there is no embedded server to stop")
    click.echo("stopped" if embedded.stop(settings.home) else "not running")


# ------------------------------------------------------------------ daemon



@main.command("settings")
@click.pass_context
def settings_cmd(ctx: click.Context) -> None:
    """Print the effective settings (secrets redacted) as JSON."""
    click.echo(json.dumps(_settings(ctx).redacted(), indent=2))


@main.command("demo")
@click.pass_context
def demo_cmd(ctx: click.Context) -> None:
    """Migrate, write sample memory, sync it, and show the result."""
    from memsync.faces import demo

    demo.run(_settings(ctx), click.echo)



