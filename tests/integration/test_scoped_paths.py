"""The two ways each signal searches a subject scope give the same answers: BM25 by testing
every block of the scope or through the GIN index, dense by an exact scan or through HNSW
with iterative scans (pgvector >= 0.8, which the embedded server has). The switch points are
set by benchmarks; here both paths are forced on the same data."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import drain

from memsync.embed import HashingEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn
from memsync.storage.db import search as sq
from memsync.storage.db.vectors import vector_version
from memsync.storage.filters import Filters

pytestmark = pytest.mark.integration

WORDS = ["rollback", "deploy", "canary", "schema", "migration", "lighthouse", "invoice", "budget", "kickoff",
         "latency", "cache", "replica", "index", "vacuum", "backup", "restore", "quorum", "shard", "tenant"]


def test_both_paths_agree_in_a_scope(conn: DictConn, dsn: str, settings: Settings,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    conn.execute("INSERT INTO erp.projects (name) VALUES ('a'), ('b')")
    for i in range(400):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
        conn.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id) VALUES "
                     "('result', %s, 'project', %s)", (f"{text} number {i}", 1 + i % 2))
    drain(dsn, settings, HashingEmbedder(), [PgvectorIndex(dsn)])
    conn.execute("VACUUM ANALYZE agent.blocks")
    assert vector_version(conn) >= (0, 8)
    scope = Filters(subjects=(("project", 1),), scoped=True)
    emb = HashingEmbedder()
    for q in ("rollback canary deploy", "invoice budget kickoff", "vacuum backup restore quorum"):
        monkeypatch.setattr(sq, "BM25_INDEX_MIN_SCOPE", 10**9)
        walk = sq.bm25(conn, q, 10, scope)
        monkeypatch.setattr(sq, "BM25_INDEX_MIN_SCOPE", 0)
        index = sq.bm25(conn, q, 10, scope)
        assert walk and [b for b, _ in walk] == [b for b, _ in index], q
        assert [round(s, 9) for _, s in walk] == [round(s, 9) for _, s in index]
        v = np.asarray(emb.encode([q])[0], dtype=np.float32)
        exact = sq.dense(conn, emb.model_id, v, 10, scope, iterative=False)
        monkeypatch.setattr(sq, "ITERATIVE_MIN_SCOPE", 0)
        iterative = sq.dense(conn, emb.model_id, v, 10, scope, iterative=True)
        assert len(iterative) == 10 and len({b for b, _ in exact} & {b for b, _ in iterative}) >= 9, q
        in_scope = {r["id"] for r in conn.execute(
            "SELECT id FROM agent.blocks WHERE subject_type = 'project' AND subject_id = 1").fetchall()}
        assert {b for b, _ in iterative} <= in_scope and {b for b, _ in index} <= in_scope
