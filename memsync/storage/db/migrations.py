"""SQL for the migration runner: bookkeeping table, advisory lock, apply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from memsync.storage.db import DictConn

# Arbitrary constant: every migrating process takes this session-level advisory lock.
LOCK_KEY = 0x6D656D73796E63  # "memsync"


def lock(conn: DictConn) -> None:
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))


def unlock(conn: DictConn) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def bootstrap(conn: DictConn) -> None:
    with conn.transaction():
        conn.execute("CREATE SCHEMA IF NOT EXISTS memsync")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS memsync.schema_migrations (
                 name       TEXT PRIMARY KEY,
                 checksum   TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
        )


def applied(conn: DictConn) -> dict[str, dict[str, Any]]:
    exists = conn.execute("SELECT to_regclass('memsync.schema_migrations') AS t").fetchone()
    if not exists or exists["t"] is None:
        return {}
    rows = conn.execute(
        "SELECT name, checksum, applied_at FROM memsync.schema_migrations ORDER BY name"
    ).fetchall()
    return {r["name"]: r for r in rows}


def apply(conn: DictConn, name: str, checksum: str, body: str) -> datetime:
    with conn.transaction():
        conn.execute(body.encode())  # bytes: run the file as-is, no placeholder parsing
        row = conn.execute(
            "INSERT INTO memsync.schema_migrations (name, checksum) VALUES (%s, %s)"
            " RETURNING applied_at",
            (name, checksum),
        ).fetchone()
    assert row is not None
    applied_at: datetime = row["applied_at"]
    return applied_at
