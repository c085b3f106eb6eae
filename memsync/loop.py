"""The worker loop every queue shares (the outbox's index sync, each mirror), after
procrastinate's worker: drain the queue, then wait for a NOTIFY, the poll interval or a stop
request, and drain again. NOTIFY is only a wake-up; the queue is the record, so a lost
notification costs at most one poll interval. Lost connections are re-opened with backoff.

A worker registers in memsync.workers and holds a liveness lock on the connection that
claims, so its claims are free the moment it dies; a heartbeat thread marks it alive and,
while its batch makes progress, renews its leases. `supervise` runs a loop on a thread of
`memsync run` and starts it again, with backoff, when it crashes."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from memsync.errors import DatabaseError, connection_failed, misconfigured, redo
from memsync.settings import Settings
from memsync.storage.db import DictConn, capture, connect, queue
from memsync.storage.db import workers as registry

log = logging.getLogger("memsync.worker")


def heartbeat_seconds(lease_seconds: float) -> float:
    """How often a worker marks itself alive: a quarter of the lease, 0.5 to 10 s."""
    return max(0.5, min(10.0, lease_seconds / 4))


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class QueueWorker:
    """One loop over one queue; subclasses say what a drain does (`drain`) and may hook the
    start and end of a run (`started`, `finished`) and a reconnect (`reconnected`)."""

    queue: queue.Queue = queue.OUTBOX
    channel: str = capture.CHANNEL  # the NOTIFY that wakes the loop

    def __init__(self, settings: Settings, dsn: str, worker_id: str | None = None, *, restarts: int = 0):
        self.settings = settings
        self.dsn = dsn
        self.worker_id = worker_id or new_worker_id()
        self.restarts = restarts  # how often its loop crashed and was started again (shown by status, health)
        self._conn: DictConn | None = None
        self._listener: DictConn | None = None
        self._woken = threading.Event()
        self._beat: DictConn | None = None  # the heartbeat thread's own connection
        self._lock_key: int | None = None
        self._mode = "daemon"
        self._progress_at = time.monotonic()

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
                                                   self._mode, self.queue.name, self.restarts)
                self.connected(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def connected(self, conn: DictConn) -> None:
        """A new claiming connection is registered (a hook)."""

    def _listen(self) -> DictConn:
        if self._listener is None or self._listener.closed:
            # this connection runs nothing after LISTEN, so a wake-up sent during a drain waits
            # in its socket (or psycopg's backlog) and the next notifies() returns it at once
            self._listener = connect(self.dsn, autocommit=True)
            capture.listen(self._listener, self.channel)
            self._woken.set()  # whatever was committed before LISTEN took effect: drain once more
        return self._listener

    def close(self) -> None:
        for conn in (self._conn, self._listener):
            if conn is not None and not conn.closed:
                conn.close()
        self._conn = self._listener = None

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

    def drain(self, stop: threading.Event | None = None) -> Any:
        """Process ready items until none is left (or stop is set between batches)."""
        raise NotImplementedError

    def drain_once(self, stop: threading.Event, wait_seconds: float) -> None:
        """Once mode: what a single run drains (by default: everything ready now)."""
        self.drain(stop)

    def started(self, once: bool) -> None:
        """The run begins (a hook)."""

    def finished(self, status: str, failure: str | None) -> None:
        """The run ends, 'completed' or 'failed' (a hook)."""

    def reconnected(self, exc: BaseException) -> None:
        """The loop reconnected after `exc` (a hook)."""

    def idle(self) -> None:
        """The daemon drained what was ready and is about to wait for more (a hook)."""

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

    def run(self, stop: threading.Event, *, once: bool = False, wait_seconds: float = 0.0) -> Any:
        """Drain until stop is set (or, once, until drained); returns `result()`."""
        self._mode = "once" if once else "daemon"
        self._db()
        beating = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(beating,), daemon=True,
                                 name=f"memsync-heartbeat-{self.worker_id}")
        heart.start()
        self.started(once)
        backoff = 0.5
        status, failure = "completed", None
        try:
            while not stop.is_set():
                try:
                    if once:
                        self.drain_once(stop, wait_seconds)
                        break
                    self._woken.clear()  # this drain sees everything committed from here on
                    self.drain(stop)
                    if stop.is_set():
                        break
                    self.idle()
                    self._wait(stop)
                    backoff = 0.5
                except (psycopg.Error, DatabaseError) as exc:
                    if not redo(exc) or (once and connection_failed(exc)):
                        raise
                    log.warning("%s: %s (%s); redoing in %.1fs", self.queue.name,
                                "database connection lost" if connection_failed(exc) else "transaction conflict",
                                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                                backoff)
                    self.close()
                    if stop.wait(backoff):
                        break
                    backoff = min(backoff * 2, 30.0)
                    try:
                        # nothing of ours is in flight after a reconnect: hand our claims back
                        # now instead of letting them wait for the lease to run out
                        queue.release_worker(self._db(), self.queue, self.worker_id)
                        self.reconnected(exc)
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
            self.finished(status, failure)
            self._retire()
            self.close()
        return self.result()

    def result(self) -> Any:
        """What run() returns (the totals of a subclass)."""
        return None


MAX_RESTART_SECONDS = 60.0


def supervise(name: str, make: Callable[[int], QueueWorker], stop: threading.Event, *, once: bool = False,
              wait_seconds: float = 0.0, report: Callable[[QueueWorker], None] | None = None,
              fatal: Callable[[BaseException], None] | None = None) -> threading.Thread:
    """Run a worker's loop on its own thread. In daemon mode a crash is logged and the loop
    started again, backing off from 1 s up to a minute, so a bug or an odd row never silently
    ends a mirror while `memsync run` carries on. Each start is a new worker (`make(n)`, n the
    restarts so far, in the registry): the crashed one retired, so what it held is free at
    once, with the attempt it counted (an item that crashes every loop is dead-lettered).
    A misconfiguration (errors.misconfigured) or any error in once mode ends the loop: handed
    to `fatal` when given, else logged. `report` gets each finished worker."""

    def body() -> None:
        backoff, restarts = 1.0, 0
        while not stop.is_set():
            worker: QueueWorker | None = None
            started = time.monotonic()
            try:
                worker = make(restarts)
                worker.run(stop, once=once, wait_seconds=wait_seconds)
                return
            except Exception as exc:
                if once or misconfigured(exc):
                    if fatal is None:
                        log.error("%s stopped: %s", name, exc)
                    else:  # the caller reports it
                        fatal(exc)
                    return
                if time.monotonic() - started > 10 * MAX_RESTART_SECONDS:
                    backoff = 1.0  # it ran a good while: a new crash starts the backoff over
                log.error("%s crashed (%s: %s); restarting in %.0fs", name, type(exc).__name__, exc, backoff)
                stop.wait(backoff)
                backoff, restarts = min(backoff * 2, MAX_RESTART_SECONDS), restarts + 1
            finally:
                if report is not None and worker is not None:
                    report(worker)

    thread = threading.Thread(target=body, name=f"memsync-{name.replace(' ', '-')}", daemon=True)
    thread.start()
    return thread
