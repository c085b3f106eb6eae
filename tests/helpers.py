"""Helpers the integration tests share: counting rows, waiting on a condition (never a
bare sleep), the CLI as a subprocess and its environment, a database migrated as an older
release left it, and the plans of the statements a function runs."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg import sql

from memsync.storage.db import DictConn

CLI = [sys.executable, "-m", "memsync.faces.cli"]


def count(conn: DictConn, q: str, params: Any = None) -> int:
    """The `n` column of a one-row query."""
    row = conn.execute(q, params).fetchone()
    return int(row["n"]) if row else 0


def wait_for(pred: Callable[[], Any], timeout: float = 60.0, step: float = 0.05, *,
             tolerate: bool = False) -> float:
    """Poll until pred() is true; returns the seconds it took. `tolerate`: an exception from
    pred (a server restarting) counts as not yet."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if pred():
                return time.monotonic() - start
        except Exception:
            if not tolerate:
                raise
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def env_for(dsn: str, **extra: str) -> dict[str, str]:
    """The CLI's environment: memsync's defaults (lease, attempts, backoff), the fast
    deterministic model."""
    return {**os.environ, "MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_LOG_LEVEL": "WARNING",
            **extra}


def drain(dsn: str, settings: Any, embedder: Any = None, indexes: list[Any] | None = None) -> Any:
    """One `run --once` of a sync worker on `dsn` (the fake embedder and pgvector unless
    given); returns its totals."""
    from memsync.embed import HashingEmbedder
    from memsync.index.pgvector import PgvectorIndex
    from memsync.write.worker import Worker

    return Worker(settings.model_copy(update={"dsn": dsn}), dsn, embedder or HashingEmbedder(),
                  [PgvectorIndex(dsn)] if indexes is None else indexes).run_once()


def migrate_before(dsn: str, name: str, folder: Path) -> None:
    """Migrate `dsn` with the shipped files that sort before `name` (copied into `folder`),
    and the capture triggers the code of that time installed: a row trigger for inserts too
    (today's statement-level one calls a function of migration 0028)."""
    from memsync.storage import migrate
    from memsync.storage.db import capture

    folder.mkdir()
    for f in sorted(migrate.migrations_dir().glob("*.sql")):
        if f.name < name:
            shutil.copy(f, folder / f.name)
    real = capture.install_source_triggers
    capture.install_source_triggers = lambda *a, inserted=None, **k: real(*a, **k)  # type: ignore[assignment]
    try:
        migrate.migrate(dsn, folder)
    finally:
        capture.install_source_triggers = real  # type: ignore[assignment]


class Explained:
    """Stands in for a connection: each statement is EXPLAINed with sequential scans off (a
    small test table would be scanned anyway), and its plan kept in `plans`, so a test sees
    whether the statement the code runs can use an index."""

    def __init__(self, conn: DictConn):
        self.conn = conn
        self.plans: list[str] = []

    def execute(self, query: Any, params: Any = None) -> Any:
        with self.conn.transaction():
            self.conn.execute("SET LOCAL enable_seqscan = off")
            rows = self.conn.execute(sql.SQL("EXPLAIN ") + (query if isinstance(query, sql.Composable)
                                                             else sql.SQL(query)), params).fetchall()
        self.plans.append("\n".join(r["QUERY PLAN"] for r in rows))
        return self.conn.execute("SELECT 1 WHERE false")  # no rows: the caller sees nothing found
