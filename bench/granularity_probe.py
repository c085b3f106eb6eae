"""Which granularities should conversation memory index? A probe outside memsync, on every
conversational set of bench/episodic_sets.py, with the real model and BM25 (`bm25s`, bench
only): turns ranked by

- turn: dense and BM25 over each turn ("(date) speaker: text"), z-score fused (memsync's
  fusion, memsync/read/fusion.py);
- turn+window: the same two signals over windows of W consecutive turns of a session
  (stride W/2) added as two more lists, each turn taking its best window's score;
- turn+session: the same with whole sessions (the model reads a session's first 256
  tokens; BM25 all of it);
- window, window+session: windows without the turn lists.

Each list is standardised on its own candidates and the lists weigh the same, so nothing
here is fitted to a set. Prints turn recall@5/@10 per set and variant.

Usage: python bench/granularity_probe.py [--sets longmemeval,synthetic] [--window 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import episodic_bench

from memsync.embed import SentenceTransformerEmbedder
from memsync.read.fusion import zscore


def units(sessions: list[dict[str, Any]], window: int) -> dict[str, list[tuple[str, list[str]]]]:
    """Per granularity: (text, the turn ids it covers)."""
    out: dict[str, list[tuple[str, list[str]]]] = {"turn": [], "window": [], "session": []}
    for s in sessions:
        lines = [(m["id"], f"{m.get('speaker') or m.get('role')}: {m['text']}") for m in s["messages"]]
        day = str(s["date"])[:10]
        out["turn"] += [(f"({day}) {line}", [mid]) for mid, line in lines]
        step = max(1, window // 2)
        for i in range(0, max(1, len(lines) - window + step), step):
            part = lines[i:i + window]
            if part:
                out["window"].append((f"({day})\n" + "\n".join(t for _, t in part), [m for m, _ in part]))
        out["session"].append((f"({day})\n" + "\n".join(t for _, t in lines), [m for m, _ in lines]))
    return out


def signals(embedder: Any, texts: list[str]) -> tuple[np.ndarray, Any]:
    import bm25s

    vecs = np.asarray(embedder.encode(texts), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    bm = bm25s.BM25()
    bm.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    return vecs, bm


def ranked(qv: np.ndarray, query: str, index: tuple[np.ndarray, Any], covers: list[list[str]], n: int
           ) -> dict[str, list[tuple[int, float]]]:
    """The granularity's dense and BM25 lists, each projected to turns (a turn takes its best
    unit's score), top n turns each; turn ids are numbered by `order`."""
    import bm25s

    vecs, bm = index
    dense = vecs @ qv
    ids, scores = bm.retrieve(bm25s.tokenize([query], stopwords="en", show_progress=False), k=len(covers),
                              show_progress=False)
    lexical = np.zeros(len(covers), dtype=np.float64)
    lexical[ids[0]] = scores[0]
    out = {}
    for name, score in (("dense", dense), ("lexical", lexical)):
        best: dict[str, float] = {}
        for unit in np.argsort(-score):
            for mid in covers[unit]:
                best.setdefault(mid, float(score[unit]))
            if len(best) >= n:
                break
        out[name] = [(ORDER.setdefault(m, len(ORDER)), s) for m, s in best.items() if s > 0 or name == "dense"]
    return out


ORDER: dict[str, int] = {}
VARIANTS = (("turn", ("turn",)), ("window", ("window",)), ("turn+window", ("turn", "window")),
            ("turn+session", ("turn", "session")), ("window+session", ("window", "session")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="longmemeval,synthetic")
    ap.add_argument("--window", type=int, default=4)
    args = ap.parse_args()
    embedder = SentenceTransformerEmbedder()
    for name in args.sets.split(","):
        by_subject, questions = episodic_bench.load_set(name)
        built = {}
        for label, sessions in by_subject.items():
            u = units(sessions, args.window)
            built[label] = {g: (signals(embedder, [t for t, _ in u[g]]), [c for _, c in u[g]]) for g in u}
        scores: dict[str, list[float]] = {}
        for q in questions:
            qv = np.asarray(embedder.encode([q["query"]])[0], dtype=np.float32)
            qv /= np.linalg.norm(qv)
            per = {g: ranked(qv, q["query"], idx, covers, 40) for g, (idx, covers) in built[q["subject"]].items()}
            name_of = {v: k for k, v in ORDER.items()}
            for variant, grains in VARIANTS:
                lists = {f"{g}:{s}": per[g][s] for g in grains for s in ("dense", "lexical")}
                order = [name_of[f.block_id] for f in zscore(lists)]
                for k in (5, 10):
                    scores.setdefault(f"{variant}@{k}", []).append(episodic_bench.recall(order, q["relevant"], k))
        print(f"== {name}: {len(questions)} questions, window {args.window}")
        for variant, _ in VARIANTS:
            print(f"  {variant:14}" + "".join(f"  @{k} {statistics.fmean(scores[f'{variant}@{k}']):.3f}"
                                                for k in (5, 10)))


if __name__ == "__main__":
    main()
