"""Token counts with the packaged model's own tokenizer (no model weights, no torch)."""

from __future__ import annotations

import json
from pathlib import Path

from memsync.embed import SentenceTransformerEmbedder, model_path
from memsync.kinds import artifacts
from memsync.kinds.base import ChunkParams
from memsync.settings import DEFAULT_MODEL
from memsync.text.chunk import long_word_surcharge

DOC = Path(__file__).resolve().parents[1] / "data" / "mastra_docs"


def _tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_path(DEFAULT_MODEL)) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def test_line_by_line_counts_equal_counting_the_whole_text() -> None:
    tok = _tokenizer()
    emb = SentenceTransformerEmbedder()
    texts = [p.read_text() for p in sorted(DOC.rglob("*.md*"))[:10]]
    texts.append("a line\n\n\n- item [`ca85c93`](https://example.com/c/ca85c932b232e6ad)\r\n" + "x" * 300 + "\n")
    for text in texts:
        whole = len(tok.encode(text, add_special_tokens=False).ids) + long_word_surcharge(text)
        assert emb.count_tokens(text) == whole
    assert emb.count_tokens("") == 0


def test_every_chunk_fits_what_the_model_reads_special_tokens_included() -> None:
    tok = _tokenizer()
    emb = SentenceTransformerEmbedder()
    config = json.loads((Path(model_path(DEFAULT_MODEL)) / "sentence_bert_config.json").read_text())
    assert emb.text_window == config["max_seq_length"] - 2  # [CLS] and [SEP]
    assert emb._model is None  # read from the model's files: torch was not needed
    params = ChunkParams(emb.text_window, 32, emb.count_tokens)
    # sentences of two and three tokens: the packer fills each chunk to its last token
    body = "# Guide\n\n" + "Yes. Go on. " * 600
    chunks = artifacts.chunk({"body_md": body, "title": "Guide", "source_system": "fs",
                              "external_id": "r:docs/guide.md", "artifact_type": "doc"}, params)
    assert len(chunks) > 6
    sizes = [len(tok.encode(c.text, add_special_tokens=True).ids) for c in chunks]
    assert max(sizes) <= config["max_seq_length"]
    assert max(sizes) >= config["max_seq_length"] - 1  # the budget was used to the end


def test_the_line_count_cache_stays_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import memsync.embed as embed

    monkeypatch.setattr(embed, "COUNT_CACHE_CHARS", 500)
    emb = SentenceTransformerEmbedder()
    tok = _tokenizer()
    lines = [f"line {i} about the vector store number {i * 7}" for i in range(200)]
    assert emb.count_tokens("\n".join(lines)) == len(tok.encode("\n".join(lines), add_special_tokens=False).ids)
    assert emb._counted_chars <= 500 and len(emb._counts) < 20
