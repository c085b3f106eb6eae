"""Events (agent.events): recent activity about a scope."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from memsync.kinds.base import Gather, Item, Kind, SectionBase
from memsync.storage.db import context as q


def render(row: Mapping[str, Any]) -> str:
    return f"{row['event_type']} ({str(row['occurred_at'])[:16]}): {json.dumps(row['payload'], default=str)}"


class EventsSection(SectionBase):
    kind: Literal["events"]
    event_types: list[Literal["tool_call", "tool_result", "note", "error", "decision"]] = Field(default_factory=list)
    memory_scopes: list[Literal["run", "session", "user", "project", "global"]] = Field(default_factory=list)

    def gather(self, g: Gather) -> list[Item]:
        rows = q.events(g.conn, g.pairs, list(self.event_types), list(self.memory_scopes), g.as_of, g.since, g.limit)
        return [g.item("events", render(r), "agent.events", r) for r in rows]


KIND = Kind("events", section=EventsSection)
