"""The BM25 statistics: writers of blocks never wait on each other through them (each
statement appends its deltas), readers see totals plus deltas, and folding keeps them exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import drain, migrate_before

from memsync.embed import HashingEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage import migrate
from memsync.storage.db import DictConn, connect
from memsync.storage.db import search as sq
from memsync.storage.db.blocks import lexical_upkeep
from memsync.storage.filters import Filters

pytestmark = pytest.mark.integration

# long enough that a wait on a lock fails the test, short enough not to stall it
NO_WAIT = "SET lock_timeout = '5s'"


def _block(c: DictConn, text: str, artifact_id: int | None = None) -> None:
    c.execute("INSERT INTO agent.blocks (block_type, title, body_md, artifact_id) VALUES ('note', 'N', %s, %s)",
              (text, artifact_id))


def _recount(conn: DictConn) -> tuple[dict[str, int], tuple[int, int]]:
    terms = {r["lexeme"]: r["n"] for r in conn.execute(
        "SELECT u.lexeme, count(*) AS n FROM agent.blocks, unnest(tsv) u GROUP BY u.lexeme")}
    row = conn.execute("SELECT count(*) AS n, coalesce(sum(tsv_len), 0) AS l FROM agent.blocks").fetchone()
    assert row is not None
    return terms, (row["n"], row["l"])


def _seen(conn: DictConn, table: str, corpus: str) -> tuple[dict[str, int], tuple[int, int]]:
    terms = {r["term"]: r["df"] for r in conn.execute(f"SELECT term, df FROM {table} WHERE df <> 0")}
    row = conn.execute(f"SELECT n_docs, total_len FROM {corpus}").fetchone()
    assert row is not None
    return terms, (row["n_docs"], row["total_len"])


def _exact(conn: DictConn) -> None:
    """What readers see (totals + deltas) is a recount; after a fold the totals alone are."""
    want = _recount(conn)
    assert _seen(conn, "memsync.bm25_terms", "memsync.bm25_corpus") == want
    assert lexical_upkeep(conn)[0] is not None
    assert _seen(conn, "memsync.term_stats", "memsync.corpus_stats") == want
    assert conn.execute("SELECT (SELECT count(*) FROM memsync.term_stats_delta)"
                        " + (SELECT count(*) FROM memsync.corpus_stats_delta) AS n").fetchone() == {"n": 0}


def test_two_writers_of_blocks_never_wait_on_each_other_through_the_statistics(dsn: str, conn: DictConn) -> None:
    """Each writes two statements that share a term with the other's; with the statistics
    updated in place the second writer waited on the first's corpus row while holding a term
    row the first then needed: a deadlock."""
    a, b = connect(dsn), connect(dsn)
    try:
        b.execute(NO_WAIT)
        _block(a, "alpha words one")
        _block(b, "zeta words two")  # waited for a's commit before
        _block(a, "zeta words three")
        _block(b, "alpha words four")
        a.commit()
        b.commit()
    finally:
        a.close()
        b.close()
    _exact(conn)


def test_a_users_cascading_delete_goes_through_while_a_worker_holds_its_batch(dsn: str, conn: DictConn) -> None:
    """The reported case: a user deleting artifacts (their blocks go by cascade, one
    statement per artifact) while a worker's transaction has written blocks."""
    ids = [r["id"] for r in conn.execute(
        "INSERT INTO agent.artifacts (artifact_type, title) SELECT 'doc', 'a' || i FROM generate_series(1, 3) i"
        " RETURNING id")]
    for i in ids:
        _block(conn, f"artifact {i} text with shared words", i)
    worker, user = connect(dsn), connect(dsn)
    try:
        _block(worker, "shared words of the batch", ids[0])
        user.execute(NO_WAIT)
        user.execute("DELETE FROM agent.artifacts WHERE id = ANY(%s)", (ids[1:],))
        user.commit()
        _block(worker, "more shared words", ids[0])
        worker.commit()
    finally:
        worker.close()
        user.close()
    assert conn.execute("SELECT count(*) AS n FROM agent.blocks").fetchone() == {"n": 3}
    _exact(conn)


def test_search_sees_unfolded_deltas_and_folds_stay_exact(conn: DictConn, dsn: str, settings: Settings,
                                                         fake_embedder: HashingEmbedder) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'common words and item ' || i"
                 " FROM generate_series(1, 40) i")
    drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])  # the worker folds after each batch
    assert conn.execute("SELECT count(*) AS n FROM memsync.term_stats_delta").fetchone() == {"n": 0}
    _block(conn, "a quokka sighting")  # a term only the deltas know yet
    hits = sq.bm25(conn, "quokka", 5, Filters())
    assert len(hits) == 1
    conn.execute("UPDATE agent.blocks SET body_md = 'a wombat sighting' WHERE body_md = 'a quokka sighting'")
    conn.execute("DELETE FROM agent.blocks WHERE id IN (SELECT id FROM agent.blocks ORDER BY id LIMIT 5)")
    assert sq.bm25(conn, "quokka", 5, Filters()) == []
    assert len(sq.bm25(conn, "wombat", 5, Filters())) == 1
    _exact(conn)
    conn.execute("TRUNCATE agent.blocks CASCADE")
    _exact(conn)


