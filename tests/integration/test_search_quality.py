"""Retrieval quality on a labelled set from a real third-party corpus: 45 pages of the
Mastra docs (tests/data/mastra_docs, Apache-2.0), each queried by its own front-matter
description (a known-item query the page body does not contain verbatim). Document-level
nDCG@10: hybrid must be at least as good as each signal alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs_ingest.ingest import Ingestor
from memsync.embed import SentenceTransformerEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.read.fusion import ndcg
from memsync.read.hybrid import SearchOptions, search
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage.db import connect

pytestmark = [pytest.mark.integration, pytest.mark.model]
CORPUS = Path(__file__).resolve().parents[1] / "data" / "mastra_docs"


def test_hybrid_beats_or_equals_each_signal(dsn: str, real_embedder: SentenceTransformerEmbedder) -> None:
    rt = Runtime(Settings.from_env({}), dsn, real_embedder, [PgvectorIndex(dsn)])
    summary = Ingestor(rt, CORPUS).run()
    assert summary.failed == 0 and summary.added == 45
    scores: dict[str, float] = {}
    with connect(dsn, autocommit=True, vectors=True) as conn:
        labelled = conn.execute(
            "SELECT id, metadata->'front_matter'->>'description' AS query FROM agent.artifacts"
            " WHERE metadata->'front_matter'->>'description' IS NOT NULL ORDER BY id").fetchall()
        assert len(labelled) == 45
        for mode in ("dense", "lexical", "hybrid"):
            total = 0.0
            for row in labelled:
                hits = search(rt, conn, row["query"], SearchOptions(k=40, mode=mode))  # type: ignore[arg-type]
                docs = list(dict.fromkeys(str(h.artifact_id) for h in hits))
                total += ndcg(docs, {str(row["id"])}, k=10)
            scores[mode] = total / len(labelled)
    print("nDCG@10", scores)
    assert scores["dense"] > 0.5 and scores["lexical"] > 0.5  # both signals work on their own
    assert scores["hybrid"] >= max(scores["dense"], scores["lexical"])
