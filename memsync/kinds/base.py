"""What a memory kind is built from: the source declaration (write path), the recipe
section base and the bundle item (read path). Nothing here does I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memsync.text.chunk import Chunk, TokenCounter

Scope = Literal["subject", "tree"]
Pairs = tuple[tuple[str, int | None], ...]  # (subject_type, subject_id); a NULL id: the whole type


# ------------------------------------------------------------------ write path


@dataclass(frozen=True)
class ChunkParams:
    max_tokens: int
    overlap: int
    count: TokenCounter


@dataclass(frozen=True)
class Source:
    """A table whose rows memsync turns into agent.blocks. Its capture triggers are
    (re)installed from the source list on every `memsync db migrate`."""

    table: str
    content_columns: tuple[str, ...]  # a change to any of these enqueues work; others don't
    subject_columns: tuple[str, str]
    chunker: Callable[[Mapping[str, Any], ChunkParams], list[Chunk]]
    is_artifact: bool = False
    # (column, values) conditions, all of which a row must meet to be captured (events: notes
    # and decisions beyond a single run; tool calls would cross the queue to produce nothing)
    capture_only: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def captures(self, row: Mapping[str, Any]) -> bool:
        return all(row.get(col) in values for col, values in self.capture_only)

    def subject(self, row: Mapping[str, Any]) -> tuple[str | None, int | None]:
        return row.get(self.subject_columns[0]), row.get(self.subject_columns[1])


# ------------------------------------------------------------------ read path


@dataclass
class Item:
    """One entry of a context bundle, with what it cites."""

    section: str
    kind: str
    text: str
    tokens: int
    table: str
    id: int | None
    global_id: str | None
    score: float | None = None
    score_breakdown: dict[str, Any] = field(default_factory=dict)
    block_id: int | None = None
    artifact_external_id: str | None = None

    @property
    def citation(self) -> str:
        ref = f"{self.table}#{self.id}"
        if self.block_id is not None:
            ref = f"agent.blocks#{self.block_id} from {ref}"
        if self.artifact_external_id:
            ref += f" ({self.artifact_external_id})"
        elif self.global_id:
            ref += f" ({self.global_id})"
        return ref


@dataclass
class Gather:
    """What a section needs to gather its rows: the connection, the scope's subject pairs,
    the time window, how many rows to fetch, and how to count tokens."""

    conn: Any  # memsync.storage.db.DictConn (typed loosely: the kinds sit below the db helpers' users)
    section: str
    pairs: Pairs
    as_of: datetime | None
    since: datetime | None
    limit: int
    count_tokens: TokenCounter
    semantic: Callable[[Any, Gather], list[Item]]  # the read path's hybrid search, for semantic sections
    events: Callable[[Any, Gather], list[tuple[int, float]]]  # its conversation turns ranked, best first
    confined: bool = False  # a scoped reader (memsync mcp --scope): nothing outside `pairs`, not even 'personal'

    def item(self, kind: str, text: str, table: str, row: Mapping[str, Any]) -> Item:
        return Item(self.section, kind, text, self.count_tokens(text), table, int(row["id"]), row.get("global_id"))


class SectionBase(BaseModel):
    """A recipe section. Each kind subclasses it with `kind: Literal[...]`, its own options
    and gather(); the recipe spec validates sections through their union."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str | None = None
    priority: int = Field(5, ge=1, le=9, description="1 is kept longest; the highest number is dropped first")
    min_items: int = Field(0, ge=0)
    max_items: int = Field(10, ge=1, le=200)
    max_tokens: int | None = Field(None, ge=1)
    scope: Scope | None = None  # default: the recipe's scope
    since_days: float | None = Field(None, gt=0, le=36525)  # at most a century

    @model_validator(mode="after")
    def _min_le_max(self) -> SectionBase:
        if self.min_items > self.max_items:
            raise ValueError("min_items must not exceed max_items")
        return self

    def gather(self, g: Gather) -> list[Item]:
        raise NotImplementedError(f"section kind {self.kind!r} does not say how it gathers")


@dataclass(frozen=True)
class Kind:
    """A memory kind: what it syncs into blocks (if anything) and the recipe section that
    reads it (if any)."""

    name: str
    source: Source | None = None
    section: type[SectionBase] | None = None


# ------------------------------------------------------------------ ERP records (allow-list entries)


FilterType = type[str] | type[int] | type[bool]


@dataclass(frozen=True)
class Relation:
    """An ERP relation a recipe may read as structured records: how it links to subjects,
    which columns it may be filtered and ordered by (typed), and how a row reads."""

    table: str
    entity: str  # the subject type of its rows
    links: Mapping[str, str]  # subject type -> column holding that subject's id
    filters: Mapping[str, FilterType]
    order_by: tuple[str, ...]
    render: Callable[[Mapping[str, Any]], str]
