"""SQL for the agent write API (memsync/write/memory.py) and for reading one row with its
provenance: facts, reflections, notes, sessions, events, profiles, tools, block actions.
Table names come from ENTITIES, never from a caller; every value is a bound parameter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from memsync.storage.db import DictConn, hold
from memsync.storage.db.capture import _table
from memsync.storage.db.subjects import RELATIONS, of_subjects

# global_id prefix -> table: the `type:id` references get() and the tools accept.
ENTITIES: dict[str, str] = {
    "fact": "agent.facts", "event": "agent.events", "session": "agent.sessions",
    "reflection": "agent.reflections", "goal": "agent.goals", "artifact": "agent.artifacts",
    "block": "agent.blocks", "execution_run": "agent.execution_runs", "step_evaluation": "agent.step_evaluations",
    "context_recipe": "agent.context_recipes", "profile": "agent.profiles", "tool": "agent.tools",
    **RELATIONS,
}

# The columns that name a row's subject, where a table has them under another name.
SUBJECT_COLUMNS: dict[str, tuple[str, str]] = {"agent.reflections": ("focal_entity_type", "focal_entity_id")}


def subject_columns(table: str) -> tuple[str, str] | None:
    if table in SUBJECT_COLUMNS:
        return SUBJECT_COLUMNS[table]
    if table in ("agent.facts", "agent.events", "agent.sessions", "agent.goals", "agent.artifacts",
                 "agent.blocks", "agent.execution_runs"):
        return ("subject_type", "subject_id")
    return None


def now(conn: DictConn) -> datetime:
    """The current transaction's timestamp: what the outbox stamps the changes it made with."""
    row = conn.execute("SELECT now() AS t").fetchone()
    assert row is not None
    return row["t"]  # type: ignore[no-any-return]


def statement_time(conn: DictConn) -> datetime:
    """This statement's start: later than now() (the transaction's) by any wait for a lock, so
    what another transaction committed meanwhile, stamped with its own now(), is in the past."""
    row = conn.execute("SELECT statement_timestamp() AS t").fetchone()
    assert row is not None
    return row["t"]  # type: ignore[no-any-return]


def row(conn: DictConn, table: str, *, id: int | None = None, global_id: str | None = None,
        lock: bool = False) -> dict[str, Any] | None:
    column, value = ("id", id) if id is not None else ("global_id", global_id)
    return conn.execute(
        sql.SQL("SELECT * FROM {} WHERE {} = %s" + (" FOR UPDATE" if lock else "")).format(
            _table(table), sql.Identifier(column)), (value,)
    ).fetchone()


# ------------------------------------------------------------------ facts


