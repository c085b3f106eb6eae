"""Execution runs (agent.execution_runs): one searchable summary block per run (workflow,
outcome, time and cost against the estimate, notes from its metadata), so an agent can
find how similar work went before; the `runs` section lists recent runs about a scope."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from memsync.kinds.base import ChunkParams, Gather, Item, Kind, SectionBase, Source
from memsync.storage.db import context as q
from memsync.text.chunk import Chunk, approx_tokens, bounded, normalize, piece_key
from memsync.vocabulary import CHUNK_OVERLAP, CHUNK_TOKENS

Status = Literal["pending", "running", "completed", "failed", "cancelled"]
NOTE_KEYS = ("summary", "outcome", "notes", "lessons")  # free text a run's metadata may carry


def _num(v: Any) -> str:
    d = Decimal(str(v)).normalize()
    return f"{d:f}"


def _figures(row: Mapping[str, Any]) -> list[str]:
    out = []
    if row.get("actual_minutes") is not None:
        text = f"took {_num(row['actual_minutes'])} min"
        if row.get("estimated_minutes") is not None:
            delta = Decimal(str(row["actual_minutes"])) - Decimal(str(row["estimated_minutes"]))
            text += f" (estimated {_num(row['estimated_minutes'])}, {'+' if delta >= 0 else ''}{_num(delta)})"
        out.append(text)
    elif row.get("estimated_minutes") is not None:
        out.append(f"estimated {_num(row['estimated_minutes'])} min")
    if row.get("actual_cost") is not None:
        text = f"cost {_num(row['actual_cost'])} {row.get('cost_currency') or ''}".rstrip()
        if row.get("estimated_cost") is not None:
            text += f" (estimated {_num(row['estimated_cost'])})"
        out.append(text)
    if row.get("human_minutes") is not None:
        out.append(f"{_num(row['human_minutes'])} min of human time")
    return out


def render(row: Mapping[str, Any]) -> str:
    head = f"Run: {row.get('workflow') or 'unnamed workflow'} ({row.get('status')}"
    head += f", {str(row['started_at'])[:16]})" if row.get("started_at") else ")"
    lines = [head]
    figures = _figures(row)
    if figures:
        text = "; ".join(figures)
        lines.append(text[0].upper() + text[1:] + ".")
    meta = row.get("metadata") or {}
    for key in NOTE_KEYS:
        value = meta.get(key) if isinstance(meta, Mapping) else None
        if isinstance(value, str) and value.strip():
            lines.append(f"{key.capitalize()}: {value.strip()}")
    return "\n".join(lines)


def chunk(row: Mapping[str, Any], p: ChunkParams | None = None) -> list[Chunk]:
    lines = render(row).split("\n")
    body = normalize("\n".join(lines[1:])) or normalize(lines[0])
    workflow = str(row.get("workflow") or "").strip() or None
    head = f"Run: {workflow or 'unnamed workflow'} ({row.get('status')})"
    p = p or ChunkParams(CHUNK_TOKENS, CHUNK_OVERLAP, approx_tokens)
    return [Chunk(piece_key("run", i), "run_summary", text, head, workflow, i, tokens=p.count(head) + n)
            for i, (text, n) in enumerate(bounded(body, head, p.max_tokens, p.overlap, p.count))]


class RunsSection(SectionBase):
    kind: Literal["runs"]
    statuses: list[Status] = Field(default_factory=list)
    workflows: list[str] = Field(default_factory=list)

    def gather(self, g: Gather) -> list[Item]:
        rows = q.runs(g.conn, g.pairs, list(self.statuses), self.workflows, g.as_of, g.since, g.limit)
        return [g.item("runs", render(r), "agent.execution_runs", r) for r in rows]


KIND = Kind(
    "execution_runs",
    Source("agent.execution_runs",
           ("workflow", "status", "ended_at", "estimated_minutes", "actual_minutes", "estimated_cost", "actual_cost",
            "cost_currency", "human_minutes", "metadata", "subject_type", "subject_id"),
           ("subject_type", "subject_id"), chunk),
    RunsSection,
)
