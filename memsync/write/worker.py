"""The sync worker: the shared queue loop (memsync/loop.py) over the outbox, whose drain
chunks, embeds and indexes what changed, two batches in flight."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import psycopg

from memsync.embed import Embedder, cpu_share
from memsync.errors import DatabaseError, MemsyncError
from memsync.index import VectorIndex
from memsync.loop import QueueWorker, heartbeat_seconds, new_worker_id, supervise
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage.db import DictConn, audit, connect, queue
from memsync.storage.db import workers as registry
from memsync.write import ops
from memsync.write.sync import BatchStats, Pipeline, next_claim, upkeep

log = logging.getLogger(__name__)
__all__ = ["Worker", "heartbeat_seconds", "make_pool", "run_pool"]


def make_pool(rt: Runtime, size: int, follow_model: Callable[[str], Embedder] | None = None) -> list[Worker]:
    """`size` workers sharing rt's model, each encode call given its share of the cores.
    An index that holds a connection (per_worker in the index registry: pgvector) is opened
    once per worker; a Qdrant client is shared (thread-safe over HTTP; calls into a
    local-mode client take turns).

    One worker is the default: more threads helped short reflections and slowed a docs
    ingest on 2 cores (the README's benchmarks give the figures; bench/ measures them)."""
    from memsync.index.registry import INDEXES

    set_threads = getattr(rt.embedder, "set_threads", None)
    if set_threads is not None and size > 1:
        set_threads(max(1, cpu_share() // size))
    def own(x: VectorIndex) -> VectorIndex:
        kind = INDEXES.get(x.name)
        return kind.open(rt.settings, rt.dsn) if kind is not None and kind.per_worker else x

    return [Worker(rt.settings, rt.dsn, rt.embedder, rt.indexes if i == 0 else [own(x) for x in rt.indexes],
                   follow_model=follow_model)
            for i in range(size)]


def run_pool(pool: Sequence[Worker], stop: threading.Event, *, once: bool = False,
             wait_seconds: float = 0.0) -> BatchStats:
    """Run workers on their own threads until they drain (once) or stop is set; the caller's
    thread stays free for signal handlers. Returns their summed totals. In daemon mode each
    loop is supervised (a crashed one starts again with backoff; a misconfiguration stops them
    all and is raised); once, the first error stops the others and is raised."""
    def make(w: Worker) -> Callable[[int], Worker]:
        def again(restarts: int) -> Worker:
            if restarts:  # a new identity: the crashed one's claims are free at once
                w.worker_id, w.restarts = new_worker_id(), restarts
            return w
        return again

    failed: list[BaseException] = []

    def fatal(exc: BaseException) -> None:  # every loop stops; the caller raises
        failed.append(exc)
        stop.set()

    threads = [supervise(f"sync worker {i}", make(w), stop, once=once, wait_seconds=wait_seconds, fatal=fatal)
               for i, w in enumerate(pool)]
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=0.5)
    if failed:
        raise failed[0]
    return _summed(pool)


def _summed(pool: Sequence[Worker]) -> BatchStats:
    totals = BatchStats()
    for w in pool:
        totals.add(w.totals)
    return totals


class Worker(QueueWorker):
    """`follow_model`, when given, loads an embedder by model name: the worker then follows
    the active model that `memsync reembed` switches to (when MEMSYNC_MODEL is unset)."""

    def __init__(self, settings: Settings, dsn: str, embedder: Embedder,
                 indexes: list[VectorIndex], worker_id: str | None = None,
                 follow_model: Callable[[str], Embedder] | None = None,
                 only: Sequence[tuple[str, int]] | None = None, *, restarts: int = 0):
        super().__init__(settings, dsn, worker_id, restarts=restarts)
        self.follow_model = follow_model
        self.embedder = embedder
        self.indexes = indexes
        self.totals = BatchStats()
        self._back: DictConn | None = None
        self._session: int | None = None
        self.asked: list[int] = []  # once mode: the items this run was asked to drain
        self.only = only  # only the items of these (source_table, source_id) rows
        self._graphs_checked = False  # each index's graph ensured since this worker started
        self._queries_prepared = False

    def _db_back(self) -> DictConn:
        if self._back is None or self._back.closed:
            self._back = connect(self.dsn, autocommit=True, vectors=True)
        return self._back

    def close(self) -> None:
        super().close()
        if self._back is not None and not self._back.closed:
            self._back.close()
        self._back = None

    # ------------------------------------------------------------ work

    def drain(self, stop: threading.Event | None = None) -> BatchStats:
        """Process ready items until none is left (or stop is set between batches).

        Two batches are in flight: while one is written to the indexes and acknowledged
        (back stages, on their own thread and connection), the next is chunked and embedded,
        so the model does not wait for index writes."""
        stats = BatchStats()
        self._follow_active_model()
        pipeline = Pipeline(self._db(), self.embedder, self.indexes, self.settings, self.worker_id, self._db_back(),
                            on_progress=self.progress)
        pipeline.deferred = self._defer_graphs()
        pending: Future[BatchStats] | None = None

        def collect() -> None:
            nonlocal pending
            if pending is not None:
                batch = pending.result()
                pending = None
                log.info("batch: %d items, %d acked, %d failed, %d embedded, %d points",
                         batch.items, batch.acked, batch.failed, batch.embedded, batch.points)
                stats.add(batch)

        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="memsync-index") as back:
                try:
                    size = self.settings.claim_batch
                    while not (stop and stop.is_set()):
                        items = queue.claim(self._db(), queue.OUTBOX, self.worker_id, size,
                                            self.settings.lease_seconds, self.settings.max_attempts, self.only)
                        if not items:
                            break
                        self.progress()
                        works, batch = pipeline.front(items)
                        size = next_claim(size, len(items), batch.embedded)
                        collect()
                        pending = back.submit(pipeline.back_stages, works, batch)
                finally:
                    collect()
        finally:
            self._build_graphs(pipeline.deferred)
        self.totals.add(stats)
        if stats.acked:
            audit.set_state(self._db(), "last_successful_sync",
                            {"at": datetime.now(timezone.utc).isoformat(), "worker": self.worker_id})
        else:  # each acked batch did the upkeep; here, what writes the queue never saw left (rechunk, DML)
            upkeep(self._db())
        return stats

    def _defer_graphs(self) -> set[str]:
        """The indexes that load this drain's backlog without their graph and build it once
        at the end (an index decides by the backlog's size against its own: defer_graph)."""
        deferring = [x for x in self.indexes if hasattr(x, "defer_graph")]
        if not deferring:
            return set()
        incoming = queue.ready_writes(self._db(), queue.OUTBOX, self.worker_id, self.only)
        deferred = set()
        for idx in deferring:
            if idx.defer_graph(self.embedder.model_id, self.embedder.dim, incoming):
                log.info("%s: %d rows to sync, at least as many as the index holds: its graph is built "
                         "once after the drain instead of one insert at a time", idx.name, incoming)
                deferred.add(idx.name)
            elif not self._graphs_checked:  # a graph that a process dying mid-drain left unbuilt
                idx.ensure(self.embedder.model_id, self.embedder.dim)
        self._graphs_checked = True
        return deferred

    def _build_graphs(self, deferred: set[str]) -> None:
        """Build the graphs deferred for this drain. One that fails (the database went away)
        is built at the next drain's start."""
        for idx in self.indexes:
            if idx.name not in deferred or not hasattr(idx, "build_graph"):
                continue
            t0 = time.perf_counter()
            try:
                idx.build_graph(self.embedder.model_id, self.embedder.dim)
            except (MemsyncError, psycopg.Error) as exc:
                log.warning("%s: building the graph failed (%s); the next drain builds it", idx.name, exc)
                self._graphs_checked = False
                continue
            log.info("%s: graph built in %.1f s", idx.name, time.perf_counter() - t0)

    def idle(self) -> None:
        """Once the daemon has synced with the model loaded: the query graph exported and checked
        for the processes that search (memsync search, a fresh MCP server), which then read
        without loading the model. Done here, while nothing waits, rather than by the first
        search; a worker that never loaded the model does not load it for this."""
        if self._queries_prepared or not self.embedder.loaded:
            return
        self._queries_prepared = True
        prepare = getattr(self.embedder, "prepare_queries", None)
        if prepare is None:
            return
        t0 = time.perf_counter()
        if prepare():
            log.info("query graph exported and checked in %.1f s: searches in other processes read without "
                     "loading the model", time.perf_counter() - t0)

    def _follow_active_model(self) -> None:
        """After `memsync reembed` switched models: embed with the new one from now on, and
        first embed and index what was written with the old one while the switch ran."""
        if self.follow_model is None:
            return
        model = ops.active_model(self._db())
        if model is None or model == self.embedder.model_id:
            return
        log.warning("the active model is now %s (was %s): switching", model, self.embedder.model_id)
        self.embedder = self.follow_model(model)
        done = ops.catch_up(self._db(), self.embedder, self.indexes)
        log.info("caught up with %s: %d texts embedded", model, done)

    def run_once(self, wait_seconds: float = 0.0) -> BatchStats:
        """Drain and return (for cron and tests); recorded as a sync session like run()."""
        return self.run(threading.Event(), once=True, wait_seconds=wait_seconds)

    def run(self, stop: threading.Event, *, once: bool = False, wait_seconds: float = 0.0) -> BatchStats:
        totals: BatchStats = super().run(stop, once=once, wait_seconds=wait_seconds)
        return totals

    def result(self) -> BatchStats:
        return self.totals

    def drain_once(self, stop: threading.Event, wait_seconds: float) -> None:
        """Drain, then, for up to wait_seconds, wait for the asked items that live workers
        hold and drain what they give back, until none is left."""
        deadline = time.monotonic() + wait_seconds
        self.drain(stop)
        while not stop.is_set() and time.monotonic() < deadline:
            left = registry.leftovers(self._db(), self.asked)
            if not any(r["reason"] in ("held_by_live_worker", "ready") for r in left):
                return
            stop.wait(0.2)
            self.drain(stop)

    # ------------------------------------------------------------ audit (cheap: no event per block)

    def started(self, once: bool) -> None:
        self._session = self._start_session(once)
        if once:
            self.asked = registry.pending_ids(self._db(), self.only)

    def reconnected(self, exc: BaseException) -> None:
        self._event(self._session, "error", {"error": str(exc)[:500], "what": "reconnect"})

    def finished(self, status: str, failure: str | None) -> None:
        self._end_session(self._session, status, failure)

    def _start_session(self, once: bool) -> int | None:
        config: dict[str, Any] = {
            "mode": "once" if once else "daemon",
            "settings": self.settings.redacted(),
            "worker_id": self.worker_id,
            "model": self.embedder.model_id,
            "indexes": [i.name for i in self.indexes],
        }
        try:
            return audit.start_session(self._db(), "sync", config)
        except psycopg.Error as exc:
            log.warning("could not record the sync session: %s", exc)
            return None

    def _event(self, session_id: int | None, kind: str, payload: dict[str, Any]) -> None:
        if session_id is not None:
            audit.add_event(self._db(), session_id, kind, payload)

    def _end_session(self, session_id: int | None, status: str, failure: str | None) -> None:
        if session_id is None:
            return
        totals = asdict(self.totals)
        errors = totals.pop("errors")
        totals.pop("synced")
        summary = failure or (f"{totals['acked']} items synced, {totals['failed']} failures, "
                              f"{totals['embedded']} embeddings computed")
        try:
            conn = self._db()
            if errors:
                self._event(session_id, "error", {"errors": sorted(set(errors))[:20]})
            self._event(session_id, "note", {"totals": totals})
            audit.end_session(conn, session_id, status, summary)
        except (psycopg.Error, DatabaseError) as exc:
            log.warning("could not close the sync session %s: %s", session_id, exc)
