"""search(): dense + lexical (BM25) over blocks, fused by RRF, mapped back to the rows
the blocks came from."""

from __future__ import annotations

import math
import time
from concurrent.futures import wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np

from memsync.errors import SearchError
from memsync.index import as_array
from memsync.read import fusion, when
from memsync.runtime import Runtime
from memsync.storage.db import DictConn
from memsync.storage.db import search as q
from memsync.storage.filters import Filters
from memsync.text.clean import unstorable
from memsync.vocabulary import MAX_HITS, SEARCH_MODES, SearchMode

Mode = SearchMode
MODES = SEARCH_MODES
Fusion = Literal["zscore", "rrf"]
FUSIONS = ("zscore", "rrf")
# How deep each signal's list is read for the background of its z-scores (fusion.zscore):
# set before it was measured (bench/fusion_study.py kept 100 per signal); 60 and 80 read
# within noise of it on every labelled set
BACKGROUND = 100


@dataclass
class SearchOptions:
    k: int = 10
    mode: Mode = "hybrid"
    fusion: Fusion = "zscore"  # how hybrid combines its signals (see memsync.read.fusion)
    rrf_k: int = 60
    weights: dict[str, float] = field(default_factory=lambda: {"dense": 1.0, "lexical": 1.0})
    candidates: int | None = None  # per signal; default max(4k, 40)
    mmr_lambda: float | None = None
    recency_half_life_days: float | None = None
    as_of: datetime | None = None  # facts are served when current then (default: now)
    # conversation recall: turns inside the time window the query names ("in May 2023",
    # "last week", memsync.read.when) rank ahead of the others
    time_window: bool = True


def _number(name: str, value: object, *, low: float, high: float | None = None, whole: bool = False) -> None:
    ok = isinstance(value, int if whole else (int, float)) and not isinstance(value, bool)
    if ok and isinstance(value, float):
        ok = math.isfinite(value)
    if not ok or value < low or (high is not None and value > high):  # type: ignore[operator]
        kind = "a whole number" if whole else "a number"
        bound = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
        raise SearchError(f"{name} must be {kind} {bound}, got {value!r}")


def check(query: object, opts: SearchOptions) -> None:
    """Every option a caller can pass, checked before anything reaches SQL or the model."""
    if not isinstance(query, str) or unstorable(query):
        raise SearchError("query must be text without NUL characters or lone surrogates")
    if opts.mode not in MODES:
        raise SearchError(f"unknown search mode {opts.mode!r}; use one of {', '.join(MODES)}")
    if opts.fusion not in FUSIONS:
        raise SearchError(f"unknown fusion {opts.fusion!r}; use one of {', '.join(FUSIONS)}")
    _number("k", opts.k, low=1, high=MAX_HITS, whole=True)
    if not isinstance(opts.time_window, bool):
        raise SearchError(f"time_window must be true or false, got {opts.time_window!r}")
    _number("rrf_k", opts.rrf_k, low=1, whole=True)
    if opts.candidates is not None:
        _number("candidates", opts.candidates, low=1, high=100_000, whole=True)
    if not isinstance(opts.weights, dict) or set(opts.weights) - {"dense", "lexical"}:
        raise SearchError(f"weights are for 'dense' and 'lexical' only, got {opts.weights!r}")
    for name, w in opts.weights.items():
        _number(f"weights.{name}", w, low=0)
    if opts.mmr_lambda is not None:
        _number("mmr_lambda", opts.mmr_lambda, low=0, high=1)
    if opts.recency_half_life_days is not None:
        _number("recency_half_life_days", opts.recency_half_life_days, low=1e-6)


