"""retrieve() and search() on a real PostgreSQL with the real model, in pgvector and Qdrant.
The data is designed to leak: client B's document is the best lexical and dense match for
client A's query, so only correct scoping keeps it out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import Explained
from psycopg.types.json import Jsonb
from qdrant_client import QdrantClient

from memsync.embed import SentenceTransformerEmbedder
from memsync.errors import RecipeError, SubjectError
from memsync.index.pgvector import PgvectorIndex
from memsync.index.qdrant import QdrantIndex
from memsync.read.context import Retriever
from memsync.read.hybrid import SearchOptions, search
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage.db import connect
from memsync.storage.db import context as ctxq
from memsync.storage.filters import Filters
from memsync.write.worker import Worker

pytestmark = [pytest.mark.integration, pytest.mark.model]

QUERY = "database migration rollback plan"


@pytest.fixture(scope="module")
def world(module_dsn: str, real_embedder: SentenceTransformerEmbedder,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ids: dict[str, Any] = {}
    with connect(module_dsn, autocommit=True) as c:
        def one(stmt: str, *args: Any) -> int:
            row = c.execute(stmt, args).fetchone()
            assert row is not None
            return int(row["id"])

        for who in ("a", "b"):
            name = {"a": "Alice Adams", "b": "Bob Brown"}[who]
            ids[f"org_{who}"] = one("INSERT INTO erp.organizations (name) VALUES (%s) RETURNING id", f"{name} Ltd")
            ids[f"person_{who}"] = one("INSERT INTO erp.people (full_name, organization_id) VALUES (%s, %s) RETURNING id",
                                       name, ids[f"org_{who}"])
            ids[f"project_{who}"] = one("INSERT INTO erp.projects (name, description, organization_id) VALUES (%s, %s, %s)"
                                        " RETURNING id", f"{name} platform", "Customer platform rebuild",
                                        ids[f"org_{who}"])
            ids[f"eng_{who}"] = one("INSERT INTO erp.engagements (name, project_id, client_person_id, organization_id)"
                                    " VALUES (%s, %s, %s, %s) RETURNING id", f"{name} retainer",
                                    ids[f"project_{who}"], ids[f"person_{who}"], ids[f"org_{who}"])
            ids[f"task_open_{who}"] = one("INSERT INTO erp.tasks (title, project_id, status, due_at) VALUES"
                                          " (%s, %s, 'todo', now() + interval '2 days') RETURNING id",
                                          f"Prepare cutover checklist for {name}", ids[f"project_{who}"])
            ids[f"task_done_{who}"] = one("INSERT INTO erp.tasks (title, project_id, status) VALUES (%s, %s, 'done')"
                                          " RETURNING id", f"Kickoff call with {name}", ids[f"project_{who}"])
            ids[f"fact_{who}"] = one("INSERT INTO agent.facts (fact_type, category, content, subject_type, subject_id)"
                                     " VALUES ('preference', 'scheduling', %s, 'person', %s) RETURNING id",
                                     f"{name} prefers meetings on Tuesday mornings.", ids[f"person_{who}"])
            ids[f"goal_{who}"] = one("INSERT INTO agent.goals (title, subject_type, subject_id) VALUES (%s, 'project', %s)"
                                     " RETURNING id", f"Launch the {name} platform", ids[f"project_{who}"])
            ids[f"refl_{who}"] = one("INSERT INTO agent.reflections (mode, focal_entity_type, focal_entity_id, blockers)"
                                     " VALUES ('daily', 'person', %s, %s) RETURNING id", ids[f"person_{who}"],
                                     Jsonb([f"Waiting on {name}'s firewall change"]))
        ids["doc_a"] = one("INSERT INTO agent.artifacts (artifact_type, title, body_md, subject_type, subject_id) VALUES"
                           " ('doc', 'Alice platform notes', %s, 'project', %s) RETURNING id",
                           "# Alice platform notes\n\nThe customer wants weekly status emails and a shared board.",
                           ids["project_a"])
        ids["doc_task_a"] = one("INSERT INTO agent.artifacts (artifact_type, title, body_md, subject_type, subject_id)"
                                " VALUES ('doc', 'Cutover checklist', %s, 'task', %s) RETURNING id",
                                "# Cutover checklist\n\nFreeze writes, take a snapshot, switch DNS, keep the old"
                                " database for a day in case we must roll back.", ids["task_open_a"])
        ids["doc_b"] = one("INSERT INTO agent.artifacts (artifact_type, title, body_md, subject_type, subject_id) VALUES"
                           " ('doc', 'Database migration rollback plan', %s, 'project', %s) RETURNING id",
                           "# Database migration rollback plan\n\nIf the database migration fails, roll back: restore"
                           " the snapshot, replay the migration log, and rerun the rollback plan checks.",
                           ids["project_b"])
        ids["fact_personal"] = one("INSERT INTO agent.facts (fact_type, content, subject_type) VALUES"
                                   " ('constraint', 'No work after 6pm.', 'personal') RETURNING id")
    qpath = tmp_path_factory.mktemp("qdrant-retrieve")
    client = QdrantClient(path=str(qpath))
    qd = QdrantIndex(client, "memsync_retrieve")
    pg = PgvectorIndex(module_dsn)
    settings = Settings.from_env({}, model=real_embedder.model_id)
    stats = Worker(settings, module_dsn, real_embedder, [pg, qd]).run_once()
    assert stats.failed == 0
    ids.update(dsn=module_dsn, settings=settings, pg=pg, qd=qd, embedder=real_embedder)
    yield ids
    client.close()


def runtimes(world: dict[str, Any]) -> list[Runtime]:
    return [Runtime(world["settings"], world["dsn"], world["embedder"], [world["pg"]]),
            Runtime(world["settings"], world["dsn"], world["embedder"], [world["qd"]])]


def b_rows(world: dict[str, Any]) -> set[tuple[str, int]]:
    return {("erp.people", world["person_b"]), ("erp.projects", world["project_b"]),
            ("erp.engagements", world["eng_b"]), ("erp.tasks", world["task_open_b"]),
            ("erp.tasks", world["task_done_b"]), ("agent.facts", world["fact_b"]), ("agent.goals", world["goal_b"]),
            ("agent.reflections", world["refl_b"]), ("agent.artifacts", world["doc_b"])}


def test_the_data_is_designed_to_leak(world: dict[str, Any]) -> None:
    for rt in runtimes(world):
        with connect(rt.dsn, autocommit=True, vectors=True) as conn:
            for mode in ("dense", "lexical", "hybrid"):
                top = search(rt, conn, QUERY, SearchOptions(k=1, mode=mode))[0]  # type: ignore[arg-type]
                assert (top.source_table, top.source_id) == ("agent.artifacts", world["doc_b"]), (rt.indexes, mode)


def test_isolation_between_clients(world: dict[str, Any]) -> None:
    leaks = b_rows(world)
    for rt in runtimes(world):
        with connect(rt.dsn, autocommit=True, vectors=True) as conn:
            r = Retriever(rt, conn, log=False)
            for recipe, subject in (("project_context", f"project:{world['project_a']}"),
                                    ("daily_planning", f"person:{world['person_a']}"),
                                    ("engagement_planning", f"engagement:{world['eng_a']}"),
                                    ("weekly_reflection", f"person:{world['person_a']}")):
                bundle = r.retrieve(recipe, subject, query=QUERY)
                got = {(i.table, i.id) for i in bundle.items}
                assert not got & leaks, (rt.indexes[0].name, recipe, got & leaks)
                assert "Bob" not in bundle.to_markdown()
                assert bundle.items, recipe
            # scoped search: B's document is filtered out in both signals
            f = Filters(subjects=(("project", world["project_a"]),), scoped=True)
            for mode in ("dense", "lexical", "hybrid"):
                hits = search(rt, conn, QUERY, SearchOptions(k=10, mode=mode), f)  # type: ignore[arg-type]
                assert all(h.subject_type == "project" and h.subject_id == world["project_a"] for h in hits)


def test_subject_tree_finds_docs_of_the_projects_tasks(world: dict[str, Any]) -> None:
    for rt in runtimes(world):
        with connect(rt.dsn, autocommit=True, vectors=True) as conn:
            bundle = Retriever(rt, conn, log=False).retrieve("project_context", ("project", world["project_a"]),
                                                            query="how do we switch over and roll back")
            docs = [i for i in bundle.items if i.section == "docs"]
            assert ("agent.artifacts", world["doc_task_a"]) in {(i.table, i.id) for i in docs}
            tasks = {(i.table, i.id) for i in bundle.items if i.section == "open_tasks"}
            assert tasks == {("erp.tasks", world["task_open_a"])}  # open only, A only
            assert bundle.items[0].section == "project" and bundle.items[0].id == world["project_a"]
            # subject alone: the task's doc is out of scope
            alone = Retriever(rt, conn, log=False)
            row, _ = alone.load_recipe("project_context")
            spec = dict(row["retrieval_spec"], scope="subject")
            ctxq.put_recipe(conn, "project_only", None, spec)
            narrow = alone.retrieve("project_only", ("project", world["project_a"]), query="switch over and roll back")
            assert ("agent.artifacts", world["doc_task_a"]) not in {(i.table, i.id) for i in narrow.items}


def test_daily_planning_for_a_person(world: dict[str, Any]) -> None:
    rt = runtimes(world)[0]
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        b = Retriever(rt, conn, log=False).retrieve("daily_planning", f"person:{world['person_a']}")
    by = {(i.section, i.table, i.id) for i in b.items}
    assert ("open_tasks", "erp.tasks", world["task_open_a"]) in by
    assert ("preferences", "agent.facts", world["fact_a"]) in by
    assert ("preferences", "agent.facts", world["fact_personal"]) in by
    assert ("recent_reflections", "agent.reflections", world["refl_a"]) in by
    md = b.to_markdown()
    assert md.startswith("# Context: daily_planning (v1) for Alice Adams")
    assert "## Open tasks" in md and "## Sources" in md and f"erp.tasks#{world['task_open_a']}" in md
    d = b.to_dict()
    assert d["tokens"] == sum(i["tokens"] for i in d["items"]) <= d["budget_tokens"]
    assert json.loads(json.dumps(d))["recipe"] == "daily_planning"  # plain JSON, nothing to coerce


def test_budget_drops_lowest_priority_first_and_reports_it(world: dict[str, Any]) -> None:
    rt = runtimes(world)[0]
    spec = {"scope": "tree", "budget_tokens": 5000, "sections": [
        {"name": "tasks", "kind": "records", "relation": "erp.tasks", "priority": 1, "min_items": 1, "max_items": 5},
        {"name": "facts", "kind": "facts", "priority": 2},
        {"name": "docs", "kind": "semantic", "query": "{query}", "priority": 9, "min_items": 1, "top_k": 5},
    ]}
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        ctxq.put_recipe(conn, "budget_test", None, spec)
        r = Retriever(rt, conn, log=False)
        full = r.retrieve("budget_test", ("person", world["person_a"]), query=QUERY)
        sizes = {s: sum(i.tokens for i in full.items if i.section == s) for s in ("tasks", "facts", "docs")}
        assert all(sizes.values()) and not full.dropped
        first_doc = next(i.tokens for i in full.items if i.section == "docs")
        budget = sizes["tasks"] + sizes["facts"] + first_doc
        tight = r.retrieve("budget_test", ("person", world["person_a"]), query=QUERY, budget_tokens=budget)
        assert [i.section for i in tight.items].count("docs") == 1  # min_items kept
        assert {d["section"] for d in tight.dropped} == {"docs"}
        assert all(d["reason"] == "budget" for d in tight.dropped)
        # items beyond every section's min_items go first (lowest priority first) ...
        first_task = next(i.tokens for i in full.items if i.section == "tasks")
        floor = r.retrieve("budget_test", ("person", world["person_a"]), query=QUERY,
                           budget_tokens=first_task + first_doc)
        assert [i.section for i in floor.items] == ["tasks", "docs"]
        # ... then the min_items themselves, again lowest priority first
        tiny = r.retrieve("budget_test", ("person", world["person_a"]), query=QUERY, budget_tokens=first_task)
        assert [i.section for i in tiny.items] == ["tasks"] and tiny.tokens <= first_task
        assert [d["section"] for d in tiny.dropped if d["reason"] == "budget (below min_items)"] == ["docs"]


def test_dedup_across_sections(world: dict[str, Any]) -> None:
    rt = runtimes(world)[0]
    spec = {"sections": [
        {"name": "facts", "kind": "facts"},
        {"name": "semantic_facts", "kind": "semantic", "query": "Alice prefers meetings Tuesday",
         "source_tables": ["agent.facts"], "top_k": 5},
    ]}
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        ctxq.put_recipe(conn, "dedup_test", None, spec)
        b = Retriever(rt, conn, log=False).retrieve("dedup_test", ("person", world["person_a"]))
    keys = [(i.table, i.id) for i in b.items]
    assert keys.count(("agent.facts", world["fact_a"])) == 1
    assert next(i for i in b.items if i.id == world["fact_a"]).section == "facts"


def test_as_of_returns_what_was_valid_then(world: dict[str, Any]) -> None:
    rt = runtimes(world)[0]
    now = datetime.now(timezone.utc)
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        old = conn.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id, valid_from, valid_to)"
                           " VALUES ('constraint', 'Old office hours 8-4.', 'person', %s, %s, %s) RETURNING id",
                           (world["person_a"], now - timedelta(days=30), now - timedelta(days=10))).fetchone()
        assert old is not None
        r = Retriever(rt, conn, log=False)
        current = {i.id for i in r.retrieve("daily_planning", ("person", world["person_a"])).items
                   if i.table == "agent.facts"}
        then = {i.id for i in r.retrieve("daily_planning", ("person", world["person_a"]),
                                         as_of=now - timedelta(days=20)).items if i.table == "agent.facts"}
        conn.execute("DELETE FROM agent.facts WHERE id = %s", (old["id"],))
    assert old["id"] not in current and old["id"] in then
    assert world["fact_a"] in current and world["fact_a"] not in then  # created after as_of


def test_both_indexes_bound_blocks_written_later_and_leave_turns_and_facts_to_their_own_time(
        world: dict[str, Any]) -> None:
    """memory_before (search's as_of) in each index: a block timed by its writing (a document,
    a reflection) written later is left out before ranking, turns and facts are kept for the
    hit rows to judge by when they were said or valid."""
    then = datetime.now(timezone.utc) - timedelta(days=1)
    for rt in runtimes(world):
        with connect(rt.dsn, autocommit=True, vectors=True) as conn:
            v = rt.embedder.encode_query("office hours budget planning")
            every = rt.search_index().search(rt.embedder.model_id, v, 500, Filters())
            bounded = rt.search_index().search(rt.embedder.model_id, v, 500, Filters(memory_before=then))
            kept = {r["source_table"] for r in conn.execute(
                "SELECT DISTINCT source_table FROM agent.blocks WHERE id = ANY(%s)", ([b for b, _ in bounded],))}
            timed = conn.execute("SELECT count(*) AS n FROM agent.blocks WHERE source_table IN"
                                 " ('agent.events', 'agent.facts')").fetchone()
        assert len(every) > len(bounded) > 0 and kept <= {"agent.events", "agent.facts"}, rt.indexes[0].name
        assert timed is not None and len(bounded) == timed["n"], rt.indexes[0].name


def test_errors_are_clear_and_typed(world: dict[str, Any]) -> None:
    rt = runtimes(world)[0]
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        r = Retriever(rt, conn, log=False)
        with pytest.raises(RecipeError, match=r"unknown recipe 'nope'; known: .*daily_planning"):
            r.retrieve("nope", "person:1")
        with pytest.raises(SubjectError, match="no project with id 999999"):
            r.retrieve("project_context", "project:999999")
        with pytest.raises(SubjectError, match="unknown subject type 'planet'"):
            r.retrieve("project_context", "planet:1")
        with pytest.raises(SubjectError, match="must look like"):
            r.retrieve("project_context", "'; DROP TABLE erp.tasks; --")
        with pytest.raises(RecipeError, match="is for project subjects, not person"):
            r.retrieve("project_context", ("person", world["person_a"]))
        bad_specs = {
            "relation 'pg_catalog.pg_authid' is not allowed": {"sections": [
                {"name": "x", "kind": "records", "relation": "pg_catalog.pg_authid"}]},
            "cannot be filtered on 'password'": {"sections": [
                {"name": "x", "kind": "records", "relation": "erp.people", "where": {"password": "x"}}]},
            "sections.0.facts.max_items": {"sections": [{"name": "x", "kind": "facts", "max_items": "lots"}]},
            "sections: List should have at least 1 item": {"sections": []},
        }
        for message, spec in bad_specs.items():
            conn.execute("INSERT INTO agent.context_recipes (name, retrieval_spec) VALUES ('broken', %s)"
                         " ON CONFLICT (name, version) DO UPDATE SET retrieval_spec = EXCLUDED.retrieval_spec",
                         (Jsonb(spec),))
            with pytest.raises(RecipeError, match="recipe broken v1: invalid retrieval_spec") as exc:
                r.retrieve("broken", ("person", world["person_a"]))
            assert message in str(exc.value)
        conn.execute("DELETE FROM agent.context_recipes WHERE name = 'broken'")
        # a rejected recipe logged nothing: no retrieval session was started
        assert conn.execute("SELECT count(*) AS n FROM agent.sessions WHERE session_type = 'retrieval'"
                            " AND started_at > now() - interval '1 minute'").fetchone() == {"n": 0}


def test_retrievals_are_logged(world: dict[str, Any]) -> None:
    rt = runtimes(world)[0]
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        r = Retriever(rt, conn, log=True)
        r.retrieve("daily_planning", ("person", world["person_a"]), query="plan")
        r.retrieve("daily_planning", ("person", world["person_a"]))
        r.close()
        events = conn.execute("SELECT e.payload FROM agent.events e JOIN agent.sessions s ON s.id = e.session_id"
                              " WHERE s.session_type = 'retrieval' ORDER BY e.id").fetchall()
    assert len(events) == 2
    p = events[0]["payload"]
    assert p["recipe"] == "daily_planning" and p["recipe_version"] == 1 and p["query"] == "plan"
    assert p["tokens"] > 0 and p["candidates"] >= len(p["chosen"]) > 0 and p["latency_ms"] > 0


def test_pgvector_and_qdrant_agree(world: dict[str, Any]) -> None:
    pg_rt, qd_rt = runtimes(world)
    with connect(pg_rt.dsn, autocommit=True, vectors=True) as conn:
        for query in (QUERY, "meeting preferences", "firewall change blocker"):
            for f in (Filters(), Filters(block_types=("doc_section",)),
                      Filters(subjects=(("person", world["person_a"]), ("person", world["person_b"])), scoped=True)):
                a = [h.block_id for h in search(pg_rt, conn, query, SearchOptions(k=5, mode="dense"), f)]
                b = [h.block_id for h in search(qd_rt, conn, query, SearchOptions(k=5, mode="dense"), f)]
                assert a == b, (query, f)


def test_api_and_cli(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import memsync
    from memsync.errors import FilterError
    from memsync.faces import api
    from memsync.faces.cli import main

    app = memsync.Memsync(Settings.from_env({"MEMSYNC_DSN": world["dsn"]}), embedder=world["embedder"],
                          indexes=[world["pg"]])
    hits = app.search(QUERY, k=3, filters={"block_types": ["doc_section"]})
    assert hits and all(h.block_type == "doc_section" for h in hits)
    bundle = app.retrieve("daily_planning", f"person:{world['person_a']}")
    assert bundle.items
    with pytest.raises(FilterError, match="invalid filter"):
        app.search(QUERY, filters={"colour": "red"})
    # the module functions: a default instance opened from MEMSYNC_* on first use
    monkeypatch.setenv("MEMSYNC_DSN", world["dsn"])
    api.close()
    try:
        assert [h.block_id for h in memsync.search(QUERY, k=3)] == [h.block_id for h in app.search(QUERY, k=3)]
        assert memsync.retrieve("daily_planning", f"person:{world['person_a']}").items
    finally:
        api.close()
        app.close()

    env = {"MEMSYNC_DSN": world["dsn"]}
    runner = CliRunner()
    out = runner.invoke(main, ["recipes", "list"], env=env)
    assert out.exit_code == 0 and "daily_planning" in out.output
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: cli_recipe\ndescription: test\nspec:\n  sections:\n"
                      "    - {name: facts, kind: facts}\n")
    assert runner.invoke(main, ["recipes", "validate", str(recipe)], env=env).exit_code == 0
    put = runner.invoke(main, ["recipes", "put", str(recipe)], env=env)
    assert put.exit_code == 0 and "cli_recipe v1" in put.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nspec:\n  sections:\n    - {name: x, kind: records, relation: erp.secrets}\n")
    res = runner.invoke(main, ["recipes", "validate", str(bad)], env=env)
    assert res.exit_code == 2 and "relation 'erp.secrets' is not allowed" in res.output
    res = runner.invoke(main, ["retrieve", "--recipe", "cli_recipe", "--subject", f"person:{world['person_a']}",
                               "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["recipe"] == "cli_recipe"
    res = runner.invoke(main, ["retrieve", "--recipe", "cli_recipe", "--subject", "person:999999"], env=env)
    assert res.exit_code == 2 and "error: no person with id 999999" in res.output


def test_search_diversity_and_recency_options(world: dict[str, Any]) -> None:
    rt = runtimes(world)[0]
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        plain = search(rt, conn, QUERY, SearchOptions(k=4))
        diverse = search(rt, conn, QUERY, SearchOptions(k=4, mmr_lambda=0.3))
        recent = search(rt, conn, QUERY, SearchOptions(k=4, recency_half_life_days=1.0))
        lexical = search(rt, conn, "firewall", SearchOptions(k=3, mode="lexical"))
        pool = {h.block_id for h in search(rt, conn, QUERY, SearchOptions(k=40))}
    assert len(plain) == len(diverse) == len(recent) == 4
    assert diverse[0].block_id == plain[0].block_id  # the most relevant block stays first
    assert {h.block_id for h in diverse} <= pool
    assert lexical and all(h.dense_rank is None and h.lexical_rank for h in lexical)
    assert "firewall" in lexical[0].text


def test_type_wide_subjects_match_blocks_with_no_subject_id(world: dict[str, Any]) -> None:
    rt = runtimes(world)[0]
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        for mode in ("dense", "lexical", "hybrid"):
            opts = SearchOptions(k=3, mode=mode)  # type: ignore[arg-type]
            personal = search(rt, conn, "no work after 6pm", opts, Filters(subjects=(("personal", None),), scoped=True))
            assert [(h.source_table, h.source_id) for h in personal] == [("agent.facts", world["fact_personal"])], mode
            other = search(rt, conn, "no work after 6pm", opts,
                           Filters(subjects=(("person", world["person_a"]),), scoped=True))
            assert ("agent.facts", world["fact_personal"]) not in {(h.source_table, h.source_id) for h in other}


def test_a_dead_dense_index_fails_hybrid_search_cleanly(world: dict[str, Any]) -> None:
    """The lexical half runs on the caller's connection on another thread: when the dense
    half fails, the error is typed and the connection is free again when it arrives."""
    from memsync.errors import IndexUnavailable

    dead = QdrantIndex(QdrantClient(url="http://127.0.0.1:9", timeout=1), "memsync_retrieve")
    rt = Runtime(world["settings"], world["dsn"], world["embedder"], [dead])
    with connect(rt.dsn, autocommit=True, vectors=True) as conn:
        with pytest.raises(IndexUnavailable, match="qdrant"):
            search(rt, conn, QUERY, SearchOptions(k=5, mode="hybrid"))
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
        assert search(rt, conn, QUERY, SearchOptions(k=5, mode="lexical"))


def test_structured_sections_read_their_subjects_rows_through_the_subject_indexes(conn: Any) -> None:
    """A section's rows are those of the subjects in the tree, a type named without an id
    ('personal') included; and each section's statement can read them through its table's
    (type, id) index instead of the whole table (the condition once took none)."""
    for st, sid, text in (("person", 1, "mine"), ("project", 2, "my project's"), ("personal", None, "personal"),
                          ("person", 3, "someone else's"), ("project", 1, "another project's")):
        conn.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id) VALUES ('pattern', %s, %s, %s)",
                     (text, st, sid))
    pairs = [("person", 1), ("project", 2), ("personal", None)]
    got = ctxq.facts(conn, pairs, [], [], None, 10)
    assert sorted(r["content"] for r in got) == ["mine", "my project's", "personal"]
    assert ctxq.facts(conn, [], [], [], None, 10) == [], "no subjects: nothing"
    explained = Explained(conn)
    ctxq.facts(explained, pairs, [], [], None, 10)
    ctxq.goals(explained, pairs, [], [], None, 10)
    ctxq.reflections(explained, pairs, [], None, None, 10)
    ctxq.events(explained, pairs, [], [], None, None, 10)
    ctxq.sessions(explained, pairs, [], None, None, 10)
    ctxq.runs(explained, pairs, [], [], None, None, 10)
    for plan in explained.plans:
        assert "Index" in plan and "Seq Scan" not in plan, plan
