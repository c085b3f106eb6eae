"""Context recipe specs (agent.context_recipes.retrieval_spec), validated with pydantic so
an error names the field. A recipe is ordered sections; each memory kind brings its section
model (memsync/kinds/), and `semantic` (hybrid search over blocks) is the read path's own.
Identifiers in a recipe (relations, columns) are checked against allow-lists and never
reach SQL as text."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memsync.errors import RecipeError, field_problems
from memsync.kinds.base import Gather, Item, Scope, SectionBase
from memsync.kinds.registry import KINDS
from memsync.read.hybrid import Fusion, Mode
from memsync.storage.filters import check_block_types, check_source_tables

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
TEMPLATE_FIELDS = {"query", "subject.name", "subject.type", "subject.id", "subject.description"}


class SemanticSection(SectionBase):
    kind: Literal["semantic"]
    query: str = "{subject.name} {query}"
    block_types: list[str] = Field(default_factory=list)
    source_tables: list[str] = Field(default_factory=list)
    top_k: int = Field(8, ge=1, le=100)
    mode: Mode = "hybrid"
    fusion: Fusion = "zscore"
    rrf_k: int = Field(60, ge=1)
    weights: dict[str, float] = Field(default_factory=lambda: {"dense": 1.0, "lexical": 1.0})
    mmr_lambda: float | None = Field(None, ge=0, le=1)
    recency_half_life_days: float | None = Field(None, gt=0)

    _block_types = field_validator("block_types")(lambda cls, v: check_block_types(v))
    _tables = field_validator("source_tables")(lambda cls, v: check_source_tables(v))

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

    def gather(self, g: Gather) -> list[Item]:
        return g.semantic(self, g)  # hybrid search belongs to the read path, which passes it in


SECTION_TYPES: tuple[type[SectionBase], ...] = (
    *(k.section for k in KINDS if k.section is not None), SemanticSection)

if TYPE_CHECKING:
    Section = SectionBase
else:  # a discriminated union of every kind's section: an error names the field of the right kind
    Section = Annotated[Union[SECTION_TYPES], Field(discriminator="kind")]  # noqa: UP007


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
        raise RecipeError(f"{where}: invalid retrieval_spec: {field_problems(exc, whole='(spec)')}") from None


def render_query(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\s+", " ", PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)).strip()


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class RecipeFile(BaseModel):
    """A recipe as a file or a caller gives it: a name, an optional description, a spec."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None
    spec: RecipeSpec
    raw_spec: dict[str, Any]


def recipe_file(data: Any, where: str) -> RecipeFile:
    """Validate a recipe document: the name (letters, digits, _ . -; at most 100), the
    description (text or absent), the spec; errors name the field."""
    if not isinstance(data, dict) or "name" not in data or "spec" not in data:
        raise RecipeError(f"{where}: a recipe needs 'name', 'spec' and optionally 'description'")
    unknown = sorted(set(map(str, data)) - {"name", "description", "spec"})
    if unknown:
        raise RecipeError(f"{where}: unknown field(s) {', '.join(unknown)}; a recipe has name, description, spec")
    name, description = data["name"], data.get("description")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise RecipeError(f"{where}: name {name!r} must be 1-100 letters, digits, '_', '.' or '-', "
                          "starting with a letter or digit")
    if description is not None and (not isinstance(description, str) or "\x00" in description):
        raise RecipeError(f"{where}: description must be text (without NUL characters)")
    if not isinstance(data["spec"], dict):
        raise RecipeError(f"{where}: spec must be a mapping of recipe fields")
    if "\\u0000" in json.dumps(data["spec"], default=str):
        raise RecipeError(f"{where}: spec holds a NUL character, which Postgres cannot store")
    return RecipeFile(name=name, description=description, spec=parse_spec(data["spec"], where),
                      raw_spec=data["spec"])