@dataclass
class Hit:
    block_id: int
    score: float
    text: str
    title: str | None
    heading_path: str | None
    block_type: str
    source_table: str | None
    source_id: int | None
    artifact_id: int | None
    artifact_external_id: str | None
    global_id: str
    subject_type: str | None
    subject_id: int | None
    token_count: int | None
    created_at: datetime
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    covers: list[int] | None = None  # an exchange block: the events it holds, in order (source_id the last)
    # the time of what it holds: a turn's when it was said, a fact's when it became valid,
    # else when the block was written (as_of and since read this time)
    memory_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["memory_at"] = self.memory_at.isoformat() if self.memory_at else None
        return d


@dataclass
class Timing:
    """Where one search's time went, stage by stage (ms). dense and lexical run at once, so
    total is about embed + max(dense, lexical) + hits + fusion."""

    pool_ms: float = 0.0  # the connection checkout and its health check (Memsync.search)
    embed_ms: float = 0.0  # the query embedding
    dense_ms: float = 0.0  # the kNN query on the dense index
    lexical_ms: float = 0.0  # BM25 in Postgres (beside the kNN)
    fusion_ms: float = 0.0  # combining the two lists (and recency, MMR when asked)
    hits_ms: float = 0.0  # loading the hits' rows, dropping facts that are not current
    total_ms: float = 0.0

    def to_dict(self) -> dict[str, float]:
        from dataclasses import asdict

        return {k: round(v, 3) for k, v in asdict(self).items()}


def search(rt: Runtime, conn: DictConn, query: str, opts: SearchOptions | None = None,
           filters: Filters | None = None, timing: Timing | None = None, *,
           since: datetime | None = None) -> list[Hit]:
    """Blocks ranked, best first. A hit's time is the time of what it holds (a turn's when it
    was said, a fact's validity, else when it was written): as of a past time (`opts.as_of`)
    a later one is not served, nor one earlier than `since`. Blocks timed by their writing
    are bounded before ranking (the filters); turns and facts after fusion (hit_rows), so the
    others keep their order."""
    opts = opts or SearchOptions()
    check(query, opts)
    t = timing or Timing()
    started = time.perf_counter()
    f = filters or Filters()
    if opts.as_of or since:  # blocks timed by their writing are bounded before ranking
        f = f.model_copy(update={"memory_before": opts.as_of or f.memory_before,
                                 "memory_after": since or f.memory_after})
    lists, background, qvec = _signals(rt, conn, query, opts, f, t)
    t0 = time.perf_counter()
    fused = _fuse(lists, background, opts, opts.weights)
    t.fusion_ms = 1000 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    # recency and MMR re-rank every candidate, so they need every row; else the best first
    whole = bool(opts.recency_half_life_days) or (opts.mmr_lambda is not None and qvec is not None)
    rows = _rows(conn, [x.block_id for x in fused], len(fused) if whole else opts.k, opts.as_of, since)
    t.hits_ms = 1000 * (time.perf_counter() - t0)
    # a block deleted since it was indexed, a fact not current, a turn outside as_of/since
    fused = [x for x in fused if x.block_id in rows]
    t0 = time.perf_counter()
    if opts.recency_half_life_days:
        fused = fusion.apply_recency(fused, {b: r["memory_at"] for b, r in rows.items()},
                                     opts.as_of or datetime.now(timezone.utc), opts.recency_half_life_days)
    if opts.mmr_lambda is not None and qvec is not None:
        vecs = q.stored_vectors(conn, rt.embedder.model_id, [x.block_id for x in fused])
        fused = fusion.mmr(fused, {b: as_array(v) for b, v in vecs.items()}, qvec,
                           opts.k, opts.mmr_lambda)
    t.fusion_ms += 1000 * (time.perf_counter() - t0)
    hits = [_hit(x, rows[x.block_id]) for x in fused[: opts.k]]
    t.total_ms = 1000 * (time.perf_counter() - started)
    return hits


