"""Pure ranking logic: fusion of the signals (z-score fusion by default, reciprocal rank
fusion on request) over the union of their candidates, recency weighting and MMR
diversity. No I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

Ranked = Sequence[tuple[int, float]]  # (block_id, score), best first


@dataclass
class Fused:
    block_id: int
    score: float
    signals: dict[str, tuple[int, float]] = field(default_factory=dict)  # signal -> (rank, raw score)


def rrf(lists: Mapping[str, Ranked], *, k: int = 60, weights: Mapping[str, float] | None = None) -> list[Fused]:
    """Reciprocal rank fusion. The candidate pool is the union of every list, so a block
    found by one signal alone (a keyword-only hit) can still win."""
    fused: dict[int, Fused] = {}
    for name, ranked in lists.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, (block_id, score) in enumerate(ranked, start=1):
            item = fused.setdefault(block_id, Fused(block_id, 0.0))
            item.score += w / (k + rank)
            item.signals[name] = (rank, score)
    return sorted(fused.values(), key=lambda f: (-f.score, f.block_id))


def zscore(lists: Mapping[str, Ranked], *, weights: Mapping[str, float] | None = None,
           background: Mapping[str, Ranked] | None = None) -> list[Fused]:
    """Score fusion on standardised scores. Each signal's raw scores become z-scores over its
    own candidate list (mean 0, standard deviation 1), so a cosine and a BM25 score count on
    one scale; a candidate a signal did not return gets that list's lowest z (it ranked
    below everything the signal kept). The fused score is the weighted sum, rescaled to
    [0, 1] over the pool.

    Why not RRF: rank fusion gives a signal's 5th candidate the same credit whether its
    score is far above the rest or tied with fifty others, so on conversations, where one
    signal is often sharp and the other flat, the flat one dragged the sharp one down
    (bench/episodic_bench.py); on the documentation sets the two fusions are within noise.

    `background`: per list, a deeper list of the same signal (its best 100 where the list is
    its best 40) whose scores give the mean and deviation. The head of a list alone is a
    truncated sample: its deviation is small when the head is flat, so a few near-ties read
    as far apart; measured against what lies below them, a candidate that stands out from the
    whole signal counts more than one that only leads a flat head (bench/fusion_study.py:
    better or level on every labelled set)."""
    fused: dict[int, Fused] = {}
    floors: dict[str, float] = {}
    standard: dict[str, dict[int, float]] = {}
    for name, ranked in lists.items():
        if not ranked:
            continue
        scores = np.array([s for _, s in ranked], dtype=np.float64)
        deep = (background or {}).get(name) or ranked
        ref = scores if deep is ranked else np.array([s for _, s in deep], dtype=np.float64)
        mean, sd = float(ref.mean()), float(ref.std())
        z = (scores - mean) / sd if sd > 0 else np.zeros_like(scores)
        standard[name] = {b: float(v) for (b, _), v in zip(ranked, z, strict=True)}
        # a signal that found one candidate (or tied them all) still found them: what it
        # missed sits one deviation below, not level with them
        floors[name] = float(z.min()) if sd > 0 else -1.0
        for rank, (block_id, score) in enumerate(ranked, start=1):
            fused.setdefault(block_id, Fused(block_id, 0.0)).signals[name] = (rank, score)
    for item in fused.values():
        item.score = sum((1.0 if weights is None else weights.get(name, 1.0)) * zs.get(item.block_id, floors[name])
                         for name, zs in standard.items())
    if fused:
        hi = max(i.score for i in fused.values())
        lo = min(i.score for i in fused.values())
        for item in fused.values():
            item.score = (item.score - lo) / (hi - lo) if hi > lo else 1.0
    return sorted(fused.values(), key=lambda f: (-f.score, f.block_id))


def apply_recency(items: list[Fused], ages: Mapping[int, datetime], now: datetime, half_life_days: float,
                  weight: float = 0.5) -> list[Fused]:
    """score *= (1 - weight) + weight * 0.5 ** (age / half_life): new items keep their score,
    old ones lose up to `weight` of it."""
    for item in items:
        created = ages.get(item.block_id)
        if created is None:
            continue
        age_days = max(0.0, (now - created).total_seconds() / 86400)
        item.score *= (1 - weight) + weight * math.pow(0.5, age_days / half_life_days)
    return sorted(items, key=lambda f: (-f.score, f.block_id))


def mmr(items: list[Fused], vectors: Mapping[int, npt.NDArray[np.float32]], query: npt.NDArray[np.float32],
        k: int, lam: float) -> list[Fused]:
    """Maximal marginal relevance: trade relevance (the fused order, rescaled to [0, 1])
    against similarity to what was already picked. Items without a vector keep their place."""
    if not items:
        return []
    top = items[0].score or 1.0
    relevance = {i.block_id: i.score / top for i in items}
    pool = [i for i in items if i.block_id in vectors]
    rest = [i for i in items if i.block_id not in vectors]
    picked: list[Fused] = []
    while pool and len(picked) < k:
        def gain(c: Fused) -> float:
            if not picked:
                return relevance[c.block_id]
            sim = max(float(np.dot(vectors[c.block_id], vectors[p.block_id])) for p in picked)
            return lam * relevance[c.block_id] - (1 - lam) * sim
        best = max(pool, key=gain)
        picked.append(best)
        pool.remove(best)
    return (picked + rest)[:k]


def dcg(relevances: Sequence[float]) -> float:
    return sum(r / math.log2(i + 2) for i, r in enumerate(relevances))


def ndcg(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k over document keys (duplicates after the first count 0)."""
    seen: set[str] = set()
    gains = []
    for key in ranked[:k]:
        gains.append(1.0 if key in relevant and key not in seen else 0.0)
        seen.add(key)
    ideal = dcg([1.0] * min(len(relevant), k))
    return dcg(gains) / ideal if ideal else 0.0
