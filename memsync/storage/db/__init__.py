"""Database access. The modules under memsync.storage.db are the only ones that hold SQL; this one
opens connections."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from memsync.errors import DatabaseError, MigrationError
from memsync.storage.db.adapt import register_times
from memsync.storage.dsn import redact_dsn

DictConn = psycopg.Connection[dict[str, Any]]


def connect(dsn: str, *, autocommit: bool = False, vectors: bool = False) -> DictConn:
    """A dict-row connection; `vectors` registers pgvector types (needs the migrated
    schema, so the migration runner connects without it)."""
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {redact_dsn(dsn)}: {exc}".strip()) from exc
    register_times(conn)
    if vectors:
        from pgvector.psycopg import register_vector

        try:
            register_vector(conn)
        except psycopg.Error as exc:
            conn.close()
            if isinstance(exc, psycopg.OperationalError):
                raise DatabaseError(f"cannot connect to {redact_dsn(dsn)}: {exc}".strip()) from exc
            # not a lost connection: the schema is not there (a worker must not retry this forever)
            raise MigrationError(f"{redact_dsn(dsn)} has no pgvector types; run `memsync db migrate`") from exc
    return conn


def configure_pooled(conn: psycopg.Connection[Any]) -> None:
    """What a pooled connection gets that connect() gives: times read to their ends, pgvector's types."""
    from pgvector.psycopg import register_vector

    register_times(conn)
    register_vector(conn)


def wait_for_server(dsn: str, seconds: float, waiting: Callable[[str], None]) -> None:
    """Retry connecting for up to `seconds` while the server refuses (it is starting);
    `waiting` hears the first refusal once. After the deadline, connect()'s error."""
    deadline = time.monotonic() + seconds
    told = False
    while True:
        try:
            connect(dsn).close()
            return
        except DatabaseError as exc:
            if time.monotonic() >= deadline:
                raise
            if not told:
                waiting(str(exc).splitlines()[0])
                told = True
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def hold(conn: DictConn, key: str) -> None:
    """An advisory lock on `key` until this transaction ends (commit or rollback): holders
    of one key run one at a time. Hashed to 32 bits: a collision only makes two unrelated
    holders wait for each other."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))


# The sync worker's sessions wait this long before checking for a deadlock (the server's
# default is 1 s). The session that checks first is the one Postgres aborts, so in a
# deadlock between a user's write (a cascading DELETE) and the worker, the worker's
# transaction is the one undone, and it is redone at once (errors.transient).
WORKER_DEADLOCK_TIMEOUT = "100ms"


def yield_in_deadlocks(conn: DictConn) -> None:
    """Make this worker session the deadlock victim rather than the user's transaction.
    Only a superuser may change the setting; elsewhere the server's own rule stands."""
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('deadlock_timeout', %s, false)", (WORKER_DEADLOCK_TIMEOUT,))
    except psycopg.errors.InsufficientPrivilege:
        pass
