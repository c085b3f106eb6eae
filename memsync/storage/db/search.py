"""SQL for search: block filters, BM25 over the stored tsvector, dense kNN in pgvector,
and hit materialization. Caller text only ever travels as a bound parameter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from psycopg import sql

from memsync.storage.db import DictConn
from memsync.storage.filters import TIMED_SOURCES, Filters, subject_key

BM25_K1 = 1.2
BM25_B = 0.75
# Expected candidates (summed document frequency of the selecting lexemes); the trade-off
# against the exact top 10 is measured by bench/bm25_budget_bench.py (figures in the README).
BM25_CANDIDATES = 400
BM25_PER_HIT = 10


def where(f: Filters, alias: str = "b") -> tuple[sql.Composable, dict[str, Any]]:
    """A WHERE fragment over agent.blocks and its parameters (named, prefixed f_)."""
    a = sql.Identifier(alias)
    parts: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {}
    if f.block_types:
        parts.append(sql.SQL("{}.block_type = ANY(%(f_block_types)s)").format(a))
        params["f_block_types"] = list(f.block_types)
    if f.source_tables:
        parts.append(sql.SQL("{}.source_table = ANY(%(f_source_tables)s)").format(a))
        params["f_source_tables"] = list(f.source_tables)
    if f.artifact_ids:
        parts.append(sql.SQL("{}.artifact_id = ANY(%(f_artifact_ids)s)").format(a))
        params["f_artifact_ids"] = list(f.artifact_ids)
    if f.subjects or f.scoped:
        parts.append(sql.SQL("{}.subject_key = ANY(%(f_subject_keys)s)").format(a))
        params["f_subject_keys"] = [subject_key(t, i) for t, i in f.subjects]
    if f.created_after:
        parts.append(sql.SQL("{}.created_at >= %(f_after)s").format(a))
        params["f_after"] = f.created_after
    if f.created_before:
        parts.append(sql.SQL("{}.created_at <= %(f_before)s").format(a))
        params["f_before"] = f.created_before
    timed = sql.SQL("{}.source_table = ANY(%(f_timed)s)").format(a)  # turns and facts: see hit_rows
    for key, value, op in (("f_mem_after", f.memory_after, ">="), ("f_mem_before", f.memory_before, "<=")):
        if value:
            parts.append(sql.SQL("({} OR {}.created_at {} %({})s)").format(timed, a, sql.SQL(op), sql.SQL(key)))
            params[key], params["f_timed"] = value, list(TIMED_SOURCES)
    return sql.SQL(" AND ").join(parts), params


def selective(f: Filters) -> bool:
    """Filters that narrow the blocks to a small set (a subject scope, artifacts): apply them
    first and rank inside. Other filters are checked on the ranked candidates."""
    return bool(f.subjects or f.scoped or f.artifact_ids)


_TERMS = """WITH q AS (SELECT DISTINCT u.lexeme AS term FROM unnest(to_tsvector('english', %(q)s)) u),
                s AS (SELECT n_docs, greatest(total_len::float8 / greatest(n_docs, 1), 1.0) AS avgdl
                        FROM memsync.bm25_corpus),
                -- folded totals plus the deltas not folded yet (migration 0025), per query lexeme;
                -- materialized so that the delta lookup runs once per lexeme, not per use of df
                dfs AS MATERIALIZED (
                       SELECT q.term, coalesce(t.df, 0) + coalesce((SELECT sum(d.df) FROM memsync.term_stats_delta d
                                                                    WHERE d.term = q.term), 0) AS df
                         FROM q LEFT JOIN memsync.term_stats t ON t.term = q.term),
                qt AS (SELECT dfs.term, dfs.df, ln(1 + (s.n_docs - dfs.df + 0.5) / (dfs.df + 0.5)) AS idf
                         FROM dfs CROSS JOIN s WHERE dfs.df > 0)"""
# the rarest lexemes while their expected matches (df scaled by the searched share of the
# corpus, `share`) stay within the budget; the rarest always
_SELECT = """sel AS (SELECT term FROM (SELECT term, df, sum(df) OVER (ORDER BY df, term) AS cum FROM qt) r, share
                         WHERE r.cum = r.df OR r.cum * share.f <= %(budget)s)"""


def _hit(terms: str) -> str:
    """A block's lexemes that are the query's (`terms`, an SQL text[]), cut out in C so that
    only those are unnested: tsv is all weight D, so setweight 'A' on the query's lexemes then
    ts_filter '{a}' keeps exactly those. Braces doubled for sql.SQL.format."""
    return f"ts_filter(setweight(b.tsv, 'A', {terms}), '{{{{a}}}}')"


_SCORE = """SELECT c.id AS block_id,
                  sum(qt.idf * (x.tf * (%(k1)s + 1)) / (x.tf + %(k1)s * (1 - %(b)s + %(b)s * c.len / s.avgdl))) AS score
             FROM cand c CROSS JOIN s
             CROSS JOIN LATERAL (SELECT u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf
                                   FROM unnest(c.hit) u) x
             JOIN qt ON qt.term = x.lexeme
            GROUP BY c.id
            ORDER BY score DESC, c.id
            LIMIT %(k)s"""


def _bm25_scope(conn: DictConn, query: str, k: int, f: Filters, budget: int) -> list[tuple[int, float]]:
    """BM25 in a subject scope. The GIN index over (subject key, lexical vector), migration
    0024, yields the blocks of the scope that hold a selected lexeme without reading the
    scope's other blocks or the lexemes' matches elsewhere; the tsquery, an init-plan value,
    is a condition the index takes."""
    cond, params = where(f)
    stmt = sql.SQL(_TERMS + """,
                share AS (SELECT (SELECT count(*) FROM agent.blocks b WHERE {cond})::float8
                                 / greatest(s.n_docs, 1) AS f FROM s),
                """ + _SELECT + """,
                cand AS (SELECT b.id, """ + _hit("(SELECT array_agg(term) FROM qt)") + """ AS hit,
                                b.tsv_len AS len
                           FROM agent.blocks b
                          WHERE ARRAY[b.subject_key] && %(f_subject_keys)s::text[]
                            AND b.tsv @@ (SELECT string_agg(quote_literal(term), ' | ')::tsquery FROM sel)
                            AND {cond})
           """ + _SCORE).format(cond=cond)
    rows = conn.execute(stmt, {**params, "q": query, "k": k, "k1": BM25_K1, "b": BM25_B, "budget": budget}).fetchall()
    return [(int(r["block_id"]), float(r["score"])) for r in rows]


def bm25(conn: DictConn, query: str, k: int, f: Filters, budget: int | None = None) -> list[tuple[int, float]]:
    """Okapi BM25 from the term statistics kept in memsync.term_stats / corpus_stats (and their deltas).

    Candidates are blocks matching any of the query's rarest lexemes, taken rarest first
    while their expected matches (document frequency, scaled to the scope's share of the
    corpus when a scope applies) stay within the candidate budget (BM25_CANDIDATES, or
    BM25_PER_HIT per requested hit; the rarest lexeme always): a keyword-only hit can win, and
    a term found in most blocks (a speaker's name in a conversation) does not drag the whole
    scope into scoring. Every query lexeme still counts in the score of
    each candidate; when the budget covers every lexeme this is exact BM25."""
    budget = budget or max(BM25_CANDIDATES, BM25_PER_HIT * k)
    if f.subjects or f.scoped:
        return _bm25_scope(conn, query, k, f, budget)
    return bm25_walk_or_index(conn, query, k, f, budget)


def bm25_walk_or_index(conn: DictConn, query: str, k: int, f: Filters, budget: int) -> list[tuple[int, float]]:
    """BM25 that reads and tests every block a selective filter keeps (an artifact scope;
    any scope when called directly, as bench/bm25_scope_bench.py's reference does), else
    finds its candidates through the GIN index."""
    cond, params = where(f)
    scoped = selective(f)
    stmt = sql.SQL(
        _TERMS + """,
                -- materialized: the planner cannot estimate a tsquery built at run time and would
                -- otherwise scan the GIN index over the whole corpus before applying the scope
                scope AS MATERIALIZED (SELECT b.id, b.tsv, b.tsv_len FROM agent.blocks b WHERE {scope_cond}),
                share AS (SELECT CASE WHEN %(scoped)s THEN (SELECT count(*) FROM scope)::float8 / greatest(s.n_docs, 1)
                                      ELSE 1.0 END AS f FROM s),
                """ + _SELECT + """,
                tq AS (SELECT (SELECT string_agg(quote_literal(term), ' | ')::tsquery FROM sel) AS query,
                              (SELECT array_agg(term) FROM qt) AS terms),
                cand AS (SELECT b.id, """ + _hit("tq.terms") + """ AS hit, b.tsv_len AS len
                           FROM {cand_from} WHERE b.tsv @@ tq.query AND {cand_cond})
           """ + _SCORE
    ).format(
        scope_cond=cond if scoped else sql.SQL("false"),
        # in an artifact scope, walk its blocks (already filtered); else let the GIN index find them
        cand_from=sql.SQL("scope b CROSS JOIN tq" if scoped else "agent.blocks b CROSS JOIN tq"),
        cand_cond=sql.SQL("true") if scoped else cond,
    )
    rows = conn.execute(stmt, {**params, "q": query, "k": k, "k1": BM25_K1, "b": BM25_B,
                               "budget": budget,
                               "scoped": scoped}).fetchall()
    return [(int(r["block_id"]), float(r["score"])) for r in rows]


# A scope with at least this many blocks is searched through the HNSW index with iterative
# scans (pgvector >= 0.8); a smaller one is scanned exactly, which is faster there. Measured
# by bench/scoped_knn_bench.py (figures in the README).
ITERATIVE_MIN_SCOPE = 8000
MAX_SCAN_TUPLES = 40_000  # an iterative scan gives up after this many tuples (then: exact)


def _candidates(k: int) -> int:
    """How many index candidates to take for k hits: an iterative scan in relaxed order yields
    near neighbours first but not in order, so more are taken and re-sorted exactly."""
    return min(1000, max(40, 4 * k))


def _ef(k: int) -> sql.Composed:
    # twice the candidates: recall on filtered scans rose with it (bench/scoped_knn_bench.py)
    return sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(min(1000, 2 * _candidates(k))))


def scope_at_least(conn: DictConn, f: Filters, n: int) -> bool:
    """Whether the filtered blocks number n or more (reads at most n index entries)."""
    cond, params = where(f)
    row = conn.execute(sql.SQL("SELECT count(*) AS c FROM (SELECT 1 FROM agent.blocks b WHERE {} LIMIT {}) x")
                       .format(cond, sql.Literal(n)), params).fetchone()
    return row is not None and int(row["c"]) >= n


def dense(conn: DictConn, model: str, vector: npt.NDArray[np.float32], k: int, f: Filters,
          iterative: bool = False, *, depth: int | None = None) -> list[tuple[int, float]]:
    """Cosine kNN in the pgvector projection.

    Selective filters (a subject scope, artifacts): a small scope is scanned exactly (a
    subject scope through the projection's subject key, see _scope_scan); a large one, where
    the server has pgvector >= 0.8 (`iterative`), goes through the model's HNSW index with
    iterative scans (relaxed order, re-sorted here), falling back to the exact scan if that
    finds fewer than k. Other filters: the HNSW index, filters checked on its
    candidates (iteratively where supported); fewer than k left: the exact scan answers.

    `depth` (hybrid fusion's background): an exact scan returns that many, since it reads
    the scope whole anyway; the HNSW path returns up to that many of the candidates it took
    for k, never searching wider for them (at 100k vectors asking it for 100 instead of 40
    took 11.3 against 5.3 ms)."""
    dim = sql.Literal(len(vector))
    cond, params = where(f)
    deep, kc = max(k, depth or k), _candidates(k)
    params.update({"v": vector, "m": model, "k": deep, "kc": kc, "kh": min(deep, max(k, kc))})
    # Artifacts, or a scope whose nearest vectors mostly fail its other filters: the ids as an
    # array probed through the projection's key. A join let the planner
    # merge-join along the block_id index from its start, reading every vector below the
    # scope's highest id (server time per 2,951-block scope of a 11,804-block database: 6.1
    # to 9.0 ms by where the scope's ids lie, 6.2 to 7.1 ms probed). The distance once per
    # row, sorted by its output column (an ORDER BY repeating the expression beside
    # `1 - distance` computed it twice: 0.7x the time); ties in block order.
    exact = sql.SQL(
        """SELECT p.block_id, p.embedding::vector({d}) <=> %(v)s::vector({d}) AS dist
             FROM memsync.pgvector_index p
            WHERE p.model = %(m)s AND p.block_id = ANY(ARRAY(SELECT b.id FROM agent.blocks b WHERE {cond}))
            ORDER BY dist, p.block_id LIMIT %(k)s"""
    ).format(d=dim, cond=cond)
    approx = sql.SQL(
        """WITH c AS MATERIALIZED (
             SELECT p.block_id, p.embedding::vector({d}) <=> %(v)s::vector({d}) AS dist
               FROM memsync.pgvector_index p JOIN agent.blocks b ON b.id = p.block_id
              WHERE p.model = %(m)s AND {cond}
              ORDER BY p.embedding::vector({d}) <=> %(v)s::vector({d}) LIMIT %(kc)s)
           SELECT block_id, dist FROM c ORDER BY dist LIMIT %(kh)s"""
    ).format(d=dim, cond=cond)
    if selective(f) and not (iterative and scope_at_least(conn, f, ITERATIVE_MIN_SCOPE)):
        rows = _scope_scan(conn, dim, cond, params) if f.subjects or f.scoped else None
        if rows is None:
            rows = conn.execute(exact, params).fetchall()
        return [(int(r["block_id"]), 1.0 - float(r["dist"])) for r in rows]
    with conn.transaction():
        conn.execute(_ef(k))  # for k: a deeper list comes from the same candidates
        if iterative:
            conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            conn.execute(sql.SQL("SET LOCAL hnsw.max_scan_tuples = {}").format(sql.Literal(MAX_SCAN_TUPLES)))
        rows = conn.execute(approx, params).fetchall()
    if len(rows) < k and not f.is_empty():
        rows = conn.execute(exact, params).fetchall()
    return [(int(r["block_id"]), 1.0 - float(r["dist"])) for r in rows]


# The nearest vectors of a subject scope read first, before the scope's other filters are
# checked on agent.blocks: this many per result asked for, at least SCOPE_OVERFETCH_MIN.
SCOPE_OVERFETCH = 4
SCOPE_OVERFETCH_MIN = 200


def _scope_scan(conn: DictConn, dim: sql.Composable, cond: sql.Composable, params: dict[str, Any]
                ) -> list[dict[str, Any]] | None:
    """The exact scan of a subject scope through the projection's own subject key (one index
    range, no probe per block), nearest first; the filter, subjects included, is checked on
    agent.blocks for those nearest only. Exact whenever k of them pass, or the scope holds
    no more than were read; None otherwise (the caller scans the filtered blocks instead)."""
    over = max(SCOPE_OVERFETCH * int(params["k"]), SCOPE_OVERFETCH_MIN)
    with conn.transaction():
        # The scope's rows through its index, never a scan of the whole projection: for a
        # scope of a quarter of the vectors the planner costs the two alike (random_page_cost
        # for a cached table), but the sequential scan reads every vector page (10.5 against
        # 4.5 ms for 2,951 of 11,804 rows); for a scope of all rows the two take the same.
        conn.execute("SET LOCAL enable_seqscan = off")
        rows = conn.execute(sql.SQL(
            """WITH c AS MATERIALIZED (
                 SELECT p.block_id, p.embedding::vector({d}) <=> %(v)s::vector({d}) AS dist
                   FROM memsync.pgvector_index p
                  WHERE p.model = %(m)s AND p.subject_key = ANY(%(f_subject_keys)s)
                  ORDER BY dist, p.block_id LIMIT {over})
               SELECT c.block_id, c.dist, (SELECT count(*) FROM c) AS read
                 FROM c JOIN agent.blocks b ON b.id = c.block_id
                WHERE {cond}
                ORDER BY c.dist, c.block_id LIMIT %(k)s""").format(d=dim, over=sql.Literal(over), cond=cond),
            params).fetchall()
    if len(rows) >= int(params["k"]) or (rows and int(rows[0]["read"]) < over):
        return rows
    return None


def hit_rows(conn: DictConn, block_ids: Sequence[int], as_of: datetime | None = None,
             since: datetime | None = None) -> dict[int, dict[str, Any]]:
    """The hits' rows, each with `memory_at`, the time of what it holds: a turn's when it was
    said, a fact's when it became valid, any other block's when it was written. Left out: a
    block that is gone, whose fact is not current at `as_of` (now by default: not yet valid,
    forgotten or superseded), whose memory is later than `as_of` or earlier than `since`
    (when given). History and facts written today with their own past times are memory as of
    those times."""
    rows = conn.execute(
        """SELECT b.id AS block_id, b.global_id, b.block_type, b.title, b.heading_path, b.body_md,
                  b.source_table, b.source_id, b.artifact_id, b.subject_type, b.subject_id,
                  b.content_hash, b.token_count, b.created_at, b.updated_at, a.external_id AS artifact_external_id,
                  b.metadata->'covers' AS covers,
                  coalesce(e.occurred_at, f.valid_from, b.created_at) AS memory_at
             FROM agent.blocks b LEFT JOIN agent.artifacts a ON a.id = b.artifact_id
             -- an exchange block belongs to its later turn (its source)
             LEFT JOIN agent.events e ON b.source_table = 'agent.events' AND e.id = b.source_id
             LEFT JOIN agent.facts f ON b.source_table = 'agent.facts' AND f.id = b.source_id
            WHERE b.id = ANY(%(ids)s)
              -- a forgotten or superseded fact leaves search at once, before the sync drops its
              -- block; a fact not yet valid is indexed but served only once it is
              AND (f.id IS NULL OR memsync.is_current(f.valid_from, f.valid_to, coalesce(%(at)s, now())))
              AND (%(at)s::timestamptz IS NULL OR f.id IS NOT NULL
                   OR coalesce(e.occurred_at, b.created_at) <= %(at)s)
              AND (%(since)s::timestamptz IS NULL OR coalesce(e.occurred_at, f.valid_from, b.created_at) >= %(since)s)""",
        {"ids": list(block_ids), "at": as_of, "since": since},
    ).fetchall()
    return {r["block_id"]: r for r in rows}


def grains(conn: DictConn, block_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What projects a block onto the turns it holds (its source, block type and covers),
    without the text and times hit_rows loads: conversation search reads it for every
    candidate of both signals, and a block that is gone is left out."""
    rows = conn.execute(
        """SELECT id AS block_id, source_table, source_id, block_type, metadata->'covers' AS covers
             FROM agent.blocks WHERE id = ANY(%s)""", (list(block_ids),)).fetchall()
    return {r["block_id"]: r for r in rows}


def event_times(conn: DictConn, event_ids: Sequence[int]) -> dict[int, datetime]:
    rows = conn.execute("SELECT id, occurred_at FROM agent.events WHERE id = ANY(%s)", (list(event_ids),)).fetchall()
    return {r["id"]: r["occurred_at"] for r in rows}


def stored_vectors(conn: DictConn, model: str, block_ids: Sequence[int]) -> dict[int, Any]:
    rows = conn.execute(
        """SELECT b.id, e.embedding FROM agent.blocks b
             JOIN memsync.embeddings e ON e.model = %s AND e.content_hash = b.content_hash
            WHERE b.id = ANY(%s)""",
        (model, list(block_ids)),
    ).fetchall()
    return {r["id"]: r["embedding"] for r in rows}
