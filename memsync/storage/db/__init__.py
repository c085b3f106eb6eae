"""Database access. The modules under memsync.storage.db are the only ones that hold SQL; this one
opens connections."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from memsync.errors import DatabaseError
from memsync.settings import redact_dsn

DictConn = psycopg.Connection[dict[str, Any]]


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
