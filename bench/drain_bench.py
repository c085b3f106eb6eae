"""One drain of a conversation backlog, the claims growing (memsync's rule, next_claim) against
claims of a fixed size, alternated in one process so the machine's drift falls on both.

A set of episodic_bench.py is imported once into a template database; each round copies it
(CREATE DATABASE ... TEMPLATE) and drains the copy with a fresh worker, once per variant, the
order alternating between rounds; after each drain the raw encode of the very blocks it
produced (the model alone, every text in one call) is timed, the floor the drain is held to.
Prints per round the sync time and sync ÷ raw encode, then the medians and the ratio of the
medians (grown ÷ fixed).

Usage: python bench/drain_bench.py [--set synthetic-6k] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import episodic_bench

from memsync.app import Memsync
from memsync.embed import SentenceTransformerEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.text import chunk
from memsync.write import sync, worker

VARIANTS = {"grown": sync.next_claim, "fixed": lambda size, claimed, embedded: size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="synthetic-6k", help="a set of episodic_bench.py (synthetic, longmemeval, ...)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    embedder = SentenceTransformerEmbedder(cache_dir=Path(tempfile.mkdtemp(prefix="memsync-drain-models-")))
    embedder.encode(["warm up"])
    by_subject, _ = episodic_bench.load_set(args.set)
    home = Path(tempfile.mkdtemp(prefix="memsync-drain-"))
    template = embedded.server_uri(home, database="template_set")
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    try:
        migrate.migrate(template)
        with Memsync(Settings.from_env({}, home=home, dsn=template), embedder=embedder,
                     indexes=[PgvectorIndex(template)]) as app, connect(template, autocommit=True) as conn:
            episodic_bench.import_set(app, conn, by_subject)
        dsn = embedded.server_uri(home, database="drain")
        admin = embedded.server_uri(home, database="postgres")
        for r in range(args.rounds):
            order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                with connect(admin, autocommit=True) as a:
                    a.execute("DROP DATABASE IF EXISTS drain WITH (FORCE)")
                    a.execute("CREATE DATABASE drain TEMPLATE template_set")
                worker.next_claim = VARIANTS[name]  # type: ignore[assignment]
                t0 = time.perf_counter()
                stats = worker.Worker(Settings.from_env({}, home=home, dsn=dsn), dsn, embedder,
                                      [PgvectorIndex(dsn)]).drain()
                synced = time.perf_counter() - t0
                with connect(dsn, autocommit=True) as c:
                    texts = [chunk.block_text(x) for x in c.execute(
                        "SELECT chunk_key, title, heading_path, body_md, metadata->>'context' AS context"
                        " FROM agent.blocks")]
                t0 = time.perf_counter()
                embedder.encode(texts)
                raw = time.perf_counter() - t0
                runs[name].append({"sync_s": synced, "raw_encode_s": raw, "ratio": synced / raw,
                                   "items": stats.items, "blocks": len(texts)})
                if not args.json:
                    print(f"round {r + 1} {name}: {stats.items} items, {len(texts)} blocks, sync {synced:.1f} s,"
                          f" raw encode {raw:.1f} s, ratio {synced / raw:.2f}", flush=True)
    finally:
        worker.next_claim = sync.next_claim  # type: ignore[assignment]
        embedded.stop(home)
    out: dict[str, Any] = {name: {"sync_s": [x["sync_s"] for x in xs], "ratio": [x["ratio"] for x in xs],
                                  "sync_median_s": statistics.median(x["sync_s"] for x in xs),
                                  "ratio_median": statistics.median(x["ratio"] for x in xs)}
                           for name, xs in runs.items()}
    out["grown_over_fixed"] = out["grown"]["sync_median_s"] / out["fixed"]["sync_median_s"]
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name in VARIANTS:
        print(f"{name}: sync median {out[name]['sync_median_s']:.1f} s, sync ÷ raw encode median "
              f"{out[name]['ratio_median']:.2f}")
    print(f"grown ÷ fixed (sync medians): {out['grown_over_fixed']:.2f}")


if __name__ == "__main__":
    main()
