"""SQL for subjects: resolve a reference to a row, expand a subject into its tree
(person -> engagements -> projects -> tasks/okrs; project -> engagements/tasks/okrs; ...),
and the condition that selects a set of subjects' rows in any table (of_subjects).
Table names come from the fixed map below, never from a caller."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from memsync.storage.db import DictConn
from memsync.storage.db.capture import _table

Pairs = Sequence[tuple[str, int | None]]  # (subject_type, subject_id); a NULL id: the whole type


def of_subjects(type_col: str, id_col: str, pairs: Pairs) -> tuple[sql.Composable, dict[str, Any]]:
    """Rows of these subjects, one `type = t AND id = ANY(ids)` (or `id IS NULL`) per type,
    so each table's (type, id) index reads the subjects' rows only. The same condition with
    `IS NOT DISTINCT FROM` (an EXISTS over the pairs, or one pair) takes no index: every
    section of a recipe read its whole table (~60,000 facts for one person's facts).
    Returns the condition and its parameters (named s…)."""
    by_type: dict[str, list[int]] = {}
    bare: list[str] = []  # types named without an id ('personal')
    for t, i in pairs:
        if i is None:
            bare.append(t)
        else:
            by_type.setdefault(t, []).append(i)
    conds: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for n, (t, ids) in enumerate(sorted(by_type.items())):
        conds.append(sql.SQL(f"({{}} = %(s{n}t)s AND {{}} = ANY(%(s{n}i)s))").format(
            sql.Identifier(type_col), sql.Identifier(id_col)))
        params[f"s{n}t"], params[f"s{n}i"] = t, sorted(set(ids))
    if bare:
        conds.append(sql.SQL("({} = ANY(%(s_bare)s) AND {} IS NULL)").format(
            sql.Identifier(type_col), sql.Identifier(id_col)))
        params["s_bare"] = sorted(set(bare))
    return sql.SQL("(") + sql.SQL(" OR ").join(conds or [sql.SQL("false")]) + sql.SQL(")"), params


RELATIONS = {
    "person": "erp.people", "organization": "erp.organizations", "project": "erp.projects",
    "engagement": "erp.engagements", "task": "erp.tasks", "okr": "erp.okrs",
}

# Each query returns (subject_type, id) rows for the tree under :id.
TREES = {
    "person": """
        WITH e AS (SELECT id, project_id FROM erp.engagements WHERE client_person_id = %(id)s),
             p AS (SELECT id FROM erp.projects WHERE owner_person_id = %(id)s
                   UNION SELECT project_id FROM e WHERE project_id IS NOT NULL),
             t AS (SELECT id FROM erp.tasks WHERE assignee_person_id = %(id)s
                      OR project_id IN (SELECT id FROM p) OR engagement_id IN (SELECT id FROM e)),
             o AS (SELECT id FROM erp.okrs WHERE owner_person_id = %(id)s OR project_id IN (SELECT id FROM p))
        SELECT 'engagement' AS t, id FROM e UNION SELECT 'project', id FROM p
        UNION SELECT 'task', id FROM t UNION SELECT 'okr', id FROM o""",
    "organization": """
        WITH pe AS (SELECT id FROM erp.people WHERE organization_id = %(id)s),
             e AS (SELECT id, project_id FROM erp.engagements WHERE organization_id = %(id)s),
             p AS (SELECT id FROM erp.projects WHERE organization_id = %(id)s
                   UNION SELECT project_id FROM e WHERE project_id IS NOT NULL),
             t AS (SELECT id FROM erp.tasks WHERE project_id IN (SELECT id FROM p)
                      OR engagement_id IN (SELECT id FROM e)),
             o AS (SELECT id FROM erp.okrs WHERE project_id IN (SELECT id FROM p))
        SELECT 'person' AS t, id FROM pe UNION SELECT 'engagement', id FROM e UNION SELECT 'project', id FROM p
        UNION SELECT 'task', id FROM t UNION SELECT 'okr', id FROM o""",
    "project": """
        WITH e AS (SELECT id FROM erp.engagements WHERE project_id = %(id)s),
             t AS (SELECT id FROM erp.tasks WHERE project_id = %(id)s OR engagement_id IN (SELECT id FROM e)),
             o AS (SELECT id FROM erp.okrs WHERE project_id = %(id)s)
        SELECT 'engagement' AS t, id FROM e UNION SELECT 'task', id FROM t UNION SELECT 'okr', id FROM o""",
    "engagement": """
        WITH p AS (SELECT project_id AS id FROM erp.engagements WHERE id = %(id)s AND project_id IS NOT NULL),
             t AS (SELECT id FROM erp.tasks WHERE engagement_id = %(id)s),
             o AS (SELECT id FROM erp.okrs WHERE project_id IN (SELECT id FROM p))
        SELECT 'project' AS t, id FROM p UNION SELECT 'task', id FROM t UNION SELECT 'okr', id FROM o""",
    "okr": """WITH RECURSIVE c AS (SELECT id FROM erp.okrs WHERE parent_okr_id = %(id)s
                                   UNION SELECT o.id FROM erp.okrs o JOIN c ON o.parent_okr_id = c.id)
              SELECT 'okr' AS t, id FROM c""",
}


def subject_types(conn: DictConn) -> dict[str, str | None]:
    rows = conn.execute("SELECT name, erp_relation FROM agent.subject_types").fetchall()
    return {r["name"]: r["erp_relation"] for r in rows}


def load(conn: DictConn, subject_type: str, *, id: int | None = None, global_id: str | None = None) -> dict[str, Any] | None:
    table = RELATIONS.get(subject_type)
    if table is None:
        return None
    column, value = ("id", id) if id is not None else ("global_id", global_id)
    return conn.execute(
        sql.SQL("SELECT * FROM {} WHERE {} = %s").format(_table(table), sql.Identifier(column)), (value,)
    ).fetchone()


def tree(conn: DictConn, subject_type: str, subject_id: int) -> list[tuple[str, int]]:
    query = TREES.get(subject_type)
    if query is None:
        return []
    rows = conn.execute(query, {"id": subject_id}).fetchall()
    return sorted((r["t"], int(r["id"])) for r in rows)