def _rows(conn: DictConn, ranked: list[int], k: int, as_of: datetime | None, since: datetime | None
          ) -> dict[int, dict[str, Any]]:
    """The hit rows of the best `k` of `ranked` (block ids, best first) that are still
    served. The rows are read best first, twice k at a time and doubling while fewer than k
    were kept: loading every candidate (~80 for ten hits) cost ~1.5 ms of rows most searches
    never show, 4x the best 20's."""
    rows: dict[int, dict[str, Any]] = {}
    start, batch = 0, 2 * k
    while start < len(ranked) and len(rows) < k:
        rows.update(q.hit_rows(conn, ranked[start:start + batch], as_of, since))
        start, batch = start + batch, 2 * batch
    return rows


def search_events(rt: Runtime, conn: DictConn, query: str, opts: SearchOptions | None = None,
                  filters: Filters | None = None, timing: Timing | None = None, *,
                  since: datetime | None = None) -> list[tuple[int, float]]:
    """Conversation turns (agent.events rows) ranked, best first, with their fused scores.
    Each signal's candidates are split by granularity, a turn's own blocks and the exchange
    blocks that hold it with the turn before, and each part projected to the events it covers
    (an event takes its best block's score), so four lists are fused on an equal footing: a
    turn found both alone and in its exchange ranks above one found only once. Measured in
    bench/episodic_bench.py (and bench/granularity_probe.py outside memsync).

    A turn's time is when it was said: as of a past time (`opts.as_of`) a later turn is not
    served, and one said before `since` is left out."""
    opts = opts or SearchOptions()
    check(query, opts)
    t = timing or Timing()
    started = time.perf_counter()
    f = (filters or Filters()).model_copy(update={"source_tables": ("agent.events",)})
    lists, background, _ = _signals(rt, conn, query, opts, f, t)
    t0 = time.perf_counter()
    # turns only, so no as_of here: turns said after it are dropped after fusion (below), as search
    # drops its hits; removed before, they would change the others' standardised scores and order
    rows = q.grains(conn, list({b for ranked in background.values() for b, _ in ranked}))
    t.hits_ms = 1000 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    projected = by_event(lists, rows)
    fused = _fuse(projected, by_event(background, rows), opts,
                  {name: opts.weights.get(name.split(":", 1)[0], 1.0) for name in projected})
    span = when.window(query, opts.as_of) if opts.time_window else None
    bounded = since is not None or opts.as_of is not None
    at = q.event_times(conn, [x.block_id for x in fused]) if fused and (span is not None or bounded) else {}
    if bounded:
        fused = [x for x in fused if x.block_id in at and (since is None or at[x.block_id] >= since)
                 and (opts.as_of is None or at[x.block_id] <= opts.as_of)]
    if span is not None and fused:
        # inside the window first, each part in its fused order: a turn the words or the meaning
        # found still ranks, but one from the month asked about comes before one from another
        held = {e for e, t_at in at.items() if span.holds(t_at)}
        fused = [x for x in fused if x.block_id in held] + [x for x in fused if x.block_id not in held]
    t.fusion_ms = 1000 * (time.perf_counter() - t0)
    t.total_ms = 1000 * (time.perf_counter() - started)
    return [(x.block_id, x.score) for x in fused[: opts.k]]


def _fuse(lists: dict[str, list[tuple[int, float]]], background: dict[str, list[tuple[int, float]]],
          opts: SearchOptions, weights: dict[str, float]) -> list[fusion.Fused]:
    if opts.fusion == "rrf":
        return fusion.rrf(lists, k=opts.rrf_k, weights=weights)
    return fusion.zscore(lists, weights=weights, background=background)


