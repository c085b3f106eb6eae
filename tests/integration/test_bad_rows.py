"""A bad row fails only itself: oversized values, a chunker that raises and texts the model
rejects, each mixed with good rows in one batch; the attempt limit holds in every path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from helpers import drain

from memsync.embed import HashingEmbedder
from memsync.errors import EmbeddingError
from memsync.index import VectorIndex
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn, connect, queue
from memsync.text.chunk import Chunk
from memsync.write.sources import SOURCES, ChunkParams
from memsync.write.sync import Pipeline

pytestmark = pytest.mark.integration

# ~2 MB of text: twice what a tsvector can hold; words a tokenizer and tsvector both see
HUGE = "(SELECT string_agg(md5(i::text), ' ') FROM generate_series(1, 60000) i)"
FIRST_WORD = "c4ca4238a0b923820dcc509a6f75849b"  # md5('1')


def n(conn: DictConn, q: str, *args: Any) -> int:
    row = conn.execute(q, args or None).fetchone()
    return int(row["n"]) if row else 0


def insert_mixed(conn: DictConn) -> None:
    """Good and oversized rows of every source kind, interleaved, all pending at once."""
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'good fact one')")
    conn.execute(f"INSERT INTO agent.facts (fact_type, content) SELECT 'result', {HUGE}")
    conn.execute("INSERT INTO agent.goals (title, description) VALUES ('Good goal', 'ship it')")
    conn.execute(f"INSERT INTO agent.goals (title, description) SELECT 'Huge goal', {HUGE}")
    conn.execute("INSERT INTO agent.reflections (mode, goals) VALUES ('daily', '[\"good reflection\"]')")
    # a fenced block is never split: one block of 2 MB
    conn.execute(f"INSERT INTO agent.reflections (mode, raw_text) SELECT 'daily', E'```\\n' || {HUGE} || E'\\n```'")
    conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('doc', 'Good', 'A good doc.')")
    conn.execute(f"INSERT INTO agent.artifacts (artifact_type, title, body_md)"
                 f" SELECT 'doc', 'Huge', E'# Huge\\n\\n```\\n' || {HUGE} || E'\\n```'")
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'good fact two')")
    # a block written directly is not chunked: it stays 2 MB, its lexical vector is bounded
    conn.execute(f"INSERT INTO agent.blocks (block_type, title, body_md) SELECT 'note', 'Huge note', {HUGE}")


def test_oversized_rows_of_every_kind_sync_with_the_good_ones(conn: DictConn, dsn: str, settings: Settings,
                                                              fake_embedder: HashingEmbedder) -> None:
    insert_mixed(conn)
    stats = drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])
    assert stats.items == 10 and stats.acked == 10 and stats.failed == 0, stats.errors
    assert n(conn, "SELECT count(*) AS n FROM memsync.outbox") == 0
    for table in ("agent.facts", "agent.goals", "agent.reflections", "agent.artifacts"):
        assert n(conn, "SELECT count(DISTINCT source_id) AS n FROM agent.blocks WHERE source_table = %s", table) \
            == n(conn, f"SELECT count(*) AS n FROM {table}"), table
    assert n(conn, "SELECT count(*) AS n FROM agent.blocks b WHERE NOT EXISTS"
                   " (SELECT 1 FROM memsync.pgvector_index p WHERE p.block_id = b.id)") == 0
    # derived blocks are cut to the chunk size; the direct one is kept whole, and lexical
    # search finds every oversized row by its beginning
    assert n(conn, "SELECT count(*) AS n FROM agent.blocks WHERE length(body_md) > 20000") == 1
    assert n(conn, "SELECT count(DISTINCT coalesce(source_table, 'direct')) AS n FROM agent.blocks"
                   " WHERE tsv @@ to_tsquery('english', %s)", FIRST_WORD) == 5
    stats_row = conn.execute("SELECT n_docs FROM memsync.bm25_corpus").fetchone()
    assert stats_row is not None and stats_row["n_docs"] == n(conn, "SELECT count(*) AS n FROM agent.blocks")


def test_run_once_on_an_oversized_fact_exits_cleanly(conn: DictConn, dsn: str) -> None:
    """The reported case, through the CLI with default settings."""
    conn.execute(f"INSERT INTO agent.facts (fact_type, content) SELECT 'result', {HUGE}")
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'a good one')")
    env = {**os.environ, "MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384"}
    out = subprocess.run([sys.executable, "-m", "memsync.faces.cli", "run", "--once", "--json"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert '"drained": true' in out.stdout
    assert n(conn, "SELECT count(*) AS n FROM memsync.pgvector_index") \
        == n(conn, "SELECT count(*) AS n FROM agent.blocks") > 2  # the huge fact became many bounded blocks


def test_a_chunker_that_raises_fails_only_its_row(conn: DictConn, dsn: str, settings: Settings,
                                                  fake_embedder: HashingEmbedder) -> None:
    facts = SOURCES["agent.facts"]

    def fragile(row: Mapping[str, Any], p: ChunkParams) -> list[Chunk]:
        if "BOOM" in row["content"]:
            raise ValueError("cannot chunk this")
        return facts.chunker(row, p)

    sources = {**SOURCES, "agent.facts": replace(facts, chunker=fragile)}
    for text in ("first", "BOOM", "third"):
        conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', %s)", (text,))
    items = queue.claim(conn, queue.OUTBOX, "test-worker", 64, 300)
    assert len(items) == 3
    with connect(dsn, autocommit=True, vectors=True) as work:
        pipe = Pipeline(work, fake_embedder, [PgvectorIndex(dsn)], settings, "test-worker", sources=sources)
        stats = pipe.process(items)
    assert (stats.acked, stats.failed) == (2, 1)
    row = conn.execute("SELECT o.last_error, f.content FROM memsync.outbox o JOIN agent.facts f"
                       " ON f.id = o.source_id").fetchone()
    assert row is not None and row["content"] == "BOOM" and "cannot chunk this" in row["last_error"]
    assert n(conn, "SELECT count(*) AS n FROM memsync.pgvector_index") == 2


class PickyEmbedder(HashingEmbedder):
    """Rejects any batch holding 'REJECT'; returns a NaN vector for 'NANTEXT'."""

    def encode(self, texts: list[str]) -> Any:
        if any("REJECT" in t for t in texts):
            raise EmbeddingError("the model rejects this text")
        out = super().encode(texts)
        for i, t in enumerate(texts):
            if "NANTEXT" in t:
                out[i, :] = np.nan
        return out


def test_texts_the_model_rejects_fail_only_their_rows(conn: DictConn, dsn: str, settings: Settings) -> None:
    for text in ("alpha", "REJECT me", "beta", "NANTEXT here", "gamma"):
        conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', %s)", (text,))
    s = settings.model_copy(update={"max_attempts": 1})
    stats = drain(dsn, s, PickyEmbedder(), [PgvectorIndex(dsn)])
    assert (stats.acked, stats.failed, stats.dead) == (3, 2, 2)
    dead = {r["content"]: r["last_error"] for r in conn.execute(
        "SELECT f.content, o.last_error FROM memsync.outbox o JOIN agent.facts f ON f.id = o.source_id"
        " WHERE o.dead_at IS NOT NULL")}
    assert "rejects" in dead["REJECT me"] and "NaN" in dead["NANTEXT here"]
    assert n(conn, "SELECT count(*) AS n FROM memsync.pgvector_index") == 3
    assert n(conn, "SELECT count(*) AS n FROM memsync.embeddings") == 3


class RefusingIndex(PgvectorIndex):
    """A live index that refuses any write holding one block of a given source id."""

    name = "refusing"

    def __init__(self, dsn: str, refused_block: int):
        super().__init__(dsn)
        self.refused = refused_block

    def upsert(self, model: str, block_ids: Any, points: Any) -> None:
        from memsync.errors import IndexUnavailable

        if self.refused in block_ids:
            raise IndexUnavailable("payload refused")


def test_a_row_an_index_refuses_fails_alone_while_the_index_answers(conn: DictConn, dsn: str, settings: Settings,
                                                                   fake_embedder: HashingEmbedder) -> None:
    for text in ("one", "two", "three"):
        conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', %s)", (text,))
    drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])
    bad = n(conn, "SELECT id AS n FROM agent.blocks WHERE body_md = 'two'")
    conn.execute("UPDATE agent.facts SET content = content || ' again'")
    idx: list[VectorIndex] = [PgvectorIndex(dsn), RefusingIndex(dsn, bad)]
    stats = drain(dsn, settings, fake_embedder, idx)
    assert (stats.acked, stats.failed, stats.deferred) == (2, 1, 0)
    row = conn.execute("SELECT attempts, last_error FROM memsync.outbox").fetchone()
    assert row is not None and row["attempts"] == 1 and "payload refused" in row["last_error"]


def test_an_item_that_kills_its_worker_every_time_is_dead_lettered(conn: DictConn, dsn: str, settings: Settings,
                                                                   fake_embedder: HashingEmbedder) -> None:
    """Attempts count at claim time: a worker that dies mid-item (no fail() ever runs) still
    brings the item to the limit, and the next claim dead-letters it instead of retrying."""
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'poison')")
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'innocent')")
    s = settings.model_copy(update={"max_attempts": 3})
    poison = conn.execute("SELECT o.id FROM memsync.outbox o JOIN agent.facts f ON f.id = o.source_id"
                          " WHERE f.content = 'poison'").fetchone()
    assert poison is not None
    for i in range(3):  # three workers claim it and die (never registered: dead at once)
        conn.execute("UPDATE memsync.outbox SET claimed_by = %s, claimed_until = now() + interval '1 hour',"
                     " attempts = attempts + 1 WHERE id = %s", (f"crashed-{i}", poison["id"]))
    stats = drain(dsn, s, fake_embedder, [PgvectorIndex(dsn)])
    assert stats.acked == 1
    row = conn.execute("SELECT dead_at, last_error, attempts FROM memsync.outbox").fetchone()
    assert row is not None and row["dead_at"] is not None and row["attempts"] == 3
    assert "abandoned by crashed-2" in row["last_error"]


class Picky256(PickyEmbedder):
    def __init__(self) -> None:
        super().__init__(256)


def test_reembed_passes_over_a_text_the_new_model_rejects(conn: DictConn, dsn: str, settings: Settings,
                                                          fake_embedder: HashingEmbedder) -> None:
    from memsync.write import ops

    for text in ("alpha", "REJECT me", "beta"):
        conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', %s)", (text,))
    drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])
    result = ops.reembed(conn, Picky256(), [PgvectorIndex(dsn)])
    assert result["embedded"] == 2  # one pass, the rejected text logged and passed over
    assert n(conn, "SELECT count(*) AS n FROM memsync.embeddings WHERE model = 'hashing-256'") == 2
