"""The sync pipeline, one stage per function: prepare (chunk -> blocks) -> embed (only
new hashes) -> index (every enabled index confirms) -> finish (drop vanished blocks, ack).

Nothing holds a transaction open across the model or the indexes. Each stage is
idempotent, so a crash anywhere is repaired by redoing the item: blocks are upserted by
chunk key, embeddings by (model, hash), points by deterministic id, and blocks that a
source no longer produces are deleted from the indexes before they leave Postgres."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from memsync.embed import Embedder, encode_each
from memsync.errors import EmbeddingError, IndexUnavailable, MemsyncError, RowError, SourceError, redo
from memsync.index import VectorIndex, point_id
from memsync.kinds.base import ChunkParams, Source
from memsync.settings import Settings
from memsync.storage.db import DictConn, queue
from memsync.storage.db import blocks as q
from memsync.storage.db.queue import OUTBOX, Item
from memsync.text import chunk
from memsync.text.chunk import Chunk
from memsync.write import ops
from memsync.write.sources import BLOCKS_TABLE, SOURCES

log = logging.getLogger(__name__)

# Texts per encode call: large enough that the model's own batching dominates, small enough
# that a huge batch reports progress (and keeps its leases) every few seconds.
ENCODE_SLICE = 256


def next_claim(size: int, claimed: int, embedded: int) -> int:
    """How many items the next batch claims, after one of `size` that claimed `claimed` and
    gave the model `embedded` texts. A full batch that fell short of a slice of texts (short
    turns give ~2 an item) doubles the claim, up to a slice's worth of items: a backlog of
    short texts then reaches the model in runs long enough to sort by length, with fewer
    claims and acknowledgements per text. Live traffic (a batch not full) and long files (a
    slice already) keep the size."""
    if claimed >= size and embedded < ENCODE_SLICE:
        return max(size, min(size * 2, ENCODE_SLICE))
    return size


def upkeep(conn: DictConn) -> None:
    """After block writes (each batch, or a drain that wrote through no batch): the BM25
    statistics deltas join the totals and the lexical index's new entries leave its pending
    list, so a search reads little of either. A failed upkeep only waits for the next one."""
    try:
        q.lexical_upkeep(conn)
    except psycopg.Error as exc:
        log.warning("lexical upkeep failed (%s); the next batch does it", exc)


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
    deferred: int = 0  # an index was down: retried later, no attempt counted
    blocks_written: int = 0
    blocks_removed: int = 0
    embedded: int = 0
    points: int = 0
    errors: list[str] = field(default_factory=list)
    synced: list[tuple[str, int | None]] = field(default_factory=list)  # acked source keys

    def add(self, other: BatchStats) -> None:
        for name in ("items", "acked", "failed", "dead", "deferred", "blocks_written", "blocks_removed",
                     "embedded", "points"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.synced.extend(other.synced)


class Pipeline:
    def __init__(self, conn: DictConn, embedder: Embedder, indexes: Sequence[VectorIndex],
                 settings: Settings, worker_id: str, back_conn: DictConn | None = None,
                 on_progress: Callable[[], None] | None = None, sources: Mapping[str, Source] | None = None):
        self.conn = conn
        self.sources = SOURCES if sources is None else sources
        self.on_progress = on_progress or (lambda: None)
        # the index/finish stages may run on another thread (see Worker.drain): own connection
        self.back = back_conn or conn
        self.embedder = embedder
        self.indexes = list(indexes)
        self.settings = settings
        self.worker_id = worker_id
        # a chunk must fit what the model reads, its special tokens included, or its end is lost
        window = getattr(embedder, "text_window", None)
        size = min(settings.chunk_tokens, window) if window else settings.chunk_tokens
        self.params = ChunkParams(size, settings.chunk_overlap, embedder.count_tokens)
        self._ensured = False
        self.deferred: set[str] = set()  # indexes whose graph is built after the drain (Worker.drain)
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
                elif item.source_table not in self.sources:
                    raise SourceError(f"outbox item {item.id}: {item.source_table} is not a registered source")
                elif item.source_id is None:  # TRUNCATE
                    works.append(Work(item, remove=q.orphaned_blocks_of_table(self.conn, item.source_table),
                                      sweep=True))
                else:
                    by_table.setdefault(item.source_table, []).append(item)
            except (MemsyncError, psycopg.Error) as exc:
                self._fail_row([item], exc, stats)
        for table, group in by_table.items():
            try:
                works.extend(self._prepare_rows(self.sources[table], group, stats))
            except (MemsyncError, psycopg.Error) as exc:  # e.g. the rows could not be loaded
                self._fail_row(group, exc, stats)
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
        except psycopg.Error as exc:
            if redo(exc):
                raise
            # one bad row spoils the statement: write item by item to fail only that one
            kept = []
            for p in planned:
                try:
                    stats.blocks_written += self._write(source, [p])
                    kept.append(p)
                except psycopg.Error as row_exc:
                    self._fail_row([p.item], row_exc, stats)
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
                global_id = f"block:{uuid.uuid4()}"
                rows.append(q.BlockRow(p.item.source_id, c, subject_type, subject_id, artifact_id,
                                       c.tokens or self.embedder.count_tokens(c.text), global_id, point_id(global_id)))
        return q.write_chunks(self.conn, source.table, rows, chunk.CHUNKER_VERSION)

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

    def embed(self, works: list[Work], stats: BatchStats) -> list[Work]:
        """Embed the texts whose (model, hash) is not stored yet, batched across items.
        When the model fails on the batch, each text is tried alone and only the items
        whose text it rejects fail; the others go on. Returns the works that go on."""
        ids = [b for w in works for b in w.upsert]
        if not ids:
            return works
        rows = q.block_texts(self.conn, ids)
        missing = q.missing_hashes(self.conn, self.embedder.model_id, [r["content_hash"] for r in rows])
        texts: dict[str, str] = {}
        for r in rows:
            if r["content_hash"] in missing and r["content_hash"] not in texts:
                texts[r["content_hash"]] = chunk.block_text(r)
        if not texts:
            return works
        vectors: dict[str, np.ndarray] = {}
        bad: dict[str, str] = {}
        # longest first, then sliced: each slice holds texts of similar length, so the model pads
        # as little as it would sorting the whole batch itself (unsorted slices padded far more)
        hashes = sorted(texts, key=lambda h: len(texts[h]), reverse=True)
        for start in range(0, len(hashes), ENCODE_SLICE):  # progress between slices renews leases
            good, failed = encode_each(self.embedder, {h: texts[h] for h in hashes[start:start + ENCODE_SLICE]})
            vectors.update(good)
            bad.update(failed)
            self.on_progress()
        if vectors:
            with self.conn.transaction():
                q.store_embeddings(self.conn, self.embedder.model_id, list(vectors), np.stack(list(vectors.values())))
            stats.embedded += len(vectors)
        if not bad:
            return works
        block_hash = {r["id"]: r["content_hash"] for r in rows}
        kept = []
        for w in works:
            errors = {bad[block_hash[b]] for b in w.upsert if block_hash.get(b) in bad}
            if errors:
                self._fail_row([w.item], EmbeddingError("; ".join(sorted(errors))), stats)
            else:
                kept.append(w)
        return kept

    # ------------------------------------------------------------ stage 3: indexes

    def _ensure(self) -> None:
        if not self._ensured:
            for idx in self.indexes:
                if idx.name not in self.deferred:
                    idx.ensure(self.embedder.model_id, self.embedder.dim)
            self._ensured = True

    def index(self, works: Sequence[Work]) -> int:
        """Write every index; returns the number of points written. Raises IndexUnavailable
        or RowError for the whole batch."""
        self._ensure()
        model = self.embedder.model_id
        ids = [b for w in works for b in w.upsert]
        load = ops.point_loader(self.back, ids, model)
        removed = [b for w in works for b in w.remove]
        for idx in self.indexes:
            idx.upsert(model, ids, load)
            idx.delete_blocks(model, removed)
            for w in works:
                if w.drop_source and w.item.source_id is not None:
                    idx.delete_source(model, w.item.source_table, w.item.source_id)
            if any(w.sweep for w in works):
                ops.sweep_orphans(self.back, model, idx)
        return len(ids)

    def _index_or_isolate(self, works: list[Work], stats: BatchStats) -> list[Work]:
        """Index the batch. When that fails, an index that does not answer its health probe
        is down: the batch is deferred without counting an attempt (the failure is the
        index's). When every index answers, each item is written again alone and only the
        ones still refused fail. Returns the works to acknowledge."""
        failure = self._try_index(works, stats)
        if failure is None:
            return works
        if self._down_indexes():
            self.defer([w.item for w in works], failure, stats)
            return []
        log.warning("index write of %d items failed (%s); writing each alone", len(works), failure)
        kept = []
        for w in works:
            failure = self._try_index([w], stats)
            if failure is None:
                kept.append(w)
            elif self._down_indexes():
                self.defer([w.item], failure, stats)
            else:
                self._fail_row([w.item], failure, stats, self.back)
        return kept

    def _try_index(self, works: list[Work], stats: BatchStats) -> Exception | None:
        """index(); the failure it raised unless that was a lost connection or a conflict
        (those propagate: the worker redoes the batch)."""
        try:
            stats.points += self.index(works)
            return None
        except (IndexUnavailable, RowError, psycopg.Error) as exc:
            if redo(exc):
                raise
            return exc

    def _down_indexes(self) -> list[str]:
        down = []
        for idx in self.indexes:
            try:
                idx.probe()
            except IndexUnavailable as exc:
                log.warning("index %s is down: %s", idx.name, exc)
                down.append(idx.name)
        return down

    # ------------------------------------------------------------ stage 4: finish

    def finish(self, works: Sequence[Work], stats: BatchStats) -> None:
        """Blocks a source no longer produces leave Postgres only now, after every index
        dropped their points; the acks go in the same transaction."""
        unkeyed = q.unkeyed_blocks(self.back, [b for w in works for b in w.upsert])
        with self.back.transaction():
            # blocks written directly (or before vector_key was kept) learn their point id
            q.set_vector_keys(self.back, {r["id"]: point_id(r["global_id"]) for r in unkeyed})
            stats.blocks_removed += q.delete_blocks(self.back, [b for w in works for b in w.remove])
            queue.ack_many(self.back, OUTBOX, [w.item for w in works], self.worker_id)
        stats.acked += len(works)
        stats.synced.extend((w.item.source_table, w.item.source_id) for w in works)
        upkeep(self.back)

    # ------------------------------------------------------------ one batch

    def fail(self, items: Sequence[Item], exc: BaseException, stats: BatchStats,
             conn: DictConn | None = None) -> None:
        """These items failed on their own: retry with backoff, dead-letter at the limit."""
        message = f"{type(exc).__name__}: {exc}"
        for item in items:
            dead = queue.fail(conn or self.conn, OUTBOX, item, self.worker_id, message,
                              self.settings.max_attempts, self.settings.backoff_seconds)
            stats.failed += 1
            stats.dead += int(dead)
            log.warning("%s id=%s failed (attempt %d)%s: %s", item.source_table, item.source_id,
                        item.attempts, ", dead-lettered" if dead else "", message)
        stats.errors.append(message)

    def _fail_row(self, items: Sequence[Item], exc: BaseException, stats: BatchStats,
                  conn: DictConn | None = None) -> None:
        """fail(), unless the error is a lost connection or a conflict with another
        transaction: that is not the items' fault, and the worker redoes them."""
        if redo(exc):
            raise exc
        self.fail(items, exc, stats, conn)

    def defer(self, items: Sequence[Item], exc: BaseException, stats: BatchStats) -> None:
        """An index is down: retry these items later without counting an attempt, so an
        outage never dead-letters good rows."""
        message = f"{type(exc).__name__}: {exc}"
        queue.defer(self.back, OUTBOX, items, self.worker_id, message, self.settings.backoff_seconds)
        stats.deferred += len(items)
        stats.errors.append(message)
        log.warning("%d items deferred: %s", len(items), message)

    def front(self, items: Sequence[Item]) -> tuple[list[Work], BatchStats]:
        """Stages 1-2 (blocks, embeddings) on the caller's connection."""
        stats = BatchStats(items=len(items))
        works = self.prepare(items, stats)
        if works:
            try:
                works = self.embed(works, stats)
            except (MemsyncError, psycopg.Error) as exc:
                self._fail_row([w.item for w in works], exc, stats)
                works = []
        return works, stats

    def back_stages(self, works: list[Work], stats: BatchStats) -> BatchStats:
        """Stages 3-4 (indexes, finish) on the back connection."""
        if not works:
            return stats
        try:
            works = self._index_or_isolate(works, stats)
        except MemsyncError as exc:  # e.g. a collection with another dimension
            self._fail_row([w.item for w in works], exc, stats, self.back)
            return stats
        self.on_progress()
        if works:
            self.finish(works, stats)
        return stats

    def process(self, items: Sequence[Item]) -> BatchStats:
        return self.back_stages(*self.front(items))

