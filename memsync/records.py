"""The allow-list of ERP relations a recipe may read as structured records: how each
links to subjects, which columns it may be filtered and ordered by (typed), and how a
row reads in a prompt. Nothing outside this list is ever queried."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

FilterType = type[str] | type[int] | type[bool]


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


@dataclass(frozen=True)
class Relation:
    table: str
    entity: str  # the subject type of its rows
    links: Mapping[str, str]  # subject type -> column holding that subject's id
    filters: Mapping[str, FilterType]
    order_by: tuple[str, ...]
    render: Callable[[Mapping[str, Any]], str]


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
