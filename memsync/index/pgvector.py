"""pgvector in the same database: the embedded default, safe for many processes."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from memsync.db import DictConn, connect
from memsync.db import vectors as q
from memsync.errors import IndexUnavailable
from memsync.index import Point


class PgvectorIndex:
    name = "pgvector"

    def __init__(self, dsn: str):
        self._dsn = dsn
        self._conn: DictConn | None = None

    def _db(self) -> DictConn:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._dsn, autocommit=True, vectors=True)
        return self._conn

    def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        try:
            return fn(self._db(), *args)
        except psycopg.OperationalError as exc:
            if self._conn is not None:
                self._conn.close()
            raise IndexUnavailable(f"pgvector: {exc}".strip()) from exc

    def ensure(self, model: str, dim: int) -> None:
        self._run(q.ensure_hnsw, model, dim)

    def upsert(self, model: str, points: Sequence[Point]) -> None:
        # Vectors already sit in memsync.embeddings: copy them in-database by block id.
        if points:
            self._run(q.upsert_from_embeddings, model, [p.block_id for p in points])

    def delete_blocks(self, model: str, block_ids: Sequence[int]) -> None:
        if block_ids:
            self._run(q.delete_blocks, model, block_ids)

    def delete_source(self, model: str, source_table: str, source_id: int) -> None:
        self._run(q.delete_source, model, source_table, source_id)

    def hashes(self, model: str) -> dict[int, str]:
        result: dict[int, str] = self._run(q.hashes, model)
        return result

    def count(self, model: str) -> int:
        n: int = self._run(q.count, model)
        return n

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
