"""SQL for blocks, stored embeddings and the sources they come from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb

from memsync.storage.db import DictConn, yield_in_deadlocks
from memsync.storage.db.capture import _table
from memsync.text.chunk import Chunk

# Fields every index point carries (payload) besides the vector.
POINT_COLUMNS = """b.id AS block_id, b.global_id, b.block_type, b.source_table, b.source_id,
                   b.artifact_id, b.subject_type, b.subject_id, b.content_hash, b.title,
                   b.heading_path, b.body_md, extract(epoch FROM b.created_at)::float8 AS created_at_ts"""


def mark_sync_origin(conn: DictConn) -> None:
    """For this session: writes on this connection are the worker's own results, so the
    capture triggers ignore them."""
    conn.execute("SELECT set_config('memsync.origin', 'sync', false)")
    yield_in_deadlocks(conn)


@dataclass(frozen=True)
class BlockRow:
    source_id: int
    chunk: Chunk
    subject_type: str | None
    subject_id: int | None
    artifact_id: int | None
    token_count: int
    global_id: str  # used only when the block is new
    vector_key: str  # the point id of that global_id


def load_source_rows(conn: DictConn, table: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if table == "agent.events":
        return _load_turns(conn, ids)
    rows = conn.execute(
        sql.SQL("SELECT * FROM {} WHERE id = ANY(%s)").format(_table(table)), (list(ids),)
    ).fetchall()
    return {r["id"]: r for r in rows}


def _load_turns(conn: DictConn, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Events with what their blocks read besides their own text: the payloads and ids of the
    turns just before them in the session, oldest first (migration 0017 re-queues a turn
    when those change)."""
    rows = conn.execute(
        """SELECT e.*, coalesce(prev.turns, '[]'::jsonb) AS previous_turns,
                  coalesce(prev.ids, '[]'::jsonb) AS previous_ids
             FROM agent.events e
             LEFT JOIN LATERAL (
               SELECT jsonb_agg(p.payload ORDER BY p.occurred_at, p.id) AS turns,
                      jsonb_agg(p.id ORDER BY p.occurred_at, p.id) AS ids
                 FROM (SELECT x.payload, x.occurred_at, x.id FROM agent.events x
                        WHERE x.session_id = e.session_id AND x.event_type IN ('note', 'decision')
                          AND (x.occurred_at, x.id) < (e.occurred_at, e.id)
                        ORDER BY x.occurred_at DESC, x.id DESC LIMIT memsync.context_turns()) p) prev ON true
            WHERE e.id = ANY(%s)""", (list(ids),)).fetchall()
    return {r["id"]: r for r in rows}


