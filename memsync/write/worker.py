"""The daemon loop, after procrastinate's worker: drain the outbox, then wait for a NOTIFY,
the poll interval or a stop request, and drain again. NOTIFY is only a wake-up; the
outbox is the record, so a lost notification costs at most one poll interval. Lost
connections are re-opened with backoff and the queue is drained again."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import psycopg

from memsync.embed import Embedder, cpu_share
from memsync.errors import DatabaseError, connection_failed, redo
from memsync.index import VectorIndex
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage.db import DictConn, audit, capture, connect
from memsync.storage.db import workers as registry
from memsync.write import ops
from memsync.write.sync import BatchStats, Pipeline

log = logging.getLogger(__name__)


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
    thread stays free for signal handlers. Returns their summed totals."""
    errors: list[BaseException] = []

    def body(w: Worker) -> None:
        try:
            w.run(stop, once=once, wait_seconds=wait_seconds)
        except BaseException as exc:  # handed to the caller below; the others stop too
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=body, args=(w,), name=f"memsync-worker-{i}") for i, w in enumerate(pool)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=0.5)
    if errors:
        raise errors[0]
    totals = BatchStats()
    for w in pool:
        totals.add(w.totals)
    return totals


def heartbeat_seconds(lease_seconds: float) -> float:
    """How often a worker marks itself alive: a quarter of the lease, 0.5 to 10 s."""
    return max(0.5, min(10.0, lease_seconds / 4))


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """`follow_model`, when given, loads an embedder by model name: the worker then follows
    the active model that `memsync reembed` switches to (when MEMSYNC_MODEL is unset)."""

    def __init__(self, settings: Settings, dsn: str, embedder: Embedder,
                 indexes: list[VectorIndex], worker_id: str | None = None,
                 follow_model: Callable[[str], Embedder] | None = None,
                 only: Sequence[tuple[str, int]] | None = None):
        self.settings = settings
        self.follow_model = follow_model
        self.dsn = dsn
        self.embedder = embedder
        self.indexes = indexes
        self.worker_id = worker_id or new_worker_id()
        self.totals = BatchStats()
        self._conn: DictConn | None = None
        self._back: DictConn | None = None
        self._listener: DictConn | None = None
        self._woken = threading.Event()
        self._beat: DictConn | None = None  # the heartbeat thread's own connection
        self._lock_key: int | None = None
        self._mode = "daemon"
        self._progress_at = time.monotonic()
        self.asked: list[int] = []  # once mode: the items this run was asked to drain
        self.only = only  # only the items of these (source_table, source_id) rows

    # ------------------------------------------------------------ connections

    def _db(self) -> DictConn:
        """The connection that claims. It holds the worker's liveness lock: a claim is only
        ever made while the lock is held, and when this connection dies (the process was
        killed, the server restarted) the lock goes with it and the claims are free at once.
        A new connection registers and takes the lock before it claims anything."""
        if self._conn is None or self._conn.closed:
            conn = connect(self.dsn, autocommit=True, vectors=True)
            try:
                self._lock_key = registry.register(conn, self.worker_id, socket.gethostname(), os.getpid(),
                                                   self._mode)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _db_back(self) -> DictConn:
        if self._back is None or self._back.closed:
            self._back = connect(self.dsn, autocommit=True, vectors=True)
        return self._back

    def _listen(self) -> DictConn:
        if self._listener is None or self._listener.closed:
            # this connection runs nothing after LISTEN, so a wake-up sent during a drain waits
            # in its socket (or psycopg's backlog) and the next notifies() returns it at once
            self._listener = connect(self.dsn, autocommit=True)
            capture.listen(self._listener)
            self._woken.set()  # whatever was committed before LISTEN took effect: drain once more
        return self._listener

    def close(self) -> None:
        for conn in (self._conn, self._back, self._listener):
            if conn is not None and not conn.closed:
                conn.close()
        self._conn = self._back = self._listener = None

    # ------------------------------------------------------------ liveness

    def progress(self) -> None:
        """The batch in hand moved on: its leases may be renewed (see _heartbeat)."""
        self._progress_at = time.monotonic()

    def _heartbeat(self, stop: threading.Event) -> None:
        """Every few seconds: mark the worker alive and, while its batch makes progress,
        renew the leases of the items it holds, so a batch slower than its lease is never
        taken over mid-way. A worker that is alive but stuck stops renewing, and its items
        are taken over when their lease runs out."""
        interval = heartbeat_seconds(self.settings.lease_seconds)
        wait, beats = interval, 0
        while not stop.wait(wait):
            try:
                busy = time.monotonic() - self._progress_at < self.settings.lease_seconds / 2
                if self._beat is None or self._beat.closed:
                    self._beat = connect(self.dsn, autocommit=True)
                registry.heartbeat(self._beat, self.worker_id, self.settings.lease_seconds if busy else None)
                wait, beats = interval, beats + 1
                if beats % 60 == 0:
                    registry.prune_ack_lag(self._beat)
            except Exception as exc:  # reconnect at the next beat; the main loop sees real outages
                if not connection_failed(exc):
                    log.exception("heartbeat failed")
                if self._beat is not None:
                    self._beat.close()
                wait = 0.5
        if self._beat is not None:
            self._beat.close()

    def _retire(self) -> None:
        """Mark the worker stopped and drop its lock (closing the connection would too)."""
        if self._conn is None or self._conn.closed or self._lock_key is None:
            return
        try:
            registry.stopped(self._conn, self.worker_id, self._lock_key)
        except Exception as exc:
            if not connection_failed(exc):
                raise

    # ------------------------------------------------------------ work

    def drain(self, stop: threading.Event | None = None) -> BatchStats:
        """Process ready items until none is left (or stop is set between batches).

        Two batches are in flight: while one is written to the indexes and acknowledged
        (back stages, on their own thread and connection), the next is chunked and embedded,
        so the model does not wait for index writes."""
        stats = BatchStats()
        self._woken.clear()  # this drain sees everything committed from here on
        self._follow_active_model()
        pipeline = Pipeline(self._db(), self.embedder, self.indexes, self.settings, self.worker_id, self._db_back(),
                            on_progress=self.progress)
        pending: Future[BatchStats] | None = None

        def collect() -> None:
            nonlocal pending
            if pending is not None:
                batch = pending.result()
                pending = None
                log.info("batch: %d items, %d acked, %d failed, %d embedded, %d points",
                         batch.items, batch.acked, batch.failed, batch.embedded, batch.points)
                stats.add(batch)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="memsync-index") as back:
            try:
                while not (stop and stop.is_set()):
                    items = capture.claim(self._db(), self.worker_id, self.settings.claim_batch,
                                          self.settings.lease_seconds, self.settings.max_attempts, self.only)
                    if not items:
                        break
                    self.progress()
                    works, batch = pipeline.front(items)
                    collect()
                    pending = back.submit(pipeline.back_stages, works, batch)
            finally:
                collect()
        self.totals.add(stats)
        if stats.acked:
            audit.set_state(self._db(), "last_successful_sync",
                            {"at": datetime.now(timezone.utc).isoformat(), "worker": self.worker_id})
        return stats

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

    def _drain_asked(self, stop: threading.Event, wait_seconds: float) -> None:
        """Once mode: drain, then, for up to wait_seconds, wait for the asked items that
        live workers hold and drain what they give back, until none is left."""
        deadline = time.monotonic() + wait_seconds
        self.drain(stop)
        while not stop.is_set() and time.monotonic() < deadline:
            left = registry.leftovers(self._db(), self.asked)
            if not any(r["reason"] in ("held_by_live_worker", "ready") for r in left):
                return
            stop.wait(0.2)
            self.drain(stop)

    def _wait(self, stop: threading.Event) -> None:
        """Block until a NOTIFY arrives (or arrived since the last drain began), the poll
        interval passes, or stop is set."""
        deadline = time.monotonic() + self.settings.poll_seconds
        listener = self._listen()
        while not stop.is_set() and not self._woken.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            for _ in listener.notifies(timeout=min(remaining, 0.5), stop_after=1):
                self._woken.set()

    def _release_own_claims(self) -> None:
        """After a reconnect nothing of ours is in flight: hand our claims back now
        instead of letting them wait for the lease to run out."""
        capture.release_worker(self._db(), self.worker_id)

    def run(self, stop: threading.Event, *, once: bool = False, wait_seconds: float = 0.0) -> BatchStats:
        self._mode = "once" if once else "daemon"
        self._db()
        beating = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(beating,), daemon=True,
                                 name=f"memsync-heartbeat-{self.worker_id}")
        heart.start()
        session_id = self._start_session(once)
        if once:
            self.asked = registry.pending_ids(self._db(), self.only)
        backoff = 0.5
        status, failure = "completed", None
        try:
            while not stop.is_set():
                try:
                    if once:
                        self._drain_asked(stop, wait_seconds)
                        break
                    self.drain(stop)
                    if stop.is_set():
                        break
                    self._wait(stop)
                    backoff = 0.5
                except (psycopg.Error, DatabaseError) as exc:
                    if not redo(exc) or (once and connection_failed(exc)):
                        raise
                    log.warning("%s (%s); redoing in %.1fs",
                                "database connection lost" if connection_failed(exc) else "transaction conflict",
                                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                                backoff)
                    self.close()
                    if stop.wait(backoff):
                        break
                    backoff = min(backoff * 2, 30.0)
                    try:
                        self._release_own_claims()
                        self._event(session_id, "error", {"error": str(exc)[:500], "what": "reconnect"})
                    except (psycopg.Error, DatabaseError) as again:
                        if not redo(again):
                            raise
                        self.close()
        except BaseException as exc:
            status, failure = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            beating.set()
            heart.join()
            self._end_session(session_id, status, failure)
            self._retire()
            self.close()
        return self.totals

    # ------------------------------------------------------------ audit (cheap: no event per block)

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
