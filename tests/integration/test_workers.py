"""Workers as processes: a killed worker's items are taken over at once (default lease), a
slow batch keeps its leases, a hung worker loses them, and `run --once` says what is left."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import CLI, count, drain, env_for, wait_for
from qdrant_client import QdrantClient

from memsync.embed import HashingEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.index.qdrant import QdrantIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn, capture, connect, queue
from memsync.storage.db import workers as registry
from memsync.write.worker import Worker

pytestmark = pytest.mark.integration



def assert_each_block_indexed_once(conn: DictConn) -> None:
    blocks = count(conn, "SELECT count(*) AS n FROM agent.blocks")
    assert count(conn, "SELECT count(DISTINCT (source_table, source_id, chunk_key)) AS n FROM agent.blocks") == blocks
    assert count(conn, "SELECT count(*) AS n FROM memsync.pgvector_index") == blocks
    assert count(conn, "SELECT count(*) AS n FROM agent.blocks b WHERE NOT EXISTS (SELECT 1 FROM"
                       " memsync.pgvector_index p WHERE p.block_id = b.id AND p.content_hash = b.content_hash)") == 0


def test_sigkill_then_immediate_restart_leaves_every_block_indexed(conn: DictConn, dsn: str, tmp_path: Path) -> None:
    """The reported scenario: default lease, `run --once` right after the kill drains it all."""
    n = 1200
    conn.execute("INSERT INTO agent.reflections (mode, goals, raw_text) SELECT 'daily',"
                 " jsonb_build_array('goal ' || i), 'Reflection ' || i FROM generate_series(1, %s) i", (n,))
    env = env_for(dsn, MEMSYNC_CLAIM_BATCH="10", MEMSYNC_INDEXES="pgvector,qdrant",
                  MEMSYNC_QDRANT_PATH=str(tmp_path / "q"), MEMSYNC_WORKERS="2")
    proc = subprocess.Popen([*CLI, "run"], env=env)
    try:
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox") < n - 100)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = count(conn, "SELECT count(*) AS n FROM memsync.outbox")
    assert 0 < left < n, "the kill must land mid-burst"
    assert count(conn, "SELECT count(*) AS n FROM memsync.outbox WHERE claimed_until > now()") > 0
    out = subprocess.run([*CLI, "run", "--once", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["drained"] is True
    assert count(conn, "SELECT count(*) AS n FROM memsync.outbox") == 0
    assert count(conn, "SELECT count(*) AS n FROM agent.blocks") == 2 * n
    assert_each_block_indexed_once(conn)
    client = QdrantClient(path=str(tmp_path / "q"))
    try:
        want = {r["id"]: r["content_hash"] for r in conn.execute("SELECT id, content_hash FROM agent.blocks")}
        assert QdrantIndex(client, "memsync_blocks").hashes("hashing-384") == want
    finally:
        client.close()


def test_three_processes_share_a_burst_while_one_is_killed_and_one_terminated(conn: DictConn, dsn: str) -> None:
    n = 3000
    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'fact number ' || i"
                 " FROM generate_series(1, %s) i", (n,))
    env = env_for(dsn, MEMSYNC_CLAIM_BATCH="20")
    procs = [subprocess.Popen([*CLI, "run"], env=env) for _ in range(3)]
    try:
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.workers") == 3)
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox") < n - 300)
        victim = procs[0].pid
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(timeout=60) == 0  # finishes its batch, exits cleanly
        # the killed worker's items are free at once, not after the 300 s lease
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox o JOIN memsync.workers w"
                                     f" ON w.id = o.claimed_by WHERE w.pid = {victim}") == 0, timeout=30)
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox") == 0, timeout=240)
        status = subprocess.run([*CLI, "status", "--json"], env=env, capture_output=True, text=True, timeout=60)
        report = json.loads(status.stdout)
        alive = [w for w in report["workers"] if w["alive"]]
        assert [w["pid"] for w in alive] == [procs[2].pid]
        dead = [w for w in report["workers"] if w["pid"] == victim]
        assert dead and not dead[0]["alive"] and dead[0]["items_held"] == 0
        assert report["backlog"]["pending"] == 0 and report["lag"]["n"] > 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=60)
    assert count(conn, "SELECT count(*) AS n FROM agent.blocks") == n
    assert_each_block_indexed_once(conn)


def test_concurrent_once_processes_process_each_item_once(conn: DictConn, dsn: str) -> None:
    n = 600
    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'fact ' || i"
                 " FROM generate_series(1, %s) i", (n,))
    env = env_for(dsn, MEMSYNC_CLAIM_BATCH="10")
    procs = [subprocess.Popen([*CLI, "run", "--once", "--json"], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(r["acked"] for r in results) == n  # no item processed twice
    assert sum(r["embedded"] for r in results) == n
    assert_each_block_indexed_once(conn)


class SlowEmbedder(HashingEmbedder):
    def __init__(self, delay: float):
        super().__init__(384)
        self.delay = delay

    def encode(self, texts: list[str]) -> Any:
        time.sleep(self.delay)
        return super().encode(texts)


def test_a_batch_slower_than_its_lease_keeps_it(conn: DictConn, dsn: str, settings: Settings) -> None:
    """The heartbeat renews the leases of a batch that makes progress: a second worker
    never takes it over mid-way, so nothing is done twice."""
    doc = "\n\n".join(f"## Part {i}\n\nParagraph {i} of the long document." for i in range(300))
    for t in range(3):
        conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('doc', %s, %s)",
                     (f"Doc {t}", doc))
    s = settings.model_copy(update={"lease_seconds": 2.0})
    slow, other = SlowEmbedder(0.7), HashingEmbedder(384)  # 4 encode slices: ~2.8 s > the lease
    a = Worker(s, dsn, slow, [PgvectorIndex(dsn)])
    thread = threading.Thread(target=a.run_once)
    thread.start()
    try:
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox WHERE claimed_by IS NOT NULL") == 3)
        while thread.is_alive():
            assert drain(dsn, s, other, [PgvectorIndex(dsn)]).items == 0
            time.sleep(0.2)
    finally:
        thread.join()
    assert a.totals.acked == 3 and other.encoded == 0
    assert slow.calls >= 4
    assert count(conn, "SELECT count(*) AS n FROM memsync.outbox") == 0


def test_a_hung_worker_loses_its_items_when_the_lease_runs_out(conn: DictConn, dsn: str, settings: Settings,
                                                              fake_embedder: HashingEmbedder) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'held')")
    with connect(dsn, autocommit=True) as hung:  # alive (holds its lock), never heartbeats
        registry.register(hung, "hung-worker", "host", 1, "daemon")
        assert len(queue.claim(hung, queue.OUTBOX, "hung-worker", 10, 1.0)) == 1
        assert drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)]).items == 0
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox WHERE claimed_until < now()") == 1)
        stats = drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])
        assert stats.acked == 1


def test_run_once_waits_for_live_workers_and_reports_what_is_left(conn: DictConn, dsn: str) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'fact ' || i"
                 " FROM generate_series(1, 5) i")
    env = env_for(dsn)
    holder = connect(dsn, autocommit=True)
    registry.register(holder, "busy-worker", "elsewhere", 4242, "daemon")
    held = queue.claim(holder, queue.OUTBOX, "busy-worker", 2, 300)
    out = subprocess.run([*CLI, "run", "--once", "--no-wait", "--json"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["acked"] == 3 and report["drained"] is False
    assert {(r["reason"], r["claimed_by"]) for r in report["left"]} == {("held_by_live_worker", "busy-worker")}
    text = subprocess.run([*CLI, "run", "--once", "--no-wait"], env=env, capture_output=True, text=True, timeout=120)
    assert text.returncode == 1 and "2 held by live worker" in text.stdout and "busy-worker" in text.stdout
    assert "Traceback" not in text.stderr

    # the holder finishes its items (here: gives them back) while a --once run waits
    threading.Timer(1.0, lambda: (queue.release_worker(holder, queue.OUTBOX, "busy-worker"), holder.close())).start()
    out = subprocess.run([*CLI, "run", "--once", "--wait", "30", "--json"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["acked"] == len(held)
    assert count(conn, "SELECT count(*) AS n FROM memsync.outbox") == 0


def test_run_once_exits_1_when_an_item_was_dead_lettered(conn: DictConn, dsn: str) -> None:
    capture.enqueue(conn, "agent.nonexistent", 1)
    out = subprocess.run([*CLI, "run", "--once", "--json"], env=env_for(dsn, MEMSYNC_MAX_ATTEMPTS="1"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    (left,) = json.loads(out.stdout)["left"]
    assert left["reason"] == "dead_lettered" and "not a registered source" in left["last_error"]
