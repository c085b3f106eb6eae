"""Property: whatever a markdown document holds (long unbroken strings, code, tables, data
URIs), no block exceeds the chunk size and no bundle exceeds its budget, both counted with
the model's tokenizer (long words at their weight) on the text actually stored and returned."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest
from helpers import drain

from memsync.app import Memsync
from memsync.embed import HashingEmbedder, SentenceTransformerEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn
from memsync.storage.db import context as ctxq
from memsync.text.chunk import block_text

pytestmark = pytest.mark.integration


class TokenizedHashing(HashingEmbedder):
    """Hashing vectors (fast), the real model's token counts (the tokenizer alone, no torch)."""

    def __init__(self) -> None:
        super().__init__(384)
        self.real = SentenceTransformerEmbedder()

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)


def random_doc(rng: random.Random) -> str:
    words = ["invoice", "deploy", "client", "rollback", "meeting", "portal", "budget", "migration", "token"]
    parts = [f"# Doc {rng.randint(1, 9999)}"]
    for _ in range(rng.randint(3, 12)):
        kind = rng.choice(["prose", "blob", "code", "table", "uri", "heading", "list"])
        if kind == "prose":
            parts.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 400))) + ".")
        elif kind == "blob":
            parts.append("key " + "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(90, 5000))))
        elif kind == "code":
            lines = [f"x_{i} = '{''.join(rng.choice('abcdef0123456789') for _ in range(rng.randint(1, 300)))}'"
                     for i in range(rng.randint(1, 120))]
            parts.append("```python\n" + "\n".join(lines) + "\n```")
        elif kind == "table":
            rows = [f"| {rng.choice(words)} | {rng.randint(0, 10**9)} |" for _ in range(rng.randint(1, 150))]
            parts.append("| a | b |\n|---|---|\n" + "\n".join(rows))
        elif kind == "uri":
            parts.append(f"![img](data:image/png;base64,{'A' * rng.randint(200, 300_000)})")
        elif kind == "heading":
            parts.append("#" * rng.randint(2, 4) + " " + " ".join(rng.choice(words) for _ in range(rng.randint(1, 8))))
        else:
            parts.append("\n".join(f"- {' '.join(rng.choice(words) for _ in range(rng.randint(1, 60)))}"
                                   for _ in range(rng.randint(1, 30))))
    return "\n\n".join(parts)


def test_no_block_over_the_chunk_size_and_no_bundle_over_its_budget(conn: DictConn, dsn: str,
                                                                    settings: Settings) -> None:
    emb = TokenizedHashing()
    rng = random.Random(20261129)
    person = conn.execute("INSERT INTO erp.people (full_name) VALUES ('Ada') RETURNING id").fetchone()
    assert person is not None
    for _ in range(25):
        conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md, subject_type, subject_id)"
                     " VALUES ('doc', 'Doc', %s, 'person', %s)", (random_doc(rng), person["id"]))
    conn.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id) VALUES ('result', %s,"
                 " 'person', %s)", ("data " + "Z" * 200_000 + " end", person["id"]))
    stats = drain(dsn, settings, emb, [PgvectorIndex(dsn)])
    assert stats.failed == 0, stats.errors
    limit = settings.chunk_tokens
    blocks = conn.execute("SELECT id, chunk_key, title, heading_path, body_md, token_count FROM agent.blocks").fetchall()
    assert len(blocks) > 100
    for b in blocks:
        n = emb.count_tokens(block_text(b))
        assert n <= limit, (b["id"], b["chunk_key"], n)
        assert len(b["body_md"]) < 20_000, (b["id"], len(b["body_md"]))  # no blob survives chunking

    ctxq.put_recipe(conn, "prop", None, {"scope": "subject", "budget_tokens": 600, "sections": [
        {"kind": "semantic", "name": "docs", "top_k": 20, "query": "{query}"},
        {"kind": "facts", "name": "facts", "fact_types": ["result"]}]})
    with Memsync(Settings.from_env({"MEMSYNC_DSN": dsn, "MEMSYNC_LOG_RETRIEVALS": "false"}), embedder=emb,
                 indexes=[PgvectorIndex(dsn)]) as app:
        for query in ("invoice rollback", "deploy the portal", "key token data", "table of budgets"):
            for budget in (50, 300, 600, 2000):
                bundle = app.retrieve("prop", ("person", person["id"]), query=query, budget_tokens=budget)
                returned = sum(emb.count_tokens(i.text) for i in bundle.items)
                assert returned <= budget, (query, budget, returned)
                assert bundle.tokens <= budget
                big: Any = [i for i in bundle.items if len(i.text) > 50_000]
                assert not big
