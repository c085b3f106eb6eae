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

from memsync import ops
from memsync.db import DictConn, audit, capture, connect
from memsync.embed import Embedder
from memsync.errors import DatabaseError
from memsync.index import VectorIndex
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.sync import BatchStats, Pipeline

log = logging.getLogger(__name__)


def make_pool(rt: Runtime, size: int, follow_model: Callable[[str], Embedder] | None = None) -> list[Worker]:
    """`size` workers sharing rt's model, each encode call given its share of the cores.
    Each worker gets its own pgvector connection; a Qdrant client is shared (thread-safe over
    HTTP; calls into a local-mode client take turns).

    Why one worker is the default (MEMSYNC_WORKERS=1): on 2 cores, two workers drained a
    burst of 1,000 short reflections as fast as the model alone (0.995 of one all-core encode,
    against 1.21-1.30 with one worker), but ran a 200-file docs ingest at 0.625 of the raw
    encode rate instead of 0.944, for a reason not yet found (bench/sync_bench.py,
    bench/ingest_bench.py)."""
    from memsync.index.pgvector import PgvectorIndex

    set_threads = getattr(rt.embedder, "set_threads", None)
    if set_threads is not None and size > 1:
        set_threads(max(1, (os.cpu_count() or 1) // size))
    return [Worker(rt.settings, rt.dsn, rt.embedder,
                   rt.indexes if i == 0 else [PgvectorIndex(rt.dsn) if x.name == "pgvector" else x for x in rt.indexes],
                   follow_model=follow_model)
            for i in range(size)]


def run_pool(pool: Sequence[Worker], stop: threading.Event, *, once: bool = False) -> BatchStats:
    """Run workers on their own threads until they drain (once) or stop is set; the caller's
    thread stays free for signal handlers. Returns their summed totals."""
    errors: list[BaseException] = []

    def body(w: Worker) -> None:
        try:
            w.run_once() if once else w.run(stop)
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


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """`follow_model`, when given, loads an embedder by model name: the worker then follows
    the active model that `memsync reembed` switches to (when MEMSYNC_MODEL is unset)."""

    def __init__(self, settings: Settings, dsn: str, embedder: Embedder,
                 indexes: list[VectorIndex], worker_id: str | None = None,
                 follow_model: Callable[[str], Embedder] | None = None):
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

    # ------------------------------------------------------------ connections

    def _db(self) -> DictConn:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, autocommit=True, vectors=True)
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

    # ------------------------------------------------------------ work

    def drain(self, stop: threading.Event | None = None) -> BatchStats:
        """Process ready items until none is left (or stop is set between batches).

        Two batches are in flight: while one is written to the indexes and acknowledged
        (back stages, on their own thread and connection), the next is chunked and embedded,
        so the model does not wait for index writes."""
        stats = BatchStats()
        self._woken.clear()  # this drain sees everything committed from here on
        self._follow_active_model()
        pipeline = Pipeline(self._db(), self.embedder, self.indexes, self.settings, self.worker_id, self._db_back())
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
                                          self.settings.lease_seconds)
                    if not items:
                        break
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

    def run_once(self) -> BatchStats:
        """Drain and return (for cron and tests); recorded as a sync session like run()."""
        return self.run(threading.Event(), once=True)

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

    def run(self, stop: threading.Event, *, once: bool = False) -> BatchStats:
        session_id = self._start_session(once)
        backoff = 0.5
        status, failure = "completed", None
        try:
            while not stop.is_set():
                try:
                    self.drain(stop)
                    if stop.is_set() or once:
                        break
                    self._wait(stop)
                    backoff = 0.5
                except (psycopg.OperationalError, DatabaseError) as exc:
                    if once:
                        raise
                    log.warning("database connection lost (%s); reconnecting in %.1fs", exc, backoff)
                    self.close()
                    if stop.wait(backoff):
                        break
                    backoff = min(backoff * 2, 30.0)
                    try:
                        self._release_own_claims()
                        self._event(session_id, "error", {"error": str(exc)[:500], "what": "reconnect"})
                    except (psycopg.OperationalError, DatabaseError):
                        self.close()
        except BaseException as exc:
            status, failure = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._end_session(session_id, status, failure)
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
