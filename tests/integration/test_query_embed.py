"""The query fast path: one search query embedded through ONNX Runtime on a CPU, with the
real packaged model, gives the batch path's vector (cosine >= 0.999); where the graph
cannot be had, queries go through torch and still work."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from memsync import query_encoder
from memsync.embed import SentenceTransformerEmbedder, model_path

pytestmark = pytest.mark.model

QUERIES = ["how do I configure the memory processor for long threads", "Priya climbing gym",
           "x", "What was the amount I was pre-approved for when I got my mortgage from the bank? " * 12]


def test_onnx_queries_match_the_batch_path(tmp_path: Path) -> None:
    emb = SentenceTransformerEmbedder(cache_dir=tmp_path)
    fast = [emb.encode_query(q) for q in QUERIES]
    assert list((tmp_path / "models").glob("query-*.onnx")), "the graph was exported once, into the cache"
    assert emb._query_encoder() is not None
    batch = emb.encode(QUERIES)  # the default precision (bf16 on a CPU that has it)
    exact = SentenceTransformerEmbedder(precision="fp32").encode(QUERIES)
    for q, a, b, x in zip(QUERIES, fast, batch, exact, strict=True):
        assert a.shape == (384,) and a.dtype == np.float32
        assert float(np.dot(a, x)) >= 0.9999, q[:40]  # the fp32 graph: the fp32 batch path's vector
        # against the default batch path: as close as that path is to its own fp32 result
        assert float(np.dot(a, b)) >= min(0.999, float(np.dot(b, x)) - 1e-4), q[:40]
    # a second embedder reuses the exported graph (no second export)
    again = SentenceTransformerEmbedder(cache_dir=tmp_path)
    mtime = next((tmp_path / "models").glob("query-*.onnx")).stat().st_mtime
    assert float(np.dot(again.encode_query(QUERIES[0]), fast[0])) >= 0.9999
    assert next((tmp_path / "models").glob("query-*.onnx")).stat().st_mtime == mtime


def test_without_the_graph_queries_go_through_torch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    emb = SentenceTransformerEmbedder(cache_dir=blocked)
    with caplog.at_level(logging.WARNING):
        v = emb.encode_query(QUERIES[0])
    assert emb._query_encoder() is None and "through torch" in caplog.text
    assert float(np.dot(v, emb.encode([QUERIES[0]])[0])) >= 0.9999
    torch_only = SentenceTransformerEmbedder(cache_dir=tmp_path, query_runtime="torch")
    torch_only.encode_query("x")
    assert torch_only._query_encoder() is None and not (tmp_path / "models").exists()


def test_only_a_pipeline_it_reproduces_is_taken() -> None:
    class Transformer: ...

    class Pooling:
        def __init__(self, mean: bool):
            self.pooling_mode_mean_tokens = mean

    class Normalize: ...

    class Dense: ...

    assert query_encoder.supported([Transformer(), Pooling(True), Normalize()]) is None
    assert "mean" in str(query_encoder.supported([Transformer(), Pooling(False)]))
    assert "modules" in str(query_encoder.supported([Transformer(), Pooling(True), Dense()]))


def test_a_graph_that_gives_other_vectors_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    real = query_encoder.QueryEncoder.encode
    monkeypatch.setattr(query_encoder.QueryEncoder, "encode", lambda self, text: real(self, text)[::-1].copy())
    emb = SentenceTransformerEmbedder(cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        v = emb.encode_query(QUERIES[0])
    assert emb._query_encoder() is None and "other vectors" in caplog.text
    assert not list((tmp_path / "models").glob("query-*.onnx")), "the bad graph is not kept in the cache"
    assert float(np.dot(v, emb.encode([QUERIES[0]])[0])) >= 0.9999


def test_query_tokens_come_from_the_models_own_tokenizer_called_directly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    emb = SentenceTransformerEmbedder(cache_dir=tmp_path)
    model = emb._load()
    direct = query_encoder.direct_ids(model, model.max_seq_length)
    assert direct is not None, "the packaged model's fast tokenizer is taken"
    reference = query_encoder.model_ids(model, model.max_seq_length)
    for text in [*QUERIES, "  Ünal's café — 8 May 2023 😀  ", "word " * 600]:
        (a, am), (b, bm) = direct(text), reference(text)
        assert np.array_equal(a, b) and np.array_equal(am, bm), text[:40]
    assert direct("word " * 600)[0].shape == (1, model.max_seq_length)
    # a tokenizer that gives other ids than the model's own step is never used
    real = query_encoder.model_ids
    monkeypatch.setattr(query_encoder, "model_ids",
                        lambda m, n: lambda text: tuple(x[:, :-1] for x in real(m, n)(text)))
    with caplog.at_level(logging.INFO):
        assert query_encoder.direct_ids(model, model.max_seq_length) is None
    assert "differs on a probe text" in caplog.text


def test_a_checked_graph_serves_queries_without_loading_the_model(tmp_path: Path) -> None:
    """Once a process has checked the graph against the model, later ones (a search from the
    command line, a fresh MCP server) embed queries from it without torch; a graph or tokenizer
    that no longer gives what was checked sends them back to the model, which checks afresh."""
    import json
    import subprocess
    import sys

    # graphs left by earlier exports: this model's under an older key, one an older memsync
    # wrote without checks, and another model's, which stays
    models = tmp_path / "models"
    models.mkdir()
    mine = model_path(SentenceTransformerEmbedder().model_id)
    for name, owner in (("query-older", mine), ("query-unchecked", None), ("query-other", "/models/other")):
        (models / f"{name}.onnx").write_bytes(b"graph")
        if owner:
            (models / f"{name}.checks.json").write_text(json.dumps({"model": owner}))
    first = SentenceTransformerEmbedder(cache_dir=tmp_path, device="cpu")
    want = first.encode_query(QUERIES[0])
    checks = next(p for p in models.glob("query-*.checks.json") if p.name != "query-other.checks.json")
    graph = checks.name.replace(".checks.json", ".onnx")
    assert sorted(p.name for p in models.glob("query-*")) == sorted([checks.name, graph, "query-other.onnx",
                                                                     "query-other.checks.json"])
    later = SentenceTransformerEmbedder(cache_dir=tmp_path, device="cpu")
    assert float(np.dot(later.encode_query(QUERIES[0]), want)) >= 0.9999
    assert later._model is None, "served from the checked graph"
    assert (later.active_device, later.active_precision) == (first.active_device, first.active_precision)
    assert float(np.dot(later.encode([QUERIES[0]])[0], want)) >= 0.999, "the model still loads when asked to encode"
    code = ("import sys; from pathlib import Path; from memsync.embed import SentenceTransformerEmbedder as E; "
            f"E(cache_dir=Path({str(tmp_path)!r}), device='cpu').encode_query('x'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "a process that only searches never imports torch"
    # checks the graph no longer meets: the model is loaded and the checks written again
    data = json.loads(checks.read_text())
    checks.write_text(json.dumps({**data, "probe_vector": data["probe_vector"][::-1]}))
    wary = SentenceTransformerEmbedder(cache_dir=tmp_path, device="cpu")
    assert float(np.dot(wary.encode_query(QUERIES[0]), want)) >= 0.9999 and wary._model is not None
    assert float(np.dot(json.loads(checks.read_text())["probe_vector"], data["probe_vector"])) >= 0.9999
    checks.write_text(checks.read_text()[:100])  # cut short
    cut = SentenceTransformerEmbedder(cache_dir=tmp_path, device="cpu")
    assert float(np.dot(cut.encode_query(QUERIES[0]), want)) >= 0.9999 and cut._model is not None
