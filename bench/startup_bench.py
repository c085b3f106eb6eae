"""Start-up cost where nothing is embedded, as a user meets it: the CLI as subprocesses on the
embedded default (a fresh MEMSYNC_HOME), timed from the shell.

1. `memsync ingest CORPUS` the first time (it embeds and syncs everything);
2. `memsync run --once` with an empty queue;
3. `memsync ingest CORPUS` again, nothing changed, then `memsync run --once`;
4. `memsync search QUERY` (hybrid, the real model): the first exports and checks the query
   graph (and loads the model for it); later ones are served from that graph without the model.

Prints each command's median over --rounds, the ratio (unchanged re-ingest + run --once) /
first ingest, and how many log lines of other libraries (not memsync's own) each normal
command printed: none is the target.

Usage: python bench/startup_bench.py [--corpus DIR] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "memsync.faces.cli"]
LOG_LINE = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR) (\S+):", re.M)


def timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=3600)
    took = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"memsync {' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return took, out.stderr


def foreign(stderr: str) -> list[str]:
    """Log lines of loggers that are not memsync's."""
    return [m.group(0) for m in LOG_LINE.finditer(stderr) if not m.group(2).startswith("memsync")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT / "tests" / "data" / "mastra_docs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="memsync-startup-"))
    corpus = home / "corpus"
    shutil.copytree(args.corpus, corpus)
    env = {**os.environ, "MEMSYNC_HOME": str(home / "home")}
    env.pop("MEMSYNC_DSN", None)
    try:
        timed(["db", "migrate"], env)  # the embedded server is up and migrated before any timing
        first, first_err = timed(["ingest", str(corpus)], env)
        idle, reingest, drain, search = [], [], [], []
        noise: dict[str, list[str]] = {"ingest": foreign(first_err)}
        for _ in range(args.rounds):
            took, err = timed(["run", "--once"], env)
            idle.append(took)
            noise.setdefault("run --once", foreign(err))
            took, err = timed(["ingest", str(corpus)], env)
            reingest.append(took)
            noise.setdefault("ingest (unchanged)", foreign(err))
            took, _ = timed(["run", "--once"], env)
            drain.append(took)
            took, err = timed(["status"], env)
            noise.setdefault("status", foreign(err))
            took, err = timed(["search", "how do I stream a response from an agent"], env)
            search.append(took)
            noise.setdefault("search", foreign(err))
    finally:
        subprocess.run([*CLI, "db", "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)
    result: dict[str, Any] = {
        "files": sum(1 for p in args.corpus.rglob("*") if p.suffix in (".md", ".mdx", ".markdown")),
        "first_ingest_s": first,
        "run_once_empty_s": statistics.median(idle),
        "reingest_unchanged_s": statistics.median(reingest),
        "run_once_after_s": statistics.median(drain),
        "search_s": statistics.median(search),
        "foreign_log_lines": {k: len(v) for k, v in noise.items()},
    }
    result["unchanged_over_first"] = (result["reingest_unchanged_s"] + result["run_once_after_s"]) / first
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['files']} files; medians of {args.rounds} rounds")
    for key in ("first_ingest_s", "run_once_empty_s", "reingest_unchanged_s", "run_once_after_s", "search_s"):
        print(f"{key:28} {result[key]:8.2f}")
    print(f"{'(re-ingest + run) / first':28} {result['unchanged_over_first']:8.3f}")
    print("log lines of other libraries: " + ", ".join(f"{k} {v}" for k, v in result["foreign_log_lines"].items()))


if __name__ == "__main__":
    main()
