"""The mirror worker: the shared queue loop (memsync/loop.py) over one mirror's queue
(memsync.mirror_queue), beside the sync workers of `memsync run`, with the outbox's rules (the
one queue, memsync/storage/db/queue.py): a row that fails is retried with backoff and
dead-lettered after MEMSYNC_MAX_ATTEMPTS, it fails alone; when the mirror itself is down (its
probe fails) the batch is deferred without counting attempts, so an outage only delays it; a
killed worker's items are taken over at once. Its queue is separate from the outbox: a slow
or dead mirror never holds back search."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from memsync.errors import IndexUnavailable, MemsyncError, connection_failed
from memsync.loop import QueueWorker, supervise
from memsync.settings import Settings
from memsync.storage.db import DictConn, queue
from memsync.storage.db import mirror as q

log = logging.getLogger("memsync.mirror")


@dataclass
class MirrorStats:
    applied: int = 0
    failed: int = 0
    dead: int = 0
    deferred: int = 0


class MirrorWorker(QueueWorker):
    channel = q.CHANNEL

    def __init__(self, settings: Settings, dsn: str, mirror: Any, worker_id: str | None = None, *,
                 restarts: int = 0):
        super().__init__(settings, dsn, worker_id, restarts=restarts)
        self.mirror = mirror
        self.queue = queue.mirror(mirror.name)
        self.stats = MirrorStats()

    def connected(self, conn: DictConn) -> None:
        q.enable(conn, self.mirror.name)

    def drain(self, stop: threading.Event | None = None) -> MirrorStats:
        while not (stop and stop.is_set()):
            items = queue.claim(self._db(), self.queue, self.worker_id, self.settings.claim_batch,
                                self.settings.lease_seconds, self.settings.max_attempts)
            if not items:
                break
            self.progress()
            self._batch(self._db(), items)
        return self.stats

    def _batch(self, conn: DictConn, items: list[queue.Item]) -> None:
        for n, item in enumerate(items):
            try:
                outcome = self.mirror.apply(conn, item)
            except Exception as exc:
                if connection_failed(exc):
                    raise
                try:
                    self.mirror.probe()
                except IndexUnavailable as down:  # the mirror is down, not the row at fault
                    queue.defer(conn, self.queue, items[n:], self.worker_id, str(down),
                                self.settings.backoff_seconds)
                    self.stats.deferred += len(items) - n
                    log.warning("%s mirror down, %d items deferred: %s", self.mirror.name, len(items) - n, down)
                    return
                why = str(exc) if isinstance(exc, MemsyncError) else f"{type(exc).__name__}: {exc}"
                dead = queue.fail(conn, self.queue, item, self.worker_id, why, self.settings.max_attempts,
                                  self.settings.backoff_seconds)
                self.stats.failed += 1
                self.stats.dead += dead
                log.warning("%s mirror: %s#%s failed%s: %s", self.mirror.name, item.source_table, item.source_id,
                            " (dead-lettered)" if dead else "", why[:300])
                continue
            queue.ack(conn, self.queue, item, self.worker_id)
            self.progress()
            self.stats.applied += 1
            log.debug("%s mirror: %s#%s %s", self.mirror.name, item.source_table, item.source_id, outcome)


def start(settings: Settings, dsn: str, stop: threading.Event, *, once: bool = False) -> list[threading.Thread]:
    """One supervised loop per configured mirror (MEMSYNC_INDEXES), for `memsync run`: a
    loop that crashes is logged and started again with backoff, and shows in the worker
    registry (status, health) with its restarts."""
    from memsync.index.registry import MIRRORS

    threads = []
    for name in settings.mirrors:
        started = time.perf_counter()

        def make(restarts: int, name: str = name) -> MirrorWorker:
            return MirrorWorker(settings, dsn, MIRRORS[name].open(settings), restarts=restarts)

        def report(w: QueueWorker, t0: float = started) -> None:
            assert isinstance(w, MirrorWorker)
            s = w.stats
            log.info("%s mirror %s: %d applied, %d failed, %d dead-lettered, %d deferred (%.1fs)",
                     w.mirror.name, "drained" if once else "stopped", s.applied, s.failed, s.dead, s.deferred,
                     time.perf_counter() - t0)

        threads.append(supervise(f"mirror {name}", make, stop, once=once, report=report))
    return threads
