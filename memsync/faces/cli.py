"""The memsync command line. Logging is configured here and nowhere else."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import psycopg

from memsync.errors import MemsyncError
from memsync.index.registry import INDEXES
from memsync.settings import Settings

if TYPE_CHECKING:
    from memsync.app import Memsync

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("memsync")

EPILOG = "\b\nSettings (environment variables):\n" + Settings.help_text()


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(data, default=_json_default, indent=2) if as_json else text(data))


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]
    return settings


def _app(ctx: click.Context, **overrides: Any) -> Memsync:
    """The application object every command works through (close it: `with _app(ctx) as app`)."""
    from memsync.app import Memsync

    settings = _settings(ctx)
    return Memsync(settings.model_copy(update=overrides) if overrides else settings)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemsyncError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except psycopg.Error as exc:  # not one of ours: still one line, never a traceback
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
    for noisy in ("httpx", "sentence_transformers", "pgserver", "transformers"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    ctx.obj = {"settings": settings}


# ------------------------------------------------------------------ db


@main.group()
def db() -> None:
    """Database: migrate, status, url, stop (embedded server)."""


@db.command("migrate")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def db_migrate(ctx: click.Context, as_json: bool) -> None:
    """Apply pending migrations (no-op when up to date)."""
    from memsync.runtime import resolve_dsn
    from memsync.storage import migrate

    applied = migrate.migrate(resolve_dsn(_settings(ctx)))
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


@main.command("run")
@click.option("--once", is_flag=True, help="Drain the outbox and exit (for cron and tests): exit 1 when items it was "
              "asked to drain are left (dead-lettered, held by a live worker, backing off), listing them.")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="With --once: how long to wait for items other live workers hold.")
@click.option("--no-wait", is_flag=True, help="With --once: do not wait for items other live workers hold.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker threads sharing one model, the model's threads divided among them [MEMSYNC_WORKERS, 1]. "
                   "For workers on several cores or machines, start `memsync run` several times.")
@click.option("--json", "as_json", is_flag=True, help="Print the totals (and, with --once, what is left) as JSON.")
@click.pass_context
def run_cmd(ctx: click.Context, once: bool, wait_seconds: float, no_wait: bool, workers: int | None,
            as_json: bool) -> None:
    """Run the sync daemon: outbox -> blocks -> embeddings -> indexes.

    SIGINT/SIGTERM finish the current batch and exit cleanly. Any number of `memsync run`
    processes, here or on other machines, share the queue; a killed one's items are taken
    over at once.
    """
    from dataclasses import asdict

    from memsync import runtime
    from memsync.storage.db import workers as registry
    from memsync.write.worker import make_pool, run_pool

    settings = _settings(ctx)
    with _app(ctx) as app:
        rt = app.runtime
        # with no MEMSYNC_MODEL, follow the model `memsync reembed` makes active
        follow = runtime.model_loader(rt.settings) if runtime.follows_active_model(settings) else None
        n = max(1, workers or rt.settings.workers)
        # load the model before taking work: a missing model fails here, not on a claimed batch
        log.info("model %s ready (dimension %d)", rt.embedder.model_id, rt.embedder.dim)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        pool = make_pool(rt, n, follow)
        log.info("memsync %s: %d worker(s), model %s, indexes %s", "drain" if once else "daemon started",
                 n, rt.embedder.model_id, ",".join(i.name for i in rt.indexes))
        totals = run_pool(pool, stop, once=once, wait_seconds=0.0 if no_wait else wait_seconds)
        left: list[dict[str, Any]] = []
        if once:
            with app.connection() as conn:
                left = registry.leftovers(conn, sorted({i for w in pool for i in w.asked}))
    result = asdict(totals)
    result.pop("synced")
    if once:
        result["drained"] = not left
        result["left"] = left
    emit(result, as_json, lambda d: _run_text(d, left))
    if left:
        ctx.exit(1)


def _run_text(d: dict[str, Any], left: list[dict[str, Any]]) -> str:
    lines = [f"synced {d['acked']} items ({d['failed']} failures, {d['dead']} dead-lettered, "
             f"{d['deferred']} deferred for a down index), {d['embedded']} embeddings computed, "
             f"{d['points']} points written"]
    if left:
        reasons: dict[str, int] = {}
        for r in left:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        lines.append(f"not drained: {len(left)} items left (" +
                     ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in sorted(reasons.items())) + ")")
        for r in left[:20]:
            who = f" by {r['claimed_by']}" if r["reason"] == "held_by_live_worker" else ""
            retry = f", retry in {float(r['retry_in_seconds']):.1f}s" if r["reason"] == "backing_off" else ""
            error = f": {r['last_error'][:200]}" if r["last_error"] else ""
            lines.append(f"  #{r['id']} {r['source_table']} id={r['source_id']} {r['reason']}{who}{retry}{error}")
        if len(left) > 20:
            lines.append(f"  ... and {len(left) - 20} more (--json lists all)")
    return "\n".join(lines)


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """Backlog, dead letters, blocks and vectors per index, last sync, model."""
    with _app(ctx) as app:
        data = app.status()

    def text(d: dict[str, Any]) -> str:
        b = d["backlog"]
        age = b["oldest_pending_seconds"]
        lag = d["lag"]
        lines = [
            f"model:        {d['model']}",
            f"backlog:      {b['pending']} pending ({b['in_progress']} in progress)"
            + (f", oldest {float(age):.1f}s" if age is not None else "")
            + ("" if not d["backlog_by_table"] else
               " [" + ", ".join(f"{t}: {k}" for t, k in d["backlog_by_table"].items()) + "]"),
            "lag:          " + (f"p50 {lag['p50_seconds']:.3f}s, p99 {lag['p99_seconds']:.3f}s over the last "
                                 f"{lag['n']} items (change -> indexed)" if lag["n"] else "no items synced yet"),
            f"dead letters: {b['dead']}",
            f"blocks:       {d['blocks']}  embeddings: {d['embeddings']}",
            "vectors:      " + ", ".join(f"{k}={v}" for k, v in d["vectors"].items()),
            f"last sync:    {_last_sync(d)}",
            f"workers:      {sum(1 for w in d['workers'] if w['alive'])} alive",
        ]
        cv = d["chunker_version"]
        if cv["stored"] != cv["code"] and d["blocks"]:
            lines.insert(5, f"chunker:      version {cv['code']}; stored blocks were made by "
                            f"{'an earlier one' if cv['stored'] is None else 'version ' + cv['stored']}: "
                            "run `memsync rechunk`")
        for w in d["workers"]:
            state = "alive" if w["alive"] else ("stopped" if w["stopped_at"] else "dead")
            lines.append(f"  {w['id']} ({w['mode']}, host {w['host']}, pid {w['pid']}): {state}, "
                         f"last heartbeat {w['heartbeat_at']:%Y-%m-%d %H:%M:%S%z}, {w['items_held']} items held")
        for dl in d["dead_letters"]:
            lines.append(f"  dead #{dl['id']} {dl['source_table']} id={dl['source_id']}: {dl['last_error']}")
        return "\n".join(lines)

    emit(data, as_json, text)


def _last_sync(d: dict[str, Any]) -> str:
    session = d["last_sync_session"]
    if not session:
        return "never"
    ended = session["ended_at"] or "-"
    return f"session {session['id']} {session['status']}, ended {ended}: {session['summary'] or ''}"


@main.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.pass_context
def retry_cmd(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Requeue dead-lettered items (all of them, or the outbox ids given)."""
    from memsync.runtime import resolve_dsn
    from memsync.storage.db import capture, connect

    with connect(resolve_dsn(_settings(ctx)), autocommit=True) as conn:
        n = capture.retry_dead(conn, list(ids) or None)
    click.echo(f"requeued {n} item(s)")


