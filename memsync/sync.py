"""The sync pipeline, one stage per function: prepare (chunk -> blocks) -> embed (only
new hashes) -> index (every enabled index confirms) -> finish (drop vanished blocks, ack).

Nothing holds a transaction open across the model or the indexes. Each stage is
idempotent, so a crash anywhere is repaired by redoing the item: blocks are upserted by
chunk key, embeddings by (model, hash), points by deterministic id, and blocks that a
source no longer produces are deleted from the indexes before they leave Postgres."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from memsync import chunk
from memsync.db import DictConn
from memsync.db import blocks as q
from memsync.db import capture
from memsync.db.capture import Item
from memsync.embed import Embedder
from memsync.errors import MemsyncError, SourceError
from memsync.index import Point, VectorIndex
from memsync.settings import Settings
from memsync.sources import BLOCKS_TABLE, SOURCES, ChunkParams

log = logging.getLogger(__name__)


@dataclass
class Work:
    """What one outbox item asks of the indexes."""

    item: Item
    upsert: list[int] = field(default_factory=list)  # block ids to (re)index
    remove: list[int] = field(default_factory=list)  # block ids to drop (from indexes, then Postgres)
    drop_source: bool = False  # the source row is gone: drop its points by source key
    sweep: bool = False  # after TRUNCATE: drop points whose block no longer exists


@dataclass
class BatchStats:
    items: int = 0
    acked: int = 0
    failed: int = 0
    dead: int = 0
    blocks_written: int = 0
    blocks_removed: int = 0
    embedded: int = 0
    points: int = 0
    errors: list[str] = field(default_factory=list)
    synced: list[tuple[str, int | None]] = field(default_factory=list)  # acked source keys

    def add(self, other: BatchStats) -> None:
        for name in ("items", "acked", "failed", "dead", "blocks_written", "blocks_removed", "embedded", "points"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.synced.extend(other.synced)


class Pipeline:
    def __init__(self, conn: DictConn, embedder: Embedder, indexes: Sequence[VectorIndex],
                 settings: Settings, worker_id: str):
        self.conn = conn
        self.embedder = embedder
        self.indexes = list(indexes)
        self.settings = settings
        self.worker_id = worker_id
        self.params = ChunkParams(settings.chunk_tokens, settings.chunk_overlap, embedder.count_tokens)
        self._ensured = False

    # ------------------------------------------------------------ stage 1: blocks

    def prepare(self, item: Item, stats: BatchStats) -> Work:
        work = Work(item)
        if item.source_table == BLOCKS_TABLE:
            self._prepare_block(work)
            return work
        source = SOURCES.get(item.source_table)
        if source is None:
            raise SourceError(f"outbox item {item.id}: {item.source_table} is not a registered source")
        if item.source_id is None:  # TRUNCATE
            work.remove = q.orphaned_blocks_of_table(self.conn, source.table)
            work.sweep = True
            return work
        row = q.load_source_row(self.conn, source.table, item.source_id)
        existing = q.blocks_of_source(self.conn, source.table, item.source_id)
        if row is None:
            work.drop_source = True
            work.remove = [b["id"] for b in existing.values()]
            return work
        try:
            chunks = source.chunker(row, self.params)
        except Exception as exc:
            raise SourceError(f"{source.table} id={item.source_id}: chunking failed: {exc}") from exc
        with self.conn.transaction():
            q.mark_sync_origin(self.conn)
            stats.blocks_written += q.write_chunks(
                self.conn, source.table, item.source_id, chunks,
                subject=source.subject(row),
                artifact_id=item.source_id if source.is_artifact else None,
                token_counts=[self.embedder.count_tokens(c.text) for c in chunks],
            )
        current = q.blocks_of_source(self.conn, source.table, item.source_id)
        keys = {c.chunk_key for c in chunks}
        work.upsert = [b["id"] for k, b in current.items() if k in keys]
        work.remove = [b["id"] for k, b in current.items() if k not in keys]
        return work

    def _prepare_block(self, work: Work) -> None:
        block_id = work.item.source_id
        if block_id is None:  # TRUNCATE agent.blocks
            work.sweep = True
            return
        row = q.load_block(self.conn, block_id)
        if row is None:
            work.remove = [block_id]
            return
        text = chunk.block_text(row)
        if not text:
            work.remove = [block_id]  # nothing to embed: keep the row, drop its point
            return
        with self.conn.transaction():
            q.mark_sync_origin(self.conn)
            q.set_block_hash(self.conn, block_id, chunk.content_hash(text), self.embedder.count_tokens(text))
        work.upsert = [block_id]

    # ------------------------------------------------------------ stage 2: embeddings

    def embed(self, works: Sequence[Work]) -> int:
        """Embed the texts whose (model, hash) is not stored yet; batch across items."""
        ids = [b for w in works for b in w.upsert]
        if not ids:
            return 0
        rows = self.conn.execute(
            "SELECT id, chunk_key, title, heading_path, body_md, content_hash FROM agent.blocks"
            " WHERE id = ANY(%s)", (ids,)
        ).fetchall()
        missing = q.missing_hashes(self.conn, self.embedder.model_id, [r["content_hash"] for r in rows])
        texts: dict[str, str] = {}
        for r in rows:
            if r["content_hash"] in missing and r["content_hash"] not in texts:
                texts[r["content_hash"]] = chunk.block_text(r)
        if not texts:
            return 0
        hashes = list(texts)
        vectors = self.embedder.encode([texts[h] for h in hashes])
        with self.conn.transaction():
            q.store_embeddings(self.conn, self.embedder.model_id, hashes, vectors)
        return len(hashes)

    # ------------------------------------------------------------ stage 3: indexes

    def index(self, works: Sequence[Work]) -> int:
        model = self.embedder.model_id
        if not self._ensured:
            for idx in self.indexes:
                idx.ensure(model, self.embedder.dim)
            self._ensured = True
        ids = [b for w in works for b in w.upsert]
        pts = [Point.from_row(r, model) for r in q.points(self.conn, ids, model)] if ids else []
        removed = [b for w in works for b in w.remove]
        existing: set[int] | None = None
        for idx in self.indexes:
            idx.upsert(model, pts)
            idx.delete_blocks(model, removed)
            for w in works:
                if w.drop_source and w.item.source_id is not None:
                    idx.delete_source(model, w.item.source_table, w.item.source_id)
            if any(w.sweep for w in works):
                if existing is None:
                    existing = set(q.all_block_hashes(self.conn))
                idx.delete_blocks(model, [b for b in idx.hashes(model) if b not in existing])
        return len(pts)

    # ------------------------------------------------------------ stage 4: finish

    def finish(self, works: Sequence[Work], stats: BatchStats) -> None:
        for w in works:
            with self.conn.transaction():
                if w.remove:
                    q.mark_sync_origin(self.conn)
                    stats.blocks_removed += q.delete_blocks(self.conn, w.remove)
                capture.ack(self.conn, w.item, self.worker_id)
            stats.acked += 1
            stats.synced.append((w.item.source_table, w.item.source_id))

    # ------------------------------------------------------------ one batch

    def fail(self, items: Sequence[Item], exc: BaseException, stats: BatchStats) -> None:
        message = f"{type(exc).__name__}: {exc}"
        for item in items:
            dead = capture.fail(self.conn, item, self.worker_id, message,
                                self.settings.max_attempts, self.settings.backoff_seconds)
            stats.failed += 1
            stats.dead += int(dead)
            log.warning("%s id=%s failed (attempt %d)%s: %s", item.source_table, item.source_id,
                        item.attempts, ", dead-lettered" if dead else "", message)
        stats.errors.append(message)

    def process(self, items: Sequence[Item]) -> BatchStats:
        stats = BatchStats(items=len(items))
        works: list[Work] = []
        for item in items:
            try:
                works.append(self.prepare(item, stats))
            except psycopg.OperationalError:
                raise  # the connection is gone: the worker reconnects, the lease protects the items
            except (MemsyncError, psycopg.Error) as exc:  # this item's data: fail it alone
                self.fail([item], exc, stats)
        if not works:
            return stats
        try:
            stats.embedded = self.embed(works)
            stats.points = self.index(works)
        except MemsyncError as exc:
            self.fail([w.item for w in works], exc, stats)
            return stats
        self.finish(works, stats)
        return stats


def claim(conn: DictConn, settings: Settings, worker_id: str) -> list[Item]:
    return capture.claim(conn, worker_id, settings.claim_batch, settings.lease_seconds)
