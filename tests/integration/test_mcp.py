"""`memsync mcp` through the official SDK client, over stdio and streamable HTTP, against
the real database (and the real model where semantics matter): every tool, prompts and
resources, bad input for each tool, read-your-writes within a connection, profiles,
--read-only, --scope isolation in pgvector and Qdrant, bearer tokens, two clients at
once, and a database restart under a running server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from memsync.storage.db import DictConn

pytestmark = pytest.mark.integration

WRITE_TOOLS = {"remember", "forget", "supersede", "log_reflection", "add_note", "start_session", "log_event",
               "log_messages", "end_session", "promote_event"}
READ_TOOLS = {"retrieve", "search", "get", "list_recipes", "block_actions", "status"}


def _env(dsn: str, tmp: Path, **extra: str) -> dict[str, str]:
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_HOME": str(tmp / "home"), "MEMSYNC_POLL_SECONDS": "0.5"}
    env.update(extra)
    return env


@asynccontextmanager
async def stdio(dsn: str, tmp: Path, *args: str, **env: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "memsync.faces.cli", "mcp", *args],
                                   env=_env(dsn, tmp, **env))
    async with Client(params, read_timeout_seconds=120) as client:
        yield client


async def ok(client: Client, name: str, args: dict[str, Any] | None = None) -> Any:
    r = await client.call_tool(name, args or {})
    assert not r.is_error, f"{name}: {r.content[0].text if r.content else r}"
    return r.structured_content


async def fails(client: Client, name: str, args: dict[str, Any], words: str) -> str:
    r = await client.call_tool(name, args)
    text = r.content[0].text if r.content else ""
    assert r.is_error, f"{name} {args} should fail"
    assert words.lower() in text.lower(), f"{name}: {text!r} lacks {words!r}"
    assert "Traceback" not in text and "errors.pydantic.dev" not in text
    return text


@pytest.fixture
def world(conn: DictConn) -> dict[str, Any]:
    """Two clients, each with an engagement on their own project; a profile that may only
    read; memsync's tools registered as the server would."""
    ids: dict[str, Any] = {}
    for name in ("Ada", "Grace"):
        p = conn.execute("INSERT INTO erp.people (full_name) VALUES (%s) RETURNING id", (name,)).fetchone()
        assert p is not None
        pr = conn.execute("INSERT INTO erp.projects (name, owner_person_id) VALUES (%s, %s) RETURNING id",
                          (f"{name}'s project", p["id"])).fetchone()
        assert pr is not None
        ids[name] = p["id"]
        ids[name + "_project"] = pr["id"]
    return ids


