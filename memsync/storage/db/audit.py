"""SQL for the audit trail (agent.sessions / agent.events) and memsync.state."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from memsync.storage.db import DictConn

# memsync's own sessions (its sync runs and retrievals): audit records, not agents' memory
AUDIT_SESSION_TYPES = ("sync", "retrieval")


def start_session(conn: DictConn, session_type: str, config: dict[str, Any]) -> int:
    row = conn.execute(
        "INSERT INTO agent.sessions (session_type, status, applied_harness_config)"
        " VALUES (%s, 'running', %s) RETURNING id",
        (session_type, Jsonb(config)),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def end_session(conn: DictConn, session_id: int, status: str, summary: str) -> None:
    conn.execute(
        "UPDATE agent.sessions SET status = %s, summary = %s, ended_at = now() WHERE id = %s",
        (status, summary, session_id),
    )


def add_event(conn: DictConn, session_id: int, event_type: str, payload: dict[str, Any],
              memory_scope: str = "run") -> None:
    """memsync's own records (sync batches, retrievals): run-scoped, so never searchable memory."""
    conn.execute(
        "INSERT INTO agent.events (session_id, event_type, payload, memory_scope) VALUES (%s, %s, %s, %s)",
        (session_id, event_type, Jsonb(payload), memory_scope),
    )


def set_state(conn: DictConn, key: str, value: Any) -> None:
    conn.execute(
        """INSERT INTO memsync.state (key, value) VALUES (%s, %s)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
        (key, Jsonb(value)),
    )


def get_state(conn: DictConn, key: str) -> Any:
    row = conn.execute("SELECT value FROM memsync.state WHERE key = %s", (key,)).fetchone()
    return None if row is None else row["value"]


def last_sync_session(conn: DictConn) -> dict[str, Any] | None:
    return conn.execute(
        """SELECT id, status, started_at, ended_at, summary FROM agent.sessions
            WHERE session_type = 'sync' ORDER BY started_at DESC LIMIT 1"""
    ).fetchone()
