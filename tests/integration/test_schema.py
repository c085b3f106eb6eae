"""Schema v0.1 and the migration runner, on a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from memsync.errors import MigrationError
from memsync.storage import embedded, migrate
from memsync.storage.db import DictConn, connect

pytestmark = pytest.mark.integration

# Every table and field the seed document (agent-memory-schema-context-v0.1.md) names.
SEED_COLUMNS: dict[str, set[str]] = {
    "erp.people": set(), "erp.organizations": set(), "erp.projects": set(),
    "erp.engagements": {"organization_id", "project_id"},
    "erp.tasks": {"project_id", "engagement_id", "assignee_person_id"},
    "erp.okrs": {"owner_person_id", "project_id"},
    "agent.sessions": {"session_type", "client_person_id", "subject_type", "subject_id", "status", "trace_id",
                       "profile_id", "context_recipe_id", "applied_harness_config", "started_at", "ended_at"},
    "agent.events": {"session_id", "event_type", "payload", "memory_scope", "subject_type", "subject_id",
                     "promoted_fact_id"},
    "agent.tools": {"name", "schema_definition"},
    "agent.profiles": {"system_prompt_template", "default_model", "harness_config"},
    "agent.profile_tools": {"profile_id", "tool_id"},
    "agent.context_recipes": {"name", "retrieval_spec", "version"},
    "agent.execution_runs": {"subject_type", "subject_id", "started_at", "ended_at", "status",
                             "estimated_minutes", "actual_minutes", "variance_minutes", "actual_cost",
                             "human_minutes"},
    "agent.step_evaluations": {"status", "score", "feedback", "needs_human"},
    "agent.reflections": {"mode", "focal_entity_type", "focal_entity_id", "goals", "accomplishments", "blockers",
                          "decisions", "next_actions", "metrics", "raw_text"},
    "agent.facts": {"fact_type", "category", "subject_type", "subject_id"},
    "agent.goals": {"subject_type", "subject_id", "success_criteria", "status", "priority", "horizon"},
    "agent.artifacts": {"artifact_type", "external_id", "summary", "source_system", "body_md"},
    "agent.blocks": {"block_type", "body_md", "source_table", "source_id", "artifact_id", "vector_key", "graph_key"},
    "agent.block_actions": {"block_id", "tool_id", "parameters"},
}
COMMON = {"id", "global_id", "created_at", "updated_at"}


def columns(conn: DictConn) -> dict[str, set[str]]:
    rows = conn.execute(
        "SELECT table_schema || '.' || table_name AS t, column_name AS c FROM information_schema.columns"
        " WHERE table_schema IN ('erp', 'agent')"
    ).fetchall()
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r["t"], set()).add(r["c"])
    return out


def test_fresh_migrate_creates_every_seed_table_and_column(empty_dsn: str) -> None:
    applied = migrate.migrate(empty_dsn)
    assert applied[0] == "0001_schema_v0_1.sql"
    with connect(empty_dsn, autocommit=True) as conn:
        have = columns(conn)
    for table, cols in SEED_COLUMNS.items():
        assert table in have, table
        missing = (cols | COMMON) - have[table]
        assert not missing, f"{table} lacks {missing}"


def test_remigrate_is_a_noop(dsn: str) -> None:
    assert migrate.migrate(dsn) == []
    assert {s.state for s in migrate.status(dsn)} == {"applied"}


def test_tampered_migration_is_refused(empty_dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.migrations_dir(), folder)
    migrate.migrate(empty_dsn, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate.migrate(empty_dsn, folder)
    with pytest.raises(MigrationError):
        migrate.status(empty_dsn, folder)


def test_failed_migration_rolls_back_and_names_the_file(empty_dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.migrations_dir(), folder)
    (folder / "0900_broken.sql").write_text("CREATE TABLE erp.half_done (id int);\nSELECT nonsense_fn();\n")
    with pytest.raises(MigrationError, match=r"0900_broken\.sql"):
        migrate.migrate(empty_dsn, folder)
    with connect(empty_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('erp.half_done') AS t").fetchone()["t"] is None  # type: ignore[index]
    states = {s.name: s.state for s in migrate.status(empty_dsn, folder)}
    assert states["0900_broken.sql"] == "pending" and states["0001_schema_v0_1.sql"] == "applied"


def test_concurrent_migrates_do_not_race(empty_dsn: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            results.append(migrate.migrate(empty_dsn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(len(r) for r in results)[:2] == [0, 0]  # exactly one process applied the files
    with connect(empty_dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT name, count(*) AS n FROM memsync.schema_migrations GROUP BY name").fetchall()
    assert rows and all(r["n"] == 1 for r in rows)


def test_vocabulary_is_enforced(conn: DictConn) -> None:
    bad = [
        ("INSERT INTO agent.goals (title, subject_type, subject_id) VALUES ('x', 'projekt', 1)",
         psycopg.errors.ForeignKeyViolation),
        ("INSERT INTO agent.sessions (session_type, status) VALUES ('planning', 'done')", psycopg.errors.CheckViolation),
        ("INSERT INTO agent.facts (fact_type, content) VALUES ('opinion', 'x')", psycopg.errors.CheckViolation),
        ("INSERT INTO agent.reflections (mode) VALUES ('hourly')", psycopg.errors.CheckViolation),
        ("INSERT INTO agent.blocks (block_type, body_md) VALUES ('paragraph', 'x')", psycopg.errors.CheckViolation),
        ("INSERT INTO agent.goals (title, subject_id) VALUES ('x', 5)", psycopg.errors.CheckViolation),
    ]
    for stmt, err in bad:
        with pytest.raises(err):
            conn.execute(stmt)
    s = conn.execute("INSERT INTO agent.sessions (session_type) VALUES ('planning') RETURNING id").fetchone()
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO agent.events (session_id, event_type, memory_scope) VALUES (%s, 'note', 'team')",
                     (s["id"],))  # type: ignore[index]
    run = conn.execute("INSERT INTO agent.execution_runs (workflow) VALUES ('w') RETURNING id").fetchone()
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO agent.step_evaluations (run_id, step_name, status) VALUES (%s, 's', 'ok')",
                     (run["id"],))  # type: ignore[index]


def test_subject_types_are_extendable(conn: DictConn) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation):  # an unregistered type is refused
        conn.execute("INSERT INTO agent.goals (title, subject_type, subject_id) VALUES ('Paid', 'invoice', 1)")
    conn.execute("INSERT INTO agent.subject_types (name, erp_relation) VALUES ('invoice', 'erp.invoices')")
    row = conn.execute("INSERT INTO agent.goals (title, subject_type, subject_id) VALUES ('Paid', 'invoice', 1)"
                       " RETURNING subject_type").fetchone()
    assert row == {"subject_type": "invoice"}


def test_updated_at_moves_and_global_id_is_filled_and_unique(conn: DictConn) -> None:
    row = conn.execute("INSERT INTO erp.projects (name) VALUES ('P') RETURNING id, global_id, updated_at").fetchone()
    assert row is not None and row["global_id"].startswith("project:")
    later = conn.execute("UPDATE erp.projects SET name = 'Q' WHERE id = %s RETURNING updated_at",
                         (row["id"],)).fetchone()
    assert later is not None and later["updated_at"] > row["updated_at"]
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO erp.projects (name, global_id) VALUES ('R', %s)", (row["global_id"],))
    for table in SEED_COLUMNS:
        got = conn.execute(
            "SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = 'touch_updated_at'",
            (table,)).fetchone()
        assert got is not None and got["n"] == 1, table


def test_variance_is_derived(conn: DictConn) -> None:
    row = conn.execute("INSERT INTO agent.execution_runs (workflow, estimated_minutes, actual_minutes, metadata)"
                       " VALUES ('w', 30, 45, %s) RETURNING variance_minutes", (Jsonb({}),)).fetchone()
    assert row is not None and float(row["variance_minutes"]) == 15.0


def test_cli_migrate_and_status_on_the_embedded_default(tmp_path: Path) -> None:
    env = {"MEMSYNC_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "memsync.faces.cli"]
    try:
        out = subprocess.run([*cli, "db", "migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "applied 0001_schema_v0_1.sql" in out.stdout
        again = subprocess.run([*cli, "db", "migrate", "--json"], env=env, capture_output=True, text=True, timeout=60)
        assert '"applied": []' in again.stdout
        st = subprocess.run([*cli, "db", "status"], env=env, capture_output=True, text=True, timeout=60)
        assert st.returncode == 0 and "applied  0001_schema_v0_1.sql" in st.stdout
        url = subprocess.run([*cli, "db", "url"], env=env, capture_output=True, text=True, timeout=60)
        with psycopg.connect(url.stdout.strip()) as c:
            assert c.execute("SELECT count(*) FROM erp.people").fetchone() == (0,)
            # a server memsync created is sized to the machine (shared_buffers needed the restart)
            want = embedded.memory_settings(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
            for name, value in want.items():
                row = c.execute("SELECT setting::bigint * pg_size_bytes(CASE WHEN unit ~ '^[0-9]' THEN unit"
                                " ELSE '1' || unit END) FROM pg_settings WHERE name = %s", (name,)).fetchone()
                assert row is not None and row[0] == int(value.removesuffix("MB")) * 2**20, name
    finally:
        stop = subprocess.run([*cli, "db", "stop"], env=env, capture_output=True, text=True, timeout=60)
        assert stop.stdout.strip() == "stopped", stop.stderr
