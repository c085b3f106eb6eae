"""The sync pipeline end to end on a real PostgreSQL and Qdrant local mode."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from helpers import drain
from psycopg.types.json import Jsonb

from memsync.embed import HashingEmbedder
from memsync.index import VectorIndex
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn

pytestmark = pytest.mark.integration

DOC = "# Guide\n\nIntro.\n\n## Install\n\nRun pip install.\n\n## Use\n\nStart the daemon.\n\n## Tail\n\nThe end.\n"



def blocks(conn: DictConn, table: str, source_id: int) -> dict[str, dict[str, Any]]:
    rows = conn.execute("SELECT * FROM agent.blocks WHERE source_table = %s AND source_id = %s",
                        (table, source_id)).fetchall()
    return {r["chunk_key"]: r for r in rows}


def pending(conn: DictConn) -> int:
    row = conn.execute("SELECT count(*) AS n FROM memsync.outbox WHERE dead_at IS NULL").fetchone()
    return int(row["n"]) if row else 0


def assert_indexes_match(conn: DictConn, model: str, indexes: list[VectorIndex]) -> None:
    want = {r["id"]: r["content_hash"] for r in conn.execute("SELECT id, content_hash FROM agent.blocks").fetchall()}
    for idx in indexes:
        assert idx.hashes(model) == want, idx.name


@pytest.fixture
def both(dsn: str, qdrant_index: Any) -> list[VectorIndex]:
    return [PgvectorIndex(dsn), qdrant_index]


def test_artifact_insert_update_delete(conn: DictConn, dsn: str, settings: Settings,
                                       fake_embedder: HashingEmbedder, both: list[VectorIndex]) -> None:
    row = conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md, subject_type, subject_id)"
                       " VALUES ('doc', 'Guide', %s, 'personal', NULL) RETURNING id", (DOC,)).fetchone()
    assert row is not None
    aid = row["id"]
    assert pending(conn) == 1
    stats = drain(dsn, settings, fake_embedder, both)
    assert stats.acked == 1 and pending(conn) == 0
    got = blocks(conn, "agent.artifacts", aid)
    assert set(got) == {"guide#0", "guide/install#0", "guide/use#0", "guide/tail#0"}
    assert all(b["artifact_id"] == aid and b["block_type"] == "doc_section" for b in got.values())
    assert_indexes_match(conn, fake_embedder.model_id, both)
    first_embeds = fake_embedder.encoded
    assert first_embeds == 4

    # edit one section: one block re-embedded, the others untouched
    before = {k: (b["id"], b["updated_at"]) for k, b in got.items()}
    conn.execute("UPDATE agent.artifacts SET body_md = replace(body_md, 'Start the daemon.', 'Start the worker.')"
                 " WHERE id = %s", (aid,))
    drain(dsn, settings, fake_embedder, both)
    assert fake_embedder.encoded == first_embeds + 1
    after = blocks(conn, "agent.artifacts", aid)
    changed = [k for k in after if (after[k]["id"], after[k]["updated_at"]) != before[k]]
    assert changed == ["guide/use#0"]
    assert_indexes_match(conn, fake_embedder.model_id, both)

    # shrink: the tail block and its points go
    conn.execute("UPDATE agent.artifacts SET body_md = %s WHERE id = %s", (DOC.split("## Tail")[0], aid))
    drain(dsn, settings, fake_embedder, both)
    assert "guide/tail#0" not in blocks(conn, "agent.artifacts", aid)
    assert_indexes_match(conn, fake_embedder.model_id, both)

    # delete: every block and point of the artifact goes
    conn.execute("DELETE FROM agent.artifacts WHERE id = %s", (aid,))
    drain(dsn, settings, fake_embedder, both)
    assert blocks(conn, "agent.artifacts", aid) == {}
    for idx in both:
        assert idx.count(fake_embedder.model_id) == 0
    assert pending(conn) == 0


def test_each_source_kind_follows(conn: DictConn, dsn: str, settings: Settings,
                                  fake_embedder: HashingEmbedder, both: list[VectorIndex]) -> None:
    person = conn.execute("INSERT INTO erp.people (full_name) VALUES ('Ana') RETURNING id").fetchone()["id"]  # type: ignore[index]
    sop = conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('sop', 'Release',"
                       " '1. Freeze\n2. Test\n3. Ship') RETURNING id").fetchone()["id"]  # type: ignore[index]
    refl = conn.execute("INSERT INTO agent.reflections (mode, focal_entity_type, focal_entity_id, goals, blockers,"
                        " raw_text) VALUES ('daily', 'person', %s, %s, %s, 'Long day.') RETURNING id",
                        (person, Jsonb(["Plan week"]), Jsonb(["Flu"]))).fetchone()["id"]  # type: ignore[index]
    fact = conn.execute("INSERT INTO agent.facts (fact_type, category, content, subject_type, subject_id) VALUES"
                        " ('preference', 'energy', 'Mornings are best.', 'person', %s) RETURNING id",
                        (person,)).fetchone()["id"]  # type: ignore[index]
    goal = conn.execute("INSERT INTO agent.goals (title, subject_type, subject_id) VALUES ('Run 10k', 'person', %s)"
                        " RETURNING id", (person,)).fetchone()["id"]  # type: ignore[index]
    direct = conn.execute("INSERT INTO agent.blocks (block_type, title, body_md) VALUES ('prompt_snippet',"
                          " 'Tone', 'Be brief and kind.') RETURNING id").fetchone()["id"]  # type: ignore[index]
    drain(dsn, settings, fake_embedder, both)

    assert [b["block_type"] for b in sorted(blocks(conn, "agent.artifacts", sop).values(), key=lambda b: b["ordinal"])] \
        == ["sop_step"] * 3
    rb = blocks(conn, "agent.reflections", refl)
    assert set(rb) == {"goals#0", "blockers#0", "raw_text/_root#0"}
    assert {(b["subject_type"], b["subject_id"]) for b in rb.values()} == {("person", person)}
    assert list(blocks(conn, "agent.facts", fact)) == ["fact"]
    assert list(blocks(conn, "agent.goals", goal)) == ["goal"]
    d = conn.execute("SELECT content_hash FROM agent.blocks WHERE id = %s", (direct,)).fetchone()
    assert d is not None and d["content_hash"]
    assert_indexes_match(conn, fake_embedder.model_id, both)

    # payload carries the mapping back to Postgres
    qd = both[1]
    rec = qd._client.scroll(qd.collection(fake_embedder.model_id), limit=100, with_payload=True)[0]  # type: ignore[attr-defined]
    fact_points = [r.payload for r in rec if r.payload["source_table"] == "agent.facts"]
    assert fact_points[0]["entity_type"] == "block" and fact_points[0]["subject_type"] == "person"
    assert fact_points[0]["global_id"].startswith("block:") and fact_points[0]["block_id"] > 0

    # updates and deletes of every kind
    conn.execute("UPDATE agent.reflections SET blockers = '[]' WHERE id = %s", (refl,))
    conn.execute("UPDATE agent.facts SET content = 'Evenings are best.' WHERE id = %s", (fact,))
    conn.execute("DELETE FROM agent.goals WHERE id = %s", (goal,))
    conn.execute("UPDATE agent.blocks SET body_md = 'Be brief.' WHERE id = %s", (direct,))
    drain(dsn, settings, fake_embedder, both)
    assert set(blocks(conn, "agent.reflections", refl)) == {"goals#0", "raw_text/_root#0"}
    assert blocks(conn, "agent.facts", fact)["fact"]["body_md"] == "Evenings are best."
    assert blocks(conn, "agent.goals", goal) == {}
    assert_indexes_match(conn, fake_embedder.model_id, both)

    conn.execute("DELETE FROM agent.blocks WHERE id = %s", (direct,))
    conn.execute("TRUNCATE agent.reflections")
    drain(dsn, settings, fake_embedder, both)
    assert blocks(conn, "agent.reflections", refl) == {}
    assert_indexes_match(conn, fake_embedder.model_id, both)
    assert pending(conn) == 0


def test_unrelated_column_enqueues_nothing(conn: DictConn, dsn: str, settings: Settings,
                                           fake_embedder: HashingEmbedder, both: list[VectorIndex]) -> None:
    gid = conn.execute("INSERT INTO agent.goals (title) VALUES ('Ship') RETURNING id").fetchone()["id"]  # type: ignore[index]
    aid = conn.execute("INSERT INTO agent.artifacts (artifact_type, body_md) VALUES ('doc', 'x') RETURNING id"
                       ).fetchone()["id"]  # type: ignore[index]
    drain(dsn, settings, fake_embedder, both)
    conn.execute("UPDATE agent.goals SET status = 'paused', priority = 1 WHERE id = %s", (gid,))
    conn.execute("UPDATE agent.artifacts SET metadata = '{\"k\": 1}', summary = 's' WHERE id = %s", (aid,))
    conn.execute("UPDATE agent.artifacts SET body_md = 'x' WHERE id = %s", (aid,))  # same value
    assert pending(conn) == 0


def test_unchanged_resave_computes_zero_embeddings(conn: DictConn, dsn: str, settings: Settings,
                                                   fake_embedder: HashingEmbedder, both: list[VectorIndex]) -> None:
    conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('doc', 'Guide', %s)", (DOC,))
    drain(dsn, settings, fake_embedder, both)
    n = fake_embedder.encoded
    # force every source through the pipeline again without a content change
    conn.execute("UPDATE agent.artifacts SET body_md = body_md || ' '")  # whitespace only: same normalized text
    conn.execute("SELECT memsync.enqueue('agent.artifacts', id, 'resync') FROM agent.artifacts")
    stats = drain(dsn, settings, fake_embedder, both)
    assert stats.acked == 1 and stats.embedded == 0 and fake_embedder.encoded == n
    # the same text in a second document is not embedded again either
    conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('doc', 'Guide', %s)", (DOC,))
    drain(dsn, settings, fake_embedder, both)
    assert fake_embedder.encoded == n
    assert_indexes_match(conn, fake_embedder.model_id, both)


def test_status_counts_blocks_of_an_older_chunker(conn: DictConn, dsn: str, settings: Settings,
                                                  fake_embedder: HashingEmbedder) -> None:
    """Each block records the chunker that made it: a fresh install has nothing to rechunk;
    blocks of an older chunker are counted, and a rechunk that makes the same text again
    brings them up to date without embedding anything."""
    from memsync.text.chunk import CHUNKER_VERSION
    from memsync.write import ops

    pg = [PgvectorIndex(dsn)]
    conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('doc', 'Guide', %s)", (DOC,))
    conn.execute("INSERT INTO agent.reflections (mode, raw_text) VALUES ('daily', 'Reflections are chunked too.')")
    drain(dsn, settings, fake_embedder, pg)
    assert ops.status(conn, fake_embedder.model_id, pg)["chunker_version"] == {"code": CHUNKER_VERSION,
                                                                               "older_blocks": 0}
    conn.execute("UPDATE agent.blocks SET chunker_version = 'old' WHERE source_table = 'agent.artifacts'")
    assert ops.status(conn, fake_embedder.model_id, pg)["chunker_version"]["older_blocks"] == 4
    n = fake_embedder.encoded
    ops.rechunk(conn, ["agent.artifacts"])
    drain(dsn, settings, fake_embedder, pg)
    assert ops.status(conn, fake_embedder.model_id, pg)["chunker_version"]["older_blocks"] == 0
    assert fake_embedder.encoded == n


def test_change_during_processing_is_not_lost(conn: DictConn, dsn: str, settings: Settings,
                                              fake_embedder: HashingEmbedder) -> None:
    """A change that lands after the claim bumps the version: the ack releases the item
    instead of deleting it, and the next pass indexes the new text."""
    from memsync.storage.db import queue

    fid = conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'v1') RETURNING id"
                       ).fetchone()["id"]  # type: ignore[index]
    (item,) = queue.claim(conn, queue.OUTBOX, "w1", 10, 60)
    conn.execute("UPDATE agent.facts SET content = 'v2' WHERE id = %s", (fid,))
    assert queue.ack(conn, queue.OUTBOX, item, "w1") is False
    drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])
    assert blocks(conn, "agent.facts", fid)["fact"]["body_md"] == "v2"
    assert pending(conn) == 0


def test_burst_of_1000_reflections_drains(conn: DictConn, dsn: str, settings: Settings,
                                          fake_embedder: HashingEmbedder, caplog: pytest.LogCaptureFixture) -> None:
    conn.execute("INSERT INTO agent.reflections (mode, goals, raw_text) SELECT 'daily', jsonb_build_array('goal ' || i),"
                 " 'Reflection number ' || i FROM generate_series(1, 1000) i")
    assert pending(conn) == 1000
    caplog.set_level(logging.INFO, logger="memsync.write.worker")
    stats = drain(dsn, settings, fake_embedder, [PgvectorIndex(dsn)])
    assert stats.acked == 1000 and pending(conn) == 0
    # two short texts an item: the claims grow until a batch gives the model a slice of texts
    sizes = [int(m.group(1)) for r in caplog.records if (m := re.match(r"batch: (\d+) items", r.getMessage()))]
    assert sizes == [settings.claim_batch] + [2 * settings.claim_batch] * 7 + [40]
    row = conn.execute("SELECT count(*) AS n FROM agent.blocks").fetchone()
    assert row is not None and row["n"] == 2000
    assert PgvectorIndex(dsn).count(fake_embedder.model_id) == 2000


def test_sync_session_is_recorded_without_secrets(conn: DictConn, dsn: str, fake_embedder: HashingEmbedder,
                                                  settings: Settings) -> None:
    s = settings.model_copy(update={"dsn": "postgresql://u:hunter2@example/db", "qdrant_api_key": "k3y"})
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'x')")
    drain(dsn, s, fake_embedder, [PgvectorIndex(dsn)])
    sess = conn.execute("SELECT * FROM agent.sessions WHERE session_type = 'sync'").fetchone()
    assert sess is not None and sess["status"] == "completed" and sess["ended_at"] is not None
    cfg = str(sess["applied_harness_config"])
    assert "hunter2" not in cfg and "k3y" not in cfg and "hashing-384" in cfg
    events = conn.execute("SELECT event_type, payload FROM agent.events WHERE session_id = %s", (sess["id"],)).fetchall()
    assert [e["event_type"] for e in events] == ["note"] and events[0]["payload"]["totals"]["acked"] == 1


def test_vector_key_is_the_point_id_every_index_stores(conn: DictConn, dsn: str, settings: Settings,
                                                       fake_embedder: HashingEmbedder, both: list[VectorIndex],
                                                       qdrant_index: Any) -> None:
    from memsync.index import point_id
    from memsync.write import ops

    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'a fact')")
    conn.execute("INSERT INTO agent.artifacts (artifact_type, title, body_md) VALUES ('doc', 'Guide', %s)", (DOC,))
    conn.execute("INSERT INTO agent.blocks (block_type, title, body_md) VALUES ('prompt_snippet', 'Note', 'direct')")
    drain(dsn, settings, fake_embedder, both)
    rows = conn.execute("SELECT id, global_id, vector_key FROM agent.blocks").fetchall()
    assert len(rows) == 6 and all(r["vector_key"] == point_id(r["global_id"]) for r in rows)
    model = fake_embedder.model_id
    points, _ = qdrant_index._client.scroll(qdrant_index.collection(model), limit=100)
    assert {str(p.id) for p in points} == {r["vector_key"] for r in rows}

    conn.execute("UPDATE agent.blocks SET vector_key = 'not-a-point' WHERE id = %s", (rows[0]["id"],))
    assert ops.verify(conn, model, both[0])["wrong_vector_key"] == 1
    assert ops.verify(conn, model, both[0], repair=True)["repaired"]
    assert ops.verify(conn, model, both[0])["wrong_vector_key"] == 0


# ------------------------------------------------------------------ the HNSW graph of a bulk load

def _graph_exists(conn: DictConn, model: str) -> bool:
    from memsync.storage.db.vectors import hnsw_index_name

    return conn.execute("SELECT to_regclass(%s) AS r", (f"memsync.{hnsw_index_name(model)}",)).fetchone()["r"] is not None


def _notes(conn: DictConn, n: int, word: str) -> None:
    conn.execute("INSERT INTO agent.blocks (block_type, title, body_md)"
                 " SELECT 'note', 'Note', %s || ' note ' || i || ' about topic ' || (i %% 37) FROM generate_series(1, %s) i",
                 (word, n))


def _watched(dsn: str, seen: list[bool]) -> PgvectorIndex:
    """A pgvector index that records, at each write, whether the model's graph exists."""
    from memsync.storage.db import connect

    class Watched(PgvectorIndex):
        def upsert(self, model: str, block_ids: Any, points: Any) -> None:
            with connect(dsn, autocommit=True) as c:
                seen.append(_graph_exists(c, model))
            super().upsert(model, block_ids, points)
    return Watched(dsn)


