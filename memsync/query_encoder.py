"""One short text (a search query) embedded at the cost of its arithmetic. torch's eager
mode spends ~9 ms of dispatch on the ~100 small operations of a ten-token MiniLM pass,
bf16 or fp32, one thread or two; the same graph in ONNX Runtime takes ~3.7 ms
(bench/query_embed_bench.py). The graph is exported from the loaded model once (~3 s) into
a cache folder and reused; the vectors match the batch path's (cosine ≥ 0.9999).

A BERT-family model is exported with its attention written out (eager), so ONNX Runtime's
transformer optimizer can fuse each layer's attention, GELU and layer norms into single
kernels: 0.83x the unfused graph's time, same vectors (bench/query_embed_bench.py). A graph
is used only after it reproduces the batch path on a probe text.

The query's words go through the model's own Rust tokenizer directly (a private copy, no
padding, truncated at the model's window): ~0.07 ms against ~1 ms through
sentence-transformers' `preprocess`, which builds padded torch tensors for a batch. The copy is
used only where it gives the very ids `preprocess` gives on probe texts.

Only what can be checked is taken: a model whose sentence-transformers modules are a
transformer followed by mean pooling (and optionally normalisation). Anything else, or
any failure to export or load, leaves the caller on the torch path (logged once)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ONNX_OPSET = 17
GRAPH_RECIPE = "eager-fused-1"  # bump when export() makes a different graph: cached ones are replaced
# model types whose graphs the transformer optimizer fuses as "bert" (its name for the family)
FUSABLE = frozenset({"bert", "roberta", "xlm-roberta", "mpnet", "distilbert"})
PROBE = "how do I find what was said about the launch date"


Ids = tuple[np.ndarray, np.ndarray]  # input_ids, attention_mask: int64, shape (1, tokens)
PROBE_TEXTS = (PROBE, "  Where did Ünal move?  café, naïve; 8 May 2023 — e-mail x@y.org 😀 ", "a " * 400, "")


class QueryEncoder:
    """An ONNX Runtime session over a sentence-transformers model's transformer, with its
    tokenizer, mean pooling and normalisation done here."""

    def __init__(self, session: Any, tokenize: Callable[[str], Ids]):
        self._session = session
        self._tokenize = tokenize
        self._names = {i.name for i in session.get_inputs()}

    def encode(self, text: str) -> np.ndarray:
        ids, mask = self._tokenize(text)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._names:
            inputs["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, inputs)[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        vec = summed[0] / max(float(mask.sum()), 1.0)
        norm = float(np.linalg.norm(vec))
        return np.asarray(vec / norm if norm else vec, dtype=np.float32)


def model_ids(model: Any, max_length: int) -> Callable[[str], Ids]:
    """The model's own text-to-ids step, cut to its window."""
    tokenize = _tokenizer(model)

    def ids(text: str) -> Ids:
        feats = tokenize([text])
        return (feats["input_ids"].numpy().astype(np.int64)[:, :max_length],
                feats["attention_mask"].numpy().astype(np.int64)[:, :max_length])
    return ids


def tokenizer_spec(model: Any) -> tuple[str, bool] | None:
    """The model's Rust tokenizer as JSON and whether the model lower-cases first; None when it
    has no fast tokenizer."""
    try:
        module = model[0]
        return module.tokenizer.backend_tokenizer.to_str(), bool(getattr(module, "do_lower_case", False))
    except Exception as exc:  # not a fast tokenizer, or an API this version lacks
        log.info("query tokens through sentence-transformers: %s", exc)
        return None


