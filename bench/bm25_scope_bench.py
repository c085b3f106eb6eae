"""BM25 in a subject scope by scope size, measured in one run: memsync's path (the GIN
index over subject key and lexical vector, migration 0024) against testing each block of the
scope (the path memsync took below 8,000 blocks before it), and whether both return the same
top 10 (they score the same candidates, so they should).

N synthetic blocks whose text is drawn from the labelled docs' vocabulary (tests/data), in
scopes (projects) of several sizes plus one filler project; queries are the docs' front-matter
descriptions. The text is uniform over the vocabulary, so a query's rarest lexemes still
match ~6-40k blocks over the corpus: the worst case for postings read from an index.

Usage: python bench/bm25_scope_bench.py [--n 100000] [--queries 45] [--json]
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

from memsync.storage import embedded, migrate
from memsync.storage.db import DictConn, connect
from memsync.storage.db import search as sq
from memsync.storage.filters import Filters

DOCS = Path(__file__).resolve().parents[1] / "tests" / "data" / "mastra_docs"
SCOPES = (200, 1000, 2000, 4000, 8000, 20000)


def corpus() -> tuple[list[str], list[str]]:
    vocab, queries = [], []
    for path in sorted(DOCS.rglob("*.md*")):
        text = path.read_text(errors="replace")
        vocab += re.findall(r"[A-Za-z]{3,}", text)
        m = re.search(r"^description:\s*[\"']?(.+?)[\"']?\s*$", text, re.M)
        if m:
            queries.append(m.group(1))
    return vocab, queries


def load(dsn: str, n: int, vocab: list[str]) -> None:
    rng = random.Random(7)
    subjects: list[int] = []
    for pid, size in enumerate(SCOPES, start=1):
        subjects += [pid] * size
    subjects += [len(SCOPES) + 1] * max(0, n - len(subjects))
    rng.shuffle(subjects)
    with connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO erp.projects (name) SELECT 'p' || i FROM generate_series(1, %s) i",
                     (len(SCOPES) + 1,))
        conn.execute("SELECT set_config('memsync.origin', 'sync', false)")
        with conn.cursor() as cur, cur.copy(
                "COPY agent.blocks (block_type, body_md, subject_type, subject_id, content_hash, source_table,"
                " source_id, chunk_key) FROM STDIN") as cp:
            for i, pid in enumerate(subjects[:n]):
                words = " ".join(rng.choice(vocab) for _ in range(rng.randint(40, 160)))
                cp.write_row(("doc_section", words, "project", pid, f"h{i:08d}", "agent.artifacts", 10_000_000 + i, "k"))
        conn.execute("VACUUM ANALYZE agent.blocks")  # the steady state autovacuum keeps: visibility map set


def walk(conn: DictConn, query: str, k: int, f: Filters) -> list[tuple[int, float]]:
    """The reference: the scope's blocks read first, each tested for the selected lexemes,
    scored as memsync scores."""
    return sq.bm25_walk_or_index(conn, query, k, f, max(sq.BM25_CANDIDATES, sq.BM25_PER_HIT * k))


def measure(dsn: str, queries: list[str]) -> list[dict[str, Any]]:
    out = []
    with connect(dsn, autocommit=True) as conn:
        for pid, size in enumerate(SCOPES, start=1):
            f = Filters(subjects=(("project", pid),), scoped=True)
            walked, indexed, same = [], [], 0
            for warm in (True, False):  # a first pass over the queries warms the cache and plans
                for q in queries:
                    t0 = time.perf_counter()
                    a = walk(conn, q, 10, f)
                    t1 = time.perf_counter()
                    b = sq.bm25(conn, q, 10, f)
                    t2 = time.perf_counter()
                    if not warm:
                        walked.append(t1 - t0)
                        indexed.append(t2 - t1)
                        same += [x for x, _ in a] == [x for x, _ in b]
            out.append({"scope": size, "walk_p50_ms": 1000 * statistics.median(walked),
                        "memsync_p50_ms": 1000 * statistics.median(indexed), "same_top10": same / len(queries)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=45)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    vocab, queries = corpus()
    queries = (queries * (a.queries // max(1, len(queries)) + 1))[: a.queries]
    home = Path(tempfile.mkdtemp(prefix="memsync-bm25-bench-"))
    dsn = embedded.server_uri(home)
    try:
        migrate.migrate(dsn)
        t0 = time.perf_counter()
        load(dsn, a.n, vocab)
        loaded = time.perf_counter() - t0
        rows = measure(dsn, queries)
    finally:
        embedded.stop(home)
    if a.json:
        print(json.dumps({"n": a.n, "load_s": loaded, "rows": rows}, indent=2))
        return
    print(f"{a.n} blocks loaded in {loaded:.0f}s; k=10, {len(queries)} queries")
    print(f"{'scope':>7} {'walk p50':>9} {'memsync p50':>12} {'ratio':>6} {'same top10':>11}")
    for r in rows:
        print(f"{r['scope']:>7} {r['walk_p50_ms']:>7.2f}ms {r['memsync_p50_ms']:>10.2f}ms "
              f"{r['memsync_p50_ms'] / r['walk_p50_ms']:>6.2f} {r['same_top10']:>11.2f}")


if __name__ == "__main__":
    main()
