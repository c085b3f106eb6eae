"""The two ways each signal searches a subject scope give the same answers: BM25 by testing
every block of the scope or through the GIN index, dense by an exact scan or through HNSW
with iterative scans (pgvector >= 0.8, which the embedded server has). The switch points are
set by benchmarks; here both paths are forced on the same data."""

from __future__ import annotations

import json
import random
from typing import Any

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



def _brute_force(conn: DictConn, model: str, v: np.ndarray, where: str, params: tuple[Any, ...] = ()) -> list[int]:
    """The 10 nearest of the blocks `where` selects, ranked by numpy over the projection."""
    rows = conn.execute(f"SELECT p.block_id, p.embedding::text AS e FROM memsync.pgvector_index p "
                        f"JOIN agent.blocks b ON b.id = p.block_id WHERE p.model = %s AND {where}",
                        (model, *params)).fetchall()
    scored = sorted((1.0 - float(np.dot(np.asarray(json.loads(r["e"]), dtype=np.float32), v)), r["block_id"])
                    for r in rows)
    return [b for _, b in scored[:10]]


def test_scope_scan_through_the_projection_key_is_exact(conn: DictConn, dsn: str, settings: Settings,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A scope's nearest vectors are read through the projection's subject key and the other
    filters checked after: the same blocks as a brute-force ranking of the filtered scope,
    also where so few pass the filters that the scan falls back to probing their ids. A block
    that changes subject changes it in the projection too, whoever changed it."""
    rng = random.Random(5)
    conn.execute("INSERT INTO erp.projects (name) VALUES ('a'), ('b')")

    def facts(n: int) -> None:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
            conn.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id) VALUES "
                         "('result', %s, 'project', %s)", (f"{text} number {i}", 1 + i % 2))
        drain(dsn, settings, HashingEmbedder(), [PgvectorIndex(dsn)])

    facts(600)
    later = conn.execute("SELECT clock_timestamp() AS t").fetchone()["t"]
    facts(10)  # 5 in each scope, made after `later`
    emb = HashingEmbedder()
    one = Filters(subjects=(("project", 1),), scoped=True)
    answered: list[bool] = []  # whether the projection-key scan answered, or the id probe
    scan = sq._scope_scan
    monkeypatch.setattr(sq, "_scope_scan", lambda *a: answered.append(scan(*a) is not None) or scan(*a))
    for q in ("rollback canary deploy", "invoice budget kickoff", "vacuum backup restore quorum"):
        v = np.asarray(emb.encode([q])[0], dtype=np.float32)
        everything = _brute_force(conn, emb.model_id, v, "b.subject_key = 'project:1'")
        assert [b for b, _ in sq.dense(conn, emb.model_id, v, 10, one)] == everything, q
        facts_only = one.model_copy(update={"source_tables": ("agent.facts",)})
        assert [b for b, _ in sq.dense(conn, emb.model_id, v, 10, facts_only)] == everything, q
        recent = one.model_copy(update={"created_after": later})
        got = [b for b, _ in sq.dense(conn, emb.model_id, v, 10, recent)]
        assert len(got) == 5
        assert got == _brute_force(conn, emb.model_id, v, "b.subject_key = 'project:1' AND b.created_at >= %s",
                                   (later,)), q
    assert answered == [True, True, False] * 3

    def stale() -> int:
        return int(conn.execute("SELECT count(*) AS n FROM memsync.pgvector_index p JOIN agent.blocks b"
                                " ON b.id = p.block_id WHERE p.subject_key IS DISTINCT FROM b.subject_key"
                                ).fetchone()["n"])

    fact = conn.execute("SELECT id FROM agent.facts WHERE subject_id = 1 ORDER BY id LIMIT 1").fetchone()["id"]
    conn.execute("UPDATE agent.facts SET subject_id = 2 WHERE id = %s", (fact,))
    drain(dsn, settings, HashingEmbedder(), [PgvectorIndex(dsn)])
    assert stale() == 0
    block = conn.execute("SELECT id FROM agent.blocks WHERE source_table = 'agent.facts' AND source_id = %s",
                         (fact,)).fetchone()["id"]
    conn.execute("UPDATE agent.blocks SET subject_id = 1 WHERE id = %s", (block,))
    assert stale() == 0
    v = np.asarray(conn.execute("SELECT embedding::text AS e FROM memsync.pgvector_index WHERE block_id = %s",
                                (block,)).fetchone()["e"].strip("[]").split(","), dtype=np.float32)
    assert sq.dense(conn, emb.model_id, v, 1, one)[0][0] == block
