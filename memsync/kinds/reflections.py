"""Reflections (agent.reflections): one block per section (goals, accomplishments, blockers,
decisions, next actions) and the raw text as markdown; recent reflections about a scope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from memsync.kinds.base import ChunkParams, Gather, Item, Kind, SectionBase, Source
from memsync.storage.db import context as q
from memsync.text.chunk import (
    Chunk,
    TokenCounter,
    approx_tokens,
    as_markdown_list,
    chunk_markdown,
    pack,
    split_long,
    strip_blobs,
)
from memsync.vocabulary import CHUNK_OVERLAP, CHUNK_TOKENS, ReflectionMode

SECTIONS = ("goals", "accomplishments", "blockers", "decisions", "next_actions")


def _label(row: Mapping[str, Any]) -> str:
    period = row.get("period_start") or row.get("created_at")
    label = f"{str(row.get('mode') or '').capitalize()} reflection"
    return label + (f" {str(period)[:10]}" if period is not None else "")


def chunk_reflection(row: Mapping[str, Any], *, max_tokens: int = CHUNK_TOKENS, overlap: int = CHUNK_OVERLAP,
                     count: TokenCounter = approx_tokens) -> list[Chunk]:
    label = _label(row)
    chunks: list[Chunk] = []
    for name in SECTIONS:
        body = strip_blobs(as_markdown_list(row.get(name)))
        if not body:
            continue
        heading = f"{label} > {name.replace('_', ' ').capitalize()}"
        head_tokens = count(heading)
        budget = max(16, max_tokens - head_tokens)
        pieces = pack([p for u in body.split("\n") for p in split_long(u, budget, count)], budget, overlap, "\n")
        for i, (piece, tokens) in enumerate(pieces):
            chunks.append(Chunk(f"{name}#{i}", "reflection_section", piece, heading, name, len(chunks),
                                tokens=head_tokens + tokens))
    raw = row.get("raw_text")
    if raw and str(raw).strip():
        for c in chunk_markdown(str(raw), title=label, max_tokens=max_tokens, overlap=overlap,
                                count=count, block_type="reflection_section", key_prefix="raw_text/"):
            chunks.append(Chunk(c.chunk_key, c.block_type, c.body_md, c.heading_path, "raw_text", len(chunks),
                                tokens=c.tokens))
    return chunks


def chunk(row: Mapping[str, Any], p: ChunkParams) -> list[Chunk]:
    return chunk_reflection(row, max_tokens=p.max_tokens, overlap=p.overlap, count=p.count)


def render(row: Mapping[str, Any]) -> str:
    head = f"{str(row['mode']).capitalize()} reflection {str(row.get('period_start') or row['created_at'])[:10]}"
    parts = [head]
    for name in SECTIONS:
        body = as_markdown_list(row.get(name))
        if body:
            parts.append(f"{name.replace('_', ' ').capitalize()}:\n{body}")
    if row.get("raw_text"):
        parts.append(str(row["raw_text"]).strip())
    return "\n".join(parts)


class ReflectionsSection(SectionBase):
    kind: Literal["reflections"]
    modes: list[ReflectionMode] = Field(default_factory=list)

    def gather(self, g: Gather) -> list[Item]:
        return [g.item("reflections", render(r), "agent.reflections", r)
                for r in q.reflections(g.conn, g.pairs, list(self.modes), g.as_of, g.since, g.limit)]


KIND = Kind(
    "reflections",
    Source("agent.reflections",
           ("mode", "focal_entity_type", "focal_entity_id", "period_start", *SECTIONS, "raw_text"),
           ("focal_entity_type", "focal_entity_id"), chunk),
    ReflectionsSection,
)
