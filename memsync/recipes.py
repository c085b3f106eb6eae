"""Context recipe specs (agent.context_recipes.retrieval_spec), validated with pydantic so
an error names the field. A recipe is ordered sections of typed kinds; identifiers in it
(relations, columns) are checked against allow-lists and never reach SQL as text."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memsync.errors import MemsyncError
from memsync.hybrid import Mode
from memsync.records import RELATIONS


class RecipeError(MemsyncError):
    """A recipe is unknown or its spec is malformed."""


Scope = Literal["subject", "tree"]
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
TEMPLATE_FIELDS = {"query", "subject.name", "subject.type", "subject.id", "subject.description"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str | None = None
    priority: int = Field(5, ge=1, le=9, description="1 is kept longest; the highest number is dropped first")
    min_items: int = Field(0, ge=0)
    max_items: int = Field(10, ge=1, le=200)
    max_tokens: int | None = Field(None, ge=1)
    scope: Scope | None = None  # default: the recipe's scope
    since_days: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _min_le_max(self) -> _Section:
        if self.min_items > self.max_items:
            raise ValueError("min_items must not exceed max_items")
        return self


class RecordsSection(_Section):
    kind: Literal["records"]
    relation: str
    where: dict[str, list[str | int | bool] | str | int | bool] = Field(default_factory=dict)
    order_by: str | None = None
    descending: bool = False

    @model_validator(mode="after")
    def _allowed(self) -> RecordsSection:
        rel = RELATIONS.get(self.relation)
        if rel is None:
            raise ValueError(f"relation {self.relation!r} is not allowed; allowed: {', '.join(sorted(RELATIONS))}")
        for column, value in self.where.items():
            if column not in rel.filters:
                raise ValueError(f"{self.relation} cannot be filtered on {column!r}; "
                                 f"filterable: {', '.join(sorted(rel.filters))}")
            want = rel.filters[column]
            for v in value if isinstance(value, list) else [value]:
                if type(v) is not want:
                    raise ValueError(f"where.{column} takes {want.__name__} values, got {v!r}")
        if self.order_by is not None and self.order_by not in rel.order_by:
            raise ValueError(f"{self.relation} cannot be ordered by {self.order_by!r}; "
                             f"allowed: {', '.join(rel.order_by)}")
        return self


class FactsSection(_Section):
    kind: Literal["facts"]
    fact_types: list[Literal["preference", "constraint", "pattern", "anti_pattern", "heuristic", "result"]] = []
    categories: list[str] = []
    include_personal: bool = True  # facts about the user themself ('personal' subject)


class GoalsSection(_Section):
    kind: Literal["goals"]
    statuses: list[Literal["proposed", "active", "achieved", "abandoned", "paused"]] = ["active"]
    horizons: list[Literal["daily", "weekly", "monthly", "quarterly", "yearly", "long_term"]] = []
    include_personal: bool = True


class ReflectionsSection(_Section):
    kind: Literal["reflections"]
    modes: list[Literal["daily", "weekly", "monthly"]] = []


class EventsSection(_Section):
    kind: Literal["events"]
    event_types: list[Literal["tool_call", "tool_result", "note", "error", "decision"]] = []
    memory_scopes: list[Literal["run", "session", "user", "project", "global"]] = []


class SessionsSection(_Section):
    kind: Literal["sessions"]
    session_types: list[str] = []


class SemanticSection(_Section):
    kind: Literal["semantic"]
    query: str = "{subject.name} {query}"
    block_types: list[str] = []
    source_tables: list[str] = []
    top_k: int = Field(8, ge=1, le=100)
    mode: Mode = "hybrid"
    rrf_k: int = Field(60, ge=1)
    weights: dict[str, float] = Field(default_factory=lambda: {"dense": 1.0, "lexical": 1.0})
    mmr_lambda: float | None = Field(None, ge=0, le=1)
    recency_half_life_days: float | None = Field(None, gt=0)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - {"dense", "lexical"}
        if unknown:
            raise ValueError(f"weights are for 'dense' and 'lexical', not {sorted(unknown)}")
        return v

    @field_validator("query")
    @classmethod
    def _template(cls, v: str) -> str:
        for name in PLACEHOLDER.findall(v):
            if name not in TEMPLATE_FIELDS:
                raise ValueError(f"unknown placeholder {{{name}}}; use {', '.join(sorted(TEMPLATE_FIELDS))}")
        return v


Section = Annotated[
    RecordsSection | FactsSection | GoalsSection | ReflectionsSection | EventsSection | SessionsSection
    | SemanticSection,
    Field(discriminator="kind"),
]


class RecipeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    subject_types: list[str] = Field(default_factory=list, description="subject types this recipe is for")
    scope: Scope = "tree"
    budget_tokens: int = Field(2000, ge=50)
    sections: list[Section] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> RecipeSpec:
        names = [s.name for s in self.sections]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"section names must be unique: {sorted(dupes)}")
        return self


def parse_spec(data: Any, where: str = "recipe") -> RecipeSpec:
    try:
        return RecipeSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"])
            problems.append(f"{loc or '(spec)'}: {e['msg'].removeprefix('Value error, ')}")
        raise RecipeError(f"{where}: invalid retrieval_spec: " + "; ".join(problems)) from None


def render_query(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\s+", " ", PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)).strip()
