"""SQL for the pgvector projection (memsync.pgvector_index)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import psycopg
from psycopg import sql

from memsync.storage.db import DictConn, hold


def hnsw_index_name(model: str) -> str:
    return "pgvector_index_hnsw_" + hashlib.sha1(model.encode()).hexdigest()[:12]


def ensure_hnsw(conn: DictConn, model: str, dim: int) -> None:
    """A partial expression index per model: HNSW needs a fixed dimension, the column has none.

    IF NOT EXISTS alone races (two workers starting together both create, one fails on
    pg_class's unique key): a transaction-scoped advisory lock on the name serializes them."""
    name = hnsw_index_name(model)
    with conn.transaction():
        hold(conn, name)
        conn.execute(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON memsync.pgvector_index USING hnsw "
                "((embedding::vector({})) vector_cosine_ops) WHERE model = {}"
            ).format(sql.Identifier(name), sql.Literal(dim), sql.Literal(model))
        )


def drop_hnsw(conn: DictConn, model: str) -> bool:
    """Drop the model's HNSW index ahead of a bulk load (ensure_hnsw builds it again after).
    False when readers hold the table past the lock timeout: the load then inserts as usual."""
    name = hnsw_index_name(model)
    try:
        with conn.transaction():
            hold(conn, name)
            conn.execute("SET LOCAL lock_timeout = '2s'")
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier("memsync", name)))
    except psycopg.errors.LockNotAvailable:
        return False
    return True


def analyze(conn: DictConn) -> None:
    """Fresh planner statistics after a bulk load, of the projection and of the blocks its
    searches join: until autovacuum comes by, the planner takes them for the small tables
    they were (it passed over the HNSW index, and a person's dense search took ~50-60 ms
    instead of ~12 right after importing 6,000 turns)."""
    conn.execute("ANALYZE memsync.pgvector_index, agent.blocks")


def upsert_from_embeddings(conn: DictConn, model: str, block_ids: Sequence[int]) -> int:
    """Copy stored embeddings into the projection inside Postgres (no vector round trip)."""
    return conn.execute(
        """INSERT INTO memsync.pgvector_index AS p (model, block_id, content_hash, embedding)
           SELECT e.model, b.id, b.content_hash, e.embedding
             FROM agent.blocks b
             JOIN memsync.embeddings e ON e.model = %s AND e.content_hash = b.content_hash
            WHERE b.id = ANY(%s)
           ON CONFLICT (model, block_id) DO UPDATE
              SET content_hash = EXCLUDED.content_hash, embedding = EXCLUDED.embedding,
                  indexed_at = now()
            WHERE p.content_hash <> EXCLUDED.content_hash""",
        (model, list(block_ids)),
    ).rowcount


def delete_blocks(conn: DictConn, model: str, block_ids: Sequence[int]) -> None:
    conn.execute(
        "DELETE FROM memsync.pgvector_index WHERE model = %s AND block_id = ANY(%s)",
        (model, list(block_ids)),
    )


def delete_source(conn: DictConn, model: str, source_table: str, source_id: int) -> None:
    conn.execute(
        """DELETE FROM memsync.pgvector_index p USING agent.blocks b
            WHERE p.model = %s AND p.block_id = b.id AND b.source_table = %s AND b.source_id = %s""",
        (model, source_table, source_id),
    )


def hashes(conn: DictConn, model: str) -> dict[int, str]:
    rows = conn.execute(
        "SELECT block_id, content_hash FROM memsync.pgvector_index WHERE model = %s", (model,)
    ).fetchall()
    return {r["block_id"]: r["content_hash"] for r in rows}


def count(conn: DictConn, model: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM memsync.pgvector_index WHERE model = %s", (model,)).fetchone()
    return int(row["n"]) if row else 0



def probe(conn: DictConn) -> None:
    conn.execute("SELECT 1")


def vector_version(conn: DictConn) -> tuple[int, ...]:
    """The installed pgvector extension's version, e.g. (0, 8, 5); () when absent."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        return ()
    return tuple(int(x) for x in str(row["extversion"]).split(".") if x.isdigit())