def direct(spec: str, lower: bool, max_length: int) -> Callable[[str], Ids]:
    """Text to ids through a private copy of the tokenizer: no padding, cut to the window."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(spec)  # ours: its settings are ours
    backend.no_padding()
    backend.enable_truncation(max_length)

    def ids(text: str) -> Ids:
        text = str(text).strip()  # as sentence-transformers does
        enc = backend.encode(text.lower() if lower else text)
        return np.array([enc.ids], dtype=np.int64), np.array([enc.attention_mask], dtype=np.int64)
    return ids


def direct_ids(model: Any, max_length: int) -> Callable[[str], Ids] | None:
    """The model's Rust tokenizer called directly, where it gives the ids the model's own
    step gives on every probe text; else None."""
    spec = tokenizer_spec(model)
    if spec is None:
        return None
    ids = direct(*spec, max_length)
    reference = model_ids(model, max_length)
    for text in PROBE_TEXTS:
        (a, am), (b, bm) = ids(text), reference(text)
        if not (np.array_equal(a, b) and np.array_equal(am, bm)):
            log.info("query tokens through sentence-transformers: the direct tokenizer differs on a probe text")
            return None
    return ids


def supported(model: Any) -> str | None:
    """None when the model's pipeline is one this encoder reproduces; else why not."""
    mods = [type(m).__name__ for m in model]
    if len(mods) < 2 or mods[0] != "Transformer" or mods[1] != "Pooling" or any(
            m != "Normalize" for m in mods[2:]):
        return f"modules {mods} are not Transformer, Pooling[, Normalize]"
    pooling = model[1]
    mode = getattr(pooling, "pooling_mode_mean_tokens", None)
    if mode is None:  # newer sentence-transformers keep the mode as a string
        mode = getattr(pooling, "pooling_mode", None) == "mean"
    if not mode:
        return "its pooling is not the mean of the tokens"
    return None


def cache_key(model_dir: str) -> str:
    """Names the exported graph by what it was made from: the model's files, the torch and onnx
    versions that exported it, and the versions of the libraries whose text-to-ids and pooling
    it stands in for (read from the installed packages: no import, so a process that only
    searches never loads torch; an upgrade of any of them exports and checks afresh)."""
    from importlib.metadata import version

    made_by = "\x00".join(version(p) for p in ("torch", "onnx", "sentence-transformers", "transformers", "tokenizers"))
    h = hashlib.sha256(f"{made_by}\x00{ONNX_OPSET}\x00{GRAPH_RECIPE}".encode())
    root = Path(model_dir)
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        f = root / name
        if f.exists():
            st = f.stat()
            h.update(f"{name}\x00{st.st_size}\x00{int(st.st_mtime)}".encode())
    return h.hexdigest()[:20]


