"""The one queue (memsync/storage/db/queue.py): every rule tested against both of its tables,
the outbox and a mirror's part of memsync.mirror_queue. Then the loops that drain them: a
mirror worker registers like a sync worker, a SIGKILLed worker's items (mirror items too) are
claimed by a live worker at once, and a crashed mirror loop is restarted and shown by health."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import CLI, count, env_for, wait_for

from memsync.errors import IndexUnavailable
from memsync.loop import supervise
from memsync.mirror.worker import MirrorWorker
from memsync.settings import Settings
from memsync.storage.db import DictConn, connect, queue
from memsync.storage.db import workers as registry
from memsync.write import health

pytestmark = pytest.mark.integration

LEASE = 300.0  # the default: nothing below waits for a lease to run out


@pytest.fixture(params=["outbox", "mirror"])
def q(request: pytest.FixtureRequest, conn: DictConn) -> queue.Queue:
    if request.param == "outbox":
        return queue.OUTBOX
    conn.execute("INSERT INTO memsync.mirrors (name) VALUES ('m1')")
    return queue.mirror("m1")


def put(conn: DictConn, q: queue.Queue, source_id: int) -> None:
    """Queue a row: the outbox through its enqueue function, a mirror's queue directly
    (its triggers only fire for mirrored tables)."""
    if q.mirror is None:
        conn.execute("SELECT memsync.enqueue('agent.facts', %s, 'insert')", (source_id,))
    else:
        conn.execute("INSERT INTO memsync.mirror_queue (mirror, source_table, source_id, op)"
                     " VALUES (%s, 'agent.facts', %s, 'insert')", (q.mirror, source_id))


def row(conn: DictConn, q: queue.Queue, item_id: int) -> dict[str, Any] | None:
    return conn.execute(f"SELECT * FROM {q.table} WHERE id = %s", (item_id,)).fetchone()


def newer_change(conn: DictConn, q: queue.Queue, item_id: int) -> None:
    conn.execute(f"UPDATE {q.table} SET version = version + 1 WHERE id = %s", (item_id,))


def test_claim_and_ack(conn: DictConn, q: queue.Queue) -> None:
    registry.register(conn, "w1", "host", 1, "daemon", q.name)  # alive: its claims are its own
    for i in (1, 2, 3):
        put(conn, q, i)
    items = queue.claim(conn, q, "w1", 2, LEASE)
    assert [i.source_id for i in items] == [1, 2] and all(i.attempts == 1 for i in items)
    assert queue.claim(conn, q, "w2", 10, LEASE)[0].source_id == 3  # held ones are skipped
    assert queue.ack_many(conn, q, items, "w1") == 2
    assert queue.backlog(conn, q)["pending"] == 1


def test_a_newer_change_is_redone_not_acked_nor_failed(conn: DictConn, q: queue.Queue) -> None:
    put(conn, q, 1)
    put(conn, q, 2)
    a, b = queue.claim(conn, q, "w1", 10, LEASE)
    newer_change(conn, q, a.id)
    newer_change(conn, q, b.id)
    assert queue.ack(conn, q, a, "w1") is False
    assert queue.fail(conn, q, b, "w1", "boom", max_attempts=1, backoff=0.0) is False
    for item in (a, b):
        r = row(conn, q, item.id)
        assert r is not None and r["claimed_by"] is None and r["attempts"] == 0 and r["dead_at"] is None


def test_failures_back_off_then_dead_letter_and_retry(conn: DictConn, q: queue.Queue) -> None:
    put(conn, q, 1)
    (item,) = queue.claim(conn, q, "w1", 10, LEASE, max_attempts=2)
    assert queue.fail(conn, q, item, "w1", "first", max_attempts=2, backoff=3600.0) is False
    assert queue.claim(conn, q, "w1", 10, LEASE, max_attempts=2) == []  # backing off
    conn.execute(f"UPDATE {q.table} SET available_at = now() WHERE id = %s", (item.id,))
    (again,) = queue.claim(conn, q, "w1", 10, LEASE, max_attempts=2)
    assert again.attempts == 2
    assert queue.fail(conn, q, again, "w1", "second", max_attempts=2, backoff=0.0) is True
    (dead,) = queue.dead_letters(conn, q)
    assert dead["last_error"] == "second" and queue.backlog(conn, q)["dead"] == 1
    assert queue.retry_dead(conn, q) == 1
    assert queue.claim(conn, q, "w1", 10, LEASE)[0].attempts == 1


def test_an_outage_defers_with_the_attempt_refunded(conn: DictConn, q: queue.Queue) -> None:
    put(conn, q, 1)
    (item,) = queue.claim(conn, q, "w1", 10, LEASE)
    queue.defer(conn, q, [item], "w1", "target down", backoff=0.0)
    r = row(conn, q, item.id)
    assert r is not None and r["attempts"] == 0 and r["deferrals"] == 1 and r["claimed_by"] is None
    assert r["available_at"] > r["first_enqueued_at"]  # backs off (at least 0.1 s)


def test_queues_are_apart(conn: DictConn, q: queue.Queue) -> None:
    """A claim of one queue never takes another's items (two mirrors, or a mirror and the outbox)."""
    conn.execute("INSERT INTO memsync.mirrors (name) VALUES ('other')")
    other = queue.mirror("other")
    put(conn, other, 1)
    put(conn, q, 2)
    assert [i.source_id for i in queue.claim(conn, q, "w1", 10, LEASE)] == [2]
    assert [i.source_id for i in queue.claim(conn, other, "w1", 10, LEASE)] == [1]