def blocks_of_sources(conn: DictConn, table: str, ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """source_id -> {chunk_key: block id} for the derived blocks of these rows."""
    rows = conn.execute(
        "SELECT id, source_id, chunk_key FROM agent.blocks"
        " WHERE source_table = %s AND source_id = ANY(%s) AND chunk_key IS NOT NULL",
        (table, list(ids)),
    ).fetchall()
    out: dict[int, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["source_id"], {})[r["chunk_key"]] = r["id"]
    return out


def write_chunks(conn: DictConn, table: str, rows: Sequence[BlockRow], chunker_version: str) -> int:
    """Insert new chunks and update changed ones (by source and chunk_key); unchanged rows
    are not touched (a block the running chunker would make alike only gets its version).
    Returns the number of rows written. The arrays go in binary (%b): as text literals every
    element is quoted and escaped in Python, ~6x the cost of sending them (and then parsed)."""
    if not rows:
        return 0
    written = conn.execute(
        """INSERT INTO agent.blocks AS b
                (block_type, title, body_md, heading_path, source_table, source_id, artifact_id,
                 subject_type, subject_id, chunk_key, ordinal, content_hash, token_count, metadata,
                 global_id, vector_key, chunker_version)
           SELECT *, %s FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                                %b::bigint[], %b::bigint[], %b::text[], %b::bigint[], %b::text[],
                                %b::int[], %b::text[], %b::int[], %b::jsonb[], %b::text[], %b::text[])
           ON CONFLICT (source_table, source_id, chunk_key) WHERE chunk_key IS NOT NULL DO UPDATE
              SET block_type = EXCLUDED.block_type, title = EXCLUDED.title,
                  body_md = EXCLUDED.body_md, heading_path = EXCLUDED.heading_path,
                  artifact_id = EXCLUDED.artifact_id, subject_type = EXCLUDED.subject_type,
                  subject_id = EXCLUDED.subject_id, ordinal = EXCLUDED.ordinal,
                  content_hash = EXCLUDED.content_hash, token_count = EXCLUDED.token_count,
                  metadata = EXCLUDED.metadata, chunker_version = EXCLUDED.chunker_version
            WHERE (b.block_type, b.title, b.body_md, b.heading_path, b.artifact_id, b.subject_type,
                   b.subject_id, b.ordinal, b.content_hash, b.metadata, b.chunker_version)
                  IS DISTINCT FROM
                  (EXCLUDED.block_type, EXCLUDED.title, EXCLUDED.body_md, EXCLUDED.heading_path,
                   EXCLUDED.artifact_id, EXCLUDED.subject_type, EXCLUDED.subject_id,
                   EXCLUDED.ordinal, EXCLUDED.content_hash, EXCLUDED.metadata, EXCLUDED.chunker_version)
        RETURNING b.id""",
        (
            chunker_version,
            [r.chunk.block_type for r in rows], [r.chunk.title for r in rows],
            [r.chunk.body_md for r in rows], [r.chunk.heading_path for r in rows],
            [table] * len(rows), [r.source_id for r in rows], [r.artifact_id for r in rows],
            [r.subject_type for r in rows], [r.subject_id for r in rows],
            [r.chunk.chunk_key for r in rows], [r.chunk.ordinal for r in rows],
            [r.chunk.content_hash for r in rows], [r.token_count for r in rows],
            [Jsonb(dict(r.chunk.metadata)) for r in rows],
            [r.global_id for r in rows], [r.vector_key for r in rows],
        ),
    ).fetchall()
    return len(written)


def delete_blocks(conn: DictConn, block_ids: Sequence[int]) -> int:
    if not block_ids:
        return 0
    return conn.execute("DELETE FROM agent.blocks WHERE id = ANY(%s)", (list(block_ids),)).rowcount


def lexical_upkeep(conn: DictConn) -> tuple[int | None, int]:
    """After block writes: fold the committed BM25 statistics deltas into their totals and
    merge the lexical index's pending entries (migration 0026). Returns the delta rows folded
    (None when another process was folding them) and the pending pages merged."""
    row = conn.execute("SELECT folded, pending_pages FROM memsync.lexical_upkeep()").fetchone()
    assert row is not None
    return (None if row["folded"] is None else int(row["folded"])), int(row["pending_pages"] or 0)


def orphaned_blocks_of_table(conn: DictConn, table: str) -> list[int]:
    """Blocks whose source row no longer exists (after a TRUNCATE)."""
    rows = conn.execute(
        sql.SQL(
            "SELECT b.id FROM agent.blocks b WHERE b.source_table = %s AND b.chunk_key IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM {} s WHERE s.id = b.source_id)"
        ).format(_table(table)),
        (table,),
    ).fetchall()
    return [r["id"] for r in rows]


def block_texts(conn: DictConn, block_ids: Sequence[int]) -> list[dict[str, Any]]:
    """What chunk.block_text() needs, for these blocks."""
    return conn.execute(
        "SELECT id, chunk_key, title, heading_path, body_md, content_hash, metadata->>'context' AS context"
        " FROM agent.blocks WHERE id = ANY(%s)",
        (list(block_ids),),
    ).fetchall()


def unkeyed_blocks(conn: DictConn, block_ids: Sequence[int]) -> list[dict[str, Any]]:
    """(id, global_id) of these blocks whose vector_key is unset."""
    return conn.execute("SELECT id, global_id FROM agent.blocks WHERE id = ANY(%s) AND vector_key IS NULL",
                        (list(block_ids),)).fetchall()


def vector_keys(conn: DictConn) -> list[dict[str, Any]]:
    """(id, global_id, vector_key) of every block the worker has processed."""
    return conn.execute(
        "SELECT id, global_id, vector_key FROM agent.blocks WHERE content_hash IS NOT NULL").fetchall()


def set_vector_keys(conn: DictConn, keys: dict[int, str]) -> int:
    if not keys:
        return 0
    return conn.execute(
        """UPDATE agent.blocks b SET vector_key = x.k FROM unnest(%s::bigint[], %s::text[]) AS x(id, k)
            WHERE b.id = x.id AND b.vector_key IS DISTINCT FROM x.k""",
        (list(keys), list(keys.values())),
    ).rowcount


def set_block_hash(conn: DictConn, block_id: int, content_hash: str, tokens: int) -> None:
    conn.execute(
        "UPDATE agent.blocks SET content_hash = %s, token_count = %s WHERE id = %s"
        " AND content_hash IS DISTINCT FROM %s",
        (content_hash, tokens, block_id, content_hash),
    )


def points(conn: DictConn, block_ids: Sequence[int], model: str) -> list[dict[str, Any]]:
    """Payload + stored vector for each block (blocks without an embedding are skipped)."""
    return conn.execute(
        f"""SELECT {POINT_COLUMNS}, e.embedding
              FROM agent.blocks b
              JOIN memsync.embeddings e ON e.model = %s AND e.content_hash = b.content_hash
             WHERE b.id = ANY(%s)""",
        (model, list(block_ids)),
    ).fetchall()


def all_block_hashes(conn: DictConn) -> dict[int, str | None]:
    rows = conn.execute("SELECT id, content_hash FROM agent.blocks").fetchall()
    return {r["id"]: r["content_hash"] for r in rows}


def iter_block_ids(conn: DictConn, model: str, batch: int = 1000) -> Iterable[list[int]]:
    """Ids of embedded blocks in batches (for reindex)."""
    last = 0
    while True:
        rows = conn.execute(
            """SELECT b.id FROM agent.blocks b
                WHERE b.id > %s AND EXISTS (SELECT 1 FROM memsync.embeddings e
                                              WHERE e.model = %s AND e.content_hash = b.content_hash)
                ORDER BY b.id LIMIT %s""",
            (last, model, batch),
        ).fetchall()
        if not rows:
            return
        ids = [r["id"] for r in rows]
        yield ids
        last = ids[-1]


def blocks_with_hashes(conn: DictConn, hashes: Sequence[str]) -> list[int]:
    rows = conn.execute("SELECT id FROM agent.blocks WHERE content_hash = ANY(%s) ORDER BY id", (list(hashes),))
    return [r["id"] for r in rows]


def count_blocks(conn: DictConn) -> int:
    row = conn.execute("SELECT count(*) AS n FROM agent.blocks").fetchone()
    return int(row["n"]) if row else 0


def older_chunks(conn: DictConn, chunker_version: str) -> int:
    """Blocks a chunker made whose version is not this one (or is unknown)."""
    row = conn.execute("SELECT count(*) AS n FROM agent.blocks WHERE chunk_key IS NOT NULL"
                       " AND chunker_version IS DISTINCT FROM %s", (chunker_version,)).fetchone()
    return int(row["n"]) if row else 0


# ------------------------------------------------------------------ embeddings


def missing_hashes(conn: DictConn, model: str, hashes: Iterable[str]) -> set[str]:
    wanted = sorted(set(hashes))
    if not wanted:
        return set()
    rows = conn.execute(
        "SELECT h FROM unnest(%s::text[]) AS h WHERE NOT EXISTS"
        " (SELECT 1 FROM memsync.embeddings e WHERE e.model = %s AND e.content_hash = h)",
        (wanted, model),
    ).fetchall()
    return {r["h"] for r in rows}


def store_embeddings(conn: DictConn, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
    if not len(hashes):
        return
    dim = int(vectors.shape[1])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO memsync.embeddings (model, content_hash, dim, embedding)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(model, h, dim, v) for h, v in zip(hashes, vectors, strict=True)],
        )


