"""retrieve()/search benchmark, ratios measured in one run.

1. Scale: N synthetic blocks (text drawn from a real docs vocabulary, random unit vectors)
   in the embedded PostgreSQL + pgvector. For each N: retrieve() latency p50/p99 with a
   one-section semantic recipe, and the ratio
       retrieve() total / (query embedding + raw pgvector kNN query)
   for hybrid (dense + BM25) and dense-only sections: `ratio` with the query embedded through
   the model's batch path (sentence-transformers), `fast_ratio` through memsync's own query
   path (encode_query: the ONNX graph on a CPU), the stricter floor.
2. Quality: nDCG@10 of dense, lexical and hybrid on the labelled set (Mastra docs pages,
   each queried by its own front-matter description): the 45-page test subset by default,
   or the whole corpus with --full (needs bench/data, see ingest_bench.py); beside them, in
   the same run, a naive reference (dense and the `bm25s` package over fixed 180-word
   windows, documents ranked by their best window, fused by RRF k=60). `bm25s` is installed
   for the bench only: pip install bm25s. A second corpus: --ai-sdk (the docs shipped in the
   npm package ai@6.0.326, Vercel's AI SDK, Apache-2.0, fetched once with `npm pack` into
   bench/data/), or --corpus DIR for any markdown folder whose pages carry a `description`.

Usage: python bench/retrieve_bench.py [--sizes 10000,100000] [--queries 100]
                                      [--full | --ai-sdk | --corpus DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ingest_bench import npm_package  # bench/ is the script's folder, first on sys.path

from docs_ingest.ingest import Ingestor
from memsync.embed import SentenceTransformerEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.read.context import Retriever
from memsync.read.fusion import ndcg
from memsync.read.hybrid import SearchOptions, search
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.storage.db import context as ctxq
from memsync.storage.db.blocks import lexical_upkeep
from memsync.storage.db.vectors import ensure_hnsw

ROOT = Path(__file__).resolve().parents[1]
SUBSET = ROOT / "tests" / "data" / "mastra_docs"
FULL = ROOT / "bench" / "data" / "package" / ".docs" / "raw"
AI_SDK = "ai@6.0.326"


def ai_sdk_docs() -> Path:
    """The AI SDK's docs folder, fetched once (npm pack) into bench/data/ai-sdk/."""
    return npm_package(AI_SDK, ROOT / "bench" / "data" / "ai-sdk") / "docs"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def load_synthetic(dsn: str, model: str, n: int, start: int, vocab: list[str], rng: random.Random) -> None:
    """Blocks written as the worker would (origin=sync), with stored embeddings and points."""
    dim = 384
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT set_config('memsync.origin', 'sync', false)")
        conn.execute("SET maintenance_work_mem = '512MB'")
        with conn.cursor() as cur:
            with cur.copy("COPY agent.blocks (block_type, body_md, heading_path, subject_type, subject_id,"
                          " content_hash, source_table, source_id, chunk_key, token_count) FROM STDIN") as cp:
                for i in range(start, start + n):
                    count = rng.randint(40, 160)
                    words = " ".join(rng.choice(vocab) for _ in range(count))
                    cp.write_row(("doc_section", words, f"Synthetic page {i}", "project", 1 + i % 50,
                                  f"syn{i:08d}", "agent.artifacts", 10_000_000 + i, "k", count + 4))
            vecs = np.random.default_rng(start).standard_normal((n, dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            with cur.copy("COPY memsync.embeddings (model, content_hash, dim, embedding) FROM STDIN") as cp:
                for i, v in zip(range(start, start + n), vecs, strict=True):
                    cp.write_row((model, f"syn{i:08d}", dim, "[" + ",".join(f"{x:.6f}" for x in v) + "]"))
        conn.execute("""INSERT INTO memsync.pgvector_index (model, block_id, content_hash, embedding)
                        SELECT e.model, b.id, b.content_hash, e.embedding FROM agent.blocks b
                          JOIN memsync.embeddings e ON e.model = %s AND e.content_hash = b.content_hash
                        ON CONFLICT DO NOTHING""", (model,))
        lexical_upkeep(conn)  # as the worker does after each batch
        conn.execute("ANALYZE agent.blocks")
        conn.execute("ANALYZE memsync.pgvector_index")


def scale(rt: Runtime, sizes: list[int], queries: list[str], vocab: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rng = random.Random(7)
    model = rt.embedder.model_id
    loaded = 0
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        for mode in ("hybrid", "dense"):
            ctxq.put_recipe(conn, f"bench_{mode}", None, {"scope": "subject", "budget_tokens": 100000, "sections": [
                {"name": "docs", "kind": "semantic", "query": "{query}", "mode": mode, "top_k": 10, "max_items": 10}]})
        conn.execute("INSERT INTO erp.projects (name) SELECT 'project ' || i FROM generate_series(1, 50) i")
        retriever = Retriever(rt, conn, log=False)
        for n in sizes:
            t0 = time.perf_counter()
            conn.execute("DROP INDEX IF EXISTS memsync.{}".format(__import__("memsync.storage.db.vectors", fromlist=["x"])
                         .hnsw_index_name(model)))
            load_synthetic(rt.dsn, model, n - loaded, loaded, vocab, rng)
            ensure_hnsw(conn, model, 384)
            loaded = n
            row: dict[str, Any] = {"load_and_index_s": time.perf_counter() - t0}
            for mode in ("hybrid", "dense"):
                totals, bases, fast = [], [], []
                for i, q in enumerate(queries):
                    subject = ("project", 1 + i % 50)
                    t1 = time.perf_counter()
                    retriever.retrieve(f"bench_{mode}", subject, query=q)
                    total = time.perf_counter() - t1
                    # the floor: embed the query, one raw kNN in pgvector (HNSW, no filter). The
                    # embedding through the model's batch path (the floor as first defined), and
                    # through memsync's own query path (the ONNX graph on a CPU) for a second floor
                    # (memsync's path first: right after a torch encode, whose OpenMP threads
                    # spin on for a while, it measured ~2 ms slower than inside retrieve())
                    t2 = time.perf_counter()
                    rt.embedder.encode_query(q)
                    t3 = time.perf_counter()
                    vec = rt.embedder.encode([q])[0]
                    t4 = time.perf_counter()
                    conn.execute(
                        "SELECT block_id FROM memsync.pgvector_index WHERE model = %s"
                        " ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT 10", (model, vec.tolist())
                    ).fetchall()
                    t5 = time.perf_counter()
                    totals.append(total)
                    bases.append((t4 - t3) + (t5 - t4))
                    fast.append((t3 - t2) + (t5 - t4))
                    row.setdefault("raw_knn_ms", []).append(1000 * (t5 - t4))
                row[f"{mode}_retrieve_p50_ms"] = 1000 * statistics.median(totals)
                row[f"{mode}_retrieve_p99_ms"] = 1000 * pct(totals, 0.99)
                row[f"{mode}_floor_p50_ms"] = 1000 * statistics.median(bases)
                row[f"{mode}_ratio_p50"] = statistics.median(totals) / statistics.median(bases)
                row[f"{mode}_fast_floor_p50_ms"] = 1000 * statistics.median(fast)
                row[f"{mode}_fast_ratio_p50"] = statistics.median(totals) / statistics.median(fast)
            row["raw_knn_p50_ms"] = statistics.median(row.pop("raw_knn_ms"))
            out[str(n)] = row
    return out


WINDOW_WORDS = 180
RRF_K = 60


def _doc_ranking(owner: list[int], window_scores: Any) -> list[str]:
    """Documents ranked by their best window."""
    best: dict[int, float] = {}
    for doc, score in zip(owner, window_scores, strict=True):
        if doc not in best or score > best[doc]:
            best[doc] = float(score)
    return [str(d) for d, _ in sorted(best.items(), key=lambda x: -x[1])]


def naive_reference(rt: Runtime, conn: Any, labelled: list[dict[str, Any]]) -> dict[str, float]:
    """The reference memsync's hybrid must beat: plain dense over fixed 180-word windows and
    the bm25s package over the same windows, each ranked at document level by the best
    window, fused by RRF (k=60). Same model, same document texts (front matter stripped)."""
    import bm25s

    windows: list[str] = []
    owner: list[int] = []
    for d in conn.execute("SELECT id, body_md FROM agent.artifacts WHERE deleted_at IS NULL ORDER BY id"):
        words = (d["body_md"] or "").split()
        for i in range(0, len(words), WINDOW_WORDS):
            windows.append(" ".join(words[i:i + WINDOW_WORDS]))
            owner.append(int(d["id"]))
    vecs = np.asarray(rt.embedder.encode(windows), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    lexical = bm25s.BM25()
    lexical.index(bm25s.tokenize(windows, stopwords="en", show_progress=False), show_progress=False)
    totals = {"dense": 0.0, "bm25s": 0.0, "rrf": 0.0}
    for row in labelled:
        qv = np.asarray(rt.embedder.encode([row["query"]])[0], dtype=np.float32)
        dense = _doc_ranking(owner, vecs @ (qv / np.linalg.norm(qv)))
        ids, scores = lexical.retrieve(bm25s.tokenize([row["query"]], stopwords="en", show_progress=False),
                                       k=len(windows), show_progress=False)
        lex = _doc_ranking([owner[i] for i in ids[0]], scores[0])
        fused: dict[str, float] = {}
        for ranking in (dense, lex):
            for rank, doc in enumerate(ranking, start=1):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (RRF_K + rank)
        want = {str(row["id"])}
        totals["dense"] += ndcg(dense, want)
        totals["bm25s"] += ndcg(lex, want)
        totals["rrf"] += ndcg(sorted(fused, key=lambda d: -fused[d]), want)
    return {f"naive_ndcg10_{k}": v / len(labelled) for k, v in totals.items()}


def quality(rt: Runtime, corpus: Path) -> dict[str, float]:
    Ingestor(rt, corpus).run()
    scores: dict[str, float] = {}
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        labelled = conn.execute(
            "SELECT id, metadata->'front_matter'->>'description' AS query FROM agent.artifacts"
            " WHERE metadata->'front_matter'->>'description' IS NOT NULL ORDER BY id").fetchall()
        # hybrid with its default fusion (z-scores), and with rank fusion beside it
        for name, mode, fusion in (("dense", "dense", "zscore"), ("lexical", "lexical", "zscore"),
                                   ("hybrid", "hybrid", "zscore"), ("hybrid_rrf", "hybrid", "rrf")):
            total = 0.0
            for row in labelled:
                hits = search(rt, conn, row["query"], SearchOptions(k=40, mode=mode, fusion=fusion))  # type: ignore[arg-type]
                total += ndcg(list(dict.fromkeys(str(h.artifact_id) for h in hits)), {str(row["id"])})
            scores[f"ndcg10_{name}"] = total / len(labelled)
        scores.update(naive_reference(rt, conn, labelled))
        scores["queries"] = float(len(labelled))
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=100)
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--full", action="store_true", help="quality on the whole Mastra docs corpus")
    which.add_argument("--ai-sdk", action="store_true", help=f"quality on the docs of the npm package {AI_SDK}")
    which.add_argument("--corpus", type=Path, help="quality on this markdown folder (queries: page descriptions)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quality-only", action="store_true", help="skip the scale part")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="memsync-retrieve-bench-"))
    # as a user gets it: queries through ONNX Runtime on a CPU, the graph exported into the
    # home's cache as Settings.home makes it (without a cache folder every query went through
    # torch, ~2x the query time, and `fast_ratio` measured torch against torch)
    embedder = SentenceTransformerEmbedder(cache_dir=home)
    embedder.encode(["warm up"])
    embedder.encode_query("warm up")
    results: dict[str, Any] = {}
    try:
        dsn = embedded.server_uri(home, database="quality")
        migrate.migrate(dsn)
        rt = Runtime(Settings.from_env({}, home=home), dsn, embedder, [PgvectorIndex(dsn)])
        corpus = FULL if args.full else ai_sdk_docs() if args.ai_sdk else args.corpus or SUBSET
        results["quality"] = quality(rt, corpus)
        with connect(dsn, autocommit=True) as conn:
            queries = [r["q"] for r in conn.execute(
                "SELECT metadata->'front_matter'->>'description' AS q FROM agent.artifacts"
                " WHERE metadata->'front_matter'->>'description' IS NOT NULL")]
            vocab = [w for r in conn.execute("SELECT body_md FROM agent.blocks")
                     for w in re.findall(r"[A-Za-z]{3,}", r["body_md"] or "")]
        queries = (queries * (args.queries // max(1, len(queries)) + 1))[: args.queries]
        if not args.quality_only:
            dsn2 = embedded.server_uri(home, database="scale")
            migrate.migrate(dsn2)
            rt2 = Runtime(Settings.from_env({}, home=home), dsn2, embedder, [PgvectorIndex(dsn2)])
            results["scale"] = scale(rt2, [int(s) for s in args.sizes.split(",")], queries, vocab)
    finally:
        embedded.stop(home)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for k, v in results["quality"].items():
        print(f"{k:28} {v:8.3f}")
    for n, row in results.get("scale", {}).items():
        print(f"--- {n} blocks")
        for k, v in row.items():
            print(f"{k:28} {v:8.2f}")


if __name__ == "__main__":
    main()
