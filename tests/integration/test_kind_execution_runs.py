"""A kind added as one module (memsync/kinds/execution_runs.py): its rows sync into blocks,
are searchable, and its section works in a recipe, with nothing else changed."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import drain
from psycopg.types.json import Jsonb

from memsync.embed import HashingEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.read.context import Retriever
from memsync.read.hybrid import SearchOptions, search
from memsync.read.recipes import parse_spec
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage.db import DictConn, connect
from memsync.storage.db import context as ctxq

pytestmark = pytest.mark.integration


def one(conn: DictConn, q: str, *args: Any) -> Any:
    row = conn.execute(q, args or None).fetchone()
    assert row is not None
    return next(iter(row.values()))


def test_execution_runs_sync_search_and_gather(conn: DictConn, dsn: str, settings: Settings,
                                               fake_embedder: HashingEmbedder) -> None:
    person = one(conn, "INSERT INTO erp.people (full_name) VALUES ('Ada') RETURNING id")
    other = one(conn, "INSERT INTO erp.people (full_name) VALUES ('Bob') RETURNING id")
    run = one(conn, "INSERT INTO agent.execution_runs (workflow, status, subject_type, subject_id, estimated_minutes,"
                    " actual_minutes, metadata) VALUES ('monthly invoicing', 'completed', 'person', %s, 30, 55, %s)"
                    " RETURNING id", person, Jsonb({"summary": "The VAT export timed out twice; rerun at night."}))
    one(conn, "INSERT INTO agent.execution_runs (workflow, status, subject_type, subject_id) VALUES"
              " ('inbox triage', 'failed', 'person', %s) RETURNING id", other)
    pg = PgvectorIndex(dsn)
    assert drain(dsn, settings, fake_embedder, [pg]).acked == 2
    block = conn.execute("SELECT * FROM agent.blocks WHERE source_table = 'agent.execution_runs' AND source_id = %s",
                         (run,)).fetchone()
    assert block is not None and block["block_type"] == "run_summary"
    assert block["subject_type"] == "person" and block["subject_id"] == person
    assert "Took 55 min (estimated 30, +25)" in block["body_md"]

    rt = Runtime(settings, dsn, fake_embedder, [pg])
    with connect(dsn, autocommit=True, vectors=True) as c:
        for mode in ("lexical", "dense", "hybrid"):
            hits = search(rt, c, "VAT export timed out", SearchOptions(k=1, mode=mode))  # type: ignore[arg-type]
            assert (hits[0].source_table, hits[0].source_id) == ("agent.execution_runs", run), mode

        spec = {"scope": "subject", "sections": [{"kind": "runs", "name": "recent_runs", "statuses": ["completed"]}]}
        parse_spec(spec)
        ctxq.put_recipe(c, "runs_test", None, spec)
        bundle = Retriever(rt, c, log=False).retrieve("runs_test", f"person:{person}")
        assert [(i.table, i.id) for i in bundle.items] == [("agent.execution_runs", run)]
        assert "Run: monthly invoicing (completed" in bundle.to_markdown()

    # a change outside the content columns enqueues nothing; a content change re-syncs the block
    conn.execute("UPDATE agent.execution_runs SET updated_at = now() WHERE id = %s", (run,))
    assert one(conn, "SELECT count(*) FROM memsync.outbox") == 0
    conn.execute("UPDATE agent.execution_runs SET actual_minutes = 40 WHERE id = %s", (run,))
    drain(dsn, settings, fake_embedder, [pg])
    assert "Took 40 min (estimated 30, +10)" in one(
        conn, "SELECT body_md FROM agent.blocks WHERE source_table = 'agent.execution_runs' AND source_id = %s", run)
    conn.execute("DELETE FROM agent.execution_runs WHERE id = %s", (run,))
    drain(dsn, settings, fake_embedder, [pg])
    assert one(conn, "SELECT count(*) FROM agent.blocks WHERE source_id = %s"
                     " AND source_table = 'agent.execution_runs'", run) == 0


def test_an_unknown_section_kind_is_a_clear_recipe_error() -> None:
    from memsync.errors import RecipeError

    with pytest.raises(RecipeError, match=r"sections\.0.*'runs'"):
        parse_spec({"sections": [{"kind": "nonsense", "name": "x"}]})