def by_event(lists: dict[str, list[tuple[int, float]]], rows: dict[int, dict[str, Any]]
             ) -> dict[str, list[tuple[int, float]]]:
    """Each signal's block candidates split by granularity ('dense:turn', 'dense:exchange', …)
    and projected onto the events they hold, best first: an event keeps its best block's
    score. `rows`: each block's source, block type and covers (search.grains)."""
    parts: dict[str, dict[int, float]] = {}
    for signal, ranked in lists.items():
        for block_id, score in ranked:  # best first
            r = rows.get(block_id)
            if r is None or r["source_table"] != "agent.events" or r["source_id"] is None:
                continue
            grain = "exchange" if r["block_type"] == "exchange" else "turn"
            part = parts.setdefault(f"{signal}:{grain}", {})
            for event in r["covers"] or [r["source_id"]]:
                part.setdefault(int(event), score)
    return {name: list(part.items()) for name, part in parts.items()}


def _signals(rt: Runtime, conn: DictConn, query: str, opts: SearchOptions, f: Filters, t: Timing
             ) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, float]]], np.ndarray | None]:
    """Each signal's candidate blocks, best first; the same signal's deeper list, the
    background its scores are standardised against (fusion.zscore); the query vector (dense).
    The deeper list costs little: BM25 keeps the budget (which lexemes select blocks) of the
    list fused, a scope is scanned whole either way, and an HNSW search is not widened for it
    (it gives what its candidates hold)."""
    n = opts.candidates or max(4 * opts.k, 40)
    depth = max(n, BACKGROUND) if opts.fusion == "zscore" and opts.mode == "hybrid" else n
    lists: dict[str, list[tuple[int, float]]] = {}
    qvec: np.ndarray | None = None
    want_dense = opts.mode in ("hybrid", "dense") and bool(query.strip())
    want_lexical = opts.mode in ("hybrid", "lexical") and bool(query.strip())
    if want_dense:
        # the model gets the CPU to itself: with BM25 running beside it on a small machine its
        # threads stall each other (measured: query embedding 19 ms alone, 44 ms beside BM25)
        t0 = time.perf_counter()
        qvec = rt.embedder.encode_query(query)
        t.embed_ms = 1000 * (time.perf_counter() - t0)
    # then the two index queries run at once: BM25 on the caller's connection (another
    # thread), the dense kNN on the index's own connection (this thread)
    lexical = rt.lexical_pool().submit(_timed_bm25, conn, query, depth, n, f, t) if want_lexical else None
    try:
        if qvec is not None:
            t0 = time.perf_counter()
            lists["dense"] = rt.search_index().search(rt.embedder.model_id, qvec, n, f, depth=depth)
            t.dense_ms = 1000 * (time.perf_counter() - t0)
    except BaseException:
        if lexical is not None:
            wait([lexical])  # never hand back `conn` while the other thread still uses it
        raise
    if lexical is not None:
        lists["lexical"] = lexical.result()
    return {name: ranked[:n] for name, ranked in lists.items()}, lists, qvec


def _timed_bm25(conn: DictConn, query: str, depth: int, n: int, f: Filters, t: Timing) -> list[tuple[int, float]]:
    t0 = time.perf_counter()
    try:
        return q.bm25(conn, query, depth, f, budget=max(q.BM25_CANDIDATES, q.BM25_PER_HIT * n))
    finally:
        t.lexical_ms = 1000 * (time.perf_counter() - t0)


def _hit(x: fusion.Fused, r: dict[str, Any]) -> Hit:
    d = x.signals.get("dense")
    lx = x.signals.get("lexical")
    return Hit(
        block_id=x.block_id, score=x.score, text=r["body_md"] or "", title=r["title"], heading_path=r["heading_path"],
        block_type=r["block_type"], source_table=r["source_table"], source_id=r["source_id"],
        artifact_id=r["artifact_id"], artifact_external_id=r["artifact_external_id"], global_id=r["global_id"],
        subject_type=r["subject_type"], subject_id=r["subject_id"], token_count=r["token_count"],
        created_at=r["created_at"],
        dense_rank=d[0] if d else None, dense_score=d[1] if d else None,
        lexical_rank=lx[0] if lx else None, lexical_score=lx[1] if lx else None,
        covers=r.get("covers"), memory_at=r["memory_at"],
    )