@main.command("reindex")
@click.option("--index", "which", type=click.Choice(sorted(INDEXES)), default=None,
              help="Only this index (default: every enabled index).")
@click.pass_context
def reindex_cmd(ctx: click.Context, which: str | None) -> None:
    """Rebuild index projections from the embeddings stored in Postgres (no model calls)."""
    from tqdm import tqdm

    from memsync.storage.db import blocks
    from memsync.write import ops

    with _app(ctx, **({"indexes": (which,)} if which else {})) as app, app.connection() as conn:
        rt = app.runtime
        total = blocks.count_blocks(conn)
        dim = blocks.embedding_dim(conn, rt.embedder.model_id)
        if dim is None:
            raise MemsyncError(f"no stored embeddings for model {rt.embedder.model_id}; run `memsync run --once`")
        for idx in rt.indexes:
            with tqdm(total=total, desc=f"reindex {idx.name}", unit="block", disable=None) as bar:
                n = ops.reindex(conn, rt.embedder.model_id, dim, idx, bar.update)
            click.echo(f"{idx.name}: {n} points written")


@main.command("reembed")
@click.option("--model", required=True, help="sentence-transformers model name or path to switch to.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def reembed_cmd(ctx: click.Context, model: str, as_json: bool) -> None:
    """Embed every block with another model beside the current one, build its index
    projections, then make it the active model (used when MEMSYNC_MODEL is unset).
    Resumable; the old model's vectors stay until you delete them. A running daemon with no
    MEMSYNC_MODEL switches to it by itself and first embeds what changed meanwhile."""
    from tqdm import tqdm

    from memsync.storage.db import blocks
    from memsync.write import ops

    with _app(ctx, model=model) as app, app.connection() as conn:
        todo = blocks.count_missing_embeddings(conn, model)
        with tqdm(total=todo, desc=f"embed {model}", unit="chunk", disable=True if as_json else None) as bar:
            result = ops.reembed(conn, app.runtime.embedder, app.runtime.indexes, bar.update)
    emit(result, as_json, lambda r: f"{r['embedded']} chunks embedded with {r['model']}; points: {r['points']}; "
                                    f"{r['model']} is now the active model")


@main.command("rechunk")
@click.option("--source", "sources", multiple=True, help="Only this source table, e.g. agent.artifacts (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def rechunk_cmd(ctx: click.Context, sources: tuple[str, ...], as_json: bool) -> None:
    """Queue every row of the synced sources for a resync, so a new chunker version reaches
    stored blocks. The worker (`memsync run`) rewrites the blocks whose text changed and
    embeds only those; unchanged text keeps its stored embedding."""
    from memsync.write import ops
    from memsync.write.sources import SOURCES

    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a synced source; sources: {', '.join(sorted(SOURCES))}",
                                 param_hint="--source")
    with _app(ctx) as app, app.connection() as conn:
        queued = ops.rechunk(conn, list(sources) or sorted(SOURCES))
    emit(queued, as_json, lambda q: "\n".join(f"{t}: {n} rows queued" for t, n in q.items())
         + "\nrun `memsync run` (or --once) to apply")


@main.command("verify")
@click.option("--repair", is_flag=True, help="Fix what is found.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def verify_cmd(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Compare blocks with each index: missing, orphaned, stale points."""
    from memsync.write import ops

    with _app(ctx) as app, app.connection() as conn:
        rt = app.runtime
        reports = [ops.verify(conn, rt.embedder.model_id, idx, repair) for idx in rt.indexes]
    emit(reports, as_json, lambda rs: "\n".join(
        f"{r['index']}: {r['blocks']} blocks, {r['points']} points, missing {r['missing']}, "
        f"orphaned {r['orphaned']}, stale {r['stale']}, unembedded {r['unembedded']}, "
        f"wrong vector_key {r['wrong_vector_key']}"
        + (" (repaired)" if r["repaired"] else "") for r in rs))
    if not repair and any(r["missing"] or r["orphaned"] or r["stale"] or r["wrong_vector_key"] for r in reports):
        ctx.exit(3)


@main.command("ingest")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--watch", is_flag=True, help="Keep running: rescan after file changes (debounced).")
@click.option("--include", multiple=True, help="Only paths matching this gitignore-style glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip paths matching this glob (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (one object per pass).")
@click.pass_context
def ingest_cmd(ctx: click.Context, path: Path, watch: bool, include: tuple[str, ...], exclude: tuple[str, ...],
               as_json: bool) -> None:
    """Ingest a folder or git checkout of markdown (.md, .mdx, .markdown) into agent.artifacts
    and agent.blocks, incrementally: unchanged files are skipped on their stat, edited files
    re-embed only their changed chunks, deleted files lose their blocks and vectors.

    Front matter (YAML) is kept as metadata; `type: sop` makes an SOP; `subject: project:42`
    (or `project: <global_id>`) links the document to an ERP row. Exit code 1 when any file failed.
    """
    from tqdm import tqdm

    from docs_ingest.ingest import Ingestor, Summary
    from memsync.storage import migrate

    app = _app(ctx)
    rt = app.runtime
    migrate.migrate(rt.dsn)
    failed = False
    bar: Any = None

    def start_bar(total: int) -> None:
        nonlocal bar
        bar = tqdm(total=total, unit="file", desc="ingest", disable=True if as_json else None, leave=False)

    def report(summary: Summary) -> None:
        nonlocal failed
        if bar is not None:
            bar.close()
        failed = failed or summary.failed > 0
        if as_json:
            click.echo(json.dumps(summary.to_dict()))
            return
        click.echo(summary.line())
        for e in summary.errors:
            click.echo(f"  failed  {e['path']}: {e['error']}", err=True)
        for w in summary.warnings:
            click.echo(f"  warning {w['path']}: {w['warning']}", err=True)

    ingestor = Ingestor(rt, path, include, exclude, progress=lambda n: bar.update(n) if bar else None,
                        on_total=start_bar)
    try:
        if watch:
            from docs_ingest.watch import watch as run_watch

            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            run_watch(ingestor, stop, report, rt.settings.watch_debounce)
        else:
            report(ingestor.run())
    finally:
        app.close()
    if failed:
        ctx.exit(1)


@main.command("search")
@click.argument("query")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
@click.option("--k", "k", default=10, show_default=True, help="Number of hits.")
@click.option("--block-type", "block_types", multiple=True, help="Only these block types (repeatable).")
@click.option("--source-table", "source_tables", multiple=True, help="Only blocks from these tables (repeatable).")
@click.option("--subject", "subject_refs", multiple=True, help="Only blocks about this subject, e.g. project:42.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def search_cmd(ctx: click.Context, query: str, mode: str, k: int, block_types: tuple[str, ...],
               source_tables: tuple[str, ...], subject_refs: tuple[str, ...], as_json: bool) -> None:
    """Hybrid (dense + BM25, fused by RRF), dense or lexical search over blocks."""
    from memsync.read import subjects
    from memsync.storage.filters import Filters

    with _app(ctx) as app:
        with app.connection() as conn:
            pairs = tuple((s.type, s.id) for s in (subjects.resolve(conn, r) for r in subject_refs))
        f = Filters(block_types=block_types, source_tables=source_tables, subjects=pairs, scoped=bool(pairs))
        hits = app.search(query, k=k, mode=mode, filters=f)  # type: ignore[arg-type]
    emit([h.to_dict() for h in hits], as_json, lambda hs: "\n".join(
        f"{h['score']:.4f}  dense #{h['dense_rank'] or '-'} lexical #{h['lexical_rank'] or '-'}  "
        f"{h['source_table']}#{h['source_id']} block {h['block_id']} [{h['block_type']}] "
        f"{h['heading_path'] or ''}\n        {h['text'][:100]!r}" for h in hs) or "no hits")


@main.command("retrieve")
@click.option("--recipe", required=True, help="Recipe name (latest version) or id.")
@click.option("--subject", required=True, help="project:42, a global_id, or 'personal'.")
@click.option("--query", default=None, help="Free text the recipe's semantic sections may use.")
@click.option("--budget", "budget_tokens", type=int, default=None, help="Token budget (default: the recipe's).")
@click.option("--as-of", "as_of", type=click.DateTime(), default=None, help="Facts/goals valid at this time.")
@click.option("--json", "as_json", is_flag=True, help="The bundle as JSON instead of markdown.")
@click.pass_context
def retrieve_cmd(ctx: click.Context, recipe: str, subject: str, query: str | None, budget_tokens: int | None,
                 as_of: datetime | None, as_json: bool) -> None:
    """Build a cited, budgeted context bundle from a context recipe for a subject."""
    from datetime import timezone

    when = as_of.replace(tzinfo=timezone.utc) if as_of and as_of.tzinfo is None else as_of
    with _app(ctx) as app:
        bundle = app.retrieve(recipe, subject, query=query, budget_tokens=budget_tokens, as_of=when)
    click.echo(json.dumps(bundle.to_dict(), default=_json_default, indent=2) if as_json else bundle.to_markdown())


@main.group()
def recipes() -> None:
    """Context recipes: list, show, validate FILE, put FILE."""


def _read_recipe_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MemsyncError(f"{path}: cannot read recipe: {exc}") from None
    if not isinstance(data, dict) or "name" not in data or "spec" not in data:
        raise MemsyncError(f"{path}: a recipe file needs 'name', 'spec' and optionally 'description'")
    return data


@recipes.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def recipes_list(ctx: click.Context, as_json: bool) -> None:
    """Recipes (latest version of each)."""
    from memsync.runtime import resolve_dsn
    from memsync.storage.db import connect
    from memsync.storage.db import context as q

    with connect(resolve_dsn(_settings(ctx)), autocommit=True) as conn:
        rows = q.recipes(conn)
    emit(rows, as_json, lambda rs: "\n".join(f"{r['name']:<22} v{r['version']}  {r['description'] or ''}" for r in rs))


@recipes.command("show")
@click.argument("name")
@click.pass_context
def recipes_show(ctx: click.Context, name: str) -> None:
    """Print a recipe (latest version) as JSON."""
    from memsync.read.recipes import RecipeError
    from memsync.runtime import resolve_dsn
    from memsync.storage.db import connect
    from memsync.storage.db import context as q

    with connect(resolve_dsn(_settings(ctx)), autocommit=True) as conn:
        row = q.recipe(conn, name=name)
    if row is None:
        raise RecipeError(f"unknown recipe {name!r}")
    click.echo(json.dumps({"name": row["name"], "version": row["version"], "description": row["description"],
                           "spec": row["retrieval_spec"]}, indent=2))


@recipes.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def recipes_validate(file: Path) -> None:
    """Check a recipe file (YAML or JSON with name, description, spec) without storing it."""
    from memsync.read.recipes import parse_spec

    data = _read_recipe_file(file)
    spec = parse_spec(data["spec"], f"{file}")
    click.echo(f"{file}: ok ({len(spec.sections)} sections, budget {spec.budget_tokens} tokens)")


@recipes.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def recipes_put(ctx: click.Context, file: Path) -> None:
    """Validate and store a recipe; a changed spec becomes a new version."""
    from memsync.read.recipes import parse_spec
    from memsync.runtime import resolve_dsn
    from memsync.storage.db import connect
    from memsync.storage.db import context as q

    data = _read_recipe_file(file)
    parse_spec(data["spec"], f"{file}")
    with connect(resolve_dsn(_settings(ctx)), autocommit=True) as conn:
        row = q.put_recipe(conn, str(data["name"]), data.get("description"), data["spec"])
    click.echo(f"{row['name']} v{row['version']}")


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


if __name__ == "__main__":  # pragma: no cover
    main()
