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
from typing import Any

import psycopg

from memsync import chunk
from memsync.chunk import Chunk
from memsync.db import DictConn, capture
from memsync.db import blocks as q
from memsync.db.capture import Item
from memsync.embed import Embedder
from memsync.errors import MemsyncError, SourceError
from memsync.index import Point, VectorIndex
from memsync.settings import Settings
from memsync.sources import BLOCKS_TABLE, SOURCES, ChunkParams, Source

log = logging.getLogger(__name__)


@dataclass
class Work:
    """What one outbox item asks of the indexes."""

    item: Item
    upsert: list[int] = field(default_factory=list)  # block ids to (re)index
    remove: list[int] = field(default_factory=list)  # block ids to drop (from indexes, then Postgres)
    drop_source: bool = False  # the source row is gone: drop its points by source key
    sweep: bool = False  # after TRUNCATE: drop points whose block no longer exists


@dataclass(frozen=True)
class Planned:
    item: Item
    row: dict[str, Any] | None  # None: the source row is gone
    chunks: list[Chunk]


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
                 settings: Settings, worker_id: str, back_conn: DictConn | None = None):
        self.conn = conn
        # the index/finish stages may run on another thread (see Worker.drain): own connection
        self.back = back_conn or conn
        self.embedder = embedder
        self.indexes = list(indexes)
        self.settings = settings
        self.worker_id = worker_id
        self.params = ChunkParams(settings.chunk_tokens, settings.chunk_overlap, embedder.count_tokens)
        self._ensured = False
        for c in {id(conn): conn, id(self.back): self.back}.values():
            q.mark_sync_origin(c)  # these connections write results, which are not captured

    # ------------------------------------------------------------ stage 1: blocks

    def prepare(self, items: Sequence[Item], stats: BatchStats) -> list[Work]:
        """Chunk each item's source row and upsert its blocks; rows of one table are loaded
        and written with one statement each, not one per item."""
        works: list[Work] = []
        by_table: dict[str, list[Item]] = {}
        for item in items:
            try:
                if item.source_table == BLOCKS_TABLE:
                    works.append(self._prepare_block(item))
                elif item.source_table not in SOURCES:
                    raise SourceError(f"outbox item {item.id}: {item.source_table} is not a registered source")
                elif item.source_id is None:  # TRUNCATE
                    works.append(Work(item, remove=q.orphaned_blocks_of_table(self.conn, item.source_table),
                                      sweep=True))
                else:
                    by_table.setdefault(item.source_table, []).append(item)
            except psycopg.OperationalError:
                raise
            except (MemsyncError, psycopg.Error) as exc:
                self.fail([item], exc, stats)
        for table, group in by_table.items():
            works.extend(self._prepare_rows(SOURCES[table], group, stats))
        return works

    def _prepare_rows(self, source: Source, items: list[Item], stats: BatchStats) -> list[Work]:
        rows = q.load_source_rows(self.conn, source.table, [i.source_id for i in items if i.source_id is not None])
        planned: list[Planned] = []
        for item in items:
            row = rows.get(item.source_id) if item.source_id is not None else None
            try:
                chunks = source.chunker(row, self.params) if row is not None else []
            except Exception as exc:  # a chunker bug or odd data must not stop the batch
                self.fail([item], SourceError(f"{source.table} id={item.source_id}: chunking failed: {exc}"), stats)
                continue
            planned.append(Planned(item, row, chunks))
        try:
            stats.blocks_written += self._write(source, planned)
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            # one bad row spoils the statement: write item by item to fail only that one
            kept = []
            for p in planned:
                try:
                    stats.blocks_written += self._write(source, [p])
                    kept.append(p)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as exc:
                    self.fail([p.item], exc, stats)
            planned = kept
        current = q.blocks_of_sources(self.conn, source.table, [p.item.source_id for p in planned
                                                                 if p.item.source_id is not None])
        works = []
        for p in planned:
            keys = {c.chunk_key for c in p.chunks}
            have = current.get(p.item.source_id or 0, {})
            works.append(Work(
                p.item,
                upsert=[b for k, b in have.items() if k in keys],
                remove=[b for k, b in have.items() if k not in keys],
                drop_source=p.row is None,
            ))
        return works

    def _write(self, source: Source, planned: Sequence[Planned]) -> int:
        rows = []
        for p in planned:
            if p.row is None or p.item.source_id is None:
                continue
            subject_type, subject_id = source.subject(p.row)
            artifact_id = p.item.source_id if source.is_artifact else None
            for c in p.chunks:
                rows.append(q.BlockRow(p.item.source_id, c, subject_type, subject_id, artifact_id,
                                       c.tokens or self.embedder.count_tokens(c.text)))
        return q.write_chunks(self.conn, source.table, rows)

    def _prepare_block(self, item: Item) -> Work:
        """A block written directly is its own source: hash it, then embed and index it."""
        block_id = item.source_id
        if block_id is None:  # TRUNCATE agent.blocks
            return Work(item, sweep=True)
        rows = q.block_texts(self.conn, [block_id])
        row = rows[0] if rows else None
        if row is None:
            return Work(item, remove=[block_id])
        text = chunk.block_text(row)
        if not text:
            return Work(item, remove=[block_id])  # nothing to embed: keep the row, drop its point
        q.set_block_hash(self.conn, block_id, chunk.content_hash(text), self.embedder.count_tokens(text))
        return Work(item, upsert=[block_id])

    # ------------------------------------------------------------ stage 2: embeddings

    def embed(self, works: Sequence[Work]) -> int:
        """Embed the texts whose (model, hash) is not stored yet; batch across items."""
        ids = [b for w in works for b in w.upsert]
        if not ids:
            return 0
        rows = q.block_texts(self.conn, ids)
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
        loaded: list[Point] = []

        def load() -> list[Point]:  # once, and only for an index that needs the vectors
            if not loaded and ids:
                loaded.extend(Point.from_row(r, model) for r in q.points(self.back, ids, model))
            return loaded

        removed = [b for w in works for b in w.remove]
        existing: set[int] | None = None
        for idx in self.indexes:
            idx.upsert(model, ids, load)
            idx.delete_blocks(model, removed)
            for w in works:
                if w.drop_source and w.item.source_id is not None:
                    idx.delete_source(model, w.item.source_table, w.item.source_id)
            if any(w.sweep for w in works):
                if existing is None:
                    existing = set(q.all_block_hashes(self.back))
                idx.delete_blocks(model, [b for b in idx.hashes(model) if b not in existing])
        return len(ids)

    # ------------------------------------------------------------ stage 4: finish

    def finish(self, works: Sequence[Work], stats: BatchStats) -> None:
        """Blocks a source no longer produces leave Postgres only now, after every index
        dropped their points; the acks go in the same transaction."""
        with self.back.transaction():
            stats.blocks_removed += q.delete_blocks(self.back, [b for w in works for b in w.remove])
            capture.ack_many(self.back, [w.item for w in works], self.worker_id)
        stats.acked += len(works)
        stats.synced.extend((w.item.source_table, w.item.source_id) for w in works)

    # ------------------------------------------------------------ one batch

    def fail(self, items: Sequence[Item], exc: BaseException, stats: BatchStats,
             conn: DictConn | None = None) -> None:
        message = f"{type(exc).__name__}: {exc}"
        for item in items:
            dead = capture.fail(conn or self.conn, item, self.worker_id, message,
                                self.settings.max_attempts, self.settings.backoff_seconds)
            stats.failed += 1
            stats.dead += int(dead)
            log.warning("%s id=%s failed (attempt %d)%s: %s", item.source_table, item.source_id,
                        item.attempts, ", dead-lettered" if dead else "", message)
        stats.errors.append(message)

    def front(self, items: Sequence[Item]) -> tuple[list[Work], BatchStats]:
        """Stages 1-2 (blocks, embeddings) on the caller's connection."""
        stats = BatchStats(items=len(items))
        works = self.prepare(items, stats)
        if works:
            try:
                stats.embedded = self.embed(works)
            except MemsyncError as exc:
                self.fail([w.item for w in works], exc, stats)
                works = []
        return works, stats

    def back_stages(self, works: list[Work], stats: BatchStats) -> BatchStats:
        """Stages 3-4 (indexes, finish) on the back connection."""
        if not works:
            return stats
        try:
            stats.points = self.index(works)
        except MemsyncError as exc:
            self.fail([w.item for w in works], exc, stats, self.back)
            return stats
        self.finish(works, stats)
        return stats

    def process(self, items: Sequence[Item]) -> BatchStats:
        return self.back_stages(*self.front(items))

