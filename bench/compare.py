"""Compare the working tree with another commit in one run. These machines vary by up to
1.5x from day to day, so a figure is worth something only beside another taken in the same
run: each chosen bench runs for REF and for the working tree, alternated (REF, tree, REF,
tree, ...), and every numeric figure both print is shown side by side with the ratio of
the medians (tree / REF) and each side's spread (max / min over its rounds).

REF is checked out once into a git worktree under bench/data/compare/, with its own
virtual environment keyed by the hash of its dependencies (pyproject.toml and
constraints.txt), so comparing against the same or a similar commit again installs
nothing. The REF's code runs from its worktree (PYTHONPATH); the working tree runs with the
interpreter running this script.

Usage: python bench/compare.py REF [--bench search --bench sync ...] [--rounds 2] [--json]
  benches: episodic (conversation recall and search latency), episodic6k (the same on 6,000
  turns of four people, a quarter of the blocks in each scope), drain (the sync alone of those
  6,000 turns, imported once, with the raw encode of its blocks; the "grown" figures are
  memsync's claims), search (retrieve at 10k blocks and docs quality), sync (commit ->
  searchable, burst drain), ingest (30 docs files), mcp (read-your-writes, MCP round trip,
  start-up), query (one query embedded), plumbing (the import and sync of those 6,000 turns
  without the model: memsync's own work, free of the model's noise), scale (an agent's
  everyday calls beside 5,000 people, 50,000 facts and 100,000 turns)

A bench that REF does not have runs from the working tree's copy against REF's code (the
bench files use the public API), so a new bench measures the commit before it too.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "data" / "compare"
BENCHES: dict[str, list[str]] = {
    "episodic": ["bench/episodic_bench.py", "--sets", "synthetic", "--json"],
    "episodic6k": ["bench/episodic_bench.py", "--sets", "synthetic-6k", "--json"],
    "plumbing": ["bench/plumbing_bench.py", "--set", "synthetic-6k", "--rounds", "3", "--json"],
    "scale": ["bench/scale_bench.py", "--json"],
    "drain": ["bench/drain_bench.py", "--set", "synthetic-6k", "--rounds", "1", "--json"],
    "search": ["bench/retrieve_bench.py", "--sizes", "10000", "--queries", "100", "--json"],
    "search100k": ["bench/retrieve_bench.py", "--sizes", "100000", "--queries", "100", "--json"],
    "sync": ["bench/sync_bench.py", "--burst", "300", "--single", "20", "--json"],
    "ingest": ["bench/ingest_bench.py", "--limit", "30", "--json"],
    "mcp": ["bench/mcp_bench.py", "--writes", "30", "--calls", "20", "--starts", "2", "--json"],
    "query": ["bench/query_embed_bench.py", "--queries", "100", "--json"],
}
DEFAULT = ("search", "sync", "episodic")
BENCH_ONLY = ("bm25s",)  # the naive references' package, installed for the benches only


def sh(cmd: list[str], **kw: Any) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def worktree(ref: str) -> tuple[str, Path]:
    sha = sh(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"])
    path = CACHE / f"tree-{sha[:12]}"
    if not (path / ".git").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sh(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha])
    return sha, path


def requirements(tree: Path) -> list[str]:
    project = tomllib.loads((tree / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [*project["dependencies"], *extras.get("dev", []), *BENCH_ONLY]


def venv_for(tree: Path) -> Path:
    """A virtual environment with the tree's dependencies (not the tree itself: it runs from
    PYTHONPATH), made once per set of dependencies."""
    reqs = requirements(tree)
    constraints = tree / "constraints.txt"
    key = hashlib.sha256("\n".join(sorted(reqs)).encode()
                         + (constraints.read_bytes() if constraints.exists() else b"")).hexdigest()[:16]
    venv = CACHE / f"venv-{key}"
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        print(f"making {venv.name} for {tree.name} (once)", file=sys.stderr)
        sh([sys.executable, "-m", "venv", str(venv)])
        sh([str(python), "-m", "pip", "install", "--quiet", "torch==2.13.0"])
        extra = ["-c", str(constraints)] if constraints.exists() else []
        sh([str(python), "-m", "pip", "install", "--quiet", *reqs, *extra])
        (venv / ".ready").touch()
    return python


def run(python: str, tree: Path, argv: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "MEMSYNC_LOG_LEVEL": "WARNING"}
    env.pop("MEMSYNC_DSN", None)
    out = subprocess.run([python, *argv], cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    text = out.stdout[out.stdout.find("{"):]
    try:
        data: dict[str, Any] = json.loads(text)
    except ValueError:
        return {"error": "no JSON in its output"}
    return data


def numbers(data: Any, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of a bench's JSON, by its dotted path."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(numbers(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out[prefix] = float(data)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref", help="the commit to compare against (e.g. origin/main, HEAD~3, a sha)")
    ap.add_argument("--bench", action="append", choices=sorted(BENCHES), help=f"repeatable; default: {DEFAULT}")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each side, alternated (at least 2)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.rounds < 2:
        ap.error("--rounds must be at least 2: one run of each side says nothing of the spread")
    missing = [m for m in BENCH_ONLY if importlib.util.find_spec(m) is None]
    if missing:  # say so now, not after the REF side's first 20 minutes
        ap.error(f"this interpreter lacks the bench-only {', '.join(missing)}: pip install {' '.join(missing)}")
    sha, tree = worktree(args.ref)
    ref_python = str(venv_for(tree))
    sides = {"ref": (ref_python, tree), "tree": (sys.executable, ROOT)}
    report: dict[str, Any] = {"ref": sha, "benches": {}}
    for name in args.bench or DEFAULT:
        argv = BENCHES[name]
        # a bench newer than REF: the tree's copy runs REF's code (an API it lacks is reported)
        ref_argv = argv if (tree / argv[0]).exists() else [str(ROOT / argv[0]), *argv[1:]]
        runs: dict[str, list[dict[str, float]]] = {"ref": [], "tree": []}
        errors: list[str] = []
        for r in range(args.rounds):
            for side in ("ref", "tree"):
                python, where = sides[side]
                print(f"{name}: round {r + 1}, {side}", file=sys.stderr)
                data = run(python, where, ref_argv if side == "ref" else argv)
                if "error" in data and len(data) == 1:
                    errors.append(f"{side}: {data['error']}")
                    continue
                runs[side].append(numbers(data))
        rows = {}
        for key in sorted(set().union(*runs["ref"], *runs["tree"]) if runs["ref"] or runs["tree"] else []):
            a = [x[key] for x in runs["ref"] if key in x]
            b = [x[key] for x in runs["tree"] if key in x]
            row: dict[str, Any] = {"ref": a, "tree": b}
            if a and b and statistics.median(a):
                row["ratio"] = statistics.median(b) / statistics.median(a)
            for side, xs in (("ref", a), ("tree", b)):
                if xs and min(xs) > 0:
                    row[f"{side}_spread"] = max(xs) / min(xs)
            rows[key] = row
        report["benches"][name] = {"rows": rows, "errors": errors}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"tree vs {sha[:12]}: ratio = median(tree) / median(ref); spread = max / min over a side's rounds")
    for name, b in report["benches"].items():
        print(f"== {name}")
        for e in b["errors"]:
            print(f"   error: {e}")
        for key, row in b["rows"].items():
            fmt = lambda xs: ", ".join(f"{x:.4g}" for x in xs) or "-"  # noqa: E731
            ratio = f"{row['ratio']:.3f}" if "ratio" in row else "-"
            spread = "/".join(f"{row.get(f'{s}_spread', float('nan')):.2f}" for s in ("ref", "tree"))
            print(f"   {key:48} ref [{fmt(row['ref'])}]  tree [{fmt(row['tree'])}]  ratio {ratio}  spread {spread}")


if __name__ == "__main__":
    main()
