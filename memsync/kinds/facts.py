"""Facts (agent.facts): one block each; current facts (or valid at as_of) about a scope."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field

from memsync.kinds.base import ChunkParams, Gather, Item, Kind, SectionBase, Source
from memsync.storage.db import context as q
from memsync.text.chunk import Chunk, approx_tokens, bounded, normalize, piece_key
from memsync.vocabulary import CHUNK_OVERLAP, CHUNK_TOKENS

FactType = Literal["preference", "constraint", "pattern", "anti_pattern", "heuristic", "result"]


def _label(row: Mapping[str, Any]) -> str:
    text = str(row.get("fact_type") or "fact").replace("_", " ")
    if row.get("category"):
        text += f" ({row['category']})"
    return text


def label(row: Mapping[str, Any]) -> str:
    """'Preference (scheduling)': the fact's type and category, as a heading and in bundles."""
    return _label(row).capitalize()


def chunk(row: Mapping[str, Any], p: ChunkParams | None = None) -> list[Chunk]:
    content = normalize(str(row.get("content") or ""))
    if not content or ended(row):
        return []  # an ended fact (forget, supersede) leaves the index
    p = p or ChunkParams(CHUNK_TOKENS, CHUNK_OVERLAP, approx_tokens)
    head = label(row)
    return [Chunk(piece_key("fact", i), "fact", text, head, _label(row), i, tokens=p.count(head) + n)
            for i, (text, n) in enumerate(bounded(content, head, p.max_tokens, p.overlap, p.count))]


def ended(row: Mapping[str, Any], at: datetime | None = None) -> bool:
    """The fact will never be current again: its end has passed, or its interval is empty
    (forgotten before it became valid). The SQL side is memsync.is_current (migration 0016)."""
    start, end = row.get("valid_from"), row.get("valid_to")
    if not isinstance(end, datetime):
        return False
    return end <= (at or datetime.now(timezone.utc)) or (isinstance(start, datetime) and end <= start)


def render(row: Mapping[str, Any]) -> str:
    return f"{label(row)}: {row['content']}"


class FactsSection(SectionBase):
    kind: Literal["facts"]
    fact_types: list[FactType] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    include_personal: bool = True  # facts about the user themself ('personal' subject)

    def gather(self, g: Gather) -> list[Item]:
        pairs = (*g.pairs, ("personal", None)) if self.include_personal and not g.confined else g.pairs
        return [g.item("facts", render(r), "agent.facts", r)
                for r in q.facts(g.conn, pairs, list(self.fact_types), self.categories, g.as_of, g.limit)]


KIND = Kind(
    "facts",
    Source("agent.facts", ("fact_type", "category", "content", "subject_type", "subject_id", "valid_from", "valid_to"),
           ("subject_type", "subject_id"), chunk),
    FactsSection,
)
