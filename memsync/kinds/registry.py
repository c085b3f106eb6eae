"""Every memory kind, in one list. Adding a kind: write its module, add it here."""

from __future__ import annotations

from memsync.kinds import (
    artifacts,
    blocks,
    conversation,
    events,
    execution_runs,
    facts,
    goals,
    records,
    reflections,
    sessions,
)
from memsync.kinds.base import Kind

KINDS: tuple[Kind, ...] = (
    artifacts.KIND, reflections.KIND, facts.KIND, goals.KIND, execution_runs.KIND,
    events.KIND, sessions.KIND, conversation.KIND, records.KIND, blocks.KIND,
)
