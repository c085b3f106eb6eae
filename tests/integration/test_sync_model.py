"""The pipeline with the real embedding model: what is synced is semantically findable,
in pgvector and in Qdrant alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import drain
from psycopg.types.json import Jsonb

from memsync.embed import SentenceTransformerEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn

pytestmark = [pytest.mark.integration, pytest.mark.model]


def test_synced_memory_is_semantically_searchable(conn: DictConn, dsn: str, settings: Settings,
                                                  real_embedder: SentenceTransformerEmbedder, qdrant_index: Any) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, category, content) VALUES"
                 " ('preference', 'scheduling', 'Ada does her deep work before noon and takes calls after 2pm.')")
    conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('sop', 'Invoicing',"
                 " '1. Export the billable hours from the time tracker.\n2. Generate the PDF invoice.\n"
                 "3. Email it to the client''s accounts payable contact.')")
    conn.execute("INSERT INTO agent.reflections (mode, blockers) VALUES ('daily', %s)",
                 (Jsonb(["The staging database ran out of disk space during the migration."]),))
    pg = PgvectorIndex(dsn)
    s = settings.model_copy(update={"model": real_embedder.model_id})
    stats = drain(dsn, s, real_embedder, [pg, qdrant_index])
    assert stats.acked == 3 and stats.failed == 0
    model = real_embedder.model_id
    cases = {
        "when is a good time to schedule a meeting with Ada?": "agent.facts",
        "how do I bill a customer?": "agent.artifacts",
        "what went wrong with the server storage?": "agent.reflections",
    }
    for query, table in cases.items():
        vec = real_embedder.encode([query])[0]
        for idx in (pg, qdrant_index):
            (best, _score), *_ = idx.search(model, vec, 3)
            row = conn.execute("SELECT source_table FROM agent.blocks WHERE id = %s", (best,)).fetchone()
            assert row is not None and row["source_table"] == table, (idx.name, query)
    # both indexes rank the same blocks
    vec = real_embedder.encode(["invoice email"])[0]
    assert [b for b, _ in pg.search(model, vec, 3)] == [b for b, _ in qdrant_index.search(model, vec, 3)]
    # a deeper list for fusion's background: the first k are the search for k
    for idx in (pg, qdrant_index):
        deeper = idx.search(model, vec, 1, depth=3)
        assert len(deeper) == 3 and deeper[:1] == idx.search(model, vec, 1), idx.name


def test_a_worker_with_nothing_to_sync_never_loads_the_model(dsn: str, tmp_path: Any) -> None:
    """`memsync run --once` on an empty queue checks its index against the model's stated
    vector size without importing torch (it took ~10 s when the check loaded the model); the
    size the files state is the loaded model's."""
    import subprocess
    import sys

    code = ("import sys; from memsync.faces.cli import main\n"
            "try:\n    main(['run', '--once'], standalone_mode=False)\n"
            "finally:\n    print('torch' in sys.modules)")
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_HOME": str(tmp_path), "MEMSYNC_LOG_LEVEL": "ERROR", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout
    emb = SentenceTransformerEmbedder()
    assert emb.dim == 384 and not emb.loaded
    emb.encode(["x"])
    assert emb.loaded and emb.dim == emb._model_dim(emb._model) == 384


def test_a_sync_daemon_leaves_the_query_graph_ready_for_searches(dsn: str, conn: DictConn, settings: Settings,
                                                                  tmp_path: Any) -> None:
    """Once the daemon has synced with the model loaded and nothing waits, it exports and
    checks the query graph, so the first search from another process reads without loading
    the model (it paid ~10 s for that); a worker that never loaded the model leaves it alone."""
    import threading
    import time

    from memsync.write.worker import Worker

    home = tmp_path / "home"
    emb = SentenceTransformerEmbedder(cache_dir=home, device="cpu")
    worker = Worker(settings, dsn, emb, [PgvectorIndex(dsn)])
    worker.idle()
    assert not emb.loaded and not (home / "models").exists()
    conn.execute("INSERT INTO agent.facts (fact_type, category, content)"
                 " VALUES ('preference', 'travel', 'Ada prefers the night train to Vienna.')")
    stop = threading.Event()
    daemon = threading.Thread(target=worker.run, args=(stop,))
    daemon.start()
    try:
        deadline = time.monotonic() + 240
        while not list((home / "models").glob("query-*.checks.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        daemon.join(60)
    assert worker.totals.acked == 1
    assert list((home / "models").glob("query-*.checks.json")), "the idle daemon left a checked graph"
    assert emb._query is None, "the daemon keeps no query session of its own"
    searcher = SentenceTransformerEmbedder(cache_dir=home, device="cpu")
    vec = searcher.encode_query("how does Ada like to travel?")
    assert searcher._model is None and float(np.dot(vec, emb.encode(["how does Ada like to travel?"])[0])) >= 0.999
    assert emb.prepare_queries() is False, "a graph already checked is not exported again"


def test_a_cron_run_leaves_the_query_graph_ready_too(dsn: str, conn: DictConn, tmp_path: Any) -> None:
    """`memsync run --once` (cron) does what the idle daemon does: a drain that loaded the model
    leaves the checked query graph for the searches that follow; one with nothing to embed
    loads nothing for it."""
    from click.testing import CliRunner

    from memsync.faces.cli import main

    home = tmp_path / "home"
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_HOME": str(home), "MEMSYNC_LOG_LEVEL": "ERROR", "MEMSYNC_DEVICE": "cpu"}
    r = CliRunner().invoke(main, ["run", "--once", "--no-wait"], env=env)
    assert r.exit_code == 0 and not (home / "models").exists(), r.output
    conn.execute("INSERT INTO agent.facts (fact_type, category, content)"
                 " VALUES ('preference', 'travel', 'Ada prefers the night train to Vienna.')")
    r = CliRunner().invoke(main, ["run", "--once", "--no-wait", "--json"], env=env)
    assert r.exit_code == 0 and '"acked": 1' in r.output, r.output
    assert list((home / "models").glob("query-*.checks.json")), "the cron run left a checked graph"
