"""What an HNSW index costs a sync, and which of its settings move that cost: N clustered unit
vectors (384-d, 200 topics: HNSW on structureless random vectors says little) inserted into a
fresh table in the embedded PostgreSQL in transactions of 128 rows, as the worker writes them,
without an index, with pgvector's defaults (m 16, ef_construction 64), and with one setting
changed at a time. Prints ms per row and the WAL written.

memsync keeps pgvector's defaults; this probe says where the insert time goes (the graph search
while linking a new vector, not WAL), not what recall a cheaper graph would keep at 100k.

Usage: python bench/hnsw_insert_probe.py [--rows 6000] [--rounds 1] [--json]
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
VARIANTS: list[tuple[str, dict[str, str], str | None]] = [  # (label, server settings, index options)
    ("no index", {}, None),
    ("hnsw, pgvector defaults", {}, ""),
    ("hnsw, wal_compression pglz", {"wal_compression": "pglz"}, ""),
    ("hnsw, full_page_writes off (probe only)", {"full_page_writes": "off"}, ""),
    ("hnsw, ef_construction 32", {}, "WITH (ef_construction = 32)"),
    ("hnsw, m 8", {}, "WITH (m = 8)"),
]


def clustered(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(200, 384))
    v = centers[rng.integers(0, 200, n)] + 0.7 * rng.normal(size=(n, 384))
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True))


def insert(dsn: str, data: np.ndarray, settings: dict[str, str], index: str | None) -> dict[str, float]:
    with connect(dsn, autocommit=True) as c:
        for k, v in settings.items():
            c.execute(f"ALTER SYSTEM SET {k} = '{v}'")
        c.execute("SELECT pg_reload_conf()")
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute("DROP TABLE IF EXISTS probe")
        c.execute("CREATE TABLE probe (id bigint PRIMARY KEY, v vector(384))")
        if index is not None:
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
    seconds = time.perf_counter() - t0
    with connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn) AS w", (lsn0,)).fetchone()
        assert row is not None
        wal = row["w"]
        for k in settings:
            c.execute(f"ALTER SYSTEM RESET {k}")
        c.execute("SELECT pg_reload_conf()")
    return {"ms_per_row": 1000 * seconds / len(rows), "wal_mb": float(wal) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="memsync-hnsw-probe-"))
    data = clustered(args.rows)
    out: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in VARIANTS}
    try:
        dsn = embedded.server_uri(home, database="probe")
        for _ in range(args.rounds):  # variants alternated within each round
            for label, settings, index in VARIANTS:
                out[label].append(insert(dsn, data, settings, index))
    finally:
        embedded.stop(home)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for label, runs in out.items():
        print(f"{label:40} " + "  ".join(f"{r['ms_per_row']:.2f} ms/row, WAL {r['wal_mb']:.1f} MB" for r in runs))


if __name__ == "__main__":
    main()
