"""The Zep mirror against a local stub of the Zep API (tests/zep_stub.py: the endpoints the
mirror uses, checked with the installed zep-python client's own models): people, sessions,
notes, decisions and reflections mirrored with their Postgres identity; edits and deletes as
far as Zep allows; an outage deferred, then caught up, while search keeps working; facts
pulled back once; verify, status and health; MEMSYNC_ZEP_URL beats ZEP_API_URL."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from memsync.faces.cli import main
from memsync.mirror.worker import MirrorWorker
from memsync.mirror.zep import ZepMirror
from memsync.settings import Settings
from memsync.storage.db import DictConn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zep_stub import ZepStub

pytestmark = pytest.mark.integration


@pytest.fixture
def stub() -> Iterator[ZepStub]:
    with ZepStub(api_key="zk-secret") as s:
        yield s


@pytest.fixture
def env(dsn: str, stub: ZepStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # the client library would send its requests here if it read the environment: memsync's setting wins
    monkeypatch.setenv("ZEP_API_URL", "http://127.0.0.1:9")
    return {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path),
            "MEMSYNC_INDEXES": "pgvector,zep", "MEMSYNC_ZEP_URL": stub.url, "MEMSYNC_ZEP_API_KEY": "zk-secret",
            "ZEP_API_URL": "http://127.0.0.1:9"}


def cli(env: dict[str, str], *args: str) -> Any:
    r = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in r.output, r.output
    return r


def drain(env: dict[str, str]) -> None:
    r = cli(env, "run", "--once", "--no-wait")
    assert r.exit_code == 0, r.output


def seed(conn: DictConn) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    ids["ada"] = conn.execute("INSERT INTO erp.people (full_name, email) VALUES ('Ada Lovelace', 'ada@x.org')"
                              " RETURNING id, global_id").fetchone()
    ids["bob"] = conn.execute("INSERT INTO erp.people (full_name) VALUES ('Bob Nobody') RETURNING id").fetchone()
    conn.execute("INSERT INTO agent.profiles (name) VALUES ('planner')")
    ids["session"] = conn.execute(
        """INSERT INTO agent.sessions (session_type, client_person_id, subject_type, subject_id, profile_id,
                                       context_recipe_id)
           SELECT 'planning', %s, 'person', %s, (SELECT id FROM agent.profiles),
                  (SELECT id FROM agent.context_recipes WHERE name = 'daily_planning' LIMIT 1)
           RETURNING id, global_id""", (ids["ada"]["id"], ids["ada"]["id"])).fetchone()
    sid = ids["session"]["id"]
    ids["note"] = conn.execute("INSERT INTO agent.events (session_id, event_type, payload) VALUES "
                               "(%s, 'note', '{\"text\": \"Ada prefers morning calls\"}') RETURNING id, global_id",
                               (sid,)).fetchone()
    conn.execute("INSERT INTO agent.events (session_id, event_type, payload) VALUES (%s, 'tool_call', '{}')", (sid,))
    ids["reflection"] = conn.execute(
        "INSERT INTO agent.reflections (session_id, mode, accomplishments) VALUES (%s, 'daily', '[\"shipped v2\"]')"
        " RETURNING id, global_id", (sid,)).fetchone()
    return ids


def messages(stub: ZepStub, session: str) -> list[dict[str, Any]]:
    return stub.messages.get(session, [])


def test_rows_are_mirrored_with_their_identity_and_edits_and_deletes_follow(
        env: dict[str, str], conn: DictConn, stub: ZepStub) -> None:
    ids = seed(conn)
    drain(env)
    ada, sess = ids["ada"]["global_id"], ids["session"]["global_id"]
    assert set(stub.users) == {ada}, "only client people become users"
    assert stub.users[ada]["metadata"] == {"global_id": ada, "entity_type": "person", "table": "erp.people",
                                           "id": ids["ada"]["id"]}
    meta = stub.sessions[sess]["metadata"]
    assert (stub.sessions[sess]["user_id"], meta["global_id"], meta["subject"], meta["profile"], meta["recipe"]) == \
        (ada, sess, f"person:{ids['ada']['id']}", "planner", "daily_planning")
    by_gid = {m["metadata"]["global_id"]: m for m in messages(stub, sess)}
    assert set(by_gid) == {ids["note"]["global_id"], ids["reflection"]["global_id"]}, "no tool calls"
    assert by_gid[ids["note"]["global_id"]]["content"] == "Ada prefers morning calls"
    assert by_gid[ids["note"]["global_id"]]["metadata"]["table"] == "agent.events"
    assert "shipped v2" in by_gid[ids["reflection"]["global_id"]]["content"]
    assert all(r[1].startswith("/api/v2/") for r in stub.requests)

    # edits: a person renamed -> the user follows; a note edited -> added again, the old one marked
    conn.execute("UPDATE erp.people SET full_name = 'Ada King' WHERE id = %s", (ids["ada"]["id"],))
    conn.execute("UPDATE agent.events SET payload = '{\"text\": \"Ada prefers afternoon calls\"}' WHERE id = %s",
                 (ids["note"]["id"],))
    drain(env)
    assert (stub.users[ada]["first_name"], stub.users[ada]["last_name"]) == ("Ada", "King")
    notes = [m for m in messages(stub, sess) if m["metadata"]["global_id"] == ids["note"]["global_id"]]
    assert [(m["content"], bool(m["metadata"].get("superseded"))) for m in notes] == [
        ("Ada prefers morning calls", True), ("Ada prefers afternoon calls", False)]

    # deletes: the note is marked deleted (Zep keeps message text), the session's memory goes, the user goes
    conn.execute("DELETE FROM agent.events WHERE id = %s", (ids["note"]["id"],))
    drain(env)
    assert all(m["metadata"].get("deleted") or m["metadata"].get("superseded")
               for m in messages(stub, sess) if m["metadata"]["global_id"] == ids["note"]["global_id"])
    verify = json.loads(cli(env, "verify", "--json").output)
    zep = next(r for r in verify if r["index"] == "zep")
    assert zep["missing"] == [] and zep["lingering"] == []
    conn.execute("DELETE FROM agent.sessions WHERE id = %s", (ids["session"]["id"],))
    conn.execute("DELETE FROM erp.people WHERE id = %s", (ids["ada"]["id"],))
    drain(env)
    assert ada not in stub.users and messages(stub, sess) == []


def test_an_outage_defers_then_catches_up_and_search_keeps_working(
        env: dict[str, str], conn: DictConn, stub: ZepStub) -> None:
    ids = seed(conn)
    stub.fail_status = 503
    drain(env)  # the vector side drains; the mirror defers, dead-letters nothing
    assert cli(env, "search", "morning calls", "--json").exit_code == 0
    hits = json.loads(cli(env, "search", "Ada prefers morning calls", "--json").output)["hits"]
    assert any(h["source_table"] == "agent.events" for h in hits)
    status = json.loads(cli(env, "status", "--json").output)
    assert status["mirrors"]["zep"]["pending"] >= 4 and status["mirrors"]["zep"]["dead"] == 0
    assert status["backlog"]["pending"] == 0
    health = json.loads(cli(env, "health", "--json").output)
    assert not next(c for c in health["checks"] if c["name"] == "index:zep")["ok"]
    stub.fail_status = None
    settings = Settings.from_env(env)
    worker = MirrorWorker(settings, env["MEMSYNC_DSN"], ZepMirror(settings))
    stop = threading.Event()
    t = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    t.start()  # deferred items come back after their backoff (default settings)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and conn.execute(
            "SELECT count(*) AS n FROM memsync.mirror_queue").fetchone() != {"n": 0}:
        time.sleep(0.2)
    stop.set()
    t.join(timeout=30)
    assert ids["session"]["global_id"] in stub.sessions and len(messages(stub, ids["session"]["global_id"])) == 2
    assert worker.stats.dead == 0


def test_a_row_zep_refuses_fails_alone(env: dict[str, str], conn: DictConn, stub: ZepStub) -> None:
    ids = seed(conn)
    stub.fail_next = 1  # the first request fails, the probe after it answers: the row's failure
    drain(env)
    row = conn.execute("SELECT attempts, last_error, dead_at FROM memsync.mirror_queue"
                       " WHERE last_error IS NOT NULL").fetchall()
    assert len(row) == 1 and row[0]["attempts"] == 1 and "injected" in row[0]["last_error"]
    assert row[0]["dead_at"] is None, "retried later with backoff, dead-lettered only after the attempt limit"
    assert ids["session"]["global_id"] in stub.sessions, "the others went through"


def test_pull_brings_zep_facts_back_once_and_never_overwrites(env: dict[str, str], conn: DictConn,
                                                               stub: ZepStub) -> None:
    ids = seed(conn)
    drain(env)
    conn.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id) VALUES "
                 "('preference', 'written by hand', 'person', %s)", (ids["ada"]["id"],))
    fid = stub.add_fact(ids["session"]["global_id"], "Ada schedules calls before noon")
    out = json.loads(cli(env, "zep", "pull", "--json").output)
    assert out == {"facts_seen": 1, "facts_added": 1}
    assert json.loads(cli(env, "zep", "pull", "--json").output) == {"facts_seen": 1, "facts_added": 0}
    facts = conn.execute("SELECT content, subject_type, subject_id, metadata FROM agent.facts ORDER BY id").fetchall()
    assert facts[0]["content"] == "written by hand"
    pulled = facts[1]
    assert (pulled["content"], pulled["subject_id"]) == ("Ada schedules calls before noon", ids["ada"]["id"])
    assert pulled["metadata"]["zep_fact_uuid"] == fid and pulled["metadata"]["source"] == "zep"
    assert pulled["metadata"]["zep_session"] == ids["session"]["global_id"]


def test_verify_finds_what_zep_lost_and_repair_requeues_it(env: dict[str, str], conn: DictConn,
                                                          stub: ZepStub) -> None:
    ids = seed(conn)
    drain(env)
    del stub.users[ids["ada"]["global_id"]]
    r = cli(env, "verify", "--json")
    zep = next(x for x in json.loads(r.output) if x["index"] == "zep")
    assert r.exit_code == 3 and zep["missing"] == [f"erp.people#{ids['ada']['id']}"]
    repaired = cli(env, "verify", "--repair", "--json")
    assert repaired.exit_code == 0 and next(x for x in json.loads(repaired.output) if x["index"] == "zep")["repaired"]
    conn.execute("DELETE FROM memsync.mirror_items WHERE source_table = 'erp.people'")  # forget it was sent
    drain(env)
    assert ids["ada"]["global_id"] in stub.users


def test_the_api_key_is_redacted(env: dict[str, str]) -> None:
    out = cli(env, "settings").output
    assert "zk-secret" not in out
