"""SQL for context recipes and their structured sections. Relation and column names come
from the allow-list in memsync.kinds.records; every value is a bound parameter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from memsync.kinds.base import Relation
from memsync.storage.db import DictConn, hold
from memsync.storage.db.capture import _table
from memsync.storage.db.subjects import Pairs, of_subjects

# ------------------------------------------------------------------ recipes


def recipe(conn: DictConn, name: str | None = None, id: int | None = None) -> dict[str, Any] | None:
    if id is not None:
        return conn.execute("SELECT * FROM agent.context_recipes WHERE id = %s", (id,)).fetchone()
    return conn.execute(
        "SELECT * FROM agent.context_recipes WHERE name = %s ORDER BY version DESC LIMIT 1", (name,)
    ).fetchone()


def recipes(conn: DictConn) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT DISTINCT ON (name) id, name, version, description, retrieval_spec, updated_at"
        " FROM agent.context_recipes ORDER BY name, version DESC"
    ).fetchall()


def put_recipe(conn: DictConn, name: str, description: str | None, spec: dict[str, Any]) -> dict[str, Any]:
    """A new version when the spec changed; the latest version is returned either way. In the
    caller's transaction: two puts of one name at once wait for each other (each would read
    the same latest version, and the second insert of its successor fail)."""
    hold(conn, f"memsync.recipe|{name}")
    latest = recipe(conn, name=name)
    if latest is not None and latest["retrieval_spec"] == spec and latest["description"] == description:
        return latest
    row = conn.execute(
        "INSERT INTO agent.context_recipes (name, version, description, retrieval_spec) VALUES (%s, %s, %s, %s)"
        " RETURNING *",
        (name, (latest["version"] + 1) if latest else 1, description, Jsonb(spec)),
    ).fetchone()
    assert row is not None
    return row


# ------------------------------------------------------------------ sections


def records(conn: DictConn, rel: Relation, pairs: Pairs, where: dict[str, Any], order_by: str | None,
            descending: bool, limit: int, as_of: datetime | None, since: datetime | None) -> list[dict[str, Any]]:
    links: list[sql.Composable] = []
    params: dict[str, Any] = {"limit": limit, "as_of": as_of, "since": since}
    for n, (kind, column) in enumerate(sorted(rel.links.items())):
        ids = [i for t, i in pairs if t == kind and i is not None]
        if ids:
            links.append(sql.SQL("{} = ANY(%(l{})s)").format(sql.Identifier(column), sql.SQL(str(n))))
            params[f"l{n}"] = ids
    if not links:
        return []
    conds: list[sql.Composable] = [sql.SQL("(") + sql.SQL(" OR ").join(links) + sql.SQL(")")]
    for n, (column, value) in enumerate(sorted(where.items())):
        conds.append(sql.SQL("{} = ANY(%(w{})s)").format(sql.Identifier(column), sql.SQL(str(n))))
        params[f"w{n}"] = value if isinstance(value, list) else [value]
    conds.append(sql.SQL("(%(as_of)s::timestamptz IS NULL OR created_at <= %(as_of)s)"))
    conds.append(sql.SQL("(%(since)s::timestamptz IS NULL OR updated_at >= %(since)s)"))
    order = sql.SQL("{} {} NULLS LAST, id").format(
        sql.Identifier(order_by or "updated_at"), sql.SQL("DESC" if descending or not order_by else "ASC"))
    stmt = sql.SQL("SELECT * FROM {} WHERE {} ORDER BY {} LIMIT %(limit)s").format(
        _table(rel.table), sql.SQL(" AND ").join(conds), order)
    return conn.execute(stmt, params).fetchall()


def facts(conn: DictConn, pairs: Pairs, fact_types: list[str], categories: list[str], as_of: datetime | None,
          limit: int) -> list[dict[str, Any]]:
    match, params = of_subjects("subject_type", "subject_id", pairs)
    return conn.execute(
        sql.SQL("""SELECT * FROM agent.facts
                    WHERE {} AND (cardinality(%(ft)s::text[]) = 0 OR fact_type = ANY(%(ft)s))
                      AND (cardinality(%(cat)s::text[]) = 0 OR category = ANY(%(cat)s))
                      AND memsync.is_current(valid_from, valid_to, coalesce(%(as_of)s, now()))
                    ORDER BY confidence DESC NULLS LAST, valid_from DESC, id LIMIT %(limit)s""").format(match),
        {**params, "ft": fact_types, "cat": categories, "as_of": as_of, "limit": limit},
    ).fetchall()


def goals(conn: DictConn, pairs: Pairs, statuses: list[str], horizons: list[str], as_of: datetime | None,
          limit: int) -> list[dict[str, Any]]:
    match, params = of_subjects("subject_type", "subject_id", pairs)
    return conn.execute(
        sql.SQL("""SELECT * FROM agent.goals
                    WHERE {} AND (cardinality(%(st2)s::text[]) = 0 OR status = ANY(%(st2)s))
                      AND (cardinality(%(hz)s::text[]) = 0 OR horizon = ANY(%(hz)s))
                      AND memsync.is_current(valid_from, valid_to, coalesce(%(as_of)s, now()))
                    ORDER BY priority, due_at NULLS LAST, id LIMIT %(limit)s""").format(match),
        {**params, "st2": statuses, "hz": horizons, "as_of": as_of, "limit": limit},
    ).fetchall()


def reflections(conn: DictConn, pairs: Pairs, modes: list[str], as_of: datetime | None, since: datetime | None,
                limit: int) -> list[dict[str, Any]]:
    match, params = of_subjects("focal_entity_type", "focal_entity_id", pairs)
    return conn.execute(
        sql.SQL("""SELECT * FROM agent.reflections
                    WHERE {} AND (cardinality(%(modes)s::text[]) = 0 OR mode = ANY(%(modes)s))
                      AND created_at <= coalesce(%(as_of)s, now())
                      AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
                    ORDER BY created_at DESC, id DESC LIMIT %(limit)s""").format(match),
        {**params, "modes": modes, "as_of": as_of, "since": since, "limit": limit},
    ).fetchall()


def events(conn: DictConn, pairs: Pairs, event_types: list[str], scopes: list[str], as_of: datetime | None,
           since: datetime | None, limit: int) -> list[dict[str, Any]]:
    match, params = of_subjects("subject_type", "subject_id", pairs)
    return conn.execute(
        sql.SQL("""SELECT * FROM agent.events
                    WHERE {} AND (cardinality(%(et)s::text[]) = 0 OR event_type = ANY(%(et)s))
                      AND (cardinality(%(ms)s::text[]) = 0 OR memory_scope = ANY(%(ms)s))
                      AND occurred_at <= coalesce(%(as_of)s, now())
                      AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s)
                    ORDER BY occurred_at DESC, id DESC LIMIT %(limit)s""").format(match),
        {**params, "et": event_types, "ms": scopes, "as_of": as_of, "since": since, "limit": limit},
    ).fetchall()


def sessions(conn: DictConn, pairs: Pairs, session_types: list[str], as_of: datetime | None,
             since: datetime | None, limit: int) -> list[dict[str, Any]]:
    match, params = of_subjects("subject_type", "subject_id", pairs)
    return conn.execute(
        sql.SQL("""SELECT * FROM agent.sessions
                    WHERE {} AND (cardinality(%(ty)s::text[]) = 0 OR session_type = ANY(%(ty)s))
                      AND started_at <= coalesce(%(as_of)s, now())
                      AND (%(since)s::timestamptz IS NULL OR started_at >= %(since)s)
                    ORDER BY started_at DESC, id DESC LIMIT %(limit)s""").format(match),
        {**params, "ty": session_types, "as_of": as_of, "since": since, "limit": limit},
    ).fetchall()


def runs(conn: DictConn, pairs: Pairs, statuses: list[str], workflows: list[str], as_of: datetime | None,
         since: datetime | None, limit: int) -> list[dict[str, Any]]:
    match, params = of_subjects("subject_type", "subject_id", pairs)
    return conn.execute(
        sql.SQL("""SELECT * FROM agent.execution_runs
                    WHERE {} AND (cardinality(%(st2)s::text[]) = 0 OR status = ANY(%(st2)s))
                      AND (cardinality(%(wf)s::text[]) = 0 OR workflow = ANY(%(wf)s))
                      AND started_at <= coalesce(%(as_of)s, now())
                      AND (%(since)s::timestamptz IS NULL OR started_at >= %(since)s)
                    ORDER BY started_at DESC, id DESC LIMIT %(limit)s""").format(match),
        {**params, "st2": statuses, "wf": workflows, "as_of": as_of, "since": since, "limit": limit},
    ).fetchall()


def exchanges(conn: DictConn, event_ids: Sequence[int], neighbours: int, as_of: datetime | None = None
              ) -> list[dict[str, Any]]:
    """Each event with up to `neighbours` turns (notes and decisions) before and after it in
    its session, in session order, with the session's type, global_id and summary: one row per turn,
    `hit` naming the event whose window it belongs to. Nothing said after `as_of` (when given)."""
    return conn.execute(
        """WITH hit AS (SELECT e.id, e.session_id, e.occurred_at FROM agent.events e WHERE e.id = ANY(%(ids)s))
           SELECT h.id AS hit, t.id, t.global_id, t.session_id, t.event_type, t.payload, t.occurred_at,
                  s.session_type, s.global_id AS session_global_id, s.summary AS session_summary
             FROM hit h JOIN agent.sessions s ON s.id = h.session_id
             CROSS JOIN LATERAL (
               (SELECT x.* FROM agent.events x
                 WHERE x.session_id = h.session_id AND x.event_type IN ('note', 'decision')
                   AND (x.occurred_at, x.id) < (h.occurred_at, h.id)
                 ORDER BY x.occurred_at DESC, x.id DESC LIMIT %(n)s)
               UNION ALL
               (SELECT x.* FROM agent.events x WHERE x.id = h.id)
               UNION ALL
               (SELECT x.* FROM agent.events x
                 WHERE x.session_id = h.session_id AND x.event_type IN ('note', 'decision')
                   AND (x.occurred_at, x.id) > (h.occurred_at, h.id)
                   AND (%(as_of)s::timestamptz IS NULL OR x.occurred_at <= %(as_of)s)
                 ORDER BY x.occurred_at, x.id LIMIT %(n)s)) t
            ORDER BY h.id, t.occurred_at, t.id""",
        {"ids": list(event_ids), "n": neighbours, "as_of": as_of}).fetchall()
