"""Scoped dense search: exact scan of the scope vs the HNSW index with iterative scans
(pgvector >= 0.8), by scope size, measured in one run. Sets where memsync switches
(memsync.storage.db.search.ITERATIVE_MIN_SCOPE).

N blocks with clustered unit vectors (384 dimensions, 500 topics) in the embedded PostgreSQL; scopes
(projects) of several sizes, the rest in one filler project. For each scope: p50 latency of
the exact path and of the iterative path for k=10 over Q random queries, and the iterative
path's recall@10 against the exact answer. Printed: a table and the smallest scope size
from which the iterative path is faster with recall >= 0.95 at every larger size.

Usage: python bench/scoped_knn_bench.py [--n 100000] [--queries 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.storage.db import search as sq
from memsync.storage.db.vectors import ensure_hnsw, vector_version
from memsync.storage.filters import Filters

MODEL = "bench-random-384"
SCOPES = (100, 300, 1000, 2000, 4000, 8000, 16000, 32000)


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors around 500 topic centroids: sentence embeddings cluster by topic, and
    HNSW's recall on structureless random vectors would say nothing about them."""
    centroids = rng.standard_normal((500, 384)).astype(np.float32)
    v = centroids[rng.integers(0, 500, n)] + 0.6 * rng.standard_normal((n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)  # type: ignore[no-any-return]


def load(dsn: str, n: int) -> None:
    rng = np.random.default_rng(1)
    subjects: list[int] = []
    for pid, size in enumerate(SCOPES, start=1):
        subjects += [pid] * size
    subjects += [len(SCOPES) + 1] * max(0, n - len(subjects))
    with connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO erp.projects (name) SELECT 'p' || i FROM generate_series(1, %s) i",
                     (len(SCOPES) + 1,))
        conn.execute("SELECT set_config('memsync.origin', 'sync', false)")
        conn.execute("SET maintenance_work_mem = '1GB'")
        with conn.cursor() as cur:
            with cur.copy("COPY agent.blocks (block_type, body_md, subject_type, subject_id, content_hash,"
                          " source_table, source_id, chunk_key) FROM STDIN") as cp:
                for i, pid in enumerate(subjects[:n]):
                    cp.write_row(("note", f"block {i}", "project", pid, f"h{i:08d}", "agent.artifacts",
                                  10_000_000 + i, "k"))
            vecs = clustered(rng, n)
            with cur.copy("COPY memsync.embeddings (model, content_hash, dim, embedding) FROM STDIN") as cp:
                for i, v in enumerate(vecs):
                    cp.write_row((MODEL, f"h{i:08d}", 384, "[" + ",".join(f"{x:.6f}" for x in v) + "]"))
        conn.execute("""INSERT INTO memsync.pgvector_index (model, block_id, content_hash, embedding)
                        SELECT e.model, b.id, b.content_hash, e.embedding FROM agent.blocks b
                          JOIN memsync.embeddings e ON e.model = %s AND e.content_hash = b.content_hash""", (MODEL,))
        ensure_hnsw(conn, MODEL, 384)
        conn.execute("ANALYZE agent.blocks")
        conn.execute("ANALYZE memsync.pgvector_index")


def measure(dsn: str, queries: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)  # the same centroids as the blocks: queries on their topics
    qs = clustered(rng, queries * len(SCOPES))
    out = []
    with connect(dsn, autocommit=True, vectors=True) as conn:
        for pid, size in enumerate(SCOPES, start=1):
            f = Filters(subjects=(("project", pid),), scoped=True)
            exact_t, iter_t, recall = [], [], []
            for j in range(queries):
                v = qs[(pid - 1) * queries + j]
                t0 = time.perf_counter()
                want = sq.dense(conn, MODEL, v, 10, f, iterative=False)
                t1 = time.perf_counter()
                sq.ITERATIVE_MIN_SCOPE = 0  # force the index path for this measurement
                got = sq.dense(conn, MODEL, v, 10, f, iterative=True)
                t2 = time.perf_counter()
                sq.ITERATIVE_MIN_SCOPE = default
                exact_t.append(t1 - t0)
                iter_t.append(t2 - t1)
                recall.append(len({b for b, _ in want} & {b for b, _ in got}) / max(1, len(want)))
            out.append({"scope": size, "exact_p50_ms": 1000 * statistics.median(exact_t),
                        "iterative_p50_ms": 1000 * statistics.median(iter_t), "recall": statistics.mean(recall)})
    return out


default = sq.ITERATIVE_MIN_SCOPE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="memsync-knn-bench-"))
    dsn = embedded.server_uri(home)
    try:
        migrate.migrate(dsn)
        with connect(dsn, autocommit=True) as conn:
            version = ".".join(map(str, vector_version(conn)))
        t0 = time.perf_counter()
        load(dsn, a.n)
        loaded = time.perf_counter() - t0
        rows = measure(dsn, a.queries)
    finally:
        embedded.stop(home)
    crossover = None
    for i, r in enumerate(rows):
        if all(x["iterative_p50_ms"] < x["exact_p50_ms"] and x["recall"] >= 0.95 for x in rows[i:]):
            crossover = r["scope"]
            break
    if a.json:
        print(json.dumps({"n": a.n, "pgvector": version, "load_s": loaded, "rows": rows, "crossover": crossover},
                         indent=2))
        return
    print(f"{a.n} blocks, pgvector {version}, loaded and indexed in {loaded:.0f}s; k=10, {a.queries} queries")
    print(f"{'scope':>7} {'exact p50':>10} {'iterative p50':>14} {'ratio':>6} {'recall@10':>10}")
    for r in rows:
        print(f"{r['scope']:>7} {r['exact_p50_ms']:>8.2f}ms {r['iterative_p50_ms']:>12.2f}ms "
              f"{r['iterative_p50_ms'] / r['exact_p50_ms']:>6.2f} {r['recall']:>10.3f}")
    print(f"crossover (iterative faster with recall >= 0.95 from here up): {crossover}; "
          f"memsync uses {default}")


if __name__ == "__main__":
    main()
