"""Would an int8 encode path pay here? Speed and agreement with fp32 of the packaged model in
torch fp32, torch bf16, and ONNX Runtime with a dynamically quantized int8 export (MatMul
weights, per channel), on the same chunks of the Mastra docs (bench/data, see ingest_bench.py).

The export is made offline from the packaged model (torch.onnx, then onnxruntime's
quantize_dynamic); `onnx` and `onnxruntime` are installed for this probe only:
    pip install onnx onnxruntime
(sentence-transformers' own ONNX backend needs optimum-onnx, which pins transformers < 4.58.)

Prints chunks/s for each path, and the cosine of each path's vectors to fp32 (mean, min).
Usage: python bench/int8_probe.py [--texts 512] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memsync.embed import SentenceTransformerEmbedder, model_path
from memsync.settings import DEFAULT_MODEL

DOCS = Path(__file__).resolve().parent / "data" / "package" / ".docs"


def export_int8(out: Path) -> Path:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    src = model_path(DEFAULT_MODEL)
    base = AutoModel.from_pretrained(src).eval()

    class Hidden(torch.nn.Module):  # keyword arguments: BertModel's positional order moved in transformers 5
        def __init__(self) -> None:
            super().__init__()
            self.m = base

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    enc = AutoTokenizer.from_pretrained(src)(["a b", "c"], return_tensors="pt", padding=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    fp32 = out / "model.onnx"
    torch.onnx.export(Hidden(), tuple(enc[n] for n in names), str(fp32), input_names=names,
                      output_names=["hidden"], dynamic_axes={n: {0: "b", 1: "s"} for n in [*names, "hidden"]},
                      opset_version=17, dynamo=False)
    int8 = out / "model_int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
    return int8


def onnx_encoder(path: Path, threads: int) -> Callable[[list[str]], np.ndarray]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_path(DEFAULT_MODEL)) / "tokenizer.json"))
    tok.enable_truncation(256)
    tok.enable_padding()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 64):
            batch = tok.encode_batch(texts[start:start + 64])
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[..., None].astype(np.float32)
            v = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)  # mean pooling, as the model's own
            out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        return np.concatenate(out)

    return encode


def main() -> None:
    import os

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    files = sorted(p for p in DOCS.rglob("*") if p.suffix in (".md", ".mdx"))
    texts = [t for t in (p.read_text(errors="replace")[:1500] for p in files) if t.strip()][: args.texts]
    texts.sort(key=len, reverse=True)  # as the pipeline slices them: little padding
    threads = os.cpu_count() or 1
    fp32 = SentenceTransformerEmbedder(precision="fp32")
    bf16 = SentenceTransformerEmbedder(precision="bf16")
    with tempfile.TemporaryDirectory(prefix="memsync-int8-") as tmp:
        t0 = time.perf_counter()
        int8 = onnx_encoder(export_int8(Path(tmp)), threads)
        paths: dict[str, Callable[[list[str]], np.ndarray]] = {"torch_fp32": fp32.encode, "torch_bf16": bf16.encode,
                                                               "onnx_int8": int8}
        out: dict[str, float] = {"export_and_quantize_s": time.perf_counter() - t0, "texts": float(len(texts))}
        vectors = {}
        for name, encode in paths.items():
            encode(texts[:16])  # warm up
            t1 = time.perf_counter()
            vectors[name] = encode(texts)
            out[f"{name}_chunks_per_s"] = len(texts) / (time.perf_counter() - t1)
        for name in ("torch_bf16", "onnx_int8"):
            cos = (vectors[name] * vectors["torch_fp32"]).sum(1)
            out[f"{name}_cosine_to_fp32_mean"] = float(cos.mean())
            out[f"{name}_cosine_to_fp32_min"] = float(cos.min())
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:34} {v:10.3f}")


if __name__ == "__main__":
    main()