def test_every_tool_over_stdio_with_the_real_model(dsn: str, tmp_path: Path, world: dict[str, Any],
                                                   conn: DictConn) -> None:
    ada = f"person:{world['Ada']}"

    async def run() -> None:
        async with stdio(dsn, tmp_path) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert names == READ_TOOLS | WRITE_TOOLS
            for t in (await c.list_tools()).tools:
                assert t.description and t.input_schema["type"] == "object"
            recipes = await ok(c, "list_recipes")
            assert {"daily_planning", "project_context"} <= {r["name"] for r in recipes["recipes"]}
            # remember then retrieve in the same connection: found, no sleep, no token passed
            fact = await ok(c, "remember", {"subject": ada, "text": "Ada wants invoices sent on the first Monday",
                                            "fact_type": "preference", "category": "billing"})
            hits = await ok(c, "search", {"query": "when should invoices be sent", "k": 3})
            assert hits["hits"][0]["source_id"] == fact["id"]
            r = await c.call_tool("retrieve", {"recipe": "daily_planning", "subject": ada,
                                               "query": "invoices"})
            assert not r.is_error and "invoices" in r.content[0].text and "agent.facts#" in r.content[0].text
            assert any(i["table"] == "agent.facts" for i in r.structured_content["items"])
            # sessions, events, promotion, reflections, notes
            s = await ok(c, "start_session", {"session_type": "planning", "subject": ada})
            ev = await ok(c, "log_event", {"session": s["global_id"], "event_type": "decision",
                                           "payload": {"text": "Move the kickoff to Wednesday"}})
            hits = await ok(c, "search", {"query": "kickoff moved to Wednesday", "k": 3,
                                          "source_tables": ["agent.events"]})
            assert hits["hits"] and hits["hits"][0]["source_id"] == ev["id"]
            promoted = await ok(c, "promote_event", {"event": ev["global_id"], "fact_type": "result"})
            assert promoted["row"]["content"] == "Move the kickoff to Wednesday"
            sup = await ok(c, "supersede", {"fact": fact["global_id"],
                                            "text": "Ada wants invoices sent on the last Friday"})
            gone = await ok(c, "forget", {"fact": promoted["global_id"], "reason": "kickoff cancelled"})
            assert gone["row"]["valid_to"]
            refl = await ok(c, "log_reflection", {"subject": ada, "mode": "daily",
                                                  "accomplishments": ["closed the audit"]})
            note = await ok(c, "add_note", {"subject": ada, "body_md": "Ada signs as *A. L.*", "title": "Sig"})
            got = await ok(c, "get", {"ref": sup["global_id"]})
            assert got["row"]["metadata"]["supersedes"] == fact["global_id"] and got["subject"]["name"] == "Ada"
            assert (await ok(c, "get", {"ref": f"block:{note['id']}"}))["row"]["title"] == "Sig"
            assert refl["table"] == "agent.reflections"
            conn.execute("INSERT INTO agent.profiles (name) VALUES ('p')")
            assert (await ok(c, "block_actions", {"block": note["global_id"], "profile": "p"}))["actions"] == []
            status = await ok(c, "status")
            assert status["writes_of_this_connection"] >= 5 and status["model"] and "backlog" in status
            assert status["model_loaded"] is True, "its writes were searchable: the model had loaded"
            ended = await ok(c, "end_session", {"session": s["global_id"], "summary": "done"})
            assert ended["row"]["status"] == "completed"
            # calls inside the session were logged as its tool_call/tool_result events
            logged = conn.execute("SELECT event_type, payload->>'tool' AS tool FROM agent.events"
                                  " WHERE session_id = %s AND event_type IN ('tool_call', 'tool_result')",
                                  (s["id"],)).fetchall()
            tools_logged = {r["tool"] for r in logged}
            assert {"search", "promote_event", "get", "status"} <= tools_logged
            assert "start_session" not in tools_logged
            # prompts and resources
            prompts = {p.name for p in (await c.list_prompts()).prompts}
            assert "daily_planning" in prompts
            pr = await c.get_prompt("daily_planning", {"subject": ada, "query": "invoices"})
            assert "last Friday" in pr.messages[0].content.text  # type: ignore[union-attr]
            # a prompt that cannot render says why (the SDK's own line named only the prompt)
            with pytest.raises(Exception, match="no person"):
                await c.get_prompt("daily_planning", {"subject": "person:424242"})
            res = await c.read_resource(f"memsync://person/{world['Ada']}")
            body = json.loads(res.contents[0].text)  # type: ignore[union-attr]
            assert body["name"] == "Ada" and any("last Friday" in f["content"] for f in body["memory"]["facts"])
            rec = json.loads((await c.read_resource("memsync://recipes/daily_planning")).contents[0].text)  # type: ignore[union-attr]
            assert rec["name"] == "daily_planning" and rec["retrieval_spec"]
            # the server registered its tools for profiles to grant
            assert {r["name"] for r in conn.execute("SELECT name FROM agent.tools").fetchall()} >= names

    asyncio.run(run())


