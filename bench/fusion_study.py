"""Fusion rules side by side on every labelled set, from the same candidate lists.

For each set, in a fresh embedded database with the real model, every query is searched once
the way memsync searches it (conversation questions as event search inside the person's
tree, docs pages by their front-matter description), and the per-signal candidate lists
memsync built are kept (100 per signal). Then each rule below ranks the same lists, cut to
memsync's candidate count (40 for k=10): turn recall @5 / @10 on the conversation sets,
nDCG@10 of the page on the docs sets. A rule worth shipping must hold on every set; none
here is fitted to one (no rule has a tuned constant).

Rules: memsync's z-score fusion (the default), rank fusion (RRF k=60), each signal alone,
z-score fusion weighted per list by how far its best candidate stands out (its top z), and
weighted by the lexical signal's coverage (the share of the query's IDF mass the best BM25
candidate holds, unknown terms counting at the highest IDF; lexical weight 2 x coverage), and
z-score fusion of the same 40 with each list's mean and deviation taken over those 40 alone
(memsync's rule before it read a background of 100 per signal).

The lists take most of the run to build (the AI SDK corpus ~8 min on a 2-core fp32 machine):
--save DIR keeps them, --load DIR ranks them again in seconds.

Usage: python bench/fusion_study.py [--sets longmemeval,synthetic,timed,synthetic-6k,mastra45,ai-sdk] [--json]
                                    [--save DIR | --load DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import episodic_sets
from retrieve_bench import SUBSET, ai_sdk_docs

from docs_ingest.ingest import Ingestor
from memsync.app import Memsync
from memsync.embed import SentenceTransformerEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.read import fusion, hybrid
from memsync.settings import Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.storage.db import search as q
from memsync.write.worker import Worker

KEPT = 100  # candidates kept per signal
CUT = 40  # what memsync fuses for k=10: max(4k, 40)
Lists = dict[str, list[tuple[int, float]]]
EPISODIC = ("longmemeval", "synthetic", "timed", "synthetic-6k")


def collect(name: str, embedder: Any) -> dict[str, Any]:
    """The per-signal lists memsync built for each query of a set, with what the rules need."""
    captured: list[Lists] = []
    signals = hybrid._signals

    def keep(*args: Any) -> tuple[Lists, Lists, Any]:
        lists, background, qvec = signals(*args)
        captured.append(background)  # asked for KEPT candidates: the background is as deep
        return lists, background, qvec

    hybrid._signals = keep  # type: ignore[assignment]
    home = Path(tempfile.mkdtemp(prefix=f"memsync-fusion-{name}-"))
    dsn = embedded.server_uri(home, database="fusion")
    migrate.migrate(dsn)
    settings = Settings.from_env({}, home=home, dsn=dsn)
    out: dict[str, Any] = {"queries": []}
    try:
        with Memsync(settings, embedder=embedder, indexes=[PgvectorIndex(dsn)]) as app, \
                connect(dsn, autocommit=True) as conn:
            if name in EPISODIC:
                if name == "longmemeval":
                    sessions, questions = episodic_sets.longmemeval()
                    by_subject = {"user": sessions}
                    questions = [{**x, "subject": "user"} for x in questions]
                else:
                    by_subject, questions = (episodic_sets.synthetic(sessions_per_pair=75, turns=20)
                                             if name == "synthetic-6k" else getattr(episodic_sets, name)())
                person = {}
                for label, sessions in by_subject.items():
                    row = conn.execute("INSERT INTO erp.people (full_name) VALUES (%s) RETURNING id",
                                       (label,)).fetchone()
                    assert row is not None
                    person[label] = row["id"]
                    app.import_conversations({"sessions": sessions}, subject=f"person:{row['id']}")
                Worker(settings, dsn, embedder, [PgvectorIndex(dsn)]).drain()
                mid = {r["id"]: r["mid"] for r in conn.execute("SELECT id, payload->>'id' AS mid FROM agent.events")}
                for x in questions:
                    captured.clear()
                    app.recall(x["query"], k=10, neighbours=0, candidates=KEPT,
                               filters={"subjects": [["person", person[x["subject"]]]]})
                    out["queries"].append({"query": x["query"], "gold": sorted(x["relevant"]),
                                           "lists": captured[0], **_terms(conn, x["query"], captured[0])})
                ids = list({b for x in out["queries"] for lst in x["lists"].values() for b, _ in lst})
                rows = q.hit_rows(conn, ids)
                out["unit"] = {e: mid[e] for e in mid}
                out["rows"] = rows
            else:
                Ingestor(app.runtime, SUBSET if name == "mastra45" else ai_sdk_docs()).run()
                labelled = conn.execute(
                    "SELECT id, metadata->'front_matter'->>'description' AS query FROM agent.artifacts"
                    " WHERE metadata->'front_matter'->>'description' IS NOT NULL ORDER BY id").fetchall()
                out["unit"] = {r["id"]: r["artifact_id"] for r in conn.execute("SELECT id, artifact_id FROM agent.blocks")}
                for x in labelled:
                    captured.clear()
                    app.search(x["query"], k=10, candidates=KEPT)
                    out["queries"].append({"query": x["query"], "gold": [x["id"]], "lists": captured[0],
                                           **_terms(conn, x["query"], captured[0])})
    finally:
        hybrid._signals = signals  # type: ignore[assignment]
        embedded.stop(home)
    return out


def _terms(conn: Any, query: str, lists: Lists) -> dict[str, Any]:
    """The query's lexemes with their document frequencies, and those the best BM25 candidate holds."""
    terms = conn.execute(
        """SELECT DISTINCT u.lexeme AS term, coalesce(t.df, 0) AS df FROM unnest(to_tsvector('english', %s)) u
             LEFT JOIN memsync.bm25_terms t ON t.term = u.lexeme""", (query,)).fetchall()
    n = conn.execute("SELECT n_docs FROM memsync.bm25_corpus").fetchone()["n_docs"]
    best = lists.get("lexical", [])[:1]
    held = conn.execute("SELECT array(SELECT u.lexeme FROM unnest(b.tsv) u) AS m FROM agent.blocks b WHERE b.id = %s",
                        (best[0][0],)).fetchone()["m"] if best else []
    return {"terms": [(r["term"], int(r["df"])) for r in terms], "n_docs": int(n), "held": sorted(set(held or []))}


