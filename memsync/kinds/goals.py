"""Goals (agent.goals): one block each; goals about a scope by status and horizon."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from memsync.kinds.base import ChunkParams, Gather, Item, Kind, SectionBase, Source
from memsync.storage.db import context as q
from memsync.text.chunk import Chunk, approx_tokens, as_markdown_list, bounded, normalize, piece_key
from memsync.vocabulary import CHUNK_OVERLAP, CHUNK_TOKENS

Status = Literal["proposed", "active", "achieved", "abandoned", "paused"]
Horizon = Literal["daily", "weekly", "monthly", "quarterly", "yearly", "long_term"]


def chunk(row: Mapping[str, Any], p: ChunkParams | None = None) -> list[Chunk]:
    parts = [str(row.get("description") or "").strip()]
    criteria = as_markdown_list(row.get("success_criteria"))
    if criteria:
        parts.append("Success criteria:\n" + criteria)
    body = normalize("\n\n".join(part for part in parts if part))
    title = str(row.get("title") or "").strip()
    if not (title or body):
        return []
    p = p or ChunkParams(CHUNK_TOKENS, CHUNK_OVERLAP, approx_tokens)
    head = f"Goal: {title}" if title else None
    return [Chunk(piece_key("goal", i), "goal", text, head, title or None, i,
                  tokens=(p.count(head) if head else 0) + n)
            for i, (text, n) in enumerate(bounded(body or title, head, p.max_tokens, p.overlap, p.count))]


def render(row: Mapping[str, Any]) -> str:
    text = f"Goal: {row['title']} ({row['status']}, priority {row['priority']}, {row['horizon']})"
    return text + (f"\n{row['description']}" if row["description"] else "")


class GoalsSection(SectionBase):
    kind: Literal["goals"]
    statuses: list[Status] = Field(default_factory=lambda: list[Status](["active"]))
    horizons: list[Horizon] = Field(default_factory=list)
    include_personal: bool = True

    def gather(self, g: Gather) -> list[Item]:
        pairs = (*g.pairs, ("personal", None)) if self.include_personal and not g.confined else g.pairs
        return [g.item("goals", render(r), "agent.goals", r)
                for r in q.goals(g.conn, pairs, list(self.statuses), list(self.horizons), g.as_of, g.limit)]


KIND = Kind(
    "goals",
    Source("agent.goals", ("title", "description", "success_criteria", "subject_type", "subject_id"),
           ("subject_type", "subject_id"), chunk),
    GoalsSection,
)
