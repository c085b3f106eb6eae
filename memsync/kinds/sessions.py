"""Sessions (agent.sessions): recent sessions about a scope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from memsync.kinds.base import Gather, Item, Kind, SectionBase
from memsync.storage.db import context as q


def render(row: Mapping[str, Any]) -> str:
    text = f"Session {row['session_type']} {str(row['started_at'])[:16]} ({row['status']})"
    return text + (f": {row['summary']}" if row["summary"] else "")


class SessionsSection(SectionBase):
    kind: Literal["sessions"]
    session_types: list[str] = Field(default_factory=list)

    def gather(self, g: Gather) -> list[Item]:
        rows = q.sessions(g.conn, g.pairs, self.session_types, g.as_of, g.since, g.limit)
        return [g.item("sessions", render(r), "agent.sessions", r) for r in rows]


KIND = Kind("sessions", section=SessionsSection)
