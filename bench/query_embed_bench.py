"""One search query embedded: the torch batch path (`encode([q])`, memsync's default
precision) against the ONNX Runtime query path (`encode_query`), alternated in one run over
the same ten-word queries; p50 / p95 ms and the cosine between the two vectors.

Usage: python bench/query_embed_bench.py [--queries 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from memsync import query_encoder
from memsync.embed import SentenceTransformerEmbedder

PAUSE_S = 0.01
WORDS = [
    "memory", "processor", "thread", "configure", "agent", "storage", "vector", "index", "workflow", "deploy",
    "schedule", "client", "invoice", "meeting", "project", "climbing", "gym", "weekend", "pottery", "class",
    "mortgage", "bank", "approved",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    queries = [" ".join(rng.choice(WORDS, 10)) for _ in range(args.queries)]
    emb = SentenceTransformerEmbedder(cache_dir=Path(tempfile.mkdtemp()))
    emb.encode(["warm up"])
    t0 = time.perf_counter()
    emb.encode_query("warm up")  # exports the graph once
    export_s = time.perf_counter() - t0
    model = emb._load()
    graph = emb._query_encoder()
    via_preprocess = query_encoder.QueryEncoder(graph._session, query_encoder.model_ids(model, model.max_seq_length)) \
        if graph is not None else None
    torch_ms, onnx_ms, pre_ms, cos = [], [], [], []
    for q in queries:  # alternated, so both see the same machine
        t0 = time.perf_counter()
        a = emb.encode([q])[0]
        torch_ms.append(1000 * (time.perf_counter() - t0))
        # a search does not follow a torch encode: its OpenMP threads spin for a while after one
        # and would bill the next path for their CPU
        time.sleep(PAUSE_S)
        t0 = time.perf_counter()
        b = emb.encode_query(q)
        onnx_ms.append(1000 * (time.perf_counter() - t0))
        time.sleep(PAUSE_S)
        if via_preprocess is not None:
            t0 = time.perf_counter()
            via_preprocess.encode(q)
            pre_ms.append(1000 * (time.perf_counter() - t0))
            time.sleep(PAUSE_S)
        cos.append(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))))
    out = {"precision": emb.active_precision, "queries": len(queries), "first_export_s": export_s,
           "torch_p50_ms": statistics.median(torch_ms), "torch_p95_ms": sorted(torch_ms)[int(0.95 * len(queries))],
           "onnx_p50_ms": statistics.median(onnx_ms), "onnx_p95_ms": sorted(onnx_ms)[int(0.95 * len(queries))],
           "cosine_min": min(cos), "cosine_mean": statistics.fmean(cos)}
    out["onnx_over_torch"] = out["onnx_p50_ms"] / out["torch_p50_ms"]
    if pre_ms:
        out["onnx_preprocess_p50_ms"] = statistics.median(pre_ms)
        out["direct_over_preprocess"] = out["onnx_p50_ms"] / out["onnx_preprocess_p50_ms"]
    print(json.dumps(out, indent=2) if args.json else "\n".join(f"{k:16} {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
