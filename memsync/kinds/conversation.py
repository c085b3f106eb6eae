"""Conversation recall (recipe section kind `conversation`, "relevant exchanges"): the
turns of a subject's sessions that best match the query, each with `neighbours` turns
around it, merged where they overlap, dated and speaker-labelled, cited by event. It syncs
nothing of its own: turns are `agent.events` blocks (see events.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from memsync.kinds.base import Gather, Item, Kind, SectionBase
from memsync.kinds.events import day, person, speaker, text_of
from memsync.storage.db import context as q
from memsync.vocabulary import SearchMode

# The most of one turn an exchange shows; the rest is named, not shown ("[… N more characters:
# event:GID]", the whole turn one `get` away). A chat turn is rarely longer; a tool's answer
# or a pasted document (up to 100,000 characters) would otherwise fill an agent's context,
# and a recipe's budget would drop the whole exchange, the matching turn with it.
TURN_CHARS = 4000
# An exchange's heading names its session by the start of the session's summary (an imported
# chat's title, an agent's closing summary): enough to tell sessions apart, never a paragraph.
LABEL_CHARS = 80


@dataclass
class Exchange:
    """Consecutive turns of one session around one or more matching turns."""

    session_id: int
    session_type: str
    session_global_id: str
    turns: list[dict[str, Any]]
    hits: list[int] = field(default_factory=list)  # the matching events, best first
    score: float = 0.0
    session_summary: str | None = None

    @property
    def event_ids(self) -> list[int]:
        return [int(t["id"]) for t in self.turns]

    def to_dict(self) -> dict[str, Any]:
        return {"session": {"id": self.session_id, "global_id": self.session_global_id, "type": self.session_type,
                            "summary": self.session_summary},
                "hits": self.hits, "score": self.score, "text": render(self),
                "turns": [{"id": t["id"], "global_id": t["global_id"], "occurred_at": t["occurred_at"],
                           "speaker": speaker(t["payload"]), "person": person(t["payload"]),
                           "text": shown(t), "chars": len(text_of(t["payload"])),
                           "hit": int(t["id"]) in self.hits} for t in self.turns]}


def merge(rows: Sequence[Mapping[str, Any]], ranked: Sequence[tuple[int, float]]) -> list[Exchange]:
    """Windows (rows of exchanges(), grouped by `hit`) into exchanges: windows of one session
    that share a turn become one. Ordered by their best hit. Pure."""
    windows: dict[int, list[Mapping[str, Any]]] = {}
    for r in rows:
        windows.setdefault(int(r["hit"]), []).append(r)
    out: list[Exchange] = []
    for hit, score in ranked:
        turns = windows.get(hit)
        if not turns:
            continue  # the event is gone
        ids = {int(t["id"]) for t in turns}
        into = next((x for x in out if x.session_id == turns[0]["session_id"] and ids & set(x.event_ids)), None)
        if into is None:
            out.append(Exchange(int(turns[0]["session_id"]), str(turns[0]["session_type"]),
                                str(turns[0]["session_global_id"]), [dict(t) for t in turns], [hit], score,
                                turns[0].get("session_summary")))
            continue
        have = set(into.event_ids)
        into.turns = sorted([*into.turns, *(dict(t) for t in turns if int(t["id"]) not in have)],
                            key=lambda t: (t["occurred_at"], t["id"]))
        into.hits.append(hit)
    return out


def render(ex: Exchange) -> str:
    """'8 May 2023 (conversation: Climbing gym plans):' (the session's summary, when it has
    one, by its start) then one line a turn, 'Priya: …'."""
    first = ex.turns[0]["occurred_at"]
    lines = [f"{day(first)} ({ex.session_type.replace('_', ' ')}{label(ex.session_summary)}):"]
    for t in ex.turns:
        who = speaker(t["payload"]) or str(t["event_type"]).capitalize()
        lines.append(f"{who}: {shown(t)}")
    return "\n".join(lines)


def label(summary: str | None) -> str:
    """': ' and the summary's first line, cut at a word to LABEL_CHARS; '' without one."""
    line = (summary or "").strip().split("\n", 1)[0].strip()
    if len(line) > LABEL_CHARS:
        line = line[:LABEL_CHARS].rsplit(" ", 1)[0].rstrip(" ,;:") + " …"
    return f": {line}" if line else ""


def shown(turn: Mapping[str, Any]) -> str:
    """A turn's text as an exchange shows it: whole up to TURN_CHARS, else its start and what
    was left out, naming the event that holds it whole."""
    text = text_of(turn["payload"])
    if len(text) <= TURN_CHARS:
        return text
    return f"{text[:TURN_CHARS].rstrip()} [… {len(text) - TURN_CHARS:,} more characters: {turn['global_id']}]"


def people(ex: Exchange) -> list[str]:
    """The erp.people global_ids of the exchange's speakers (linked on import), in turn order."""
    return list(dict.fromkeys(p for t in ex.turns if (p := person(t["payload"]))))


def recall(conn: Any, ranked: Sequence[tuple[int, float]], neighbours: int, as_of: datetime | None = None
           ) -> list[Exchange]:
    """Matching events (best first, with scores) as exchanges with their neighbours (none
    said after `as_of`)."""
    if not ranked:
        return []
    return merge(q.exchanges(conn, [e for e, _ in ranked], neighbours, as_of), ranked)


class ConversationSection(SectionBase):
    kind: Literal["conversation"]
    query: str = "{query}"
    top_k: int = Field(5, ge=1, le=50, description="matching turns to start from")
    neighbours: int = Field(1, ge=0, le=20, description="turns kept on each side of a matching turn")
    mode: SearchMode = "hybrid"
    fusion: Literal["zscore", "rrf"] = "zscore"
    rrf_k: int = Field(60, ge=1)
    weights: dict[str, float] = Field(default_factory=lambda: {"dense": 1.0, "lexical": 1.0})

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) - {"dense", "lexical"}:
            raise ValueError(f"weights are for 'dense' and 'lexical', not {sorted(set(v) - {'dense', 'lexical'})}")
        return v

    # what the search hook reads besides the fields above: turns only, no reranking
    @property
    def block_types(self) -> tuple[str, ...]:
        return ()

    @property
    def source_tables(self) -> tuple[str, ...]:
        return ("agent.events",)

    @property
    def mmr_lambda(self) -> None:
        return None

    @property
    def recency_half_life_days(self) -> None:
        return None

    def gather(self, g: Gather) -> list[Item]:
        items = []
        ranked = g.events(self, g)
        for ex in recall(g.conn, ranked, self.neighbours, g.as_of):
            text = render(ex)
            best = next(t for t in ex.turns if int(t["id"]) == ex.hits[0])
            items.append(Item(self.name, "conversation", text, g.count_tokens(text), "agent.events", ex.hits[0],
                              best["global_id"], score=ex.score,
                              score_breakdown={"events": ex.event_ids, "hits": ex.hits,
                                               "session": ex.session_global_id, "people": people(ex)}))
        return items


KIND = Kind("conversation", section=ConversationSection)