def export(model: Any, path: Path) -> None:
    """The transformer of a loaded sentence-transformers model as an fp32 ONNX graph with
    dynamic batch and sequence axes, written atomically."""
    import copy

    import torch

    transformer = copy.deepcopy(model[0].auto_model).float().eval().to("cpu")
    config = transformer.config
    fusable = str(getattr(config, "model_type", "")) in FUSABLE
    if fusable:  # attention as plain MatMul/Softmax ops, the pattern the optimizer fuses
        try:
            transformer.set_attn_implementation("eager")
        except (AttributeError, ValueError):
            config._attn_implementation = "eager"

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    sample = _tokenizer(model)(["an example query to trace"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "hidden": {0: "batch", 1: "tokens"}}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(Hidden(transformer), (sample["input_ids"], sample["attention_mask"]), str(tmp),
                          input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)
    if fusable:
        _fuse(tmp, int(config.num_attention_heads), int(config.hidden_size))
    os.replace(tmp, path)


def _fuse(path: Path, heads: int, hidden: int) -> None:
    """Rewrites the graph at `path` with ONNX Runtime's transformer fusions (fp32 kept)."""
    from onnxruntime.transformers import optimizer

    # its modules log each step at INFO under their bare names (the package puts its folder on
    # sys.path): quiet those loggers only
    folder = str(Path(optimizer.__file__).parent)
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(folder):
            logging.getLogger(name).setLevel(logging.WARNING)
    fused = optimizer.optimize_model(str(path), model_type="bert", num_heads=heads, hidden_size=hidden,
                                     opt_level=1, use_gpu=False)
    fused.save_model_to_file(str(path))


def build(model: Any, model_dir: str, cache: Path, threads: int) -> QueryEncoder | None:
    """The ONNX query encoder for a loaded model, exporting it into `cache` the first time;
    None (and a log line) where it cannot be had. Once the graph has reproduced the model, its
    checks are written beside it, so later processes take it without the model (from_cache)."""
    why = supported(model)
    if why is not None:
        log.info("queries embed through torch: %s", why)
        return None
    try:
        path = graph_path(cache, model_dir)
        if not path.exists():
            export(model, path)
            log.info("exported the query graph to %s", path)
        max_length = int(getattr(model, "max_seq_length", 256) or 256)
        tokenize = direct_ids(model, max_length)
        encoder = QueryEncoder(_session(path, threads), tokenize or model_ids(model, max_length))
        expected = np.asarray(model.encode([PROBE], normalize_embeddings=True, convert_to_numpy=True,
                                           show_progress_bar=False)[0], dtype=np.float32)
        vec = encoder.encode(PROBE)
        cosine = float(np.dot(vec, expected / (np.linalg.norm(expected) or 1.0)))
        if cosine < 0.999:  # a graph that does not reproduce the model is never used
            path.unlink(missing_ok=True)
            raise ValueError(f"the exported graph gives other vectors than the model (cosine {cosine:.4f})")
        if tokenize is not None and (spec := tokenizer_spec(model)) is not None:
            reference = model_ids(model, max_length)
            try:  # without its checks the graph still serves this process; later ones load the model
                _write_json(checks_path(path), {
                    "recipe": GRAPH_RECIPE, "model": model_dir, "tokenizer": spec[0], "lower": spec[1],
                    "max_length": max_length, "probe_ids": {t: reference(t)[0][0].tolist() for t in PROBE_TEXTS},
                    "probe_vector": vec.tolist()})
                forget_others(path, model_dir)
            except OSError as exc:
                log.info("query graph checks not written (%s)", exc)
    except Exception as exc:  # no onnxruntime, an export the exporter refuses, a cache we cannot write
        log.warning("queries embed through torch: the ONNX query graph is not available (%s)",
                    str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__)
        return None
    return encoder


def from_cache(model_dir: str, cache: Path, threads: int) -> QueryEncoder | None:
    """The query encoder from a graph an earlier build() exported and checked, without loading
    the model (no torch: a search from the command line or a fresh MCP server is ready in about a
    second, not the ~10 s of importing torch and sentence-transformers). Used only where the
    tokenizer gives the ids the model gave on the probe texts and the graph the vector it gave
    then; else None (the caller loads the model and build() checks afresh)."""
    try:
        path = graph_path(cache, model_dir)
        checks = checks_path(path)
        if not (path.exists() and checks.exists()):
            return None
        data = json.loads(checks.read_text())
        if data.get("recipe") != GRAPH_RECIPE:
            return None
        tokenize = direct(data["tokenizer"], bool(data["lower"]), int(data["max_length"]))
        for text, want in data["probe_ids"].items():
            if tokenize(text)[0][0].tolist() != want:
                log.info("query graph checks: the tokenizer gives other ids now; loading the model")
                return None
        encoder = QueryEncoder(_session(path, threads), tokenize)
        expected = np.asarray(data["probe_vector"], dtype=np.float32)
        if float(np.dot(encoder.encode(PROBE), expected)) < 0.9999:
            log.info("query graph checks: the graph gives another vector now; loading the model")
            return None
    except Exception as exc:  # a checks file cut short, an onnxruntime that refuses the graph
        log.info("query graph checks not usable (%s); loading the model", type(exc).__name__)
        return None
    return encoder


def forget_others(path: Path, model_dir: str) -> None:
    """Deletes the graphs this model was exported to under other keys (before an upgrade of
    torch, onnx, the model's libraries or its files: never read again, ~90 MB each), and those
    an older memsync left without checks (whichever model they were: one still in use is
    exported again, once, on its next start)."""
    for other in path.parent.glob("query-*.onnx"):
        if other == path:
            continue
        checks = checks_path(other)
        try:
            named = json.loads(checks.read_text()).get("model") if checks.exists() else None
        except (OSError, ValueError, AttributeError):
            named = None
        if named is None or named == model_dir:
            try:
                other.unlink(missing_ok=True)
                checks.unlink(missing_ok=True)
            except OSError as exc:  # another user's file: left, the query path is not at stake
                log.info("could not delete the query graph %s: %s", other.name, exc)
                continue
            log.info("deleted the query graph %s (%s)", other.name, "superseded" if named else "made without checks")


def graph_path(cache: Path, model_dir: str) -> Path:
    """Where the query graph of the model in `model_dir` is exported under its cache key."""
    return cache / f"query-{cache_key(model_dir)}.onnx"


def checks_path(graph: Path) -> Path:
    return graph.with_suffix(".checks.json")


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # no busy-waiting between runs: the threads would take the cores from the torch encode
    # and the BM25 query that run beside a search in the same process. Spinning within a
    # run only (session.force_spinning_stop) was tried: 0.78x the query time in a process
    # that only searches, but 1.35-1.7x where a torch encode ran 10 ms before (its OpenMP
    # threads still spin then), so it is not used
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _tokenizer(model: Any) -> Any:
    """The model's own text-to-features step (`preprocess` in newer sentence-transformers)."""
    return getattr(model, "preprocess", None) or model.tokenize