def test_a_backlog_as_large_as_the_index_loads_without_its_graph_then_builds_it_once(
        conn: DictConn, dsn: str, settings: Settings, fake_embedder: HashingEmbedder) -> None:
    from memsync.index.pgvector import REBUILD_MIN

    model = fake_embedder.model_id
    _notes(conn, REBUILD_MIN, "first")  # an empty index: the whole backlog goes in without a graph
    seen: list[bool] = []
    assert drain(dsn, settings, fake_embedder, [_watched(dsn, seen)]).acked == REBUILD_MIN
    assert seen and not any(seen)
    assert _graph_exists(conn, model)  # built at the end of the drain
    analysed = conn.execute("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
                            " AND relid IN ('memsync.pgvector_index'::regclass, 'agent.blocks'::regclass)").fetchall()
    assert sorted(r["relname"] for r in analysed) == ["blocks", "pgvector_index"]  # searches plan on the load
    assert PgvectorIndex(dsn).count(model) == REBUILD_MIN

    _notes(conn, 5, "second")  # a small backlog: inserted into the graph as usual
    seen.clear()
    assert drain(dsn, settings, fake_embedder, [_watched(dsn, seen)]).acked == 5
    assert seen and all(seen)

    # the built graph answers (read through it, the planner's other ways off: at 1,005 rows it
    # would rather sort them all): its nearest to a stored vector is that vector's block
    from memsync.index import as_array
    from memsync.storage.db import connect

    d = fake_embedder.dim
    nearest = (f"SELECT block_id FROM memsync.pgvector_index WHERE model = %s"
               f" ORDER BY embedding::vector({d}) <=> %s::vector({d}) LIMIT 5")
    with connect(dsn, autocommit=True, vectors=True) as c, c.transaction():
        probe = c.execute("SELECT block_id, embedding FROM memsync.pgvector_index ORDER BY block_id DESC LIMIT 1"
                          ).fetchone()
        vec = as_array(probe["embedding"])
        c.execute("SET LOCAL enable_seqscan = off")
        c.execute("SET LOCAL enable_bitmapscan = off")
        plan = "\n".join(r["QUERY PLAN"] for r in c.execute("EXPLAIN " + nearest, (model, vec)).fetchall())
        top = [r["block_id"] for r in c.execute(nearest, (model, vec)).fetchall()]
    assert "pgvector_index_hnsw" in plan
    assert top[0] == probe["block_id"]


def test_a_graph_a_dead_drain_left_dropped_is_built_by_the_next_drain(
        conn: DictConn, dsn: str, settings: Settings, fake_embedder: HashingEmbedder) -> None:
    from memsync.storage.db import connect
    from memsync.storage.db.vectors import drop_hnsw

    model = fake_embedder.model_id
    _notes(conn, 3, "kept")
    drain(dsn, settings, fake_embedder)
    assert _graph_exists(conn, model)
    with connect(dsn, autocommit=True) as c:  # as a drain that died between the drop and the build
        assert drop_hnsw(c, model)
    assert not _graph_exists(conn, model)
    assert drain(dsn, settings, fake_embedder).acked == 0  # nothing to sync: the graph still comes back
    assert _graph_exists(conn, model)