BAD_INPUT: dict[str, tuple[dict[str, Any], str]] = {
    "retrieve": ({"recipe": "nope", "subject": "personal"}, "unknown recipe"),
    "search": ({"query": "x", "mode": "psychic"}, "mode"),
    "get": ({"ref": "fact:999999"}, "no fact"),
    "list_recipes": ({"extra": 1}, "extra"),
    "block_actions": ({"block": "block:999999", "profile": "p"}, "no block"),
    "status": ({"verbose": True}, "verbose"),
    "remember": ({"subject": "personal", "text": "x", "fact_type": "opinion"}, "fact_type"),
    "forget": ({"fact": "fact:999999", "reason": "r"}, "no fact"),
    "supersede": ({"fact": "session:1", "text": "x"}, "expected a fact"),
    "log_reflection": ({"subject": "personal", "mode": "hourly"}, "mode"),
    "add_note": ({"subject": "planet:4", "body_md": "x"}, "unknown subject type"),
    "start_session": ({"session_type": "Not Valid"}, "session_type"),
    "log_event": ({"session": "session:999999", "event_type": "note", "payload": {}}, "no session"),
    "log_messages": ({"session": "session:1", "messages": [{"text": "hi"}]}, "messages.0"),
    "end_session": ({"session": "session:999999"}, "no session"),
    "promote_event": ({"event": "event:999999", "fact_type": "result"}, "no event"),
}


def test_bad_input_for_each_tool_is_a_clear_tool_error(dsn: str, tmp_path: Path, conn: DictConn) -> None:
    assert set(BAD_INPUT) == READ_TOOLS | WRITE_TOOLS

    async def run() -> None:
        async with stdio(dsn, tmp_path, "--no-sync", MEMSYNC_MODEL="hashing-384") as c:
            for name, (args, words) in BAD_INPUT.items():
                await fails(c, name, args, words)
            await fails(c, "remember", {"subject": "person:424242", "text": "x", "fact_type": "result"}, "no person")
            # a wrong JSON type is answered like every other bad input: "field: message", no pydantic notation
            text = await fails(c, "search", {"query": "x", "k": "many"}, "k: Input should be a valid integer")
            assert "[type=" not in text and "validation error for" not in text
            # what reached the database or the SDK before: each refused by field, before any SQL
            for name, args, words in (
                    ("get", {"ref": "fact:1\x00"}, "NUL"),
                    ("retrieve", {"recipe": "daily\x00planning", "subject": "personal"}, "NUL"),
                    ("retrieve", {"recipe": "daily_planning", "subject": "person:1\x00"}, "NUL"),
                    ("block_actions", {"block": "block:1", "profile": "p\x00"}, "NUL"),
                    ("get", {"ref": "fact:²"}, "ASCII digits"), ("get", {"ref": "fact:١"}, "ASCII digits"),
                    ("search", {"query": "x", "k": True}, "not a boolean"),
                    ("remember", {"subject": "personal", "text": "   ", "fact_type": "result"}, "blank"),
                    ("search", {"query": "x", "subjects": ["person:-1"]}, "positive whole number")):
                await fails(c, name, args, words)
            await fails(c, "search", {"query": "x", "after": "mst1.broken"}, "damaged")

    asyncio.run(run())
    for table in ("agent.facts", "agent.sessions", "agent.events", "agent.reflections", "agent.blocks"):
        assert conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone() == {"n": 0}, table


def test_profile_and_read_only_limit_the_tools(dsn: str, tmp_path: Path, conn: DictConn) -> None:
    async def run() -> None:
        async with stdio(dsn, tmp_path, "--read-only", "--no-sync", MEMSYNC_MODEL="hashing-384") as c:
            assert {t.name for t in (await c.list_tools()).tools} == READ_TOOLS
            await fails(c, "remember", {"subject": "personal", "text": "x", "fact_type": "result"}, "remember")
        # the first server registered memsync's tools; grant a profile two of them
        prof = conn.execute("INSERT INTO agent.profiles (name, harness_config) VALUES ('scribe', '{\"t\": 1}')"
                            " RETURNING id").fetchone()
        assert prof is not None
        conn.execute("INSERT INTO agent.profile_tools (profile_id, tool_id) SELECT %s, id FROM agent.tools"
                     " WHERE name IN ('remember', 'start_session')", (prof["id"],))
        async with stdio(dsn, tmp_path, "--profile", "scribe", "--no-sync", MEMSYNC_MODEL="hashing-384") as c:
            assert {t.name for t in (await c.list_tools()).tools} == {"remember", "start_session"}
            # no retrieve, no get: no prompts (each renders a retrieve) and no resources (each is a get)
            assert not (await c.list_prompts()).prompts
            assert not (await c.list_resource_templates()).resource_templates
            with pytest.raises(Exception):  # noqa: B017 (the SDK's own error for an unknown prompt)
                await c.get_prompt("daily_planning", {"subject": "personal"})
            await fails(c, "search", {"query": "x"}, "search")
            s = await ok(c, "start_session", {"session_type": "notes"})
            assert s["row"]["applied_harness_config"]["profile"]["tools"] == ["remember", "start_session"]
            assert s["row"]["profile_id"] == prof["id"]

    asyncio.run(run())


