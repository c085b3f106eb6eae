"""`memsync search` and `retrieve`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from memsync.faces import json_default
from memsync.faces.cli.base import _app, emit, main

if TYPE_CHECKING:
    pass

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
        f = Filters.parse({"block_types": block_types, "source_tables": source_tables, "subjects": pairs,
                           "scoped": bool(pairs)})
        hits = app.search(query, k=k, mode=mode, filters=f)  # type: ignore[arg-type]  # click.Choice checked it
    emit([h.to_dict() for h in hits], as_json, lambda hs: "\n".join(
        f"{h['score']:.4f}  dense #{h['dense_rank'] or '-'} lexical #{h['lexical_rank'] or '-'}  "
        f"{h['source_table']}#{h['source_id']} block {h['block_id']} [{h['block_type']}] "
        f"{h['heading_path'] or ''}\n        {h['text'][:100]!r}" for h in hs) or "no hits")


@main.command("retrieve")
@click.option("--recipe", required=True, help="Recipe name (latest version) or id.")
@click.option("--subject", required=True, help="project:42, a global_id, or 'personal'.")
@click.option("--query", default=None, help="Free text the recipe's semantic sections may use.")
@click.option("--budget", "budget_tokens", type=click.IntRange(min=1), default=None,
              help="Token budget (default: the recipe's).")
@click.option("--as-of", "as_of", default=None,
              help="Facts/goals valid at this time: ISO 8601 (2026-11-29, 2026-11-29T09:00+02:00); naive = UTC.")
@click.option("--json", "as_json", is_flag=True, help="The bundle as JSON instead of markdown.")
@click.pass_context
def retrieve_cmd(ctx: click.Context, recipe: str, subject: str, query: str | None, budget_tokens: int | None,
                 as_of: str | None, as_json: bool) -> None:
    """Build a cited, budgeted context bundle from a context recipe for a subject."""

    with _app(ctx) as app:
        bundle = app.retrieve(recipe, subject, query=query, budget_tokens=budget_tokens, as_of=as_of)
    click.echo(json.dumps(bundle.to_dict(), default=json_default, indent=2) if as_json else bundle.to_markdown())


