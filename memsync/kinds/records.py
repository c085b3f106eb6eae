"""ERP records: the allow-list of business relations a recipe may read as structured rows
(how each links to subjects, which columns it may be filtered and ordered by, typed, and
how a row reads in a prompt) and the `records` section. Nothing outside it is queried."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from memsync.kinds.base import Gather, Item, Kind, Relation, SectionBase
from memsync.storage.db import context as q


def _when(v: Any) -> str:
    return str(v)[:10] if v is not None else ""


def _task(r: Mapping[str, Any]) -> str:
    bits = [f"status {r['status']}", f"priority {r['priority']}"]
    if r.get("due_at"):
        bits.append(f"due {_when(r['due_at'])}")
    text = f"Task: {r['title']} ({', '.join(bits)})"
    return text + (f"\n{r['description']}" if r.get("description") else "")


def _project(r: Mapping[str, Any]) -> str:
    text = f"Project: {r['name']} ({r['status']}" + (f", due {_when(r['due_date'])}" if r.get("due_date") else "") + ")"
    return text + (f"\n{r['description']}" if r.get("description") else "")


def _engagement(r: Mapping[str, Any]) -> str:
    text = f"Engagement: {r['name']} ({r['status']})"
    return text + (f"\n{r['description']}" if r.get("description") else "")


def _okr(r: Mapping[str, Any]) -> str:
    krs = r.get("key_results") or []
    lines = [f"- {k.get('title', k) if isinstance(k, dict) else k}" for k in krs]
    progress = f", {r['progress']}%" if r.get("progress") is not None else ""
    return "\n".join([f"OKR: {r['objective']} ({r['status']}{progress})", *lines])


def _person(r: Mapping[str, Any]) -> str:
    bits = [b for b in (r.get("role"), r.get("email")) if b]
    return f"Person: {r['full_name']}" + (f" ({', '.join(bits)})" if bits else "") + \
        (f"\n{r['notes']}" if r.get("notes") else "")


def _organization(r: Mapping[str, Any]) -> str:
    return f"Organization: {r['name']} ({r['kind']})" + (f"\n{r['notes']}" if r.get("notes") else "")


RELATIONS: dict[str, Relation] = {r.table: r for r in (
    Relation("erp.tasks", "task",
             {"task": "id", "project": "project_id", "engagement": "engagement_id", "person": "assignee_person_id"},
             {"status": str, "priority": int, "project_id": int, "engagement_id": int, "assignee_person_id": int},
             ("due_at", "priority", "created_at", "updated_at", "title"), _task),
    Relation("erp.projects", "project",
             {"project": "id", "person": "owner_person_id", "organization": "organization_id"},
             {"status": str, "organization_id": int, "owner_person_id": int},
             ("due_date", "start_date", "created_at", "updated_at", "name"), _project),
    Relation("erp.engagements", "engagement",
             {"engagement": "id", "project": "project_id", "person": "client_person_id",
              "organization": "organization_id"},
             {"status": str, "project_id": int, "organization_id": int, "client_person_id": int},
             ("start_date", "end_date", "created_at", "updated_at", "name"), _engagement),
    Relation("erp.okrs", "okr",
             {"okr": "id", "project": "project_id", "person": "owner_person_id"},
             {"status": str, "project_id": int, "owner_person_id": int},
             ("period_end", "period_start", "created_at", "updated_at", "progress"), _okr),
    Relation("erp.people", "person", {"person": "id", "organization": "organization_id"},
             {"organization_id": int, "is_primary_user": bool}, ("full_name", "created_at", "updated_at"), _person),
    Relation("erp.organizations", "organization", {"organization": "id"},
             {"kind": str}, ("name", "created_at", "updated_at"), _organization),
)}


class RecordsSection(SectionBase):
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

    def gather(self, g: Gather) -> list[Item]:
        rel = RELATIONS[self.relation]
        rows = q.records(g.conn, rel, g.pairs, dict(self.where), self.order_by, self.descending, g.limit,
                         g.as_of, g.since)
        if g.confined:  # a row linked to the scope may still lie outside it (another client's task)
            rows = [r for r in rows if (rel.entity, r["id"]) in g.pairs]
        return [g.item("records", rel.render(r), rel.table, r) for r in rows]


KIND = Kind("records", section=RecordsSection)
