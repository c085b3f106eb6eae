"""The mirror worker: drains one mirror's queue (memsync.mirror_queue) beside the sync
workers of `memsync run`, with the outbox's rules: a row that fails is retried with backoff
and dead-lettered after MEMSYNC_MAX_ATTEMPTS, it fails alone; when the mirror itself is down
(its probe fails) the batch is deferred without counting attempts, so an outage only delays
it. Its queue is separate from the outbox: a slow or dead mirror never holds back search."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from memsync.errors import IndexUnavailable, MemsyncError, connection_failed
from memsync.settings import Settings
from memsync.storage.db import DictConn, capture, connect
from memsync.storage.db import mirror as q

log = logging.getLogger("memsync.mirror")


@dataclass
class MirrorStats:
    applied: int = 0
    failed: int = 0
    dead: int = 0
    deferred: int = 0


class MirrorWorker:
    def __init__(self, settings: Settings, dsn: str, mirror: Any, worker_id: str | None = None):
        self.settings = settings
        self.dsn = dsn
        self.mirror = mirror
        self.worker_id = worker_id or f"{mirror.name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stats = MirrorStats()

    def _connect(self) -> DictConn:
        conn = connect(self.dsn, autocommit=True)
        q.enable(conn, self.mirror.name)
        # claims of an earlier connection of this worker are not in flight any more
        conn.execute("UPDATE memsync.mirror_queue SET claimed_by = NULL, claimed_until = NULL"
                     " WHERE claimed_by = %s", (self.worker_id,))
        capture.listen(conn, q.CHANNEL)
        return conn

    def run(self, stop: threading.Event, *, once: bool = False) -> MirrorStats:
        conn: DictConn | None = None
        backoff = max(self.settings.backoff_seconds, 0.5)
        while not stop.is_set():
            try:
                if conn is None:
                    conn = self._connect()
                items = q.claim(conn, self.mirror.name, self.worker_id, self.settings.claim_batch,
                                self.settings.lease_seconds, self.settings.max_attempts)
                if not items:
                    if once:
                        break
                    for _ in conn.notifies(timeout=self.settings.poll_seconds, stop_after=1):
                        pass
                    continue
                self._batch(conn, items)
            except Exception as exc:
                if not connection_failed(exc):
                    raise
                log.warning("%s mirror: database connection lost (%s); reconnecting", self.mirror.name, exc)
                if conn is not None:
                    conn.close()
                conn = None
                stop.wait(backoff)
        if conn is not None:
            conn.close()
        return self.stats

    def _batch(self, conn: DictConn, items: list[q.Item]) -> None:
        for n, item in enumerate(items):
            try:
                outcome = self.mirror.apply(conn, item)
            except Exception as exc:
                if connection_failed(exc):
                    raise
                try:
                    self.mirror.probe()
                except IndexUnavailable as down:  # the mirror is down, not the row at fault
                    q.defer(conn, items[n:], self.worker_id, str(down), self.settings.backoff_seconds)
                    self.stats.deferred += len(items) - n
                    log.warning("%s mirror down, %d items deferred: %s", self.mirror.name, len(items) - n, down)
                    return
                why = str(exc) if isinstance(exc, MemsyncError) else f"{type(exc).__name__}: {exc}"
                dead = q.fail(conn, item, self.worker_id, why, self.settings.max_attempts,
                              self.settings.backoff_seconds)
                self.stats.failed += 1
                self.stats.dead += dead
                log.warning("%s mirror: %s#%d failed%s: %s", self.mirror.name, item.source_table, item.source_id,
                            " (dead-lettered)" if dead else "", why[:300])
                continue
            q.ack(conn, item, self.worker_id)
            self.stats.applied += 1
            log.debug("%s mirror: %s#%d %s", self.mirror.name, item.source_table, item.source_id, outcome)


def start(settings: Settings, dsn: str, stop: threading.Event, *, once: bool = False) -> list[threading.Thread]:
    """One thread per configured mirror (MEMSYNC_INDEXES), for `memsync run`."""
    from memsync.index.registry import MIRRORS

    threads = []
    for name in settings.mirrors:
        worker = MirrorWorker(settings, dsn, MIRRORS[name].open(settings))

        def body(w: MirrorWorker = worker) -> None:
            started = time.perf_counter()
            try:
                s = w.run(stop, once=once)
                log.info("%s mirror %s: %d applied, %d failed, %d dead-lettered, %d deferred (%.1fs)",
                         w.mirror.name, "drained" if once else "stopped", s.applied, s.failed, s.dead, s.deferred,
                         time.perf_counter() - started)
            except Exception as exc:
                log.error("%s mirror stopped: %s", w.mirror.name, exc)

        t = threading.Thread(target=body, name=f"memsync-mirror-{name}", daemon=True)
        t.start()
        threads.append(t)
    return threads