def test_an_item_that_kills_its_worker_reaches_the_dead_letters(conn: DictConn, q: queue.Queue, dsn: str) -> None:
    put(conn, q, 1)
    with connect(dsn, autocommit=True) as doomed:
        registry.register(doomed, "doomed", "host", 1, "daemon", q.name)
        assert len(queue.claim(doomed, q, "doomed", 10, LEASE, max_attempts=1)) == 1
    # its connection (and liveness lock) is gone: at the limit, abandoned means dead-lettered
    assert queue.claim(conn, q, "w2", 10, LEASE, max_attempts=1) == []
    (dead,) = queue.dead_letters(conn, q)
    assert "abandoned by doomed on attempt 1" in dead["last_error"]


HOLDER = """
import sys, time
from memsync.storage.db import connect, queue
from memsync.storage.db import workers as registry
dsn, mirror = sys.argv[1], sys.argv[2]
q = queue.mirror(mirror) if mirror else queue.OUTBOX
conn = connect(dsn, autocommit=True)
registry.register(conn, "holder", "host", 1, "daemon", q.name)
print(len(queue.claim(conn, q, "holder", 10, 300.0)), flush=True)
time.sleep(600)
"""


def test_a_sigkilled_workers_items_are_claimed_by_a_live_worker_at_once(conn: DictConn, q: queue.Queue,
                                                                         dsn: str) -> None:
    for i in (1, 2, 3):
        put(conn, q, i)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, dsn, q.mirror or ""], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "3"
        assert queue.claim(conn, q, "live", 10, LEASE) == []  # held by a live worker, lease 300 s
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # the server notices the dead backend within moments, not after the lease
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.workers"
                                     " WHERE id IN (SELECT memsync.live_workers())") == 0, timeout=30)
        assert len(queue.claim(conn, q, "live", 10, LEASE)) == 3
    finally:
        if proc.poll() is None:
            proc.kill()


# ------------------------------------------------------------------ the mirror loop


class FlakyMirror:
    """A mirror whose probe crashes the loop on the first failure (a bug, not an outage),
    then works: to see the supervisor restart the loop."""

    name = "flaky"

    def __init__(self, crashes: int) -> None:
        self.crashes = crashes
        self.applied: list[int | None] = []

    def apply(self, conn: DictConn, item: queue.Item) -> str:
        if self.crashes:
            raise ValueError("cannot apply")
        self.applied.append(item.source_id)
        return "applied"

    def probe(self) -> None:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("probe bug")
        raise IndexUnavailable("not reached")


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_crashed_mirror_loop_is_restarted_and_health_shows_it(conn: DictConn, dsn: str, stop: threading.Event,
                                                                 settings: Settings) -> None:
    conn.execute("INSERT INTO memsync.mirrors (name) VALUES ('flaky')")
    put(conn, queue.mirror("flaky"), 7)
    mirror = FlakyMirror(crashes=1)
    made: list[MirrorWorker] = []

    def make(restarts: int) -> MirrorWorker:
        made.append(MirrorWorker(settings, dsn, mirror, restarts=restarts))
        return made[-1]

    thread = supervise("mirror flaky", make, stop)
    wait_for(lambda: mirror.applied == [7], timeout=30)  # the crashed loop's claim was free at once
    assert len(made) == 2 and thread.is_alive()
    loops = conn.execute("SELECT id, restarts, stopped_at IS NOT NULL AS stopped FROM memsync.workers"
                         " WHERE queue = 'mirror flaky' ORDER BY restarts").fetchall()
    assert [(r["id"], r["restarts"], r["stopped"]) for r in loops] == [
        (made[0].worker_id, 0, True), (made[1].worker_id, 1, False)]

    # health judges the mirror's queue and, while sync workers run, that its loop is alive
    s = settings.model_copy(update={"dsn": dsn, "indexes": ("pgvector", "zep"), "zep_url": "http://127.0.0.1:9"})
    with connect(dsn, autocommit=True) as sync_worker:
        registry.register(sync_worker, "sync-1", "host", 1, "daemon")
        registry.heartbeat(sync_worker, "sync-1", None)
        facts = health.gather(s)
    checks = {c.name: c for c in health.evaluate(facts, s)}
    assert checks["mirror:zep"].ok and not checks["loop:mirror zep"].ok  # no zep loop runs
    assert facts.live is not None and facts.live["mirror flaky"] == {"workers": 1, "restarts": 1}
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert count(conn, "SELECT count(*) AS n FROM memsync.workers WHERE queue = 'mirror flaky'"
                       " AND stopped_at IS NULL") == 0  # the loop retired itself


def test_a_misconfiguration_ends_memsync_run_instead_of_restarting_forever(empty_dsn: str) -> None:
    """A crash is restarted; a database that was never migrated is not a crash a restart can
    mend: `memsync run` says what to do and exits 1 on its own."""
    out = subprocess.run([*CLI, "run"], env=env_for(empty_dsn), capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "run `memsync db migrate`" in out.stderr and "Traceback" not in out.stderr
    assert "restarting" not in out.stderr