def insert_fact(conn: DictConn, f: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """-> (the fact, created). With an idempotency key already used, the first fact."""
    created = conn.execute(
        """INSERT INTO agent.facts (fact_type, category, content, subject_type, subject_id, confidence,
                                    valid_from, metadata)
           VALUES (%(fact_type)s, %(category)s, %(content)s, %(subject_type)s, %(subject_id)s, %(confidence)s,
                   coalesce(%(valid_from)s, now()), %(metadata)s)
           ON CONFLICT (subject_type, (coalesce(subject_id, 0)), (metadata->>'idempotency_key'))
              WHERE metadata ? 'idempotency_key' DO NOTHING
           RETURNING *""",
        {**f, "metadata": Jsonb(f["metadata"])},
    ).fetchone()
    if created is not None:
        return created, True
    first = conn.execute(
        """SELECT * FROM agent.facts WHERE metadata->>'idempotency_key' = %s AND subject_type = %s
              AND coalesce(subject_id, 0) = coalesce(%s::bigint, 0)""",
        (f["metadata"]["idempotency_key"], f["subject_type"], f["subject_id"])).fetchone()
    assert first is not None
    return first, False


def lock_statement(conn: DictConn, f: Mapping[str, Any]) -> None:
    """Until this transaction ends, no other remember of this text (whitespace and case aside)
    about this subject runs: two at once each found no such fact (same_fact) and each wrote
    one. As `hold`, on the text as same_fact compares it."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s || memsync.text_key(%s)))",
                 (f"memsync.fact|{f['subject_type']}|{f['subject_id']}|", f["content"]))


def same_fact(conn: DictConn, f: Mapping[str, Any]) -> dict[str, Any] | None:
    """A current fact with the same subject, type, category and text (whitespace and case
    aside): remembering it again returns this one instead of a copy. Found through the
    index of the text's hash (migration 0029); the text itself is compared too. Current at
    this statement, not at the transaction's start: a fact another remember wrote while
    this one waited (lock_statement) is valid from that one's start, after this one's."""
    match, params = of_subjects("subject_type", "subject_id", [(f["subject_type"], f["subject_id"])])
    return conn.execute(
        sql.SQL("""SELECT * FROM agent.facts
                    WHERE {} AND fact_type = %(fact_type)s AND category IS NOT DISTINCT FROM %(category)s
                      AND md5(memsync.text_key(content)) = md5(memsync.text_key(%(content)s))
                      AND memsync.text_key(content) = memsync.text_key(%(content)s)
                      AND memsync.is_current(valid_from, valid_to, statement_timestamp())
                    ORDER BY id LIMIT 1""").format(match), {**f, **params}).fetchone()


def end_fact(conn: DictConn, fact_id: int, note: Mapping[str, Any]) -> dict[str, Any]:
    """End a fact's validity now (or at its start, for a fact not yet valid), noting why."""
    ended = conn.execute(
        """UPDATE agent.facts SET valid_to = greatest(now(), valid_from), metadata = metadata || %s
            WHERE id = %s RETURNING *""", (Jsonb(dict(note)), fact_id)
    ).fetchone()
    assert ended is not None
    return ended


# ------------------------------------------------------------------ reflections, notes


def insert_reflection(conn: DictConn, r: Mapping[str, Any]) -> dict[str, Any]:
    lists = ("goals", "accomplishments", "blockers", "decisions", "next_actions")
    out = conn.execute(
        """INSERT INTO agent.reflections (session_id, mode, focal_entity_type, focal_entity_id, period_start,
                   period_end, goals, accomplishments, blockers, decisions, next_actions, metrics, raw_text)
           VALUES (%(session_id)s, %(mode)s, %(subject_type)s, %(subject_id)s, %(period_start)s, %(period_end)s,
                   %(goals)s, %(accomplishments)s, %(blockers)s, %(decisions)s, %(next_actions)s, %(metrics)s,
                   %(raw_text)s)
           RETURNING *""",
        {**r, **{k: Jsonb(list(r[k])) for k in lists}, "metrics": Jsonb(dict(r["metrics"]))},
    ).fetchone()
    assert out is not None
    return out


def insert_block(conn: DictConn, b: Mapping[str, Any]) -> dict[str, Any]:
    """A block written directly (no source row): it is its own source for the sync."""
    out = conn.execute(
        """INSERT INTO agent.blocks (block_type, title, body_md, subject_type, subject_id, metadata)
           VALUES (%(block_type)s, %(title)s, %(body_md)s, %(subject_type)s, %(subject_id)s, %(metadata)s)
           RETURNING *""",
        {**b, "metadata": Jsonb(dict(b["metadata"]))},
    ).fetchone()
    assert out is not None
    return out


# ------------------------------------------------------------------ sessions and events


def insert_session(conn: DictConn, s: Mapping[str, Any]) -> dict[str, Any]:
    """A session; started_at/ended_at default to now/open (history brings its own times, and
    a session given an end is completed)."""
    out = conn.execute(
        """INSERT INTO agent.sessions (session_type, client_person_id, subject_type, subject_id, trace_id,
                   profile_id, context_recipe_id, applied_harness_config, started_at, ended_at, status, summary)
           VALUES (%(session_type)s, %(client_person_id)s, %(subject_type)s, %(subject_id)s, %(trace_id)s,
                   %(profile_id)s, %(context_recipe_id)s, %(applied_harness_config)s,
                   coalesce(%(started_at)s, now()), %(ended_at)s,
                   CASE WHEN %(ended_at)s::timestamptz IS NULL THEN 'running' ELSE 'completed' END, %(summary)s)
           RETURNING *""",
        {"started_at": None, "ended_at": None, "summary": None, **s,
         "applied_harness_config": Jsonb(dict(s["applied_harness_config"]))},
    ).fetchone()
    assert out is not None
    return out


def extend_session(conn: DictConn, session_id: int, first: datetime, last: datetime) -> None:
    """An ended session widened to hold turns imported into it: its start moved back to
    `first`, its end on to `last`, where they lie outside it."""
    conn.execute("""UPDATE agent.sessions SET started_at = least(started_at, %(first)s),
                           ended_at = greatest(ended_at, %(last)s)
                     WHERE id = %(id)s AND (started_at > %(first)s OR ended_at < %(last)s)""",
                 {"id": session_id, "first": first, "last": last})


def end_session(conn: DictConn, session_id: int, status: str, summary: str | None) -> dict[str, Any]:
    out = conn.execute(
        """UPDATE agent.sessions SET status = %s, summary = coalesce(%s, summary),
                  ended_at = greatest(now(), started_at)
            WHERE id = %s RETURNING *""", (status, summary, session_id)
    ).fetchone()
    assert out is not None
    return out


def insert_event(conn: DictConn, e: Mapping[str, Any]) -> dict[str, Any]:
    out = conn.execute(
        """INSERT INTO agent.events (session_id, event_type, payload, memory_scope, subject_type, subject_id,
                                     tool_id, occurred_at)
           VALUES (%(session_id)s, %(event_type)s, %(payload)s, %(memory_scope)s, %(subject_type)s,
                   %(subject_id)s, %(tool_id)s, coalesce(%(occurred_at)s, now()))
           RETURNING *""",
        {"occurred_at": None, **e, "payload": Jsonb(dict(e["payload"]))},
    ).fetchone()
    assert out is not None
    return out


def insert_events(conn: DictConn, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Many events of one session in order, in one statement, so the capture triggers run
    once for them all (migration 0028). Ids ascend with the list (turns that share a time
    keep their order); the rows come back in the same order. Arrays in binary (%b), as
    blocks.write_chunks sends them."""
    if not rows:
        return []
    written = conn.execute(
        """INSERT INTO agent.events (session_id, event_type, payload, memory_scope, subject_type, subject_id,
                                     occurred_at)
           SELECT u.session_id, u.event_type, u.payload, u.memory_scope, u.subject_type, u.subject_id,
                  coalesce(u.occurred_at, now())
             FROM unnest(%b::bigint[], %b::text[], %b::jsonb[], %b::text[], %b::text[], %b::bigint[],
                         %b::timestamptz[]) WITH ORDINALITY
                  AS u(session_id, event_type, payload, memory_scope, subject_type, subject_id, occurred_at, n)
            ORDER BY u.n
           RETURNING id, global_id, occurred_at""",
        ([r["session_id"] for r in rows], [r["event_type"] for r in rows],
         [Jsonb(dict(r["payload"])) for r in rows], [r["memory_scope"] for r in rows],
         [r["subject_type"] for r in rows], [r["subject_id"] for r in rows],
         [r["occurred_at"] for r in rows])).fetchall()
    return sorted(written, key=lambda r: r["id"])


def message_ids(conn: DictConn, session_id: int) -> set[str]:
    """The message ids a session already holds (payload 'id'): what a re-import skips."""
    rows = conn.execute("SELECT payload->>'id' AS id FROM agent.events WHERE session_id = %s AND payload ? 'id'",
                        (session_id,)).fetchall()
    return {r["id"] for r in rows}


def delete_messages(conn: DictConn, session_id: int, ids: Sequence[str]) -> list[int]:
    """Remove a session's messages by their ids (payload 'id'); their blocks follow through
    the outbox, and the turns after them are queued again (migration 0017). Returns the
    events' row ids."""
    rows = conn.execute("DELETE FROM agent.events WHERE session_id = %s AND payload->>'id' = ANY(%s) RETURNING id",
                        (session_id, list(ids))).fetchall()
    return [int(r["id"]) for r in rows]


def people_named(conn: DictConn, names: Sequence[str]) -> list[dict[str, Any]]:
    """erp.people rows whose full name, or its first word, is one of `names` (lower case,
    single spaces): the candidates a conversation's speakers are linked to. At most two per
    name and condition: a link needs exactly one, so a first name thousands share ("john")
    reads two rows, not all of them. Both conditions are indexed expressions (migration 0029)."""
    return conn.execute(
        """SELECT DISTINCT p.id, p.global_id, p.full_name
             FROM unnest(%(n)s::text[]) AS n(name)
             CROSS JOIN LATERAL (
                  (SELECT q.id, q.global_id, q.full_name FROM erp.people q
                    WHERE memsync.text_key(q.full_name) = n.name ORDER BY q.id LIMIT 2)
                  UNION ALL
                  (SELECT q.id, q.global_id, q.full_name FROM erp.people q
                    WHERE split_part(memsync.text_key(q.full_name), ' ', 1) = n.name ORDER BY q.id LIMIT 2)) p
            ORDER BY p.id""", {"n": list(names)}).fetchall()


def imported_session(conn: DictConn, trace_id: str, subject_type: str | None, subject_id: int | None,
                     lock: bool = False) -> dict[str, Any] | None:
    """A session an import made earlier (by its trace id, under the same subject)."""
    return conn.execute(
        f"""SELECT * FROM agent.sessions WHERE trace_id = %s AND subject_type IS NOT DISTINCT FROM %s
               AND subject_id IS NOT DISTINCT FROM %s ORDER BY id LIMIT 1{' FOR UPDATE' if lock else ''}""",
        (trace_id, subject_type, subject_id)).fetchone()


def lock_import(conn: DictConn, what: str, subject_type: str | None, subject_id: int | None) -> None:
    """Until this transaction ends, no other import of `what` under this subject runs: two
    imports of one conversation at once (a hook importing a session as it ends while a
    scheduled import reads the whole folder) each found no session and each wrote one, every
    message twice."""
    hold(conn, f"memsync.import|{subject_type}|{subject_id}|{what}")


def session_holding(conn: DictConn, message_ids: Sequence[str], subject_type: str | None,
                    subject_id: int | None) -> dict[str, Any] | None:
    """The session an import made earlier, under the same subject, that holds one of these
    message ids (payload 'id'), locked; the first made when several do."""
    if not message_ids:
        return None
    # the events by their ids first (events_message_id, migration 0030), then their sessions
    # (materialized: planned as a loop over the subject's sessions instead, it read them all)
    return conn.execute(
        """WITH held AS MATERIALIZED (
             SELECT DISTINCT e.session_id FROM agent.events e WHERE e.payload ? 'id' AND e.payload->>'id' = ANY(%s))
           SELECT s.* FROM held h JOIN agent.sessions s ON s.id = h.session_id
            WHERE s.trace_id LIKE 'import:%%' AND s.subject_type IS NOT DISTINCT FROM %s
              AND s.subject_id IS NOT DISTINCT FROM %s
            ORDER BY s.id LIMIT 1 FOR UPDATE OF s""", (list(message_ids), subject_type, subject_id)).fetchone()


def set_promoted(conn: DictConn, event_id: int, fact_id: int) -> None:
    conn.execute("UPDATE agent.events SET promoted_fact_id = %s WHERE id = %s", (fact_id, event_id))


# ------------------------------------------------------------------ profiles, tools, actions


def profile(conn: DictConn, name: str) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM agent.profiles WHERE name = %s", (name,)).fetchone()


def profile_tools(conn: DictConn, profile_id: int) -> list[str]:
    rows = conn.execute(
        """SELECT t.name FROM agent.profile_tools pt JOIN agent.tools t ON t.id = pt.tool_id
            WHERE pt.profile_id = %s ORDER BY t.name""", (profile_id,)
    ).fetchall()
    return [r["name"] for r in rows]


def tool_ids(conn: DictConn, names: Sequence[str]) -> dict[str, int]:
    rows = conn.execute("SELECT id, name FROM agent.tools WHERE name = ANY(%s)", (list(names),)).fetchall()
    return {r["name"]: int(r["id"]) for r in rows}


def upsert_tools(conn: DictConn, tools: Sequence[tuple[str, str, Mapping[str, Any]]]) -> int:
    """Register (name, description, JSON schema) rows; returns how many changed."""
    changed = 0
    for name, description, schema in tools:
        changed += conn.execute(
            """INSERT INTO agent.tools (name, description, schema_definition) VALUES (%s, %s, %s)
               ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description,
                      schema_definition = EXCLUDED.schema_definition
                WHERE (agent.tools.description, agent.tools.schema_definition)
                      IS DISTINCT FROM (EXCLUDED.description, EXCLUDED.schema_definition)""",
            (name, description, Jsonb(dict(schema))),
        ).rowcount
    return changed


def block_actions(conn: DictConn, block_id: int, profile_id: int) -> list[dict[str, Any]]:
    """The block's actions whose tool the profile may use (agent.profile_tools)."""
    return conn.execute(
        """SELECT ba.id, ba.global_id, ba.action_name, ba.description, ba.parameters,
                  t.name AS tool, t.global_id AS tool_global_id
             FROM agent.block_actions ba
             JOIN agent.tools t ON t.id = ba.tool_id
             JOIN agent.profile_tools pt ON pt.tool_id = ba.tool_id AND pt.profile_id = %s
            WHERE ba.block_id = %s ORDER BY ba.action_name""", (profile_id, block_id)
    ).fetchall()


# ------------------------------------------------------------------ provenance


def blocks_of(conn: DictConn, table: str, row_id: int, limit: int = 50) -> list[dict[str, Any]]:
    if table == "agent.artifacts":
        where, params = "artifact_id = %s", (row_id,)
    else:
        where, params = "source_table = %s AND source_id = %s", (table, row_id)  # type: ignore[assignment]
    return conn.execute(
        f"""SELECT id, global_id, block_type, title, heading_path, body_md, chunk_key, ordinal, subject_type,
                   subject_id, token_count, vector_key, updated_at
              FROM agent.blocks WHERE {where} ORDER BY ordinal NULLS LAST, id LIMIT {int(limit)}""", params
    ).fetchall()


def recent_memory(conn: DictConn, subject_type: str, subject_id: int | None, limit: int) -> dict[str, list[Any]]:
    """A subject's current facts, recent notes and sessions: what a resource shows."""
    same, p = of_subjects("subject_type", "subject_id", [(subject_type, subject_id)])
    p["n"] = limit

    def rows(query: str) -> list[dict[str, Any]]:
        return conn.execute(sql.SQL(query).format(same), p).fetchall()

    return {
        "facts": rows("""SELECT id, global_id, fact_type, category, content, valid_from FROM agent.facts
                          WHERE {} AND memsync.is_current(valid_from, valid_to, now())
                          ORDER BY valid_from DESC LIMIT %(n)s"""),
        "notes": rows("""SELECT id, global_id, event_type, payload, occurred_at FROM agent.events
                          WHERE {} AND event_type IN ('note', 'decision') ORDER BY occurred_at DESC LIMIT %(n)s"""),
        "sessions": rows("""SELECT id, global_id, session_type, status, summary, started_at FROM agent.sessions
                             WHERE {} ORDER BY started_at DESC LIMIT %(n)s"""),
    }


# ------------------------------------------------------------------ read-your-writes


def unsynced(conn: DictConn, keys: Sequence[tuple[str, int, datetime]]) -> list[dict[str, Any]]:
    """Of these (table, id, written_at) changes, those the outbox still holds: a row queued
    at or before the write (a later change coalesced into it keeps its first time)."""
    if not keys:
        return []
    return conn.execute(
        """SELECT o.source_table AS "table", o.source_id AS id, o.op, o.attempts, o.last_error,
                  o.dead_at IS NOT NULL AS dead, o.claimed_by
             FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[]) AS k(t, i, at)
             JOIN memsync.outbox o ON o.source_table = k.t AND o.source_id = k.i
            WHERE o.first_enqueued_at <= k.at
            ORDER BY o.source_table, o.source_id""",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
    ).fetchall()
