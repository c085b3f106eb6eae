"""Database access. The modules under memsync.db are the only ones that hold SQL."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from memsync.errors import DatabaseError
from memsync.settings import Settings, redact_dsn

DictConn = psycopg.Connection[dict[str, Any]]


def resolve_dsn(settings: Settings) -> str:
    """The DSN to use: MEMSYNC_DSN, or the embedded server under MEMSYNC_HOME."""
    if settings.dsn:
        return settings.dsn
    from memsync import embedded

    return embedded.server_uri(settings.home)


def ensure_database(admin_dsn: str, name: str) -> bool:
    """Create database `name` unless it exists; True when it was created."""
    from psycopg import sql

    with connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def connect(dsn: str, *, autocommit: bool = False, vectors: bool = False) -> DictConn:
    """A dict-row connection; `vectors` registers pgvector types (needs the migrated
    schema, so the migration runner connects without it)."""
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, row_factory=dict_row)
        if vectors:
            from pgvector.psycopg import register_vector

            register_vector(conn)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {redact_dsn(dsn)}: {exc}".strip()) from exc
    except psycopg.ProgrammingError as exc:
        raise DatabaseError(f"{redact_dsn(dsn)} has no pgvector types; run `memsync db migrate`") from exc
    return conn
