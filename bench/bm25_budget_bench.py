"""BM25 candidate budget: agreement with exact BM25, quality and time, in one run.

The lexical signal scores only the blocks that hold the query's rarest terms, taken rarest
first until their expected matches reach a budget. This prints, for several budgets, on the
full Mastra docs corpus (each page queried by its own front-matter description):
nDCG@10 of the page, the share of the exact BM25 top 10 kept, and p50 latency.

Lexical only, so the corpus is ingested with the hashing embedder (no model time).
Usage: python bench/bm25_budget_bench.py [--budgets 400,1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ingest_bench import corpus

from docs_ingest.ingest import Ingestor
from memsync.embed import HashingEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.read.fusion import ndcg
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.storage.db.search import BM25_CANDIDATES, BM25_PER_HIT, bm25
from memsync.storage.filters import Filters

EXACT = 10**9
K = 40  # candidates per signal for a top-10 search


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default=f"200,{max(BM25_CANDIDATES, BM25_PER_HIT * K)},1000")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="memsync-bm25-bench-"))
    results: dict[str, Any] = {}
    try:
        dsn = embedded.server_uri(home)
        migrate.migrate(dsn)
        emb = HashingEmbedder()
        rt = Runtime(Settings.from_env({}, home=home, model=emb.model_id), dsn, emb, [PgvectorIndex(dsn)])
        Ingestor(rt, corpus() / "raw").run()
        with connect(dsn, autocommit=True) as conn:
            labelled = conn.execute(
                "SELECT id, metadata->'front_matter'->>'description' AS q FROM agent.artifacts"
                " WHERE metadata->'front_matter'->>'description' IS NOT NULL ORDER BY id").fetchall()
            artifact = {r["id"]: r["artifact_id"] for r in conn.execute("SELECT id, artifact_id FROM agent.blocks")}
            results["blocks"] = len(artifact)
            results["queries"] = len(labelled)
            exact: dict[int, list[int]] = {}
            for budget in [EXACT, *(int(b) for b in args.budgets.split(","))]:
                quality, kept, times = 0.0, 0.0, []
                for r in labelled:
                    t0 = time.perf_counter()
                    ids = [b for b, _ in bm25(conn, r["q"], K, Filters(), budget=budget)]
                    times.append(1000 * (time.perf_counter() - t0))
                    quality += ndcg(list(dict.fromkeys(str(artifact[b]) for b in ids)), {str(r["id"])})
                    top = exact.setdefault(r["id"], ids[:10])
                    kept += len(set(ids[:10]) & set(top)) / max(1, len(top))
                n = len(labelled)
                results["exact" if budget == EXACT else str(budget)] = {
                    "ndcg10": quality / n, "top10_kept": kept / n, "p50_ms": statistics.median(times)}
    finally:
        embedded.stop(home)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{results['blocks']} blocks, {results['queries']} queries")
    for name, row in results.items():
        if isinstance(row, dict):
            print(f"budget {name:>6}: nDCG@10 {row['ndcg10']:.3f}  exact top-10 kept {row['top10_kept']:.3f}"
                  f"  p50 {row['p50_ms']:.1f} ms")


if __name__ == "__main__":
    main()
