"""Durability: crashes, restarts, dead indexes, concurrent workers, rebuilds."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import count, drain, wait_for
from qdrant_client import QdrantClient

from memsync.embed import HashingEmbedder
from memsync.index import VectorIndex
from memsync.index.pgvector import PgvectorIndex
from memsync.index.qdrant import QdrantIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn, capture, connect, queue
from memsync.write import ops
from memsync.write.worker import Worker

pytestmark = pytest.mark.integration


def test_postgres_restart_while_daemon_runs(tmp_path: Path) -> None:
    from memsync.storage import embedded, migrate

    home = tmp_path / "pg"
    dsn = embedded.server_uri(home)
    migrate.migrate(dsn)
    settings = Settings.from_env({}, model="hashing-384", poll_seconds=0.2)
    worker = Worker(settings, dsn, HashingEmbedder(), [PgvectorIndex(dsn)])
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        with connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'before restart')")
            wait_for(lambda: count(c, "SELECT count(*) AS n FROM agent.blocks") == 1)
        embedded.restart(home)
        with connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'after restart')")
            # the index write commits just before the ack: wait for both
            wait_for(lambda: count(c, "SELECT count(*) AS n FROM memsync.pgvector_index") == 2
                     and count(c, "SELECT count(*) AS n FROM memsync.outbox") == 0, timeout=60)
    finally:
        stop.set()
        thread.join(timeout=30)
        embedded.stop(home)
    assert not thread.is_alive()
    assert worker.totals.acked == 2


def test_a_dead_index_defers_without_dead_lettering_then_recovers(conn: DictConn, dsn: str, settings: Settings,
                                                                   fake_embedder: HashingEmbedder,
                                                                   qdrant_index: Any) -> None:
    """An index outage is the index's failure, not the row's: items are retried with backoff
    and never dead-lettered, however long it lasts; they sync once the index is back."""
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'remember me')")
    dead = QdrantIndex(QdrantClient(url="http://127.0.0.1:9", timeout=1), "memsync_blocks")
    s = settings.model_copy(update={"max_attempts": 2, "backoff_seconds": 0.05})
    for _ in range(4):  # twice the attempt limit
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox WHERE available_at <= now()") == 1)
        stats = drain(dsn, s, fake_embedder, [PgvectorIndex(dsn), dead])
        assert (stats.deferred, stats.failed, stats.dead, stats.acked) == (1, 0, 0, 0)
    row = conn.execute("SELECT attempts, deferrals, last_error, dead_at FROM memsync.outbox").fetchone()
    assert row is not None and row["dead_at"] is None and row["attempts"] == 0 and row["deferrals"] == 4
    assert "qdrant" in row["last_error"]
    report = ops.status(conn, fake_embedder.model_id, [PgvectorIndex(dsn)])
    assert report["backlog"]["dead"] == 0 and report["backlog"]["pending"] == 1

    wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox WHERE available_at <= now()") == 1)
    stats = drain(dsn, s, fake_embedder, [PgvectorIndex(dsn), qdrant_index])
    assert stats.acked == 1
    assert qdrant_index.count(fake_embedder.model_id) == 1
    assert count(conn, "SELECT count(*) AS n FROM memsync.outbox") == 0


def test_retry_requeues_dead_letters(conn: DictConn, dsn: str, settings: Settings,
                                     fake_embedder: HashingEmbedder) -> None:
    capture.enqueue(conn, "agent.nonexistent", 7)
    s = settings.model_copy(update={"max_attempts": 1})
    assert drain(dsn, s, fake_embedder, [PgvectorIndex(dsn)]).dead == 1
    # a dead item is not picked up again until someone asks
    assert drain(dsn, s, fake_embedder, [PgvectorIndex(dsn)]).items == 0
    result = CliRunner().invoke(__import__("memsync.faces.cli", fromlist=["main"]).main, ["retry"],
                                env={"MEMSYNC_DSN": dsn})
    assert result.exit_code == 0 and "requeued 1" in result.output
    row = conn.execute("SELECT attempts, dead_at FROM memsync.outbox").fetchone()
    assert row is not None and row["dead_at"] is None and row["attempts"] == 0


def test_unknown_source_is_dead_lettered_with_a_clear_error(conn: DictConn, dsn: str, settings: Settings,
                                                            fake_embedder: HashingEmbedder) -> None:
    capture.enqueue(conn, "agent.nonexistent", 7)
    s = settings.model_copy(update={"max_attempts": 1})
    stats = drain(dsn, s, fake_embedder, [PgvectorIndex(dsn)])
    assert stats.dead == 1
    (dl,) = queue.dead_letters(conn, queue.OUTBOX)
    assert "agent.nonexistent is not a registered source" in dl["last_error"]


def test_two_workers_never_process_an_item_twice(conn: DictConn, dsn: str, settings: Settings) -> None:
    n = 600
    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'fact ' || i"
                 " FROM generate_series(1, %s) i", (n,))
    s = settings.model_copy(update={"claim_batch": 7})
    workers = [Worker(s, dsn, HashingEmbedder(), [PgvectorIndex(dsn)]) for _ in range(2)]
    threads = [threading.Thread(target=w.run_once) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [k for w in workers for k in w.totals.synced]
    assert len(keys) == n and len(set(keys)) == n
    assert sum(w.totals.embedded for w in workers) == n
    assert count(conn, "SELECT count(*) AS n FROM memsync.pgvector_index") == n


def test_reindex_rebuilds_qdrant_from_postgres_without_the_model(conn: DictConn, dsn: str, settings: Settings,
                                                                 fake_embedder: HashingEmbedder,
                                                                 qdrant_index: Any) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'fact ' || i"
                 " FROM generate_series(1, 50) i")
    drain(dsn, settings, fake_embedder, [qdrant_index])
    model = fake_embedder.model_id
    qdrant_index._client.delete_collection(qdrant_index.collection(model))
    qdrant_index._ready.clear()
    calls = fake_embedder.calls
    written = ops.reindex(conn, model, fake_embedder.dim, qdrant_index)
    assert written == 50 and fake_embedder.calls == calls
    want = {r["id"]: r["content_hash"] for r in conn.execute("SELECT id, content_hash FROM agent.blocks")}
    assert qdrant_index.hashes(model) == want


def test_verify_finds_and_repairs_drift(conn: DictConn, dsn: str, settings: Settings,
                                        fake_embedder: HashingEmbedder, qdrant_index: Any) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'fact ' || i"
                 " FROM generate_series(1, 10) i")
    pg = PgvectorIndex(dsn)
    indexes: list[VectorIndex] = [pg, qdrant_index]
    drain(dsn, settings, fake_embedder, indexes)
    model = fake_embedder.model_id
    for idx in indexes:
        assert ops.verify(conn, model, idx)["missing"] == 0
    conn.execute("DELETE FROM memsync.pgvector_index WHERE block_id = (SELECT min(id) FROM agent.blocks)")
    conn.execute("SET memsync.origin = 'sync'")  # drop a block behind the worker's back
    conn.execute("DELETE FROM agent.blocks WHERE id = (SELECT max(id) FROM agent.blocks)")
    conn.execute("RESET memsync.origin")
    rp = ops.verify(conn, model, pg)
    rq = ops.verify(conn, model, qdrant_index)
    assert (rp["missing"], rp["orphaned"]) == (1, 0)  # pgvector rows cascade with their block
    assert (rq["missing"], rq["orphaned"]) == (0, 1)
    for idx in indexes:
        assert ops.verify(conn, model, idx, repair=True)["repaired"]
        again = ops.verify(conn, model, idx)
        assert (again["missing"], again["orphaned"], again["stale"]) == (0, 0, 0)


def test_reembed_builds_a_second_model_side_by_side_and_switches(conn: DictConn, dsn: str, settings: Settings,
                                                                 fake_embedder: HashingEmbedder,
                                                                 qdrant_index: Any) -> None:
    from memsync import runtime

    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'fact ' || i"
                 " FROM generate_series(1, 30) i")
    pg = PgvectorIndex(dsn)
    drain(dsn, settings, fake_embedder, [pg, qdrant_index])
    new = HashingEmbedder(256)
    result = ops.reembed(conn, new, [pg, qdrant_index], batch=7)
    assert result["embedded"] == 30 and result["points"] == {"pgvector": 30, "qdrant": 30}
    assert ops.reembed(conn, new, [pg, qdrant_index])["embedded"] == 0  # resumable: nothing left
    for model in ("hashing-384", "hashing-256"):  # side by side
        assert pg.count(model) == 30 and qdrant_index.count(model) == 30
    assert ops.active_model(conn) == "hashing-256"
    unset = Settings.from_env({"MEMSYNC_DSN": dsn})
    assert runtime.build(unset, indexes=[]).settings.model == "hashing-256"
    pinned = Settings.from_env({"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384"})
    assert runtime.build(pinned, indexes=[]).settings.model == "hashing-384"


def test_a_daemon_follows_the_model_reembed_switches_to(conn: DictConn, dsn: str, settings: Settings,
                                                        fake_embedder: HashingEmbedder) -> None:
    def add(n: int, tag: str) -> None:
        conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', %s || ' fact ' || i"
                     " FROM generate_series(1, %s) i", (tag, n))

    new = HashingEmbedder(256)
    loads: list[str] = []

    def load(model: str) -> HashingEmbedder:
        loads.append(model)
        return new

    pg = PgvectorIndex(dsn)
    daemon = Worker(settings, dsn, fake_embedder, [pg], follow_model=load)
    add(10, "first")
    daemon.run_once()
    ops.reembed(conn, new, [PgvectorIndex(dsn)])
    # a worker that does not follow (say, MEMSYNC_MODEL pinned) keeps writing the old model only
    add(5, "meanwhile")
    drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])
    assert (pg.count("hashing-384"), pg.count("hashing-256")) == (15, 10)

    add(1, "after")
    acked = daemon.totals.acked
    daemon.run_once()  # switches, catches up on the 5, then syncs the new row with the new model
    assert loads == ["hashing-256"] and daemon.embedder is new
    assert daemon.totals.acked - acked == 1 and new.encoded == 10 + 5 + 1
    assert (pg.count("hashing-384"), pg.count("hashing-256")) == (15, 16)
    daemon.run_once()
    assert loads == ["hashing-256"]  # loaded once


def test_the_library_api_follows_the_model_reembed_switches_to(conn: DictConn, dsn: str, settings: Settings,
                                                               fake_embedder: HashingEmbedder) -> None:
    from memsync.app import Memsync
    from memsync.storage.db import audit

    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'the invoice run is on Fridays')")
    drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])
    audit.set_state(conn, "active_model", {"model": fake_embedder.model_id})
    with Memsync(Settings.from_env({"MEMSYNC_DSN": dsn})) as app:  # no MEMSYNC_MODEL: follows the active one
        assert app.search("invoice run", mode="dense")
        assert app.runtime.embedder.model_id == "hashing-384"
        ops.reembed(conn, HashingEmbedder(256), [PgvectorIndex(dsn)])
        hits = app.search("invoice run", mode="dense")
        assert app.runtime.embedder.model_id == "hashing-256" and hits


def test_a_pool_hands_a_workers_failure_to_its_caller(settings: Settings, fake_embedder: HashingEmbedder) -> None:
    from memsync.errors import DatabaseError
    from memsync.write.worker import run_pool

    dead = "host=/nonexistent-memsync dbname=x connect_timeout=1"
    pool = [Worker(settings, dead, fake_embedder, []) for _ in range(2)]
    with pytest.raises(DatabaseError, match="cannot connect"):
        run_pool(pool, threading.Event(), once=True)


def test_in_a_deadlock_with_a_user_the_worker_session_is_undone(dsn: str) -> None:
    """A user's cascading delete and the worker's index write can wait on each other; the
    worker's sessions check for deadlocks first, so Postgres undoes the worker's transaction
    (redone at once, no attempt counted) and the user's write goes through."""
    from memsync.errors import transient
    from memsync.storage.db import yield_in_deadlocks

    with connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE public.dl (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO public.dl VALUES (1, 0), (2, 0)")
    user, worker = connect(dsn), connect(dsn)
    yield_in_deadlocks(worker)
    try:
        user.execute("UPDATE public.dl SET v = 1 WHERE id = 1")
        worker.execute("UPDATE public.dl SET v = 2 WHERE id = 2")
        outcome: dict[str, BaseException | None] = {}
        waiting = threading.Event()

        def as_user() -> None:
            waiting.set()
            try:
                user.execute("UPDATE public.dl SET v = 1 WHERE id = 2")
                user.commit()
                outcome["user"] = None
            except Exception as exc:
                outcome["user"] = exc

        t = threading.Thread(target=as_user)
        t.start()
        waiting.wait()
        deadline = time.monotonic() + 10
        with connect(dsn, autocommit=True) as probe:  # the user's update is blocked before the worker closes the cycle
            while time.monotonic() < deadline and not probe.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE public.dl%'"
            ).fetchone():
                time.sleep(0.01)
        try:
            worker.execute("UPDATE public.dl SET v = 2 WHERE id = 1")
            outcome["worker"] = None
        except Exception as exc:
            outcome["worker"] = exc
            worker.rollback()
        t.join(timeout=30)
        assert outcome["user"] is None, outcome
        assert outcome["worker"] is not None and transient(outcome["worker"]), outcome
    finally:
        user.close()
        worker.close()
