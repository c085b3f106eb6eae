"""Events (agent.events): recent activity about a scope. Notes and decisions whose memory
outlives a run are searchable memory too: one 'note' block each (tool calls, results,
errors and run-scoped events, memsync's own audit records among them, are not)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from memsync.kinds.base import ChunkParams, Gather, Item, Kind, SectionBase, Source
from memsync.storage.db import context as q
from memsync.text.chunk import Chunk, approx_tokens, bounded, normalize, piece_key

SEARCHABLE = ("note", "decision")
# 'run' memory lives for one run (and holds memsync's own audit records): not searchable later
LASTING = ("session", "user", "project", "global")
TEXT_KEYS = ("text", "summary", "note", "decision", "body")  # where a payload keeps its prose


def text_of(payload: Any) -> str:
    """The prose of an event payload: its first text field, else the payload as JSON."""
    if isinstance(payload, Mapping):
        for k in TEXT_KEYS:
            if isinstance(payload.get(k), str) and payload[k].strip():
                return str(payload[k])
    return json.dumps(payload, default=str, ensure_ascii=False) if payload else ""


def render(row: Mapping[str, Any]) -> str:
    return f"{row['event_type']} ({str(row['occurred_at'])[:16]}): {json.dumps(row['payload'], default=str)}"


def chunk(row: Mapping[str, Any], p: ChunkParams | None = None) -> list[Chunk]:
    if not SOURCE.captures(row):
        return []
    body = normalize(text_of(row.get("payload")))
    if not body:
        return []
    p = p or ChunkParams(256, 32, approx_tokens)
    head = f"{str(row['event_type']).capitalize()} ({row.get('memory_scope') or 'session'} memory)"
    meta = {"memory_scope": row.get("memory_scope"), "session_id": row.get("session_id")}
    return [Chunk(piece_key("event", i), "note", text, head, head, i, meta, tokens=p.count(head) + n)
            for i, (text, n) in enumerate(bounded(body, head, p.max_tokens, p.overlap, p.count))]


class EventsSection(SectionBase):
    kind: Literal["events"]
    event_types: list[Literal["tool_call", "tool_result", "note", "error", "decision"]] = Field(default_factory=list)
    memory_scopes: list[Literal["run", "session", "user", "project", "global"]] = Field(default_factory=list)

    def gather(self, g: Gather) -> list[Item]:
        rows = q.events(g.conn, g.pairs, list(self.event_types), list(self.memory_scopes), g.as_of, g.since, g.limit)
        return [g.item("events", render(r), "agent.events", r) for r in rows]


SOURCE = Source("agent.events", ("event_type", "payload", "memory_scope", "subject_type", "subject_id"),
                ("subject_type", "subject_id"), chunk,
                capture_only=(("event_type", SEARCHABLE), ("memory_scope", LASTING)))
KIND = Kind("events", SOURCE, EventsSection)