# ------------------------------------------------------------------ rules

def coverage(x: dict[str, Any]) -> float:
    n = x["n_docs"]
    idf = {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in x["terms"]}
    total, held = sum(idf.values()), set(x["held"])
    return sum(v for t, v in idf.items() if t in held) / total if total else 0.0


def top_z(ranked: list[tuple[int, float]]) -> float:
    scores = [s for _, s in ranked]
    sd = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    return max(0.0, (scores[0] - statistics.fmean(scores)) / sd) if sd else 0.0


def bounded(parts: Lists, how: str) -> list[int]:
    """Scores mapped onto [0, 1] per list and summed, a missed candidate counting 0: min-max
    ("relative score fusion") or mean +/- 3 deviations clipped ("distribution-based")."""
    scaled: list[dict[int, float]] = []
    for ranked in parts.values():
        if not ranked:
            continue
        s = np.array([v for _, v in ranked], dtype=np.float64)
        lo, hi = (s.min(), s.max()) if how == "minmax" else (s.mean() - 3 * s.std(), s.mean() + 3 * s.std())
        unit = np.clip((s - lo) / (hi - lo), 0, 1) if hi > lo else np.ones_like(s)
        scaled.append({b: float(v) for (b, _), v in zip(ranked, unit, strict=True)})
    pool = {b for z in scaled for b in z}
    score = {b: sum(z.get(b, 0.0) for z in scaled) for b in pool}
    return sorted(pool, key=lambda b: (-score[b], b))


def only(prefix: str) -> Callable[[Lists, dict[str, Any]], list[int]]:
    return lambda parts, x: [f.block_id for f in fusion.zscore({k: v for k, v in parts.items() if k.startswith(prefix)})]


RULES: dict[str, Callable[[Lists, dict[str, Any]], list[int]]] = {
    "zscore (memsync)": lambda parts, x: [f.block_id for f in fusion.zscore(parts, background=x["full"])],
    "z over the 40 fused alone": lambda parts, x: [f.block_id for f in fusion.zscore(parts)],
    "rrf k=60": lambda parts, x: [f.block_id for f in fusion.rrf(parts)],
    "dense only": only("dense"),
    "lexical only": only("lexical"),
    "z, weights = top z": lambda parts, x: [f.block_id for f in fusion.zscore(
        parts, weights={k: top_z(v) for k, v in parts.items()})],
    "z, lexical x 2 coverage": lambda parts, x: [f.block_id for f in fusion.zscore(
        parts, weights={k: 2 * coverage(x) if k.startswith("lexical") else 1.0 for k in parts})],
    "min-max (relative score)": lambda parts, x: bounded(parts, "minmax"),
    "mean +/- 3 sd (DBSF)": lambda parts, x: bounded(parts, "dbsf"),
}



def evaluate(data: dict[str, Any], episodic: bool) -> dict[str, dict[str, float]]:
    scores: dict[str, dict[str, list[float]]] = {}
    for x in data["queries"]:
        cut = {k: v[:CUT] for k, v in x["lists"].items()}
        parts = hybrid.by_event(cut, data["rows"]) if episodic else cut
        full = hybrid.by_event(x["lists"], data["rows"]) if episodic else x["lists"]
        gold = set(x["gold"])
        for name, rule in RULES.items():
            ranked = rule(parts, {**x, "full": full}) if parts else []
            units = list(dict.fromkeys(data["unit"][u] for u in ranked if u in data["unit"]))
            got = scores.setdefault(name, {})
            if episodic:
                for k in (5, 10):
                    got.setdefault(f"recall@{k}", []).append(len(set(units[:k]) & gold) / len(gold))
            else:
                got.setdefault("ndcg@10", []).append(fusion.ndcg([str(u) for u in units], {str(g) for g in gold}))
    return {rule: {m: statistics.fmean(v) for m, v in ms.items()} for rule, ms in scores.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="longmemeval,synthetic,timed,mastra45,ai-sdk")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--save", type=Path, help="keep each set's candidate lists in this folder (NAME.json)")
    ap.add_argument("--load", type=Path, help="rank the lists a --save run kept instead of building them")
    args = ap.parse_args()
    embedder = None
    results = {}
    for name in args.sets.split(","):
        episodic = name in EPISODIC
        if args.load:
            data = json.loads((args.load / f"{name}.json").read_text())
            data["rows"] = {int(b): r for b, r in data["rows"].items()} if "rows" in data else {}
            data["unit"] = {int(b): u for b, u in data["unit"].items()}
        else:
            if embedder is None:
                embedder = SentenceTransformerEmbedder(
                    cache_dir=Path(tempfile.mkdtemp(prefix="memsync-fusion-models-")))
                embedder.encode(["warm up"])
            data = collect(name.replace("ai-sdk", "aisdk"), embedder)
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"{name}.json").write_text(json.dumps(data, default=str))
        results[name] = evaluate(data, episodic)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, by_rule in results.items():
        print(f"== {name}")
        for rule, ms in by_rule.items():
            print(f"  {rule:26}" + "  ".join(f"{m} {v:.3f}" for m, v in ms.items()))


if __name__ == "__main__":
    main()
