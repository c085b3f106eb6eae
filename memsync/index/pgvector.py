"""pgvector in the same database: the embedded default, safe for many processes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import psycopg

from memsync.errors import DatabaseError, IndexUnavailable, RowError, connection_failed, transient
from memsync.index import PointLoader
from memsync.storage.db import DictConn, connect, yield_in_deadlocks
from memsync.storage.db import vectors as q
from memsync.storage.db.search import dense
from memsync.storage.filters import Filters

T = TypeVar("T")
# A drain of fewer rows inserts into the HNSW index: below this the inserts take about a
# second and dropping the index for them would only churn it.
REBUILD_MIN = 1000


class PgvectorIndex:
    name = "pgvector"

    def __init__(self, dsn: str):
        self._dsn = dsn
        self._conn: DictConn | None = None
        # one connection, one call at a time: callers on several threads (the library API)
        # would otherwise interleave transactions on it
        self._turn = threading.Lock()
        self._iterative: bool | None = None  # filtered HNSW scans: pgvector >= 0.8 (detected once)

    def _db(self) -> DictConn:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._dsn, autocommit=True, vectors=True)
            yield_in_deadlocks(self._conn)  # a user's cascading delete wins; the worker redoes its write
        return self._conn

    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Every call here is idempotent, so a connection the server dropped (a restart) is
        replaced and the call made once more before the index counts as unavailable."""
        for attempt in (1, 2):
            try:
                with self._turn:
                    return fn(self._db(), *args)
            except psycopg.Error as exc:
                if transient(exc):  # a deadlock or a conflict: nobody's fault, the call is idempotent
                    if attempt == 1:
                        continue
                    raise  # the worker redoes the batch without counting an attempt
                if not connection_failed(exc):
                    raise RowError(f"pgvector refused the write: {exc}".strip()) from exc
                if self._conn is not None:
                    self._conn.close()
                if attempt == 2:
                    raise IndexUnavailable(f"pgvector: {exc}".strip()) from exc
            except DatabaseError as exc:  # connect() failed: the server is not there
                raise IndexUnavailable(f"pgvector: {exc}".strip()) from exc
        raise AssertionError("unreachable")

    def probe(self) -> None:
        self._run(q.probe)

    def ensure(self, model: str, dim: int) -> None:
        self._run(q.ensure_hnsw, model, dim)

    def defer_graph(self, model: str, dim: int, incoming: int) -> bool:
        """Before a drain of `incoming` rows: True when the model's HNSW index was dropped
        so that the drain's vectors go in without it and build_graph() builds it once at
        the end. An insert links its vector into the graph (~1-2 ms each, the largest part
        of syncing short texts), a build ~0.3 ms per vector (bench/hnsw_insert_probe.py), so
        a backlog at least as large as the index is loaded that way: the build, over at most
        twice the backlog, costs less than the inserts would. Meanwhile searches outside a
        subject scope rank the vectors exactly."""
        if incoming >= REBUILD_MIN and incoming >= self.count(model):
            return self._run(q.drop_hnsw, model)
        return False

    def build_graph(self, model: str, dim: int) -> None:
        """After a drain that deferred the graph: build it, then refresh the statistics."""
        self.ensure(model, dim)
        self._run(q.analyze)

    def upsert(self, model: str, block_ids: Sequence[int], points: PointLoader) -> None:
        # The vectors already sit in memsync.embeddings: copy them in-database by block id.
        if block_ids:
            self._run(q.upsert_from_embeddings, model, block_ids)

    def delete_blocks(self, model: str, block_ids: Sequence[int]) -> None:
        if block_ids:
            self._run(q.delete_blocks, model, block_ids)

    def delete_source(self, model: str, source_table: str, source_id: int) -> None:
        self._run(q.delete_source, model, source_table, source_id)

    def hashes(self, model: str) -> dict[int, str]:
        return self._run(q.hashes, model)

    def count(self, model: str) -> int:
        return self._run(q.count, model)

    def search(self, model: str, vector: np.ndarray, k: int, filters: Filters | None = None, *,
               depth: int | None = None) -> list[tuple[int, float]]:
        return self._run(self._dense, model, vector, k, filters or Filters(), depth)

    def _dense(self, conn: DictConn, model: str, vector: np.ndarray, k: int, filters: Filters, depth: int | None
               ) -> list[tuple[int, float]]:
        if self._iterative is None:  # a MEMSYNC_DSN server may have an older pgvector: never fail on it
            self._iterative = q.vector_version(conn) >= (0, 8)
        return dense(conn, model, vector, k, filters, self._iterative, depth=depth)

    def close(self) -> None:
        """Waits for a call in progress on another thread (never closes under it)."""
        with self._turn:
            if self._conn is not None:
                self._conn.close()
