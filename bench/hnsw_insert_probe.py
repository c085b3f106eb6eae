"""What an HNSW index costs a sync, and which of its settings move that cost: N clustered unit
vectors (384-d, 200 topics: HNSW on structureless random vectors says little) inserted into a
fresh table in the embedded PostgreSQL in transactions of 128 rows, as the worker writes them,
without an index, with pgvector's defaults (m 16, ef_construction 64), and with one setting
changed at a time. Prints ms per row, the WAL written, and for each index its recall@10 against
the exact top 10 and query p50 over 200 new vectors, at pgvector's default ef_search (40) or at
each --ef-search given (memsync's unscoped search asks twice its candidates: 80 and up).

Loading the rows without the index and building it once (the variant a bulk drain takes,
memsync/index/pgvector.py defer_graph) costs a fraction of the inserts.

memsync keeps pgvector's defaults: a sparser graph (m 8) halves the insert time but loses recall
on these vectors, and an index over a halfvec copy saves no insert time on a CPU without fast
fp16. The recall figures are pessimistic (within a topic these vectors are near-uniform noise in
384 dimensions, harder for a graph than a model's embeddings); compare them across variants.

Usage: python bench/hnsw_insert_probe.py [--rows 6000] [--rounds 1] [--ef-search 40,80]
                                        [--only TEXT] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from memsync.storage import embedded
from memsync.storage.db import connect

BATCH = 128
QUERIES = 200
VARIANTS: list[tuple[str, dict[str, str], str | None]] = [  # (label, server settings, index options)
    ("no index", {}, None),
    ("hnsw, pgvector defaults", {}, ""),
    ("no index, then the graph built once (a bulk drain)", {}, "build"),
    ("hnsw, wal_compression pglz", {"wal_compression": "pglz"}, ""),
    ("hnsw, full_page_writes off (probe only)", {"full_page_writes": "off"}, ""),
    ("hnsw, ef_construction 32", {}, "WITH (ef_construction = 32)"),
    ("hnsw, m 8", {}, "WITH (m = 8)"),
    ("hnsw over halfvec (fp16 copy in the index)", {}, "halfvec"),
]


def clustered(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(200, 384))
    v = centers[rng.integers(0, 200, n)] + 0.7 * rng.normal(size=(n, 384))
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True))


def insert(dsn: str, data: np.ndarray, settings: dict[str, str], index: str | None,
           efs: list[int]) -> dict[str, Any]:
    with connect(dsn, autocommit=True) as c:
        for k, v in settings.items():
            c.execute(f"ALTER SYSTEM SET {k} = '{v}'")
        c.execute("SELECT pg_reload_conf()")
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute("DROP TABLE IF EXISTS probe")
        c.execute("CREATE TABLE probe (id bigint PRIMARY KEY, v vector(384))")
        if index == "halfvec":
            c.execute("CREATE INDEX ON probe USING hnsw ((v::halfvec(384)) halfvec_cosine_ops)")
        elif index is not None and index != "build":
            c.execute(f"CREATE INDEX ON probe USING hnsw (v vector_cosine_ops) {index}")
        c.execute("CHECKPOINT")
        row = c.execute("SELECT pg_current_wal_lsn()::text AS l").fetchone()
        assert row is not None
        lsn0 = row["l"]
    rows = [(i, "[" + ",".join(f"{x:.6f}" for x in vec) + "]") for i, vec in enumerate(data)]
    t0 = time.perf_counter()
    with connect(dsn) as c:
        for s in range(0, len(rows), BATCH):
            with c.cursor() as cur:
                cur.executemany("INSERT INTO probe VALUES (%s, %s::vector)", rows[s:s + BATCH])
            c.commit()
        if index == "build":  # what Worker.drain does for a backlog as large as the index
            c.execute("CREATE INDEX ON probe USING hnsw (v vector_cosine_ops)")
            c.commit()
    seconds = time.perf_counter() - t0
    with connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn) AS w", (lsn0,)).fetchone()
        assert row is not None
        wal = row["w"]
        for k in settings:
            c.execute(f"ALTER SYSTEM RESET {k}")
        c.execute("SELECT pg_reload_conf()")
        out = {"ms_per_row": 1000 * seconds / len(rows), "wal_mb": float(wal) / 2**20}
        if index is not None:
            for ef in efs:
                c.execute(f"SET hnsw.ef_search = {int(ef)}")
                out.update({f"{k}@ef{ef}": v for k, v in recall(c, data, index == "halfvec").items()})
    return out


def recall(conn: Any, data: np.ndarray, half: bool) -> dict[str, float]:
    """recall@10 of the index (at the session's ef_search) against the exact top 10, and the
    query's p50, over QUERIES new vectors from the same topics."""
    queries = clustered(QUERIES, seed=2)
    col, cast = ("v::halfvec(384)", "halfvec(384)") if half else ("v", "vector(384)")
    found, ms = 0, []
    for qv in queries:
        exact = set(np.argsort(-(data @ qv))[:10].tolist())
        lit = "[" + ",".join(f"{x:.6f}" for x in qv) + "]"
        t0 = time.perf_counter()
        got = conn.execute(f"SELECT id FROM probe ORDER BY {col} <=> %s::{cast} LIMIT 10", (lit,)).fetchall()
        ms.append(1000 * (time.perf_counter() - t0))
        found += len(exact & {int(r["id"]) for r in got})
    return {"recall_at_10": found / (10 * len(queries)), "query_p50_ms": float(np.median(ms))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--ef-search", default="40", help="comma-separated hnsw.ef_search values to measure recall at")
    ap.add_argument("--only", default="", help="run only the variants whose label holds one of these (comma-separated)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    efs = [int(x) for x in args.ef_search.split(",")]
    picked = [v for v in VARIANTS if not args.only or any(w in v[0] for w in args.only.split(","))]
    home = Path(tempfile.mkdtemp(prefix="memsync-hnsw-probe-"))
    data = clustered(args.rows)
    out: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in picked}
    try:
        dsn = embedded.server_uri(home, database="probe")
        for _ in range(args.rounds):  # variants alternated within each round
            for label, settings, index in picked:
                out[label].append(insert(dsn, data, settings, index, efs))
    finally:
        embedded.stop(home)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for label, runs in out.items():
        print(f"{label:44} " + "  ".join(
            f"{r['ms_per_row']:.2f} ms/row, WAL {r['wal_mb']:.1f} MB"
            + "".join(f", ef_search {ef}: recall@10 {r[f'recall_at_10@ef{ef}']:.3f}, query "
                      f"{r[f'query_p50_ms@ef{ef}']:.2f} ms" for ef in efs if f"recall_at_10@ef{ef}" in r)
            for r in runs))


if __name__ == "__main__":
    main()
