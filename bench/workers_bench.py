"""Worker recovery and scale-out, measured in one run with the real model and default settings.

1. Recovery: a `memsync run` daemon is SIGKILLed while it holds a batch; a new one is
   started at once. Printed: restart -> the killed batch claimed again (the dead worker's
   claims are free as soon as its connection is gone, not after the 300 s lease), and
   restart -> that batch indexed, beside the new process's own start-up (imports and model
   load) and the batch's own work. Then the same with a second daemon already running: kill
   -> the killed items claimed by the peer, and -> indexed (nothing restarts).
2. Scale-out: a burst of reflections (3 chunks each) drained by 1, 2 and 3 `memsync run`
   processes, each started and its model loaded before the burst is written; drain time
   divided by one encode() call over the same texts in this process, on every core.

Runs on the embedded PostgreSQL in a throw-away folder, pgvector index.
Usage: python bench/workers_bench.py [--burst 1000] [--max-workers 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from memsync.embed import SentenceTransformerEmbedder
from memsync.storage import embedded, migrate
from memsync.storage.db import DictConn, connect
from memsync.text.chunk import block_text

sys.path.insert(0, str(Path(__file__).parent))
from sync_bench import reflection

CLI = [sys.executable, "-m", "memsync.faces.cli", "run"]


def scalar(conn: DictConn, q: str, *args: object) -> int:
    row = conn.execute(q, args or None).fetchone()
    return int(next(iter(row.values()))) if row else 0


def wait(pred: Callable[[], bool], timeout: float = 900, step: float = 0.01) -> float:
    start = time.perf_counter()
    while not pred():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(step)
    return time.perf_counter()


def write_burst(conn: DictConn, start: int, n: int) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO agent.reflections (mode, goals, blockers, raw_text) VALUES ('daily', %s, %s, %s)",
                        [reflection(i) for i in range(start, start + n)])


def fresh(conn: DictConn) -> None:
    conn.execute("SET memsync.origin = 'sync'")
    conn.execute("DELETE FROM agent.reflections")
    conn.execute("DELETE FROM agent.blocks")
    conn.execute("RESET memsync.origin")
    conn.execute("TRUNCATE memsync.outbox, memsync.embeddings, memsync.ack_lag")


def recovery(conn: DictConn, env: dict[str, str]) -> dict[str, float]:
    write_burst(conn, 0, 600)
    first = subprocess.Popen(CLI, env=env, stdout=subprocess.DEVNULL)
    # a batch in hand, some already done: the kill lands mid-stream
    wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.outbox") < 560
         and scalar(conn, "SELECT count(*) FROM memsync.outbox WHERE claimed_by IS NOT NULL") > 0)
    held = [r["id"] for r in conn.execute("SELECT id FROM memsync.outbox WHERE claimed_by IS NOT NULL "
                                          "ORDER BY id LIMIT 64").fetchall()]
    first.send_signal(signal.SIGKILL)
    first.wait()
    t0 = time.perf_counter()
    second = subprocess.Popen(CLI, env=env, stdout=subprocess.DEVNULL)
    try:
        t_up = wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.workers w WHERE w.pid = %s "
                                         "AND w.id IN (SELECT memsync.live_workers())", second.pid) == 1)
        t_claim = wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.outbox o JOIN memsync.workers w "
                                            "ON w.id = o.claimed_by WHERE o.id = ANY(%s) AND w.pid = %s",
                                      held, second.pid) > 0)
        t_done = wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.outbox WHERE id = ANY(%s)", held) == 0)
        wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.outbox") == 0)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait()
    return {"killed_batch_items": len(held), "restart_to_worker_ready_s": t_up - t0,
            "ready_to_killed_batch_claimed_s": t_claim - t_up, "killed_batch_work_s": t_done - t_claim,
            "restart_to_killed_batch_indexed_s": t_done - t0}


def peer_takeover(conn: DictConn, env: dict[str, str]) -> dict[str, float]:
    """Two daemons share a burst; one is SIGKILLed holding a batch: the other takes it over."""
    fresh(conn)
    procs = [subprocess.Popen(CLI, env=env, stdout=subprocess.DEVNULL) for _ in range(2)]
    try:
        wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.live_workers()") == 2)
        write_burst(conn, 50_000, 600)
        victim, peer = procs
        wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.outbox o JOIN memsync.workers w ON w.id = o.claimed_by"
                                  " WHERE w.pid = %s", victim.pid) > 0)
        held = [r["id"] for r in conn.execute(
            "SELECT o.id FROM memsync.outbox o JOIN memsync.workers w ON w.id = o.claimed_by WHERE w.pid = %s",
            (victim.pid,)).fetchall()]
        victim.send_signal(signal.SIGKILL)
        t0 = time.perf_counter()
        victim.wait()
        t_claim = wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.outbox o JOIN memsync.workers w "
                                            "ON w.id = o.claimed_by WHERE o.id = ANY(%s) AND w.pid = %s",
                                      held, peer.pid) > 0)
        t_done = wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.outbox WHERE id = ANY(%s)", held) == 0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait()
    return {"peer_killed_items": len(held), "peer_kill_to_claimed_s": t_claim - t0,
            "peer_kill_to_indexed_s": t_done - t0}


def scale_out(conn: DictConn, env: dict[str, str], burst: int, workers: int) -> float:
    fresh(conn)
    procs = [subprocess.Popen(CLI, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
    try:
        wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.live_workers()") == workers)
        t0 = time.perf_counter()
        write_burst(conn, 10_000 * workers, burst)
        t1 = wait(lambda: scalar(conn, "SELECT count(*) FROM memsync.outbox") == 0, step=0.05)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
    return t1 - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--max-workers", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="memsync-bench-"))
    dsn = embedded.server_uri(home)
    migrate.migrate(dsn)
    env = {**os.environ, "MEMSYNC_DSN": dsn, "MEMSYNC_LOG_LEVEL": "WARNING"}
    results: dict[str, float] = {}
    try:
        with connect(dsn, autocommit=True) as conn:
            results.update(recovery(conn, env))
            results.update(peer_takeover(conn, env))
            drains = {w: scale_out(conn, env, args.burst, w) for w in range(1, args.max_workers + 1)}
            texts = [block_text(r) for r in conn.execute(
                "SELECT chunk_key, title, heading_path, body_md FROM agent.blocks ORDER BY id").fetchall()]
        embedder = SentenceTransformerEmbedder()
        embedder.encode(["warm up"])
        t0 = time.perf_counter()
        embedder.encode(texts)
        encode = time.perf_counter() - t0
        results.update({"burst_chunks": len(texts), "pure_encode_s": encode, "precision": embedder.active_precision})
        for w, d in drains.items():
            results[f"drain_{w}_processes_s"] = d
            results[f"drain_{w}_processes_over_encode"] = d / encode
    finally:
        embedded.stop(home)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for k, v in results.items():
            print(f"{k:40s} {v:.3f}" if isinstance(v, float) else f"{k:40s} {v}")


if __name__ == "__main__":
    main()
