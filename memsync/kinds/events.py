"""Events (agent.events): recent activity about a scope. Notes and decisions whose memory
outlives a run are searchable memory too: one 'note' block each (tool calls, results,
errors and run-scoped events, memsync's own audit records among them, are not).

A conversation turn (a note whose payload names a `speaker` or `role`) is rendered with
who said it and when ("Priya, 8 May 2023"), in both what is embedded and what is searched
by words, at two granularities: the turn alone, and an 'exchange' block of the turn with the
one before it in its session (metadata.covers names both events), so a short reply ("Yes,
it was amazing!") is found by what it answers and a question by its answer. Event search
(memsync.read.hybrid.search_events) ranks turns over both. Chosen by measurement
(bench/granularity_probe.py, bench/episodic_bench.py): turns with pairs beat turns alone,
longer windows, whole sessions, and turns embedded with the turns before them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from memsync.kinds.base import ChunkParams, Gather, Item, Kind, SectionBase, Source
from memsync.storage.db import context as q
from memsync.text.chunk import Chunk, TokenCounter, approx_tokens, bounded, normalize, piece_key
from memsync.vocabulary import CHUNK_OVERLAP, CHUNK_TOKENS, EventType, MemoryScope

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


def speaker(payload: Any) -> str | None:
    """Who said it: a conversation message's `speaker` (a name) or `role`."""
    if isinstance(payload, Mapping):
        for key in ("speaker", "role"):
            value = payload.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def person(payload: Any) -> str | None:
    """The erp.people global_id a conversation message's speaker was linked to on import."""
    value = payload.get("person") if isinstance(payload, Mapping) else None
    return value if isinstance(value, str) and value else None


def day(when: Any) -> str:
    """'8 May 2023': words a question about a time can match ("in May 2023")."""
    return f"{when.day} {when:%B %Y}" if isinstance(when, (datetime, date)) else ""


def turn_line(payload: Any) -> str:
    text = text_of(payload)
    who = speaker(payload)
    return f"{who}: {text}" if who else text


def render(row: Mapping[str, Any]) -> str:
    who = speaker(row.get("payload"))
    if who:
        return f"{who}, {str(row['occurred_at'])[:16]}: {text_of(row['payload'])}"
    return f"{row['event_type']} ({str(row['occurred_at'])[:16]}): {json.dumps(row['payload'], default=str)}"


def heading(row: Mapping[str, Any]) -> str:
    """'Priya, 8 May 2023' for a turn; 'Decision, 8 May 2023' for a note or decision."""
    who = speaker(row.get("payload")) or str(row.get("event_type") or "note").capitalize()
    when = day(row.get("occurred_at"))
    return f"{who}, {when}" if when else who


def tail(line: str, budget: int, count: TokenCounter) -> str | None:
    """The end of `line` within `budget` tokens ("… " marks the cut), whole when it fits."""
    if count(line) <= budget:
        return line
    words = line.split()
    while words and count(" ".join(words)) > budget:
        words = words[max(1, len(words) // 4):]
    return "… " + " ".join(words) if words else None


def exchange(row: Mapping[str, Any], head: str, who: str, body: str, meta: Mapping[str, Any], ordinal: int,
             p: ChunkParams) -> Chunk | None:
    """The turn with the one before it, as one block searched by meaning and by words, citing
    both events (metadata.covers): a question is often answered across a question and its
    reply. The earlier turn keeps at most half the room, cut to its end; a long turn
    contributes its start (its own blocks hold the rest)."""
    before, ids = list(row.get("previous_turns") or []), list(row.get("previous_ids") or [])
    if not before or len(ids) != len(before):
        return None
    prev = tail(normalize(turn_line(before[-1])), (p.max_tokens - p.count(head)) // 2, p.count)
    if not prev:
        return None
    text, n = next(iter(bounded(f"{prev}\n{who}: {body}", head, p.max_tokens, 0, p.count)))
    return Chunk(piece_key("exchange", 0), "exchange", text, head, head, ordinal,
                 {**meta, "covers": [int(ids[-1]), int(row["id"])]}, tokens=p.count(head) + n)


def chunk(row: Mapping[str, Any], p: ChunkParams | None = None) -> list[Chunk]:
    if not SOURCE.captures(row):
        return []
    body = normalize(text_of(row.get("payload")))
    if not body:
        return []
    p = p or ChunkParams(CHUNK_TOKENS, CHUNK_OVERLAP, approx_tokens)
    head = heading(row)
    meta: dict[str, Any] = {"memory_scope": row.get("memory_scope"), "session_id": row.get("session_id")}
    who = speaker(row.get("payload"))
    if who:
        meta["speaker"] = who
    out = [Chunk(piece_key("event", i), "note", text, head, head, i, meta, tokens=p.count(head) + n)
           for i, (text, n) in enumerate(bounded(body, head, p.max_tokens, p.overlap, p.count))]
    pair = exchange(row, head, who, body, meta, len(out), p) if who else None
    return [*out, pair] if pair else out


class EventsSection(SectionBase):
    kind: Literal["events"]
    event_types: list[EventType] = Field(default_factory=list)
    memory_scopes: list[MemoryScope] = Field(default_factory=list)

    def gather(self, g: Gather) -> list[Item]:
        rows = q.events(g.conn, g.pairs, list(self.event_types), list(self.memory_scopes), g.as_of, g.since, g.limit)
        return [g.item("events", render(r), "agent.events", r) for r in rows]


SOURCE = Source("agent.events", ("event_type", "payload", "memory_scope", "subject_type", "subject_id", "occurred_at",
                                 "session_id"),
                ("subject_type", "subject_id"), chunk,
                capture_only=(("event_type", SEARCHABLE), ("memory_scope", LASTING)))
KIND = Kind("events", SOURCE, EventsSection)
