"""Operator actions over the projections: status, reindex (from stored embeddings, no
model), verify/repair. Each works on any VectorIndex."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memsync.embed import Embedder, encode_each
from memsync.index import Point, PointLoader, VectorIndex, point_id
from memsync.storage.db import DictConn, audit, capture, queue, workers
from memsync.storage.db import blocks as q
from memsync.storage.db import mirror as mirror_q
from memsync.text import chunk
from memsync.text.chunk import CHUNKER_VERSION

Progress = Callable[[int], object]
log = logging.getLogger(__name__)


def point_loader(conn: DictConn, ids: Sequence[int], model: str) -> PointLoader:
    """Payloads and vectors of these blocks, read once and only if an index asks (pgvector
    copies vectors inside the database and never does)."""
    loaded: list[Point] = []

    def load() -> list[Point]:
        if not loaded and ids:
            loaded.extend(Point.from_row(r, model) for r in q.points(conn, ids, model))
        return loaded

    return load


def sweep_orphans(conn: DictConn, model: str, index: VectorIndex) -> int:
    """Drop the points whose block no longer exists (after a TRUNCATE, or drift)."""
    existing = set(q.all_block_hashes(conn))
    orphans = [b for b in index.hashes(model) if b not in existing]
    index.delete_blocks(model, orphans)
    return len(orphans)


def status(conn: DictConn, model: str, indexes: Sequence[VectorIndex]) -> dict[str, Any]:
    last = audit.last_sync_session(conn)
    return {
        "backlog": queue.backlog(conn, queue.OUTBOX),
        "backlog_by_table": workers.backlog_by_table(conn),
        "lag": workers.lag(conn),
        "workers": workers.listing(conn),
        "dead_letters": queue.dead_letters(conn, queue.OUTBOX, limit=20),
        "blocks": q.count_blocks(conn),
        "embeddings": q.count_embeddings(conn, model),
        "vectors": {idx.name: idx.count(model) for idx in indexes},
        "model": model,
        "last_successful_sync": audit.get_state(conn, "last_successful_sync"),
        "last_sync_session": last,
        "chunker_version": {"code": CHUNKER_VERSION, "older_blocks": q.older_chunks(conn, CHUNKER_VERSION)},
        "mirrors": mirror_q.backlog(conn),
    }


def reindex(conn: DictConn, model: str, dim: int, index: VectorIndex,
            progress: Progress | None = None, batch: int = 500) -> int:
    """Rebuild a projection from memsync.embeddings: zero model calls. Points for blocks
    that no longer exist are removed."""
    index.ensure(model, dim)
    done = 0
    for ids in q.iter_block_ids(conn, model, batch):
        index.upsert(model, ids, point_loader(conn, ids, model))
        done += len(ids)
        if progress:
            progress(len(ids))
    sweep_orphans(conn, model, index)
    return done


def reembed(conn: DictConn, embedder: Embedder, indexes: Sequence[VectorIndex],
            progress: Progress | None = None, batch: int = 256) -> dict[str, Any]:
    """Build embeddings and index projections for another model beside the current ones,
    then make it the active model. Resumable: a rerun embeds only what is still missing."""
    model = embedder.model_id
    computed = _embed_missing(conn, embedder, batch, progress)
    points = {idx.name: reindex(conn, model, embedder.dim, idx) for idx in indexes}
    audit.set_state(conn, "active_model", {"model": model})
    # a daemon still on the old model may have written blocks since the pass above (a daemon
    # that follows the active model runs this same catch-up when it switches)
    computed += catch_up(conn, embedder, indexes, batch)
    return {"model": model, "embedded": computed, "points": points, "active": True}


def catch_up(conn: DictConn, embedder: Embedder, indexes: Sequence[VectorIndex], batch: int = 256) -> int:
    """Embed the texts that have no vector for the embedder's model yet and write the points
    of the blocks that carry them; returns the number of texts embedded."""
    for idx in indexes:
        idx.ensure(embedder.model_id, embedder.dim)
    return _embed_missing(conn, embedder, batch, None, indexes)


def _embed_missing(conn: DictConn, embedder: Embedder, batch: int, progress: Progress | None,
                   indexes: Sequence[VectorIndex] = ()) -> int:
    """One pass over the texts with no vector for the embedder's model, in content-hash
    order; a text the model rejects is logged and passed over, not retried forever."""
    model = embedder.model_id
    computed, after = 0, ""
    while rows := q.texts_missing_embeddings(conn, model, batch, after):
        after = rows[-1]["content_hash"]
        vectors, bad = encode_each(embedder, {r["content_hash"]: chunk.block_text(r) for r in rows})
        for h, error in bad.items():
            log.warning("text %s not embedded with %s: %s", h[:12], model, error)
        if vectors:
            with conn.transaction():
                q.store_embeddings(conn, model, list(vectors), np.stack(list(vectors.values())))
            if indexes:
                ids = q.blocks_with_hashes(conn, list(vectors))
                for idx in indexes:
                    idx.upsert(model, ids, point_loader(conn, ids, model))
        computed += len(vectors)
        if progress:
            progress(len(rows))
    return computed


def rechunk(conn: DictConn, tables: Sequence[str]) -> dict[str, int]:
    """Queue every row of these source tables for a resync, so a chunker change reaches
    stored data: the worker rewrites the blocks whose text changed and embeds only those
    (embeddings are keyed by the text's hash). Returns rows queued per table."""
    queued = {}
    with conn.transaction():
        for table in tables:
            queued[table] = capture.enqueue_all(conn, table)
    return queued


def gc_embeddings(conn: DictConn, grace_hours: float = 24.0, dry_run: bool = False) -> dict[str, Any]:
    """Remove stored embeddings no block uses any more (deleted or edited text), keeping
    those younger than the grace period, which a rename or a re-add may still need."""
    n = q.unused_embeddings(conn, grace_hours * 3600, delete=not dry_run)
    return {"unused": n, "deleted": 0 if dry_run else n, "grace_hours": grace_hours, "dry_run": dry_run}


def active_model(conn: DictConn) -> str | None:
    state = audit.get_state(conn, "active_model")
    return str(state["model"]) if isinstance(state, dict) and state.get("model") else None


def _wrong_vector_keys(conn: DictConn) -> dict[int, str]:
    """Blocks whose vector_key is not the point id the indexes store them under."""
    want = {r["id"]: (point_id(r["global_id"]), r["vector_key"]) for r in q.vector_keys(conn)}
    return {b: key for b, (key, have) in want.items() if key != have}


def verify(conn: DictConn, model: str, index: VectorIndex, repair: bool = False) -> dict[str, Any]:
    """Compare blocks with one index: missing points, orphaned points, stale hashes.
    Blocks that have no stored embedding yet are reported as unembedded (the worker's job)."""
    blocks = q.all_block_hashes(conn)
    indexed = index.hashes(model)
    embedded = set(q.missing_hashes(conn, model, [h for h in blocks.values() if h]))
    unembedded = [b for b, h in blocks.items() if h is None or h in embedded]
    missing = [b for b, h in blocks.items() if b not in indexed and b not in unembedded]
    orphaned = [b for b in indexed if b not in blocks]
    stale = [b for b, h in indexed.items() if b in blocks and blocks[b] != h and b not in unembedded]
    wrong_keys = _wrong_vector_keys(conn)
    report: dict[str, Any] = {
        "index": index.name, "blocks": len(blocks), "points": len(indexed),
        "missing": len(missing), "orphaned": len(orphaned), "stale": len(stale),
        "unembedded": len(unembedded), "wrong_vector_key": len(wrong_keys), "repaired": False,
    }
    if repair and wrong_keys:
        q.set_vector_keys(conn, wrong_keys)
        report["repaired"] = True
    if repair and (missing or orphaned or stale):
        fix = missing + stale
        for start in range(0, len(fix), 500):
            ids = fix[start:start + 500]
            index.upsert(model, ids, point_loader(conn, ids, model))
        index.delete_blocks(model, orphaned)
        report["repaired"] = True
    if repair and unembedded:
        for b in unembedded:
            capture.enqueue(conn, "agent.blocks", b, "resync")
        report["requeued_unembedded"] = len(unembedded)
    return report
