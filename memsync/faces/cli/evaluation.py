"""`memsync eval`: run a labelled set and record the run in agent.execution_runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from memsync.errors import EvalSetError
from memsync.faces.cli.base import _app, emit, main, read_input
from memsync.vocabulary import SEARCH_MODES


@main.command("eval")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mode", type=click.Choice(SEARCH_MODES), default="hybrid", show_default=True,
              help="Search mode to evaluate.")
@click.option("--recipe", metavar="NAME", help="Evaluate a context recipe's bundle instead of search (each line "
              "needs a subject).")
@click.option("--k", "ks", default="5,10", show_default=True, help="Cut-offs for recall@k, comma-separated.")
@click.option("--name", metavar="NAME", help="The set's name in the record [FILE's name].")
@click.option("--min", "minimum", multiple=True, metavar="METRIC=VALUE",
              help="Fail (exit 1) when a metric is below VALUE (a latency: above it), e.g. --min recall@10=0.8 "
                   "(repeatable).")
@click.option("--no-record", is_flag=True, help="Print the metrics without recording a run.")
@click.option("--history", is_flag=True, help="Compare the last recorded runs (of FILE's set, when given).")
@click.option("--last", type=click.IntRange(1, 1000), default=5, show_default=True, help="Runs --history shows.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def eval_cmd(ctx: click.Context, file: Path | None, mode: str, recipe: str | None, ks: str, name: str | None,
             minimum: tuple[str, ...], no_record: bool, history: bool, last: int, as_json: bool) -> None:
    """Evaluate retrieval on a labelled set: FILE is JSON Lines, one query a line:

    \b
      {"query": "...", "relevant": ["fact:<uuid>", "agent.events:12"], "subject": "person:3"}

    `relevant` names the gold rows (global_id or table:id); `subject` (optional) confines
    the search to that subject's tree. Prints recall@k, nDCG@10, MRR and p50/p95 latency,
    and records the run as an agent.execution_runs row (workflow retrieval_eval) with one
    agent.step_evaluations row per metric; --history compares the last runs.
    """
    from memsync.read import evaluate

    set_name = name or (file.stem if file else None)
    with _app(ctx) as app:
        if history:
            runs = app.evaluation_history(name=set_name, limit=last)
            emit(runs, as_json, _history_text)
            return
        if file is None:
            raise click.UsageError("FILE is required (or --history)")
        result = app.evaluate(read_input(file, EvalSetError), name=set_name or file.stem,
                              mode=mode, recipe=recipe, ks=evaluate.parse_ks(ks),  # type: ignore[arg-type]
                              minimum=evaluate.parse_thresholds(minimum), record=not no_record)
    emit(result, as_json, _result_text)
    if result["failed"]:
        ctx.exit(1)


def _result_text(r: dict[str, Any]) -> str:
    from memsync.read.evaluate import lower_is_better

    lines = [f"{r['set']}: {r['queries']} queries"]
    for k, v in r["metrics"].items():
        latency = lower_is_better(k)
        mark = ("  FAIL (over its --min limit)" if latency else "  FAIL (below --min)") if k in r["failed"] else ""
        lines.append(f"  {k:12} {v:9.1f}{mark}" if latency else f"  {k:12} {v:9.3f}{mark}")
    if r["run"]:
        lines.append(f"recorded as agent.execution_runs #{r['run']['id']} ({r['run']['global_id']})")
    return "\n".join(lines)


def _history_text(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "no recorded evaluation runs"
    names = list(dict.fromkeys(k for r in runs for k in r["metrics"]))
    head = f"{'run':>6} {'when':16} {'set':16} {'mode/recipe':12}" + "".join(f"{n:>11}" for n in names)
    lines = [head]
    for r in runs:
        m = r["metadata"]
        how = m.get("recipe") or m.get("mode") or ""
        lines.append(f"{r['id']:>6} {str(r['started_at'])[:16]:16} {str(m.get('set'))[:16]:16} {how[:12]:12}"
                     + "".join(f"{r['metrics'][n]:>11.3f}" if n in r["metrics"] else f"{'-':>11}" for n in names))
    return "\n".join(lines)