@pytest.mark.parametrize("index", ["pgvector", "qdrant"])
def test_a_scoped_server_cannot_reach_another_clients_memory(dsn: str, tmp_path: Path, conn: DictConn,
                                                             world: dict[str, Any], index: str) -> None:
    ada, grace = world["Ada"], world["Grace"]
    env = {"MEMSYNC_MODEL": "hashing-384", "MEMSYNC_INDEXES": index, "MEMSYNC_QDRANT_PATH": str(tmp_path / "q")}

    async def run() -> None:
        async with stdio(dsn, tmp_path, **env) as c:  # unscoped: write Grace's memory
            g_fact = await ok(c, "remember", {"subject": f"person:{grace}", "text": "Grace's merger closes in May",
                                              "fact_type": "result"})
            g_sess = await ok(c, "start_session", {"session_type": "planning", "subject": f"person:{grace}"})
            g_ev = await ok(c, "log_event", {"session": g_sess["global_id"], "event_type": "note",
                                             "payload": {"text": "Grace's merger code name is Falcon"}})
            g_note = await ok(c, "add_note", {"subject": f"project:{world['Grace_project']}",
                                              "body_md": "Falcon merger data room"})
            assert (await ok(c, "search", {"query": "merger Falcon", "k": 5}))["hits"]
        async with stdio(dsn, tmp_path, "--scope", f"person:{ada}", **env) as c:
            mine = await ok(c, "remember", {"subject": f"project:{world['Ada_project']}",
                                            "text": "Ada's merger review is on Friday", "fact_type": "result"})
            hits = (await ok(c, "search", {"query": "merger Falcon May Friday", "k": 10}))["hits"]
            assert [h["source_id"] for h in hits] == [mine["id"]], "only Ada's tree"
            r = await ok(c, "retrieve", {"recipe": "daily_planning", "subject": f"person:{ada}", "query": "merger"})
            assert "Grace" not in json.dumps(r)
            g = f"person:{grace}"
            denied = [
                ("search", {"query": "merger", "subjects": [g]}),
                ("retrieve", {"recipe": "daily_planning", "subject": g}),
                ("get", {"ref": g_fact["global_id"]}), ("get", {"ref": g_note["global_id"]}),
                ("get", {"ref": g}),
                ("block_actions", {"block": g_note["global_id"], "profile": "p"}),
                ("remember", {"subject": g, "text": "x", "fact_type": "result"}),
                ("forget", {"fact": g_fact["global_id"], "reason": "r"}),
                ("supersede", {"fact": g_fact["global_id"], "text": "x"}),
                ("log_reflection", {"subject": g, "mode": "daily"}),
                ("add_note", {"subject": f"project:{world['Grace_project']}", "body_md": "x"}),
                ("add_note", {"subject": "personal", "body_md": "x"}),
                ("start_session", {"session_type": "planning", "subject": g}),
                ("log_event", {"session": g_sess["global_id"], "event_type": "note", "payload": {"text": "x"}}),
                ("end_session", {"session": g_sess["global_id"]}),
                ("promote_event", {"event": g_ev["global_id"], "fact_type": "result"}),
            ]
            for name, args in denied:
                await fails(c, name, args, "scope")
            # absent and forbidden read alike: no way to learn which ids exist elsewhere
            forbidden = await fails(c, "get", {"ref": g_fact["global_id"]}, "in this scope")
            absent = await fails(c, "get", {"ref": "fact:5b1a3f7e-0000-4000-8000-000000000000"}, "in this scope")
            assert forbidden.replace(g_fact["global_id"], "X") == absent.replace(
                "fact:5b1a3f7e-0000-4000-8000-000000000000", "X")
            assert (await fails(c, "forget", {"fact": "fact:999999", "reason": "r"}, "in this scope")).replace(
                "fact:999999", "X") == (await fails(c, "forget", {"fact": f"fact:{g_fact['id']}", "reason": "r"},
                                                    "in this scope")).replace(f"fact:{g_fact['id']}", "X")
            assert (await fails(c, "remember", {"subject": "person:999999", "text": "x", "fact_type": "result"},
                                "in this scope")).replace("person:999999", "X") == (await fails(
                c, "remember", {"subject": g, "text": "x", "fact_type": "result"}, "in this scope")).replace(g, "X")
            with pytest.raises(Exception, match="outside"):
                await c.read_resource(f"memsync://person/{grace}")

    asyncio.run(run())
    g_fact_row = conn.execute("SELECT valid_to, content FROM agent.facts WHERE subject_id = %s"
                              " AND subject_type = 'person'", (grace,)).fetchone()
    assert g_fact_row == {"valid_to": None, "content": "Grace's merger closes in May"}, "nothing of Grace's changed"
    assert conn.execute("SELECT status FROM agent.sessions WHERE subject_id = %s AND subject_type = 'person'",
                        (grace,)).fetchone() == {"status": "running"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(dsn: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = _free_port()
    env = {**os.environ, **_env(dsn, tmp_path, MEMSYNC_MODEL="hashing-384", MEMSYNC_MCP_TOKEN="s3cret")}
    proc = subprocess.Popen([sys.executable, "-m", "memsync.faces.cli", "mcp", "--http", f"127.0.0.1:{port}"],
                            env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
    yield url, "s3cret"
    proc.terminate()
    proc.wait(timeout=20)


def test_http_with_a_bearer_token_and_two_clients_at_once(http_server: tuple[str, str],
                                                          world: dict[str, Any]) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    url, token = http_server
    assert httpx2.post(url, json={}).status_code == 401
    assert httpx2.post(url, json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401

    @asynccontextmanager
    async def client(mode: str) -> AsyncIterator[Client]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http, \
                Client(streamable_http_client(url, http_client=http), read_timeout_seconds=60, mode=mode) as c:
            yield c

    async def agent(n: int) -> None:
        # one stateless (2026-07-28) client, one with an HTTP session (handshake era)
        async with client("auto" if n == 1 else "legacy") as c:
            assert {t.name for t in (await c.list_tools()).tools} == READ_TOOLS | WRITE_TOOLS
            f = await ok(c, "remember", {"subject": f"person:{world['Ada']}", "fact_type": "heuristic",
                                         "text": f"agent {n} parallel writes use idempotency keys"})
            hits = (await ok(c, "search", {"query": f"agent {n} parallel writes idempotency", "k": 5,
                                           "mode": "lexical"}))["hits"]
            assert f["id"] in [h["source_id"] for h in hits], "read-your-writes per HTTP connection"

    async def both() -> None:
        await asyncio.gather(agent(1), agent(2))

    asyncio.run(both())


def test_a_database_restart_fails_one_call_cleanly(tmp_path: Path) -> None:
    from memsync.storage import embedded, migrate

    home = tmp_path / "pg"
    dsn = embedded.server_uri(home)
    try:
        migrate.migrate(dsn)

        async def run() -> None:
            async with stdio(dsn, tmp_path, "--no-sync", MEMSYNC_MODEL="hashing-384") as c:
                await ok(c, "list_recipes")
                embedded.restart(home)
                outcomes = []
                for _ in range(3):
                    r = await c.call_tool("list_recipes", {})
                    outcomes.append(r.is_error)
                    if r.is_error:
                        assert "Traceback" not in r.content[0].text
                assert outcomes[-1] is False and outcomes.count(True) <= 1, outcomes

        asyncio.run(run())
    finally:
        embedded.stop(home)


def test_http_off_loopback_needs_a_token(dsn: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from memsync.faces.cli import main

    r = CliRunner().invoke(main, ["mcp", "--http", "0.0.0.0:1"], env=_env(dsn, tmp_path, MEMSYNC_MODEL="hashing-384"))
    assert r.exit_code == 1 and "MEMSYNC_MCP_TOKEN" in r.output and "Traceback" not in r.output
    for weak in (" ", "short-token"):
        r = CliRunner().invoke(main, ["mcp", "--http", "0.0.0.0:1"],
                               env=_env(dsn, tmp_path, MEMSYNC_MODEL="hashing-384", MEMSYNC_MCP_TOKEN=weak))
        assert r.exit_code == 1 and "MEMSYNC_MCP_TOKEN" in r.output, weak


def test_loopback_is_the_whole_range() -> None:
    from memsync.faces.mcp.server import loopback

    assert all(loopback(h) for h in ("127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "localhost"))
    assert not any(loopback(h) for h in ("0.0.0.0", "10.0.0.1", "::", "example.org", "128.0.0.1"))


def test_health_http_probes_the_endpoint(http_server: tuple[str, str]) -> None:
    """The MCP container's health check: the endpoint answers (401 without the token is up)."""
    from click.testing import CliRunner

    from memsync.faces.cli import main

    url, _ = http_server
    r = CliRunner().invoke(main, ["health", "--http", url, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["checks"][0]["detail"].endswith("401"), r.output
    r = CliRunner().invoke(main, ["health", "--http", f"http://127.0.0.1:{_free_port()}/mcp"])
    assert r.exit_code == 1 and "FAIL http" in r.output


def test_a_scoped_server_sees_its_tree_change_without_a_restart(dsn: str, tmp_path: Path, conn: DictConn,
                                                                world: dict[str, Any]) -> None:
    """Revocation is what matters: a project moved from Ada to Grace under a running
    Ada-scoped server is refused on the next call; a project moved in is reachable."""
    ada, grace, project = world["Ada"], world["Grace"], world["Ada_project"]
    env = {"MEMSYNC_MODEL": "hashing-384"}

    async def run() -> None:
        async with stdio(dsn, tmp_path, "--scope", f"person:{ada}", **env) as c:
            fact = await ok(c, "remember", {"subject": f"project:{project}", "text": "Ada's project ships in May",
                                            "fact_type": "result"})
            assert (await ok(c, "get", {"ref": f"project:{project}"}))["row"]["id"] == project
            conn.execute("UPDATE erp.projects SET owner_person_id = %s WHERE id = %s", (grace, project))
            for name, args in (("get", {"ref": f"project:{project}"}), ("get", {"ref": fact["global_id"]}),
                               ("remember", {"subject": f"project:{project}", "text": "x", "fact_type": "result"}),
                               ("search", {"query": "ships", "subjects": [f"project:{project}"]}),
                               ("retrieve", {"recipe": "project_context", "subject": f"project:{project}"})):
                await fails(c, name, args, "scope")
            assert not (await ok(c, "search", {"query": "Ada's project ships in May", "k": 10}))["hits"]
            conn.execute("UPDATE erp.projects SET owner_person_id = %s WHERE id = %s", (ada, world["Grace_project"]))
            got = await ok(c, "get", {"ref": f"project:{world['Grace_project']}"})
            assert got["row"]["id"] == world["Grace_project"], "moved in: reachable at once"

    asyncio.run(run())


def test_an_embedded_home_is_migrated_on_start_a_dsn_is_only_named(tmp_path: Path, empty_dsn: str) -> None:
    from click.testing import CliRunner

    from memsync.faces.cli import main
    from memsync.storage import embedded

    home = tmp_path / "fresh-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSYNC_")}
    env.update({"MEMSYNC_HOME": str(home), "MEMSYNC_MODEL": "hashing-384"})
    params = StdioServerParameters(command=sys.executable, args=["-m", "memsync.faces.cli", "mcp", "--no-sync"],
                                   env=env)

    async def run() -> None:
        async with Client(params, read_timeout_seconds=120) as c:
            names = [r["name"] for r in (await ok(c, "list_recipes"))["recipes"]]
            assert "conversation_recall" in names

    try:
        asyncio.run(run())
    finally:
        embedded.stop(home)
    r = CliRunner().invoke(main, ["mcp", "--no-sync"], env={"MEMSYNC_DSN": empty_dsn, "MEMSYNC_HOME": str(tmp_path),
                                                           "MEMSYNC_MODEL": "hashing-384"})
    assert r.exit_code == 1 and "memsync db migrate" in r.output and "Traceback" not in r.output, r.output


@pytest.mark.model
def test_closing_stdin_while_the_model_loads_ends_the_server_cleanly(dsn: str, tmp_path: Path) -> None:
    """A client that goes away while the model is still loading: the server leaves at once
    (clients kill one that lingers) with exit code 0 and no traceback; how long it takes is
    measured by bench/mcp_bench.py, not asserted here."""
    env = {**os.environ, **_env(dsn, tmp_path)}
    env.pop("MEMSYNC_MODEL", None)
    proc = subprocess.Popen([sys.executable, "-m", "memsync.faces.cli", "mcp"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    proc.stdin.write((json.dumps(init) + "\n").encode())
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["id"] == 1
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in proc.stderr.read().decode()


def test_malformed_stdio_lines_get_an_error_response_and_the_session_goes_on(dsn: str, tmp_path: Path) -> None:
    env = {**os.environ, **_env(dsn, tmp_path, MEMSYNC_MODEL="hashing-384")}
    proc = subprocess.Popen([sys.executable, "-m", "memsync.faces.cli", "mcp", "--no-sync"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    def ask(raw: str) -> dict[str, Any]:
        proc.stdin.write(raw.encode() + b"\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(proc.stdout.readline())  # type: ignore[union-attr, no-any-return]

    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    assert ask(json.dumps(init))["id"] == 1
    proc.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
    cases = [("{not json", None, -32700),
             ('{"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"x": "\\ud800"}}', 7, -32700),
             ("[" * 100_000 + "]" * 100_000, None, -32700),
             ('{"jsonrpc": "2.0", "id": 9, "method": "ping", "params": {"n": ' + "9" * 5000 + "}}", None, -32700),
             ('{"jsonrpc": "2.0", "id": "x"}', "x", -32600)]
    for raw, rid, code in cases:
        answer = ask(raw)
        assert (answer["id"], answer["error"]["code"]) == (rid, code), (raw[:40], answer)
    assert ask(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))["result"]["tools"]
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read().decode().count("refused a message from the client") == len(cases)


def test_reads_wait_for_the_query_path_and_for_the_worker_only_after_a_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh server answers searches once queries can be embedded (from a checked query
    graph, before the model loads); a connection that wrote waits for the model and the worker
    that make its writes searchable."""
    from datetime import datetime, timezone

    from memsync.errors import ServerError
    from memsync.faces.mcp import server
    from memsync.faces.mcp.tools import Caller
    from memsync.write.tokens import SyncToken

    monkeypatch.setattr(server, "MODEL_WAIT_SECONDS", 0.05)
    mem = server.Memory(app=None, env=None, exposed=())  # type: ignore[arg-type]
    reader, writer = Caller(), Caller()
    writer.wrote(SyncToken.of(datetime.now(timezone.utc), [("agent.facts", 1)]))
    with pytest.raises(ServerError, match="not loaded"):
        mem.wait_ready(reader)
    mem.queries_ready.set()
    mem.wait_ready(reader)
    with pytest.raises(ServerError, match="not loaded"):
        mem.wait_ready(writer)
    mem.ready.set()
    mem.wait_ready(writer)
