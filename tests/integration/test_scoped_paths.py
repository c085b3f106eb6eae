"""Each signal in a subject scope answers what a plain ranking of the scope would: BM25
through the (subject key, lexical vector) index against BM25 computed here over the scope's
blocks; dense by an exact scan or through HNSW with iterative scans (pgvector >= 0.8, which
the embedded server has), both paths forced on the same data."""

from __future__ import annotations

import json
import math
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


def _add_facts(conn: DictConn, rng: random.Random, n: int, projects: int) -> None:
    """n facts of random WORDS, spread over projects 1..projects in turn."""
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
        conn.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id) VALUES "
                     "('result', %s, 'project', %s)", (f"{text} number {i}", 1 + i % projects))


def _bm25_reference(conn: DictConn, query: str, where: str, params: tuple[Any, ...] = ()) -> list[tuple[int, float]]:
    """BM25 of the blocks `where` selects as bm25() documents it, computed in Python from each
    block's lexemes and the corpus statistics: candidates hold one of the rarest query lexemes
    taken while their document frequency, scaled by the selection's share of the corpus, stays
    within the budget (the rarest always); every query lexeme counts in a candidate's score."""
    stats = conn.execute("SELECT n_docs, total_len FROM memsync.bm25_corpus").fetchone()
    n, avgdl = stats["n_docs"], max(stats["total_len"] / max(stats["n_docs"], 1), 1.0)
    terms = [r["t"] for r in conn.execute("SELECT DISTINCT lexeme AS t FROM unnest(to_tsvector('english', %s))",
                                          (query,)).fetchall()]
    df = {r["term"]: r["df"] for r in conn.execute(
        "SELECT term, df FROM memsync.bm25_terms WHERE term = ANY(%s) AND df > 0", (terms,)).fetchall()}
    blocks: dict[int, tuple[int, dict[str, int]]] = {}
    for r in conn.execute(f"SELECT b.id, b.tsv_len, (SELECT json_object_agg(u.lexeme, coalesce(array_length("
                          f"u.positions, 1), 1)) FROM unnest(b.tsv) u) AS tf FROM agent.blocks b WHERE {where}",
                          params).fetchall():
        blocks[r["id"]] = (r["tsv_len"], r["tf"] or {})
    share = len(blocks) / max(n, 1)
    selected, cum = set(), 0
    for t in sorted(df, key=lambda t: (df[t], t)):
        cum += df[t]
        if cum == df[t] or cum * share <= sq.BM25_CANDIDATES:
            selected.add(t)
    scores = []
    for bid, (length, tf) in blocks.items():
        if selected & tf.keys():
            score = sum(math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) * tf[t] * (sq.BM25_K1 + 1)
                        / (tf[t] + sq.BM25_K1 * (1 - sq.BM25_B + sq.BM25_B * length / avgdl))
                        for t in df if t in tf)
            scores.append((-score, bid))
    return [(bid, -neg) for neg, bid in sorted(scores)[:10]]


def test_each_signal_in_a_scope_ranks_as_the_whole_scope_would(conn: DictConn, dsn: str, settings: Settings,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    conn.execute("INSERT INTO erp.projects (name) VALUES ('a'), ('b'), ('c')")
    _add_facts(conn, rng, 600, 3)
    drain(dsn, settings, HashingEmbedder(), [PgvectorIndex(dsn)])
    conn.execute("VACUUM ANALYZE agent.blocks")
    assert vector_version(conn) >= (0, 8)
    scope = Filters(subjects=(("project", 1),), scoped=True)
    two = Filters(subjects=(("project", 1), ("project", 3)), scoped=True)
    emb = HashingEmbedder()
    for q in ("rollback canary deploy", "invoice budget kickoff", "vacuum backup restore quorum", "lighthouse"):
        for f, where in ((scope, "b.subject_key = 'project:1'"),
                         (two, "b.subject_key IN ('project:1', 'project:3')")):
            got = sq.bm25(conn, q, 10, f)
            want = _bm25_reference(conn, q, where)
            assert got and [b for b, _ in got] == [b for b, _ in want], (q, f.subjects)
            assert [round(s, 9) for _, s in got] == [round(s, 9) for _, s in want]
        v = np.asarray(emb.encode([q])[0], dtype=np.float32)
        exact = sq.dense(conn, emb.model_id, v, 10, scope, iterative=False)
        monkeypatch.setattr(sq, "ITERATIVE_MIN_SCOPE", 0)
        iterative = sq.dense(conn, emb.model_id, v, 10, scope, iterative=True)
        assert len(iterative) == 10 and len({b for b, _ in exact} & {b for b, _ in iterative}) >= 9, q
        in_scope = {r["id"] for r in conn.execute(
            "SELECT id FROM agent.blocks WHERE subject_type = 'project' AND subject_id = 1").fetchall()}
        assert {b for b, _ in iterative} <= in_scope
    assert sq.bm25(conn, "rollback", 10, Filters(subjects=(), scoped=True)) == []
    assert sq.bm25(conn, "rollback", 10, Filters(subjects=(("project", 99),), scoped=True)) == []


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
        _add_facts(conn, rng, n, 2)
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


def test_a_scope_is_read_through_its_key_not_by_scanning_every_vector(conn: DictConn, dsn: str,
                                                                      settings: Settings) -> None:
    """Half of the vectors in one scope: the planner costs a sequential scan of the whole
    projection alike and takes it, reading every other scope's vectors too; the scope scan
    reads its own rows through the subject key, with the same answer."""
    rng = random.Random(7)
    conn.execute("INSERT INTO erp.projects (name) VALUES ('a'), ('b')")
    _add_facts(conn, rng, 400, 2)
    drain(dsn, settings, HashingEmbedder(), [PgvectorIndex(dsn)])
    conn.execute("VACUUM ANALYZE memsync.pgvector_index")
    emb = HashingEmbedder()
    v = np.asarray(emb.encode(["rollback canary deploy"])[0], dtype=np.float32)
    with conn.transaction():  # pg_stat_xact_*: the scans of this transaction alone
        got = [b for b, _ in sq.dense(conn, emb.model_id, v, 10, Filters(subjects=(("project", 1),), scoped=True))]
        scans = conn.execute("SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables"
                             " WHERE relid = 'memsync.pgvector_index'::regclass").fetchone()
    assert got == _brute_force(conn, emb.model_id, v, "b.subject_key = 'project:1'")
    assert scans["seq_scan"] == 0 and scans["idx_scan"] >= 1
