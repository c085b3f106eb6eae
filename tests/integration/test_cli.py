"""The operator commands through click's runner on the real database: status, search,
verify, reindex, reembed; and read paths the other modules leave untested: a TRUNCATE of
agent.blocks, okr and organization subject trees, events and sessions in a bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import drain
from psycopg.types.json import Jsonb
from qdrant_client import QdrantClient

from memsync.embed import HashingEmbedder
from memsync.faces.cli import main
from memsync.index.pgvector import PgvectorIndex
from memsync.index.qdrant import QdrantIndex
from memsync.read import subjects
from memsync.read.context import Retriever
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage.db import DictConn
from memsync.storage.db import context as ctxq

pytestmark = pytest.mark.integration


def one(conn: DictConn, q: str, *args: Any) -> Any:
    row = conn.execute(q, args or None).fetchone()
    assert row is not None
    return next(iter(row.values()))


def cli(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def env(dsn: str, tmp_path: Path) -> dict[str, str]:
    return {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_INDEXES": "pgvector,qdrant",
            "MEMSYNC_QDRANT_PATH": str(tmp_path / "q"), "MEMSYNC_LOG_LEVEL": "ERROR"}


def test_a_search_says_when_writes_wait_for_a_sync_worker(env: dict[str, str]) -> None:
    r = CliRunner().invoke(main, ["import", "conversation", "-", "--subject", "personal"], env=env,
                           input='[{"role": "user", "content": "the giraffe was spotted"}]')
    assert r.exit_code == 0, r.output
    r = cli(env, "search", "giraffe", "--mode", "lexical")
    assert r.exit_code == 0 and "no hits" in r.output and "1 change(s) are not searchable yet" in r.output
    assert "no sync worker is running" in r.output
    # hybrid, with a Qdrant collection that no sync has created yet: no hits, not an error
    r = cli(env, "search", "giraffe", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["pending_changes"] == 1, r.output
    assert cli(env, "run", "--once").exit_code == 0
    r = cli(env, "search", "giraffe", "--mode", "lexical")
    assert "the giraffe was spotted" in r.output and "not searchable" not in r.output
    assert json.loads(cli(env, "search", "giraffe", "--json").stdout)["pending_changes"] == 0


def test_status_search_verify_reindex_reembed(conn: DictConn, env: dict[str, str], tmp_path: Path) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, content) SELECT 'result', 'invoice ' || i || ' sent late'"
                 " FROM generate_series(1, 12) i")
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('preference', 'deep work before noon')")
    assert cli(env, "run", "--once").exit_code == 0

    status = json.loads(cli(env, "status", "--json").output)
    assert status["blocks"] == 13 and status["vectors"] == {"pgvector": 13, "qdrant": 13}
    assert status["backlog"]["pending"] == 0 and status["lag"]["n"] == 13
    text = cli(env, "status").output
    assert "backlog:      0 pending" in text and "lag:          p50" in text

    out = json.loads(cli(env, "search", "deep work noon", "--k", "3", "--json").output)
    hits = out["hits"]
    assert hits[0]["text"] == "deep work before noon" and len(hits) == 3
    assert out["timing"]["total_ms"] > 0 and set(out["timing"]) == {
        "pool_ms", "embed_ms", "dense_ms", "lexical_ms", "fusion_ms", "hits_ms", "total_ms"}
    lexical = json.loads(cli(env, "search", "deep work noon", "--mode", "lexical", "--json").output)["hits"]
    assert [h["text"] for h in lexical] == ["deep work before noon"]

    assert cli(env, "verify").exit_code == 0
    # drift: a point gone from Qdrant; verify says so (exit 3), --repair fixes it
    client = QdrantClient(path=env["MEMSYNC_QDRANT_PATH"])
    qd = QdrantIndex(client, "memsync_blocks")
    qd.delete_blocks("hashing-384", [one(conn, "SELECT min(id) FROM agent.blocks")])
    client.close()
    report = cli(env, "verify", "--json")
    assert report.exit_code == 3
    assert {r["index"]: r["missing"] for r in json.loads(report.output)} == {"pgvector": 0, "qdrant": 1}
    assert cli(env, "verify", "--repair").exit_code == 0
    assert cli(env, "verify").exit_code == 0

    # reindex rebuilds a projection from stored embeddings: no model calls
    conn.execute("DELETE FROM memsync.pgvector_index")
    out = cli(env, "reindex", "--index", "pgvector")
    assert out.exit_code == 0 and "pgvector: 13 points written" in out.output
    assert one(conn, "SELECT count(*) FROM memsync.pgvector_index") == 13
    assert cli(env, "reindex", "--index", "nowhere").exit_code == 2  # a usage error names the choices

    out = cli(env, "reembed", "--model", "hashing-256", "--json")
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["embedded"] == 13 and result["active"] is True
    assert one(conn, "SELECT count(*) FROM memsync.embeddings WHERE model = 'hashing-256'") == 13


def test_truncate_of_blocks_drops_every_point(conn: DictConn, dsn: str, settings: Settings,
                                              fake_embedder: HashingEmbedder, qdrant_index: Any) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'one'), ('result', 'two')")
    conn.execute("INSERT INTO agent.blocks (block_type, title, body_md) VALUES ('note', 'N', 'a direct note')")
    indexes = [PgvectorIndex(dsn), qdrant_index]
    drain(dsn, settings, fake_embedder, indexes)
    assert qdrant_index.count("hashing-384") == 3
    conn.execute("TRUNCATE agent.blocks CASCADE")
    drain(dsn, settings, fake_embedder, indexes)
    assert qdrant_index.count("hashing-384") == 0
    assert one(conn, "SELECT count(*) FROM memsync.pgvector_index") == 0
    assert one(conn, "SELECT n_docs FROM memsync.bm25_corpus") == 0


def test_okr_and_organization_trees(conn: DictConn) -> None:
    org = one(conn, "INSERT INTO erp.organizations (name, kind) VALUES ('Acme', 'client') RETURNING id")
    person = one(conn, "INSERT INTO erp.people (full_name, organization_id) VALUES ('Ada', %s) RETURNING id", org)
    project = one(conn, "INSERT INTO erp.projects (name, organization_id) VALUES ('Portal', %s) RETURNING id", org)
    task = one(conn, "INSERT INTO erp.tasks (title, project_id) VALUES ('SSO', %s) RETURNING id", project)
    top = one(conn, "INSERT INTO erp.okrs (objective, project_id) VALUES ('Grow', %s) RETURNING id", project)
    child = one(conn, "INSERT INTO erp.okrs (objective, parent_okr_id) VALUES ('Ship', %s) RETURNING id", top)
    grandchild = one(conn, "INSERT INTO erp.okrs (objective, parent_okr_id) VALUES ('Test', %s) RETURNING id", child)
    one(conn, "INSERT INTO erp.okrs (objective) VALUES ('Unrelated') RETURNING id")
    o = subjects.resolve(conn, f"organization:{org}")
    assert set(subjects.scope(conn, o, "tree")) == {
        ("organization", org), ("person", person), ("project", project), ("task", task), ("okr", top)}
    k = subjects.resolve(conn, ("okr", top))
    assert set(subjects.scope(conn, k, "tree")) == {("okr", top), ("okr", child), ("okr", grandchild)}
    assert subjects.scope(conn, k, "subject") == (("okr", top),)


def test_events_and_sessions_sections_in_a_bundle(conn: DictConn, dsn: str, settings: Settings,
                                                  fake_embedder: HashingEmbedder) -> None:
    person = one(conn, "INSERT INTO erp.people (full_name) VALUES ('Ada') RETURNING id")
    other = one(conn, "INSERT INTO erp.people (full_name) VALUES ('Bob') RETURNING id")
    session = one(conn, "INSERT INTO agent.sessions (session_type, subject_type, subject_id, status, summary)"
                        " VALUES ('planning', 'person', %s, 'completed', 'Planned the week') RETURNING id", person)
    one(conn, "INSERT INTO agent.sessions (session_type, subject_type, subject_id) VALUES ('planning', 'person', %s)"
              " RETURNING id", other)
    note = one(conn, "INSERT INTO agent.events (session_id, event_type, payload, memory_scope, subject_type, subject_id)"
                     " VALUES (%s, 'decision', %s, 'user', 'person', %s) RETURNING id", session,
               Jsonb({"text": "Move invoicing to Fridays"}), person)
    one(conn, "INSERT INTO agent.events (session_id, event_type, payload, memory_scope, subject_type, subject_id)"
              " VALUES (%s, 'tool_call', '{}', 'session', 'person', %s) RETURNING id", session, person)
    spec = {"scope": "subject", "sections": [
        {"kind": "events", "name": "decisions", "event_types": ["decision"]},
        {"kind": "sessions", "name": "recent_sessions", "session_types": ["planning"]}]}
    ctxq.put_recipe(conn, "activity", None, spec)
    bundle = Retriever(Runtime(settings, dsn, fake_embedder, [PgvectorIndex(dsn)]), conn, log=False).retrieve(
        "activity", f"person:{person}")
    assert [(i.section, i.table, i.id) for i in bundle.items] == [
        ("decisions", "agent.events", note), ("recent_sessions", "agent.sessions", session)]
    md = bundle.to_markdown()
    assert "Move invoicing to Fridays" in md and "Planned the week" in md and "Bob" not in md


def test_rechunk_brings_stored_blocks_to_the_chunker_and_embeds_only_changed_text(
        conn: DictConn, env: dict[str, str]) -> None:
    from memsync.text.chunk import content_hash

    doc = "# Guide\n\nIntro.\n\nInstall\n-------\n\nRun pip install.\n\n## Use\n\nStart the daemon.\n"
    conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('doc', 'Guide', %s)", (doc,))
    assert cli(env, "run", "--once").exit_code == 0
    want = {r["chunk_key"]: r["content_hash"] for r in conn.execute("SELECT chunk_key, content_hash FROM agent.blocks")}
    assert set(want) == {"guide#0", "guide/install#0", "guide/use#0"}  # setext 'Install' is a heading
    embeddings = one(conn, "SELECT count(*) FROM memsync.embeddings")
    # blocks as an older chunker left them: one with other text, one the chunker no longer makes
    conn.execute("SET memsync.origin = 'sync'")
    conn.execute("UPDATE agent.blocks SET body_md = 'Intro. Install ------- Run pip install.', content_hash = %s"
                 " WHERE chunk_key = 'guide#0'", (content_hash("Guide\n\nIntro. Install ------- Run pip install."),))
    conn.execute("INSERT INTO agent.blocks (block_type, body_md, source_table, source_id, artifact_id, chunk_key,"
                 " content_hash) SELECT 'doc_section', 'old', 'agent.artifacts', id, id, 'guide/old#0', 'x'"
                 " FROM agent.artifacts")
    conn.execute("RESET memsync.origin")
    assert "run `memsync rechunk`" in cli(env, "status").output

    out = cli(env, "rechunk", "--source", "agent.artifacts", "--json")
    assert out.exit_code == 0 and json.loads(out.output) == {"agent.artifacts": 1}
    assert cli(env, "rechunk", "--source", "erp.secrets").exit_code == 2
    done = json.loads(cli(env, "run", "--once", "--json").output)
    assert done["acked"] == 1 and done["embedded"] == 0  # the restored texts' vectors were kept
    got = {r["chunk_key"]: r["content_hash"] for r in conn.execute("SELECT chunk_key, content_hash FROM agent.blocks")}
    assert got == want and one(conn, "SELECT count(*) FROM memsync.embeddings") == embeddings
    assert cli(env, "verify").exit_code == 0
    assert json.loads(cli(env, "rechunk", "--json").output)["agent.facts"] == 0
    assert "rechunk" not in cli(env, "status").output


def test_mmr_and_recency_produce_orders_only_they_can(conn: DictConn, dsn: str, settings: Settings) -> None:
    from memsync.app import Memsync

    texts = {"a": "invoice export timeout at night, rerun it", "b": "invoice export timeout at night, rerun it again",
             "c": "invoice export failed because the vat id was missing"}
    ids = {k: one(conn, "INSERT INTO agent.blocks (block_type, title, body_md) VALUES ('note', 'Note', %s)"
                        " RETURNING id", v) for k, v in texts.items()}
    conn.execute("UPDATE agent.blocks SET created_at = now() - interval '60 days' WHERE id = %s", (ids["a"],))
    drain(dsn, settings, HashingEmbedder(), [PgvectorIndex(dsn)])
    query = "invoice export timeout at night rerun"
    with Memsync(Settings.from_env({"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384"})) as app:
        plain = [h.block_id for h in app.search(query, k=2)]
        diverse = [h.block_id for h in app.search(query, k=2, mmr_lambda=0.3)]
        recent = [h.block_id for h in app.search(query, k=2, recency_half_life_days=1.0)]
    assert plain == [ids["a"], ids["b"]]  # the two near-duplicates lead
    assert diverse == [ids["a"], ids["c"]]  # MMR trades the duplicate for the different one
    assert recent[0] == ids["b"]  # the 60-day-old block sinks below its fresh twin


def test_deleting_a_large_artifact_queues_one_item_and_drops_every_point(
        conn: DictConn, dsn: str, settings: Settings, fake_embedder: HashingEmbedder, qdrant_index: Any) -> None:
    doc = "\n\n".join(f"## Part {i}\n\nParagraph {i} of a long handbook." for i in range(200))
    aid = one(conn, "INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('doc', 'Handbook', %s)"
                    " RETURNING id", doc)
    indexes = [PgvectorIndex(dsn), qdrant_index]
    drain(dsn, settings, fake_embedder, indexes)
    assert one(conn, "SELECT count(*) FROM agent.blocks") == 200 and qdrant_index.count("hashing-384") == 200
    conn.execute("DELETE FROM agent.artifacts WHERE id = %s", (aid,))  # its blocks cascade
    assert one(conn, "SELECT count(*) FROM memsync.outbox") == 1  # the artifact's item, not one per block
    drain(dsn, settings, fake_embedder, indexes)
    assert qdrant_index.count("hashing-384") == 0 and one(conn, "SELECT count(*) FROM memsync.outbox") == 0

    # a derived block deleted on its own (its source still there) is rebuilt, its old point dropped
    aid = one(conn, "INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('doc', 'Small', %s)"
                    " RETURNING id", "# Small\n\nOne.\n\n## Two\n\nTwo.")
    drain(dsn, settings, fake_embedder, indexes)
    victim = one(conn, "SELECT min(id) FROM agent.blocks WHERE artifact_id = %s", aid)
    conn.execute("DELETE FROM agent.blocks WHERE id = %s", (victim,))
    drain(dsn, settings, fake_embedder, indexes)
    want = {r["id"]: r["content_hash"] for r in conn.execute("SELECT id, content_hash FROM agent.blocks")}
    assert len(want) == 2 and victim not in want
    assert qdrant_index.hashes("hashing-384") == want


def test_gc_removes_embeddings_no_block_uses(conn: DictConn, env: dict[str, str]) -> None:
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'kept'), ('result', 'dropped')")
    assert cli(env, "run", "--once").exit_code == 0
    conn.execute("DELETE FROM agent.facts WHERE content = 'dropped'")
    assert cli(env, "run", "--once").exit_code == 0
    assert one(conn, "SELECT count(*) FROM memsync.embeddings") == 2
    fresh = json.loads(cli(env, "gc", "--json").output)
    assert fresh["unused"] == 0  # inside the 24 h grace period: a re-add would still find it
    conn.execute("UPDATE memsync.embeddings SET created_at = now() - interval '2 days'")
    assert json.loads(cli(env, "gc", "--dry-run", "--json").output)["unused"] == 1
    assert one(conn, "SELECT count(*) FROM memsync.embeddings") == 2
    assert json.loads(cli(env, "gc", "--json").output)["deleted"] == 1
    assert one(conn, "SELECT count(*) FROM memsync.embeddings") == 1
    assert cli(env, "verify").exit_code == 0
