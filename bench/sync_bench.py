"""Sync pipeline benchmark, printed as ratios measured in one run.

1. commit -> searchable latency of a single reflection, minus the time the model takes to
   embed that reflection's chunks (the part memsync adds): p50 / p99.
2. burst of N reflections: drain time / pure model.encode() time of exactly the same chunks
   (the drain with `memsync run`'s default pool; the encode in one call on every core).
3. the pipeline without the model: the same burst drained with the hashing embedder (no model
   cost), its wall time and the CPU time of Postgres (every `postgres` process) and of this
   process per chunk, beside the model's CPU per chunk from 2: on a machine whose cores the
   model fills, that CPU is what the drain adds to the encode.

Runs on the embedded PostgreSQL in a throw-away folder, pgvector index, the real model.
Usage: [MEMSYNC_DEVICE=cuda] [MEMSYNC_PRECISION=fp32] python bench/sync_bench.py [--burst 1000] [--single 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

from psycopg.types.json import Jsonb

from memsync.embed import HashingEmbedder, SentenceTransformerEmbedder, from_settings
from memsync.index.pgvector import PgvectorIndex
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.text.chunk import block_text
from memsync.write.worker import make_pool, run_pool

TOPICS = ["invoicing", "client onboarding", "database migration", "hiring", "weekly planning",
          "deep work", "sales pipeline", "incident review", "roadmap", "customer support"]


def reflection(i: int) -> tuple[Jsonb, Jsonb, str]:
    t = TOPICS[i % len(TOPICS)]
    return (Jsonb([f"Make progress on {t} item {i}", f"Review notes about {t}"]),
            Jsonb([f"Waiting for feedback on {t} draft {i}"]),
            f"Day {i}: spent the morning on {t}; the afternoon went to meetings and email. "
            f"Energy was {'high' if i % 2 else 'low'} and the main lesson was to batch {t} work.")


def postgres_cpu_seconds() -> float:
    """CPU time of every process named postgres (Linux /proc); the embedded server's own."""
    total = 0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if "(postgres)" in stat:
                fields = stat.rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--single", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="memsync-bench-"))
    dsn = embedded.server_uri(home)
    migrate.migrate(dsn)
    settings = Settings.from_env(dict(os.environ), home=home, poll_seconds=5.0)
    # MEMSYNC_DEVICE / MEMSYNC_PRECISION choose the encode path, as for `memsync run`
    embedder = from_settings(settings)
    assert isinstance(embedder, SentenceTransformerEmbedder), "the bench measures the real model"
    embedder.encode(["warm up the model"])
    results: dict[str, float | int | str] = {"device": embedder.active_device or "?",
                                             "precision": embedder.active_precision or "?"}
    try:
        with connect(dsn, autocommit=True) as conn:
            # ---- 1. single-reflection latency, daemon running
            stop = threading.Event()
            rt = Runtime(settings, dsn, embedder, [PgvectorIndex(dsn)])
            workers = settings.workers  # as `memsync run` does
            pool = make_pool(rt, workers)
            thread = threading.Thread(target=run_pool, args=(pool, stop))
            thread.start()
            conn.execute("INSERT INTO agent.reflections (mode, raw_text) VALUES ('daily', 'warm-up')")
            while conn.execute("SELECT count(*) AS n FROM memsync.outbox").fetchone()["n"]:  # type: ignore[index]
                time.sleep(0.01)
            overheads, totals = [], []
            for i in range(args.single):
                goals, blockers, raw = reflection(10_000 + i)
                t0 = time.perf_counter()
                rid = conn.execute("INSERT INTO agent.reflections (mode, goals, blockers, raw_text) VALUES"
                                   " ('daily', %s, %s, %s) RETURNING id", (goals, blockers, raw)).fetchone()["id"]  # type: ignore[index]
                while not conn.execute(
                    "SELECT 1 FROM memsync.pgvector_index p JOIN agent.blocks b ON b.id = p.block_id"
                    " WHERE b.source_table = 'agent.reflections' AND b.source_id = %s"
                    " AND NOT EXISTS (SELECT 1 FROM memsync.outbox WHERE source_id = %s"
                    "                  AND source_table = 'agent.reflections')", (rid, rid)
                ).fetchone():
                    time.sleep(0.001)
                total = time.perf_counter() - t0
                texts = [block_text(r) for r in conn.execute(
                    "SELECT chunk_key, title, heading_path, body_md FROM agent.blocks"
                    " WHERE source_table = 'agent.reflections' AND source_id = %s", (rid,))]
                t1 = time.perf_counter()
                embedder.encode(texts)
                encode = time.perf_counter() - t1
                totals.append(total)
                overheads.append(total - encode)
                time.sleep(0.05)
            stop.set()
            thread.join()
            results["latency_total_p50_ms"] = 1000 * statistics.median(totals)
            results["latency_minus_embed_p50_ms"] = 1000 * statistics.median(overheads)
            results["latency_minus_embed_p99_ms"] = 1000 * pct(overheads, 0.99)

            # ---- 2. burst drain vs pure encode of the same chunks
            conn.execute("SELECT set_config('memsync.origin', '', false)")
            rows = [reflection(i) for i in range(args.burst)]
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany("INSERT INTO agent.reflections (mode, goals, blockers, raw_text) VALUES"
                                " ('daily', %s, %s, %s)", rows)
            before = embedder.encoded
            t0 = time.perf_counter()
            stats = run_pool(make_pool(rt, workers), threading.Event(), once=True)
            drain = time.perf_counter() - t0
            assert stats.failed == 0 and conn.execute("SELECT count(*) AS n FROM memsync.outbox").fetchone()["n"] == 0  # type: ignore[index]
            computed = embedder.encoded - before
            texts = [block_text(r) for r in conn.execute(
                "SELECT DISTINCT ON (content_hash) chunk_key, title, heading_path, body_md FROM agent.blocks"
                " WHERE source_table = 'agent.reflections' AND source_id > %s", (args.single + 1,))]
            embedder.set_threads(os.cpu_count() or 1)
            t1 = time.perf_counter()
            embedder.encode(texts)  # one call on every core: the model's own length-sorted batching, its best case
            encode = time.perf_counter() - t1
            results.update({
                "workers": workers, "burst_reflections": args.burst, "burst_chunks_embedded": computed,
                "burst_drain_s": drain, "burst_pure_encode_s": encode,
                "burst_drain_over_encode": drain / encode,
                "burst_chunks_per_s": computed / drain,
                "model_cpu_ms_per_chunk": 1000 * encode * (os.cpu_count() or 1) / max(1, len(texts)),
            })

            # ---- 3. the same burst without the model: what the pipeline itself costs
            conn.execute("TRUNCATE agent.reflections CASCADE")
            run_pool(make_pool(rt, workers), threading.Event(), once=True)  # the truncation's own work
            fake = Runtime(settings, dsn, HashingEmbedder(embedder.dim), [PgvectorIndex(dsn)])
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany("INSERT INTO agent.reflections (mode, goals, blockers, raw_text) VALUES"
                                " ('daily', %s, %s, %s)", rows)
            pg0, own0, t0 = postgres_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
            stats = run_pool(make_pool(fake, workers), threading.Event(), once=True)
            wall = time.perf_counter() - t0
            pg, own = postgres_cpu_seconds() - pg0, own_cpu_seconds() - own0
            n = max(1, stats.embedded)
            results.update({
                "no_model_chunks": stats.embedded, "no_model_drain_ms_per_chunk": 1000 * wall / n,
                "no_model_postgres_cpu_ms_per_chunk": 1000 * pg / n, "no_model_python_cpu_ms_per_chunk": 1000 * own / n,
                "pipeline_cpu_over_model_cpu": (pg + own) / n / (encode * (os.cpu_count() or 1) / max(1, len(texts))),
            })
            fake.close()
    finally:
        embedded.stop(home)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for k, v in results.items():
            print(f"{k:32} {v:10.3f}" if isinstance(v, float) else f"{k:32} {v!s:>10}")


if __name__ == "__main__":
    main()
