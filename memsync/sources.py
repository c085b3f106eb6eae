"""The synced sources, declared in one place. A source is a table whose rows memsync turns
into agent.blocks; its capture triggers are (re)installed from this list on every
`memsync db migrate`. Adding erp.tasks later: one Source(...) entry with a chunker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from memsync import chunk
from memsync.chunk import Chunk, TokenCounter

BLOCKS_TABLE = "agent.blocks"


@dataclass(frozen=True)
class ChunkParams:
    max_tokens: int
    overlap: int
    count: TokenCounter


@dataclass(frozen=True)
class Source:
    table: str
    content_columns: tuple[str, ...]  # a change to any of these enqueues work; others don't
    subject_columns: tuple[str, str]
    chunker: Callable[[Mapping[str, Any], ChunkParams], list[Chunk]]
    is_artifact: bool = False

    def subject(self, row: Mapping[str, Any]) -> tuple[str | None, int | None]:
        return row.get(self.subject_columns[0]), row.get(self.subject_columns[1])


def _artifact_chunks(row: Mapping[str, Any], p: ChunkParams) -> list[Chunk]:
    if row.get("deleted_at") is not None or not (row.get("body_md") or "").strip():
        return []
    title = row.get("title")
    if row.get("artifact_type") == "sop":
        return chunk.chunk_sop(row["body_md"], title=title, max_tokens=p.max_tokens, overlap=p.overlap, count=p.count)
    return chunk.chunk_markdown(row["body_md"], title=title, max_tokens=p.max_tokens, overlap=p.overlap, count=p.count)


SOURCES: dict[str, Source] = {
    s.table: s
    for s in (
        Source(
            "agent.artifacts",
            ("artifact_type", "title", "body_md", "subject_type", "subject_id", "deleted_at"),
            ("subject_type", "subject_id"),
            _artifact_chunks,
            is_artifact=True,
        ),
        Source(
            "agent.reflections",
            ("mode", "focal_entity_type", "focal_entity_id", "period_start", *chunk.REFLECTION_SECTIONS, "raw_text"),
            ("focal_entity_type", "focal_entity_id"),
            lambda row, p: chunk.chunk_reflection(row, max_tokens=p.max_tokens, overlap=p.overlap, count=p.count),
        ),
        Source(
            "agent.facts",
            ("fact_type", "category", "content", "subject_type", "subject_id"),
            ("subject_type", "subject_id"),
            lambda row, p: chunk.chunk_fact(row),
        ),
        Source(
            "agent.goals",
            ("title", "description", "success_criteria", "subject_type", "subject_id"),
            ("subject_type", "subject_id"),
            lambda row, p: chunk.chunk_goal(row),
        ),
    )
}

# Direct writes to agent.blocks: the columns that change what is embedded or its payload.
BLOCK_CONTENT_COLUMNS = (
    "block_type", "title", "body_md", "heading_path", "source_table", "source_id",
    "artifact_id", "subject_type", "subject_id",
)


def install_triggers(dsn: str) -> None:
    from memsync.db import capture, connect

    with connect(dsn, autocommit=True) as conn, conn.transaction():
        for source in SOURCES.values():
            capture.install_source_triggers(conn, source.table, source.content_columns, "capture_row")
        capture.install_source_triggers(conn, BLOCKS_TABLE, BLOCK_CONTENT_COLUMNS, "capture_block")
