"""Soak (bounded, about a minute): 10,000 source rows of every kind with concurrent edits,
deletes and a TRUNCATE while two `memsync run` processes sync them; one is SIGKILLed and
restarted, and PostgreSQL restarts mid-way. At the end verify finds nothing missing,
orphaned or stale and the backlog is empty. A second test takes Qdrant away mid-burst.
The deterministic embedder is enough here: this tests plumbing, not semantics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import count
from qdrant_client import QdrantClient

from memsync.embed import HashingEmbedder
from memsync.index import VectorIndex
from memsync.index.pgvector import PgvectorIndex
from memsync.index.qdrant import QdrantIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn, connect
from memsync.write.worker import Worker

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "memsync.faces.cli"]
ROUNDS = 20  # 500 new rows a round


def wait_for(pred: Any, timeout: float = 60.0) -> None:
    helpers.wait_for(pred, timeout, 0.1, tolerate=True)  # the server may be restarting


def write_round(conn: DictConn, r: int) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'fact ' || %s || '/' || i"
                 " FROM generate_series(1, 200) i", (r,))
    conn.execute("INSERT INTO agent.goals (title, description) SELECT 'goal ' || %s || '/' || i, 'do it'"
                 " FROM generate_series(1, 100) i", (r,))
    conn.execute("INSERT INTO agent.reflections (mode, goals, blockers, raw_text) SELECT 'daily',"
                 " jsonb_build_array('goal ' || i), jsonb_build_array('blocker ' || i), 'Notes ' || %s || '/' || i"
                 " FROM generate_series(1, 100) i", (r,))
    conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) SELECT 'doc', 'Doc ' || %s || '/' || i,"
                 " E'# Doc\\n\\nIntro ' || i || E'.\\n\\n## Part A\\n\\nAlpha.\\n\\n## Part B\\n\\nBeta ' || i"
                 " FROM generate_series(1, 50) i", (r,))
    conn.execute("INSERT INTO agent.blocks (block_type, title, body_md) SELECT 'prompt_snippet', 'Note', 'note ' || %s"
                 " || '/' || i FROM generate_series(1, 50) i", (r,))
    # concurrent edits and deletes of rows the workers may be processing right now
    conn.execute("UPDATE agent.facts SET content = content || ' (edited)' WHERE id IN"
                 " (SELECT id FROM agent.facts ORDER BY random() LIMIT 50)")
    conn.execute("UPDATE agent.artifacts SET body_md = body_md || E'\\n\\n## Part C\\n\\nGamma.' WHERE id IN"
                 " (SELECT id FROM agent.artifacts WHERE body_md NOT LIKE '%%Gamma%%' ORDER BY random() LIMIT 10)")
    conn.execute("DELETE FROM agent.facts WHERE id IN (SELECT id FROM agent.facts ORDER BY random() LIMIT 30)")
    conn.execute("DELETE FROM agent.artifacts WHERE id IN (SELECT id FROM agent.artifacts ORDER BY random() LIMIT 10)")
    conn.execute("DELETE FROM agent.blocks WHERE chunk_key IS NULL AND id IN"
                 " (SELECT id FROM agent.blocks WHERE chunk_key IS NULL ORDER BY random() LIMIT 10)")


def test_soak_two_processes_kill_restart_and_a_postgres_restart(tmp_path: Path) -> None:
    from memsync.storage import embedded, migrate

    home = tmp_path / "pg"
    dsn = embedded.server_uri(home)
    migrate.migrate(dsn)
    env = {**os.environ, "MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_LOG_LEVEL": "ERROR"}
    start = lambda: subprocess.Popen([*CLI, "run"], env=env)  # noqa: E731
    procs = [start(), start()]
    conn = connect(dsn, autocommit=True)
    try:
        for r in range(ROUNDS):
            if r == 7:  # kill one worker mid-stream and start it again at once
                procs[0].send_signal(signal.SIGKILL)
                procs[0].wait()
                procs[0] = start()
            if r == 12:
                conn.close()
                embedded.restart(home)
                conn = connect(dsn, autocommit=True)
            if r == 15:
                conn.execute("TRUNCATE agent.goals")
            write_round(conn, r)
            time.sleep(0.2)
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox") == 0, timeout=400)
        assert all(p.poll() is None for p in procs), "the workers keep running through it all"
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=60) for p in procs]
    try:
        assert codes == [0, 0]
        out = subprocess.run([*CLI, "verify", "--json"], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        (report,) = json.loads(out.stdout)
        assert report["blocks"] > 10000
        assert (report["missing"], report["orphaned"], report["stale"], report["unembedded"],
                report["wrong_vector_key"]) == (0, 0, 0, 0, 0)
        status = json.loads(subprocess.run([*CLI, "status", "--json"], env=env, capture_output=True, text=True,
                                           timeout=60).stdout)
        assert status["backlog"]["pending"] == 0 and status["backlog"]["dead"] == 0
        # every live source row has its blocks, nothing is left of deleted or truncated ones
        for table, per_row in (("agent.facts", 1), ("agent.reflections", 3)):
            assert count(conn, f"SELECT count(*) AS n FROM agent.blocks WHERE source_table = '{table}'") \
                == per_row * count(conn, f"SELECT count(*) AS n FROM {table}"), table
        assert count(conn, "SELECT count(*) AS n FROM agent.blocks b WHERE b.source_table = 'agent.goals'"
                           " AND NOT EXISTS (SELECT 1 FROM agent.goals g WHERE g.id = b.source_id)") == 0
        assert count(conn, "SELECT count(*) AS n FROM agent.artifacts a WHERE NOT EXISTS"
                           " (SELECT 1 FROM agent.blocks b WHERE b.artifact_id = a.id)") == 0
    finally:
        conn.close()
        embedded.stop(home)


class OutageQdrant(QdrantIndex):
    """The real local-mode Qdrant, whose client can be swapped for one aimed at a port
    where nothing listens (a real connection refused), and back."""

    def __init__(self, path: Path):
        self.local = QdrantClient(path=str(path))
        self.dead = QdrantClient(url="http://127.0.0.1:9", timeout=1)
        super().__init__(self.local, "memsync_soak")

    def outage(self, on: bool) -> None:
        self._client = self.dead if on else self.local


def test_a_qdrant_outage_mid_burst_loses_nothing_and_dead_letters_nothing(conn: DictConn, dsn: str, tmp_path: Path,
                                                                          settings: Settings) -> None:
    qd = OutageQdrant(tmp_path / "q")
    indexes: list[VectorIndex] = [PgvectorIndex(dsn), qd]
    s = settings.model_copy(update={"claim_batch": 20, "backoff_seconds": 0.1})  # a quick test of the retry path
    worker = Worker(s, dsn, HashingEmbedder(), indexes)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'fact ' || i"
                     " FROM generate_series(1, 2000) i")
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox") < 1700)
        qd.outage(True)
        conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'more ' || i"
                     " FROM generate_series(1, 1000) i")
        # the outage lasts until an item was deferred twice (a retry met it again)
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox WHERE deferrals > 1") > 0)
        qd.outage(False)
        wait_for(lambda: count(conn, "SELECT count(*) AS n FROM memsync.outbox") == 0, timeout=240)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert worker.totals.dead == 0 and worker.totals.failed == 0 and worker.totals.deferred > 0
    from memsync.write import ops

    for idx in indexes:
        report = ops.verify(conn, "hashing-384", idx)
        assert (report["blocks"], report["missing"], report["orphaned"], report["stale"]) == (3000, 0, 0, 0), idx.name
    qd.local.close()
