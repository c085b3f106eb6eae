"""`memsync reindex`, `reembed`, `rechunk` and `verify`: work on the projections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from memsync.errors import MemsyncError
from memsync.faces.cli.base import _app, emit, main
from memsync.index.registry import INDEXES

if TYPE_CHECKING:
    pass

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
    with _app(ctx) as app:
        reports = app.verify(repair)

    def line(r: dict[str, Any]) -> str:
        if r.get("mirror"):
            return (f"{r['index']} (mirror): {r['expected']} rows expected, missing {len(r['missing'])}, "
                    f"lingering {len(r['lingering'])}" + (" (missing ones queued again)" if r["repaired"] else ""))
        return (f"{r['index']}: {r['blocks']} blocks, {r['points']} points, missing {r['missing']}, "
                f"orphaned {r['orphaned']}, stale {r['stale']}, unembedded {r['unembedded']}, "
                f"wrong vector_key {r['wrong_vector_key']}" + (" (repaired)" if r["repaired"] else ""))

    emit(reports, as_json, lambda rs: "\n".join(line(r) for r in rs))
    if not repair and any(r["missing"] or r.get("orphaned") or r.get("stale") or r.get("wrong_vector_key")
                          or r.get("lingering") for r in reports):
        ctx.exit(3)




@main.command("gc")
@click.option("--grace-hours", type=click.FloatRange(min=0), default=24.0, show_default=True,
              help="Keep unused embeddings younger than this (a rename or re-add within it needs no model call).")
@click.option("--dry-run", is_flag=True, help="Count, delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def gc_cmd(ctx: click.Context, grace_hours: float, dry_run: bool, as_json: bool) -> None:
    """Delete stored embeddings that no block uses any more (text deleted or edited away)."""
    from memsync.write import ops

    with _app(ctx) as app, app.connection() as conn:
        result = ops.gc_embeddings(conn, grace_hours, dry_run)
    emit(result, as_json, lambda r: f"{r['unused']} unused embeddings older than {r['grace_hours']:g} h"
                                    + (" (dry run: none deleted)" if r["dry_run"] else f"; {r['deleted']} deleted"))
