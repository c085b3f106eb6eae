"""Retrieval evaluation: a labelled set (JSON Lines, one query per line) run through search
or a recipe, scored per query and summed up. Parsing and scoring are pure; the runner
(`Memsync.evaluate`) does the searching and records the run in the seed's own tables
(agent.execution_runs + one agent.step_evaluations row per metric).

A line: {"query": "...", "relevant": ["fact:<uuid>", "agent.events:12", ...],
"subject": "person:3"} -- gold rows by global_id or table:id; `subject` (optional)
confines the search to that subject's tree (a recipe run needs it)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from memsync.errors import EvalSetError, InvalidInput
from memsync.read.fusion import ndcg

DEFAULT_KS = (5, 10)
TABLE_REF = re.compile(r"^((?:erp|agent)\.[a-z_]+):([0-9]+)$")


@dataclass(frozen=True)
class Labelled:
    line: int
    query: str
    relevant: tuple[str, ...]
    subject: str | None


@dataclass
class Scored:
    """One query's ranked row keys ('agent.events:12') and how long it took."""

    labelled: Labelled
    ranked: list[str]
    gold: set[str]
    ms: float


@dataclass
class Summary:
    metrics: dict[str, float] = field(default_factory=dict)
    queries: int = 0


def parse_set(text: str) -> list[Labelled]:
    """The labelled set; blank lines and lines starting with # are skipped."""
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EvalSetError(f"line {n}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise EvalSetError(f"line {n}: expected an object with query and relevant")
        unknown = set(row) - {"query", "relevant", "subject", "id", "kind"}
        if unknown:
            raise EvalSetError(f"line {n}: unknown field(s) {', '.join(sorted(unknown))}")
        query, relevant, subject = row.get("query"), row.get("relevant"), row.get("subject")
        if not isinstance(query, str) or not query.strip() or "\x00" in query:
            raise EvalSetError(f"line {n}: query: expected non-blank text")
        if not isinstance(relevant, list) or not relevant or not all(isinstance(r, str) and r for r in relevant):
            raise EvalSetError(f"line {n}: relevant: expected a non-empty list of row references")
        if subject is not None and (not isinstance(subject, str) or not subject.strip()):
            raise EvalSetError(f"line {n}: subject: expected a subject such as 'person:3'")
        out.append(Labelled(n, query, tuple(relevant), subject))
    if not out:
        raise EvalSetError("the labelled set holds no queries")
    return out


def set_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def table_ref(ref: str) -> tuple[str, int] | None:
    """'agent.events:12' -> ('agent.events', 12); anything else (a global_id) -> None."""
    m = TABLE_REF.match(ref.strip())
    return (m.group(1), int(m.group(2))) if m else None


def key(table: str, row_id: int) -> str:
    return f"{table}:{row_id}"


def recall(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return len(set(ranked[:k]) & gold) / len(gold) if gold else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: set[str]) -> float:
    return next((1.0 / i for i, r in enumerate(ranked, start=1) if r in gold), 0.0)


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    i = min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))
    return s[i]


def summarize(scored: Sequence[Scored], ks: Sequence[int]) -> Summary:
    m: dict[str, float] = {}
    for k in ks:
        m[f"recall@{k}"] = statistics.fmean(recall(s.ranked, s.gold, k) for s in scored)
    m["ndcg@10"] = statistics.fmean(ndcg(s.ranked, s.gold, 10) for s in scored)
    m["mrr"] = statistics.fmean(reciprocal_rank(s.ranked, s.gold) for s in scored)
    times = [s.ms for s in scored]
    m["p50_ms"] = statistics.median(times)
    m["p95_ms"] = percentile(times, 0.95)
    return Summary(m, len(scored))


def parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise InvalidInput(f"k: expected whole numbers separated by commas, got {text!r}") from None
    if not ks or ks[0] < 1 or ks[-1] > 1000:
        raise InvalidInput(f"k: expected values from 1 to 1000, got {text!r}")
    return ks


def parse_thresholds(items: Sequence[str]) -> dict[str, float]:
    """'recall@10=0.8' -> {'recall@10': 0.8}: a metric below its minimum fails the run."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidInput(f"min: expected METRIC=VALUE such as recall@10=0.8, got {item!r}") from None
        if not sep:
            raise InvalidInput(f"min: expected METRIC=VALUE such as recall@10=0.8, got {item!r}")
    return out


def metric_names(ks: Sequence[int]) -> list[str]:
    return [*(f"recall@{k}" for k in ks), "ndcg@10", "mrr", "p50_ms", "p95_ms"]


def check_thresholds(minimum: dict[str, float], ks: Sequence[int]) -> None:
    unknown = set(minimum) - set(metric_names(ks))
    if unknown:
        raise InvalidInput(f"min: unknown metric(s) {', '.join(sorted(unknown))}; known: "
                           f"{', '.join(metric_names(ks))}")


def failing(summary: Summary, minimum: dict[str, float]) -> dict[str, float]:
    """Metrics under their minimum (latencies: over their maximum)."""
    return {k: summary.metrics[k] for k, v in minimum.items()
            if (summary.metrics[k] > v if lower_is_better(k) else summary.metrics[k] < v)}


def lower_is_better(metric: str) -> bool:
    return metric.endswith("_ms")