def texts_missing_embeddings(conn: DictConn, model: str, limit: int, after: str = "") -> list[dict[str, Any]]:
    """One block per content hash that has no embedding for `model` yet, hashes after `after`."""
    return conn.execute(
        """SELECT DISTINCT ON (b.content_hash) b.id, b.chunk_key, b.title, b.heading_path, b.body_md, b.content_hash,
                  b.metadata->>'context' AS context
             FROM agent.blocks b
            WHERE b.content_hash > %s AND NOT EXISTS
                  (SELECT 1 FROM memsync.embeddings e WHERE e.model = %s AND e.content_hash = b.content_hash)
            ORDER BY b.content_hash LIMIT %s""",
        (after, model, limit),
    ).fetchall()


def count_missing_embeddings(conn: DictConn, model: str) -> int:
    row = conn.execute(
        """SELECT count(DISTINCT b.content_hash) AS n FROM agent.blocks b
            WHERE b.content_hash IS NOT NULL AND NOT EXISTS
                  (SELECT 1 FROM memsync.embeddings e WHERE e.model = %s AND e.content_hash = b.content_hash)""",
        (model,),
    ).fetchone()
    return int(row["n"]) if row else 0


def embedding_dim(conn: DictConn, model: str) -> int | None:
    row = conn.execute("SELECT dim FROM memsync.embeddings WHERE model = %s LIMIT 1", (model,)).fetchone()
    return None if row is None else int(row["dim"])


def count_embeddings(conn: DictConn, model: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM memsync.embeddings WHERE model = %s", (model,)).fetchone()
    return int(row["n"]) if row else 0


def unused_embeddings(conn: DictConn, grace_seconds: float, delete: bool) -> int:
    """Embeddings no block uses (by any model) and older than the grace period: a rename
    (delete, then add) or a pending re-embed within it still finds its vector. Counted, or
    deleted when `delete`."""
    where = """NOT EXISTS (SELECT 1 FROM agent.blocks b WHERE b.content_hash = e.content_hash)
               AND e.created_at < now() - make_interval(secs => %s)"""
    if delete:
        return conn.execute(f"DELETE FROM memsync.embeddings e WHERE {where}", (grace_seconds,)).rowcount
    row = conn.execute(f"SELECT count(*) AS n FROM memsync.embeddings e WHERE {where}", (grace_seconds,)).fetchone()
    return int(row["n"]) if row else 0
