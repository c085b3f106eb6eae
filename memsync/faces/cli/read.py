"""`memsync search` and `retrieve`."""

from __future__ import annotations

import json
from typing import Any

import click

from memsync.faces import json_default
from memsync.faces.cli.base import _app, emit, main
from memsync.vocabulary import SEARCH_MODES


@main.command("search")
@click.argument("query")
@click.option("--mode", type=click.Choice(SEARCH_MODES), default="hybrid", show_default=True)
@click.option("--k", "k", default=10, show_default=True, help="Number of hits.")
@click.option("--block-type", "block_types", multiple=True, help="Only these block types (repeatable).")
@click.option("--source-table", "source_tables", multiple=True, help="Only blocks from these tables (repeatable).")
@click.option("--subject", "subject_refs", multiple=True, help="Only blocks about this subject, e.g. project:42.")
@click.option("--events", "as_events", is_flag=True, help="Conversation turns as exchanges: each matching event "
              "with --neighbours turns around it in its session.")
@click.option("--neighbours", type=click.IntRange(0, 20), default=1, show_default=True,
              help="With --events: turns kept on each side of a matching turn.")
@click.option("--as-of", "as_of", default=None,
              help="Search as of this time (ISO 8601 or '8 May 2023'; naive = UTC): facts current then, and a "
                   "relative window in the query ('last week') counted from it. Default: now.")
@click.option("--time-window/--no-time-window", default=True, show_default=True,
              help="With --events: turns inside the time window the query names ('in May 2023', 'last month') "
                   "rank first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def search_cmd(ctx: click.Context, query: str, mode: str, k: int, block_types: tuple[str, ...],
               source_tables: tuple[str, ...], subject_refs: tuple[str, ...], as_events: bool, neighbours: int,
               as_of: str | None, time_window: bool, as_json: bool) -> None:
    """Hybrid (dense + BM25, fused on their standardised scores), dense or lexical search
    over blocks; with --events, conversation exchanges."""
    from memsync.read import subjects
    from memsync.read.hybrid import Timing
    from memsync.storage.filters import Filters

    if not query.strip():
        raise click.UsageError("QUERY is blank: say what to search for")
    with _app(ctx) as app:
        with app.connection() as conn:
            pairs = tuple((s.type, s.id) for s in (subjects.resolve(conn, r) for r in subject_refs))
        f = Filters.parse({"block_types": block_types, "source_tables": source_tables, "subjects": pairs,
                           "scoped": bool(pairs)})
        timing = Timing()
        if as_events:
            found = [x.to_dict() for x in app.recall(query, k=k, neighbours=neighbours, mode=mode,  # type: ignore[arg-type]
                                                     filters=f, as_of=as_of, time_window=time_window)]
        else:
            hits = app.search(query, k=k, mode=mode, filters=f, timing=timing, as_of=as_of)  # type: ignore[arg-type]
        pending, running = _unsynced(app)
    if pending and not as_json:  # an import, then a search before `memsync run`: a first user's usual surprise
        click.echo(f"note: {pending} change(s) are not searchable yet: "
                   + ("a sync worker is on them" if running else "no sync worker is running "
                      "(`memsync run`, or `memsync run --once` to sync them and stop)"), err=True)
    if as_events:
        emit(found, as_json, lambda xs: "\n\n".join(
            f"{x['score']:.4f}  {x['session']['global_id']}  events {[t['id'] for t in x['turns']]}\n{x['text']}"
            for x in xs) or "no exchanges")
    elif as_json:
        emit({"hits": [h.to_dict() for h in hits], "timing": timing.to_dict(), "pending_changes": pending}, True, str)
    else:
        emit([h.to_dict() for h in hits], False, lambda hs: "\n".join(
            f"{h['score']:.4f}  dense #{h['dense_rank'] or '-'} lexical #{h['lexical_rank'] or '-'}  "
            f"{h['source_table']}#{h['source_id']} block {h['block_id']} [{h['block_type']}] "
            f"{h['heading_path'] or ''}\n        {h['text'][:100]!r}" for h in hs) or "no hits")


def _unsynced(app: Any) -> tuple[int, bool]:
    """Writes not yet searchable (the outbox's pending items), and whether a worker is alive."""
    from memsync.storage.db import queue, workers

    with app.connection() as conn:
        pending = int(queue.backlog(conn, queue.OUTBOX)["pending"] or 0)
        return pending, pending > 0 and any(w["alive"] for w in workers.listing(conn))


@main.command("retrieve")
@click.option("--recipe", required=True, help="Recipe name (latest version) or id.")
@click.option("--subject", required=True, help="project:42, a global_id, or 'personal'.")
@click.option("--query", default=None, help="Free text the recipe's semantic sections may use.")
@click.option("--budget", "budget_tokens", type=click.IntRange(min=1), default=None,
              help="Token budget (default: the recipe's).")
@click.option("--as-of", "as_of", default=None,
              help="Facts/goals valid at this time: ISO 8601 (2026-11-29, 2026-11-29T09:00+02:00) or '29 Nov 2026'; "
                   "naive = UTC.")
@click.option("--json", "as_json", is_flag=True, help="The bundle as JSON instead of markdown.")
@click.pass_context
def retrieve_cmd(ctx: click.Context, recipe: str, subject: str, query: str | None, budget_tokens: int | None,
                 as_of: str | None, as_json: bool) -> None:
    """Build a cited, budgeted context bundle from a context recipe for a subject."""

    with _app(ctx) as app:
        bundle = app.retrieve(recipe, subject, query=query, budget_tokens=budget_tokens, as_of=as_of)
    click.echo(json.dumps(bundle.to_dict(), default=json_default, indent=2) if as_json else bundle.to_markdown())


