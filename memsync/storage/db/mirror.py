"""SQL for mirrors (migration 0013): enabling one, filling and measuring its queue (whose
claim / ack / fail are the one queue's, memsync/storage/db/queue.py), what it holds
(mirror_items), and the rows it copies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from memsync.storage.db import DictConn
from memsync.storage.db.audit import AUDIT_SESSION_TYPES

CHANNEL = "memsync_mirror"
MIRRORED_TABLES = ("erp.people", "agent.sessions", "agent.events", "agent.reflections")


def enable(conn: DictConn, mirror: str) -> int:
    """Enable a mirror; the first time, queue every row it may hold. Returns how many."""
    with conn.transaction():
        new = conn.execute("INSERT INTO memsync.mirrors (name) VALUES (%s) ON CONFLICT DO NOTHING",
                           (mirror,)).rowcount
        if not new:
            return 0
        n = 0
        for table, where in (("erp.people", "true"), ("agent.sessions", "true"),
                             ("agent.events", "event_type IN ('note', 'decision')"), ("agent.reflections", "true")):
            n += conn.execute(
                f"""INSERT INTO memsync.mirror_queue (mirror, source_table, source_id, op)
                    SELECT %s, %s, id, 'resync' FROM {table} WHERE {where}
                    ON CONFLICT DO NOTHING""", (mirror, table)).rowcount
        return n


def backlog(conn: DictConn) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        """SELECT m.name,
                  count(q.id) FILTER (WHERE q.dead_at IS NULL) AS pending,
                  count(q.id) FILTER (WHERE q.dead_at IS NOT NULL) AS dead,
                  EXTRACT(EPOCH FROM now() - min(q.first_enqueued_at) FILTER (WHERE q.dead_at IS NULL))
                    AS oldest_pending_seconds
             FROM memsync.mirrors m LEFT JOIN memsync.mirror_queue q ON q.mirror = m.name
            GROUP BY m.name ORDER BY m.name""").fetchall()
    return {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in rows}


def requeue(conn: DictConn, mirror: str, keys: Sequence[tuple[str, str]]) -> int:
    """Queue these (table, id) rows for the mirror again (verify --repair)."""
    return conn.execute(
        """INSERT INTO memsync.mirror_queue AS q (mirror, source_table, source_id, op)
           SELECT %s, t, i, 'resync' FROM unnest(%s::text[], %s::bigint[]) AS k(t, i)
           ON CONFLICT (mirror, source_table, source_id) DO UPDATE
              SET version = q.version + 1, available_at = now(), attempts = 0, dead_at = NULL""",
        (mirror, [k[0] for k in keys], [int(k[1]) for k in keys])).rowcount


# ------------------------------------------------------------------ what the mirror holds


def item(conn: DictConn, mirror: str, table: str, source_id: int) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM memsync.mirror_items WHERE mirror = %s AND source_table = %s"
                        " AND source_id = %s", (mirror, table, source_id)).fetchone()


def record(conn: DictConn, mirror: str, table: str, source_id: int, remote_id: str, content_hash: str | None,
           deleted: bool = False) -> None:
    conn.execute(
        """INSERT INTO memsync.mirror_items (mirror, source_table, source_id, remote_id, content_hash, deleted)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (mirror, source_table, source_id) DO UPDATE
              SET remote_id = EXCLUDED.remote_id, content_hash = EXCLUDED.content_hash,
                  deleted = EXCLUDED.deleted, mirrored_at = now()""",
        (mirror, table, source_id, remote_id, content_hash, deleted))


def items(conn: DictConn, mirror: str) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM memsync.mirror_items WHERE mirror = %s ORDER BY source_table, source_id",
                        (mirror,)).fetchall()


def expected(conn: DictConn) -> list[dict[str, Any]]:
    """What Postgres says a Zep-like mirror should hold: client people, sessions, the notes
    and decisions of sessions, reflections written in a session."""
    return conn.execute(
        """WITH s AS (SELECT id FROM agent.sessions WHERE session_type <> ALL(%(audit)s))
           SELECT 'erp.people' AS source_table, p.id AS source_id FROM erp.people p
            WHERE EXISTS (SELECT 1 FROM agent.sessions s WHERE s.client_person_id = p.id)
           UNION ALL SELECT 'agent.sessions', id FROM s
           UNION ALL SELECT 'agent.events', e.id FROM agent.events e
                      WHERE e.event_type IN ('note', 'decision') AND e.memory_scope <> 'run'
                        AND e.session_id IN (SELECT id FROM s)
           UNION ALL SELECT 'agent.reflections', r.id FROM agent.reflections r WHERE r.session_id IN (SELECT id FROM s)
           ORDER BY 1, 2""", {"audit": list(AUDIT_SESSION_TYPES)}).fetchall()


# ------------------------------------------------------------------ rows


def person(conn: DictConn, person_id: int) -> dict[str, Any] | None:
    return conn.execute(
        """SELECT p.*, EXISTS (SELECT 1 FROM agent.sessions s WHERE s.client_person_id = p.id) AS is_client
             FROM erp.people p WHERE p.id = %s""", (person_id,)).fetchone()


def session(conn: DictConn, session_id: int) -> dict[str, Any] | None:
    return conn.execute(
        """SELECT s.*, pr.name AS profile_name, cr.name AS recipe_name, p.global_id AS client_global_id
             FROM agent.sessions s
             LEFT JOIN agent.profiles pr ON pr.id = s.profile_id
             LEFT JOIN agent.context_recipes cr ON cr.id = s.context_recipe_id
             LEFT JOIN erp.people p ON p.id = s.client_person_id
            WHERE s.id = %s""", (session_id,)).fetchone()


def row(conn: DictConn, table: str, row_id: int) -> dict[str, Any] | None:
    assert table in ("agent.events", "agent.reflections")
    return conn.execute(f"SELECT * FROM {table} WHERE id = %s", (row_id,)).fetchone()


def insert_candidate_fact(conn: DictConn, f: Mapping[str, Any]) -> bool:
    """A fact a mirror extracted, once per its uuid; never overwrites one Postgres has."""
    return bool(conn.execute(
        """INSERT INTO agent.facts (fact_type, content, subject_type, subject_id, confidence, valid_from, metadata)
           VALUES ('result', %(content)s, %(subject_type)s, %(subject_id)s, %(confidence)s,
                   coalesce(%(valid_from)s, now()), %(metadata)s)
           ON CONFLICT ((metadata->>'zep_fact_uuid')) WHERE metadata ? 'zep_fact_uuid' DO NOTHING""",
        {**f, "metadata": Jsonb(dict(f["metadata"]))}).rowcount)