def test_a_fold_in_progress_makes_another_skip_and_readers_see_one_or_the_other(dsn: str, conn: DictConn) -> None:
    _block(conn, "first text")
    folder = connect(dsn)
    try:
        folded, _ = lexical_upkeep(folder)  # its transaction stays open
        assert folded is not None and folded > 0
        assert lexical_upkeep(conn)[0] is None
        before: Any = _seen(conn, "memsync.bm25_terms", "memsync.bm25_corpus")
        folder.commit()
        assert _seen(conn, "memsync.bm25_terms", "memsync.bm25_corpus") == before == _recount(conn)
    except psycopg.Error:
        folder.rollback()
        raise
    finally:
        folder.close()


def test_a_drain_with_nothing_to_ack_still_folds(conn: DictConn, dsn: str, settings: Settings,
                                                fake_embedder: HashingEmbedder) -> None:
    conn.execute("SET memsync.origin = 'sync'")  # a write the queue does not see (as rechunk's are)
    _block(conn, "written behind the queue")
    assert conn.execute("SELECT count(*) AS n FROM memsync.corpus_stats_delta").fetchone() == {"n": 1}
    assert drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)]).acked == 0
    assert conn.execute("SELECT count(*) AS n FROM memsync.corpus_stats_delta").fetchone() == {"n": 0}
    assert _seen(conn, "memsync.term_stats", "memsync.corpus_stats") == _recount(conn)


def test_after_a_drain_no_deltas_and_no_pending_index_entries_are_left(
        conn: DictConn, dsn: str, settings: Settings, fake_embedder: HashingEmbedder) -> None:
    """Every search reads the GIN index's pending list in full; the worker merges it after
    each batch, as it folds the statistics deltas."""
    conn.execute("INSERT INTO erp.projects (name) VALUES ('a'), ('b'), ('c')")
    conn.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id)"
                 " SELECT 'result', 'fact ' || i || CASE WHEN i % 50 = 0 THEN ' lighthouse' ELSE ' budget' END,"
                 " 'project', 1 + i % 3 FROM generate_series(1, 600) i")
    drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])
    assert lexical_upkeep(conn) == (0, 0)
    scope = Filters(subjects=(("project", 1),), scoped=True)
    assert len(sq.bm25(conn, "lighthouse", 10, scope)) == 4  # i = 150, 300, 450, 600 are project 1


def test_the_fold_stands_when_the_index_it_merges_is_gone(conn: DictConn) -> None:
    conn.execute("DROP INDEX agent.blocks_scope_tsv")
    _block(conn, "a block written before the upkeep")
    folded, pending = lexical_upkeep(conn)
    assert folded is not None and folded > 0 and pending == 0
    assert _seen(conn, "memsync.term_stats", "memsync.corpus_stats") == _recount(conn)


def _derived(c: DictConn) -> None:
    """Every block's lexical vector and length are what its text gives."""
    assert c.execute(
        """SELECT count(*) AS n FROM agent.blocks
            WHERE tsv IS DISTINCT FROM to_tsvector('english', memsync.lexical_text(heading_path, title, chunk_key, body_md))
               OR tsv_len IS DISTINCT FROM memsync.tsv_length(tsv)""").fetchone() == {"n": 0}


def test_lexical_vector_and_length_follow_every_write_across_the_upgrade(empty_dsn: str, tmp_path: Path) -> None:
    """Migration 0027 turns the two generated columns into one trigger: blocks written before
    keep their values, and inserts, edits of each input (the title counts only for a block
    without a chunk key), and a direct write to the columns all leave them derived from the
    text, with the statistics exact."""
    migrate_before(empty_dsn, "0027", tmp_path / "migrations")
    with connect(empty_dsn, autocommit=True) as c:
        for i in range(5):
            _block(c, f"alpha beta alpha, again and again {i}")
        before = c.execute("SELECT id, tsv, tsv_len FROM agent.blocks ORDER BY id").fetchall()
    assert "0027_lexical_once.sql" in migrate.migrate(empty_dsn)
    with connect(empty_dsn, autocommit=True) as c:
        assert c.execute("SELECT id, tsv, tsv_len FROM agent.blocks ORDER BY id").fetchall() == before
        _block(c, "gamma gamma delta")
        first = before[0]["id"]
        c.execute("UPDATE agent.blocks SET body_md = 'epsilon zeta zeta zeta' WHERE id = %s", (first,))
        c.execute("UPDATE agent.blocks SET title = 'Theta heading' WHERE id = %s", (first + 1,))
        c.execute("UPDATE agent.blocks SET heading_path = 'Iota > Kappa' WHERE id = %s", (first + 2,))
        c.execute("UPDATE agent.blocks SET chunk_key = 'k', source_table = 'agent.facts', source_id = 1"
                  " WHERE id = %s", (first + 3,))
        c.execute("UPDATE agent.blocks SET tsv = to_tsvector('lambda'), tsv_len = 99 WHERE id = %s", (first + 4,))
        row = c.execute("SELECT tsv::text AS t, tsv_len FROM agent.blocks WHERE id = %s", (first,)).fetchone()
        assert row == {"t": "'epsilon':2 'n':1 'zeta':3,4,5", "tsv_len": 5}  # title 'N' first
        _derived(c)
        _exact(c)
