"""Search filters. Every field applies in every backend and in both signals; a field a
backend cannot apply raises instead of being ignored (unknown fields are rejected here)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from memsync.errors import FilterError, field_problems

# The block type vocabulary (agent.blocks' CHECK constraint, migrations 0001 and 0010): a
# filter naming anything else would silently match nothing.
BLOCK_TYPES = ("sop_step", "task", "goal", "doc_section", "prompt_snippet", "reflection_section", "fact", "note",
               "other", "run_summary")


def check_block_types(v: Sequence[str]) -> Any:
    unknown = [t for t in v if t not in BLOCK_TYPES]
    if unknown:
        raise ValueError(f"unknown block type(s) {', '.join(map(repr, unknown))}; known: {', '.join(BLOCK_TYPES)}")
    return v


def check_source_tables(v: Sequence[str]) -> Any:
    for t in v:
        if not re.fullmatch(r"(erp|agent)\.[a-z_]+", t):
            raise ValueError(f"source table {t!r} is not schema.table in erp or agent")
    return v


def subject_key(subject_type: str, subject_id: int | None) -> str:
    """The key agent.blocks.subject_key holds (migration 0006): 'project:42', 'personal:'."""
    return f"{subject_type}:{'' if subject_id is None else subject_id}"


# sources whose rows carry a time of their own, read after ranking (hit_rows): a turn's
# occurred_at, a fact's validity
TIMED_SOURCES = ("agent.events", "agent.facts")


class Filters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    block_types: tuple[str, ...] = ()
    source_tables: tuple[str, ...] = ()
    artifact_ids: tuple[int, ...] = ()
    # (subject_type, subject_id) pairs; a block matches when its subject is one of them
    subjects: tuple[tuple[str, int | None], ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    # the time of what a block holds, bounded (search's as_of and since): blocks timed by when
    # they were written are bounded here, before ranking; turns and facts, timed by when they
    # were said and by their validity, after it (memsync.storage.db.search.hit_rows)
    memory_after: datetime | None = None
    memory_before: datetime | None = None
    # True when `subjects` was given and may be empty (a scope with nothing in it matches nothing)
    scoped: bool = False

    _block_types = field_validator("block_types")(lambda cls, v: check_block_types(v))
    _tables = field_validator("source_tables")(lambda cls, v: check_source_tables(v))

    def is_empty(self) -> bool:
        return not (self.block_types or self.source_tables or self.artifact_ids or self.subjects or self.scoped
                    or self.created_after or self.created_before or self.memory_after or self.memory_before)

    @classmethod
    def parse(cls, data: dict[str, object] | None) -> Filters:
        from pydantic import ValidationError

        if not data:
            return cls()
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise FilterError(f"invalid filter: {field_problems(exc)}") from None
