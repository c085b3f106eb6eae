"""Conversations as episodic memory, against the real database: history imported with its
real times (one transaction per session, idempotent, a bad message fails its session
only), messages logged in bulk, turns rendered with who said them and when and embedded
with the turns before them, and an edited turn re-embedding only the blocks it touches."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import Explained, at_once, chatgpt_conversation, claude_code_log, drain, said

from memsync.app import Memsync
from memsync.embed import HashingEmbedder
from memsync.errors import FieldError, InvalidInput
from memsync.faces.cli import main
from memsync.settings import Settings
from memsync.storage.db import DictConn

pytestmark = pytest.mark.integration


@pytest.fixture
def tom(conn: DictConn) -> str:
    row = conn.execute("INSERT INTO erp.people (full_name) VALUES ('Tom') RETURNING id").fetchone()
    assert row is not None
    return f"person:{row['id']}"


class Counting(HashingEmbedder):
    """The fake embedder, counting what it is asked to embed (plumbing only)."""

    def __init__(self) -> None:
        super().__init__(384)
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> Any:
        self.texts.extend(texts)
        return super().encode(texts)



HISTORY = {"sessions": [
    {"id": "s1", "date": "2023-05-08T14:00:00Z", "messages": [
        {"speaker": "Tom", "text": "How was your weekend, Priya?", "id": "m1"},
        {"speaker": "Priya", "text": "I finally went to the climbing gym on Saturday.", "id": "m2"},
        {"speaker": "Tom", "text": "Nice! Did you like it?", "id": "m3"},
        {"speaker": "Priya", "text": "Yes, it was amazing!", "id": "m4"},
    ]},
    {"id": "s2", "date": "2023-06-01T09:30:00Z", "messages": [
        {"speaker": "Priya", "text": "I signed up for a pottery class.", "at": "2023-06-01T09:31:00Z"},
        {"speaker": "Tom", "text": "When does it start?", "at": "2023-06-01T09:32:00Z"},
    ]},
]}


def turns(conn: DictConn) -> list[dict[str, Any]]:
    return conn.execute("""SELECT e.id, e.payload, e.occurred_at, s.trace_id, s.status, s.started_at, s.ended_at
                             FROM agent.events e JOIN agent.sessions s ON s.id = e.session_id
                            ORDER BY e.occurred_at, e.id""").fetchall()


def test_import_keeps_real_times_and_a_reimport_adds_nothing(app: Memsync, conn: DictConn, tom: str) -> None:
    done = app.import_conversations(HISTORY, subject=tom)
    assert [(d.created, d.added, d.skipped, d.error) for d in done] == [(True, 4, 0, None), (True, 2, 0, None)]
    rows = turns(conn)
    assert [r["payload"]["text"][:10] for r in rows][:2] == ["How was yo", "I finally "]
    assert rows[0]["occurred_at"] == datetime(2023, 5, 8, 14, tzinfo=timezone.utc), "the session's date"
    assert rows[4]["occurred_at"] == datetime(2023, 6, 1, 9, 31, tzinfo=timezone.utc), "the message's own time"
    assert {r["status"] for r in rows} == {"completed"}
    assert rows[4]["ended_at"] == datetime(2023, 6, 1, 9, 32, tzinfo=timezone.utc), "ends at its last message"
    assert rows[4]["payload"]["id"].startswith("m0-"), "an id derived from position and text"
    again = app.import_conversations(HISTORY, subject=tom)
    assert [(d.created, d.added, d.skipped) for d in again] == [(False, 0, 4), (False, 0, 2)]
    assert len(turns(conn)) == 6
    # a longer export of the same session adds only what is new
    more = json.loads(json.dumps(HISTORY))
    more["sessions"][0]["messages"].append({"speaker": "Tom", "text": "Let's go together next time.", "id": "m5"})
    more["sessions"][1]["messages"].append({"speaker": "Tom", "text": "Tell me how it goes.", "id": "m6",
                                            "at": "2023-06-01T10:15:00Z"})
    assert [d.added for d in app.import_conversations(more, subject=tom)] == [1, 1]
    assert turns(conn)[-1]["ended_at"] == datetime(2023, 6, 1, 10, 15, tzinfo=timezone.utc), "ends at its last turn"
    # a session dated by its day, exported again with a turn said that morning east of UTC:
    # it now starts at that turn (its row may not start after a turn it holds)
    day = {"id": "d1", "date": "2023-07-01", "messages": [
        {"speaker": "Priya", "text": "Off to the lake.", "id": "d1m1", "at": "2023-07-01T09:00:00Z"}]}
    app.import_conversations({"sessions": [day]}, subject=tom)
    day["messages"].insert(0, {"speaker": "Priya", "text": "Up early!", "id": "d1m0", "at": "2023-07-01T01:00:00+03:00"})
    assert [d.added for d in app.import_conversations({"sessions": [day]}, subject=tom)] == [1]
    span = conn.execute("SELECT started_at, ended_at FROM agent.sessions WHERE trace_id = 'import:d1'").fetchone()
    assert span == {"started_at": datetime(2023, 6, 30, 22, tzinfo=timezone.utc),
                    "ended_at": datetime(2023, 7, 1, 9, tzinfo=timezone.utc)}


def test_a_bad_message_fails_its_session_only_naming_index_and_field(app: Memsync, conn: DictConn, tom: str) -> None:
    bad = json.loads(json.dumps(HISTORY))
    bad["sessions"][1]["messages"][1] = {"speaker": "Tom", "id": "m-22"}  # no text
    bad["sessions"].append({"id": "s3", "date": "1850-01-01", "messages": [{"role": "user", "text": "x"}]})
    bad["sessions"].append({"id": "s4", "messages": [{"text": "who said this?"}, {"speaker": " ", "text": "x"}]})
    bad["sessions"].append(["not", "a", "session"])
    done = app.import_conversations(bad, subject=tom)
    assert done[0].error is None and done[0].added == 4
    assert "session 1" in str(done[1].error) and "messages.1.text" in str(done[1].error)
    assert str(done[1].error).endswith("(message id 'm-22')"), "a message with an id is named by it too"
    assert "message id" not in str(done[3].error)
    assert "started_at" in str(done[2].error) and "1900" in str(done[2].error)
    assert "messages.0" in str(done[3].error) and "speaker or a role" in str(done[3].error)
    assert "messages.1" in str(done[3].error), "a blank speaker is no speaker"
    assert "session 4" in str(done[4].error)
    assert len(turns(conn)) == 4, "nothing of a failed session is written"
    assert conn.execute("SELECT count(*) AS n FROM agent.sessions").fetchone() == {"n": 1}

def test_a_long_session_imports_whole(app: Memsync, conn: DictConn, tom: str) -> None:
    """Each message is bounded (MAX_TEXT), a session by its count (MAX_MESSAGES), not by the
    size of all its text together: a long chat export (here ~1.3 M characters) comes in."""
    text = "We went over the launch checklist again and moved the date. " * 5
    long = {"id": "long", "date": "2023-05-08", "messages": [
        {"speaker": "Tom" if i % 2 else "Priya", "text": f"{i}: {text}"} for i in range(4000)]}
    done = app.import_conversations({"sessions": [long]}, subject=tom)
    assert done[0].error is None and done[0].added == 4000
    assert sum(len(t["payload"]["text"]) for t in turns(conn)) > 1_000_000



def test_a_saved_api_request_imports_as_its_conversation(app: Memsync, conn: DictConn, tom: str) -> None:
    """An agent's saved request body (model, system, tools, messages): the conversation comes in,
    the system prompt first, the request's settings left out, a tool's long answer cut to fit
    instead of failing the session; a malformed message is named by its place in the body."""
    page = "<tr><td>launch</td></tr>" * 6000  # a tool read a 150,000-character page
    body = {"model": "claude-x", "max_tokens": 1024, "temperature": 0.2,
            "system": [{"type": "text", "text": "You are Tom's assistant.", "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": "fetch", "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": "Fetch the launch notes."},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "fetch",
                                                    "input": {"url": "https://notes.example/launch"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": page}]},
                {"role": "assistant", "content": "The launch moved to June."}]}
    done = app.import_conversations(body, subject=tom)
    assert done[0].error is None and done[0].added == 5
    rows = turns(conn)
    # the tool's answer, sent back in a user message as Anthropic's format does, is the tool's
    assert [r["payload"]["role"] for r in rows] == ["system", "user", "assistant", "tool", "assistant"]
    assert rows[3]["payload"]["metadata"]["tool_call_id"] == "t1"
    assert rows[0]["payload"]["text"] == "You are Tom's assistant."
    assert 'called fetch({"url": "https://notes.example/launch"})' in rows[2]["payload"]["text"]
    assert rows[3]["payload"]["text"].endswith("characters of tool output cut]")
    assert rows[3]["payload"]["metadata"]["cut"]["of"] == len(page)
    assert app.import_conversations(body, subject=tom)[0].added == 0, "a re-import adds nothing"
    responses = {"model": "gpt-x", "instructions": "Be brief.", "input": "What moved?", "store": False}
    assert app.import_conversations(responses, subject=tom)[0].added == 2
    dated = {"id": "s9", "date": "2024-03-01", "model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]}
    done = app.import_conversations(dated, subject=tom)
    assert done[0].key == "import:s9" and done[0].session is not None
    assert done[0].session["started_at"].date().isoformat() == "2024-03-01", "a session's own keys are kept"
    bad = {"model": "gpt-x", "messages": [{"role": "user", "content": "ok"}, {"role": "user"}]}
    assert "messages.1" in str(app.import_conversations(bad, subject=tom)[0].error)
    assert len(turns(conn)) == 8
    # a replayed Responses conversation holds the model's reasoning items: left out, and every
    # other item keeps its place in what an error names
    items = [{"role": "user", "content": "Weather in Oslo?"}, {"type": "reasoning", "id": "rs_1", "summary": []},
             {"type": "function_call", "call_id": "c7", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
             {"type": "function_call_output", "call_id": "c7", "output": "snow, -3C"},
             {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Snow."}]}]
    done = app.import_conversations({"model": "gpt-x", "input": items}, subject=tom)
    assert (done[0].error, done[0].added, done[0].skipped) == (None, 4, 0)
    assert not any("reasoning" in r["payload"]["text"] for r in turns(conn))
    broken = {"model": "gpt-x", "input": [*items[:4], {"type": "message", "role": "assistant"}]}
    assert "messages.4" in str(app.import_conversations(broken, subject=tom)[0].error)
    only = {"model": "gpt-x", "input": [items[1]]}
    assert "only reasoning" in str(app.import_conversations(only, subject=tom)[0].error)

def test_openai_style_messages_and_the_cli(dsn: str, tmp_path: Path, tom: str, conn: DictConn) -> None:
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path),
           "MEMSYNC_LOG_LEVEL": "ERROR"}
    chat = [{"role": "user", "content": "Book the dentist for Tuesday."},
            {"role": "assistant", "content": "Booked: Tuesday 10:00 with Dr. Ames."}]
    path = tmp_path / "chat.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(chat).encode())  # a byte order mark is not the text
    r = CliRunner().invoke(main, ["import", "conversation", str(path), "--subject", tom, "--json"], env=env)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["sessions"], out["added"], out["failed"]) == (1, 2, 0)
    r = CliRunner().invoke(main, ["import", "conversation", "-", "--subject", tom], env=env, input=json.dumps(chat))
    assert r.exit_code == 0 and "nothing new" in r.output, r.output
    r = CliRunner().invoke(main, ["import", "conversation", "-"], env=env, input="{not json")
    assert r.exit_code == 2 and "not JSON" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["import", "conversation", "-"], env=env, input='[{"role": "user"}]')
    assert r.exit_code == 1 and "messages.0.text" in r.output, r.output
    # a subject that is not there fails the import once, before any session is read
    r = CliRunner().invoke(main, ["import", "conversation", "-", "--subject", "person:999999"], env=env,
                           input=json.dumps({"sessions": [{"id": "a", "messages": chat}, {"id": "b", "messages": chat}]}))
    assert r.exit_code == 2 and r.output.count("person") == 1 and "999999" in r.output, r.output
    assert "Traceback" not in r.output and "session 0" not in r.output
    assert [e["payload"]["role"] for e in turns(conn)] == ["user", "assistant"]
    assert {e["status"] for e in turns(conn)} == {"completed"}, "history without times is still history, not running"


def test_a_chat_apps_export_imports_each_conversation_with_its_times(dsn: str, tmp_path: Path, tom: str,
                                                                      conn: DictConn) -> None:
    """ChatGPT's conversations.json (a tree per conversation; the shown branch is imported) and
    Claude's: each conversation a session titled by its summary, turns at their own times; a
    chat with nothing said is left out, not failed; a later export adds only the new turns; a
    conversation the reader cannot read fails alone."""
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path),
           "MEMSYNC_LOG_LEVEL": "ERROR"}
    opened = {"title": "New chat", "create_time": 1.7e9, "conversation_id": "c-0", "mapping": {
        "r": {"id": "r", "parent": None, "children": [], "message": None}}}
    export = [chatgpt_conversation(), opened]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(export))
    r = CliRunner().invoke(main, ["import", "conversation", str(path), "--subject", tom], env=env)
    assert r.exit_code == 0 and "imported 5 messages into 1 sessions" in r.output, r.output
    assert "1 conversations of the export had nothing said in them" in r.output
    rows = turns(conn)
    assert rows[0]["payload"]["text"] == "I went to the climbing gym today.\n[image]"
    assert rows[0]["occurred_at"] == datetime(2023, 5, 8, 13, 56, 10, tzinfo=timezone.utc)
    assert {r["trace_id"] for r in rows} == {"import:c-1"} and len(rows) == 5
    summary = conn.execute("SELECT summary FROM agent.sessions WHERE trace_id = 'import:c-1'").fetchone()
    assert summary == {"summary": "Climbing gym plans"}
    # the conversation went on in the app: its next export adds the new turn only
    longer = chatgpt_conversation()
    longer["mapping"]["a2"]["children"] = ["u3"]
    longer["mapping"]["u3"] = {"id": "u3", "parent": "a2", "children": [],
                               "message": said("u3", "user", ["Next week: the lead climbing course."], 1_683_640_000.0)}
    longer["current_node"] = "u3"
    broken = {**chatgpt_conversation(), "conversation_id": "c-9", "mapping": {
        "x": {"id": "x", "parent": None, "children": [], "message": {"id": "x", "content": "text"}}}}
    r = CliRunner().invoke(main, ["import", "conversation", "-", "--subject", tom, "--json"], env=env,
                           input=json.dumps([longer, opened, broken]))
    out = json.loads(r.output)
    assert r.exit_code == 1 and (out["added"], out["skipped"], out["failed"], out["empty"]) == (1, 5, 1, 1), out
    assert "session 2: mapping.x.message.content: expected an object" in out["results"][2]["error"]
    assert [x["key"] for x in out["results"]] == ["import:c-1", "import:c-0", "import:c-9"], "each named by its id"
    # then the person edited that message in the app (the tree forks, the new version shown):
    # the next export withdraws the version an earlier import brought in, and adds the new one
    run = ["run", "--once"]
    assert CliRunner().invoke(main, run, env=env).exit_code == 0
    old = conn.execute("SELECT id FROM agent.events WHERE payload->>'id' = 'u3'").fetchone()
    assert old is not None and conn.execute(
        "SELECT count(*) AS n FROM agent.blocks WHERE source_table = 'agent.events' AND source_id = %s",
        (old["id"],)).fetchone() == {"n": 2}, "the turn and its exchange with the answer before it"
    edited = copy.deepcopy(longer)
    edited["mapping"]["a2"]["children"] = ["u3", "u3b"]
    edited["mapping"]["u3b"] = {"id": "u3b", "parent": "a2", "children": [], "message": said(
        "u3b", "user", ["Next month: the lead climbing course."], 1_683_640_100.0)}
    edited["current_node"] = "u3b"
    r = CliRunner().invoke(main, ["import", "conversation", "-", "--subject", tom, "--json"], env=env,
                           input=json.dumps([edited]))
    out = json.loads(r.output)
    assert r.exit_code == 0 and (out["added"], out["withdrawn"], out["skipped"]) == (1, 1, 5), out
    assert [e["payload"]["text"] for e in turns(conn) if e["trace_id"] == "import:c-1"][-1] == \
        "Next month: the lead climbing course."
    assert "u3" not in {e["payload"].get("id") for e in turns(conn)}
    assert CliRunner().invoke(main, run, env=env).exit_code == 0
    assert conn.execute("SELECT count(*) AS n FROM agent.blocks WHERE source_table = 'agent.events' AND source_id = %s",
                        (old["id"],)).fetchone() == {"n": 0}, "its blocks left the index with it"
    again = CliRunner().invoke(main, ["import", "conversation", "-", "--subject", tom], env=env,
                               input=json.dumps([edited]))
    assert again.exit_code == 0 and "nothing new" in again.output and "withdrew" not in again.output, again.output
    claude = [{"uuid": "k-1", "name": "Lisbon", "created_at": "2024-05-01T09:00:00Z", "chat_messages": [
        {"uuid": "h1", "sender": "human", "text": "Plan Lisbon.", "content": [{"type": "text", "text": "Plan Lisbon."}],
         "created_at": "2024-05-01T09:00:05Z", "attachments": [], "files": []},
        {"uuid": "b1", "sender": "assistant", "text": "Take tram 28.", "created_at": "2024-05-01T09:00:09Z",
         "content": [{"type": "text", "text": "Take tram 28."}]}]},
        {"uuid": "k-2", "name": "", "created_at": "2024-05-02T09:00:00Z", "chat_messages": []}]
    r = CliRunner().invoke(main, ["import", "conversation", "-", "--subject", tom, "--json"], env=env,
                           input=json.dumps(claude))
    out = json.loads(r.output)
    assert r.exit_code == 0 and (out["sessions"], out["added"], out["empty"]) == (1, 2, 1), out
    lisbon = [e for e in turns(conn) if e["trace_id"] == "import:k-1"]
    assert [(e["payload"]["role"], e["occurred_at"].isoformat()) for e in lisbon] == [
        ("user", "2024-05-01T09:00:05+00:00"), ("assistant", "2024-05-01T09:00:09+00:00")]


def test_a_coding_agents_session_log_imports_as_json_lines(dsn: str, tmp_path: Path, tom: str,
                                                           conn: DictConn) -> None:
    """A Claude Code session file (JSON Lines): its turns, tool calls and results in, at their
    times, its bookkeeping out; the same file again adds nothing, the session's next lines only
    what is new; a broken line is named."""
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path),
           "MEMSYNC_LOG_LEVEL": "ERROR"}
    log = claude_code_log()
    path = tmp_path / "s-1.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in log) + "\n")
    r = CliRunner().invoke(main, ["import", "conversation", str(path), "--subject", tom, "--json"], env=env)
    out = json.loads(r.output)
    assert r.exit_code == 0 and (out["sessions"], out["added"], out["failed"]) == (1, 4, 0), r.output
    rows = turns(conn)
    assert [(e["payload"]["role"], e["occurred_at"].isoformat()) for e in rows] == [
        ("user", "2025-03-02T10:00:01+00:00"), ("assistant", "2025-03-02T10:00:05+00:00"),
        ("tool", "2025-03-02T10:00:06+00:00"), ("assistant", "2025-03-02T10:00:09+00:00")]
    assert rows[1]["payload"]["text"] == 'called Read({"file_path": "tests/test_upload.py"})'
    session = conn.execute("SELECT summary FROM agent.sessions WHERE trace_id = 'import:s-1'").fetchone()
    assert session == {"summary": "Fix the flaky upload test"}
    more = {**log[-1], "uuid": "e6", "timestamp": "2025-03-02T10:02:00Z",
            "message": {"role": "user", "content": "Then wait on the upload's event."}}
    path.write_text("\n".join(json.dumps(x) for x in [*log, more]) + "\n")
    r = CliRunner().invoke(main, ["import", "conversation", str(path), "--subject", tom, "--json"], env=env)
    assert (json.loads(r.output)["added"], json.loads(r.output)["skipped"]) == (1, 4), r.output
    r = CliRunner().invoke(main, ["import", "conversation", "-"], env=env, input='{"type": "summary"}\n{broken\n')
    assert r.exit_code == 2 and "line 2: not JSON" in r.output and "Traceback" not in r.output, r.output
    # a project's logs at once: each file read alone, one that cannot be read named, the others in
    other = tmp_path / "s-2.jsonl"
    other.write_text("\n".join(json.dumps({**x, "sessionId": "s-2", "uuid": f"2{x['uuid']}"})
                               for x in log if "uuid" in x) + "\n")
    broken = tmp_path / "s-3.jsonl"
    broken.write_text('{"type": "user"}\n{"type": "assistant", "mess\n{"type": "user"}\n')
    r = CliRunner().invoke(main, ["import", "conversation", str(path), str(broken), str(other), "--subject", tom,
                                  "--json"], env=env)
    out = json.loads(r.output)
    assert r.exit_code == 1 and (out["files"], out["sessions"], out["added"], out["skipped"]) == (3, 2, 4, 5), out
    assert out["unreadable"][0]["file"] == str(broken) and "line 2: not JSON" in out["unreadable"][0]["error"]
    assert [x["file"] for x in out["results"]] == [str(path), str(other)]
    r = CliRunner().invoke(main, ["import", "conversation", str(path), str(broken), "--subject", tom], env=env)
    assert r.exit_code == 1 and f"error: {broken}: " in r.output and "nothing new" in r.output, r.output
    # a log still being written: its unfinished last line is left out and named, the next import adds it
    last = {**log[-1], "uuid": "e7", "timestamp": "2025-03-02T10:03:00Z",
            "message": {"role": "assistant", "content": "Done: the test waits on the event."}}
    path.write_text("\n".join(json.dumps(x) for x in [*log, more, last])[:-9])
    r = CliRunner().invoke(main, ["import", "conversation", str(path), "--subject", tom, "--json"], env=env)
    out = json.loads(r.output)
    assert r.exit_code == 0 and out["added"] == 0, out
    assert out["partial_lines"] == [{"file": str(path), "line": len(log) + 2}], out
    r = CliRunner().invoke(main, ["import", "conversation", str(path), "--subject", tom], env=env)
    assert r.exit_code == 0 and f"note: {path}: line {len(log) + 2} has no line end yet" in r.output, r.output
    path.write_text("\n".join(json.dumps(x) for x in [*log, more, last]) + "\n")
    r = CliRunner().invoke(main, ["import", "conversation", str(path), "--subject", tom, "--json"], env=env)
    assert (json.loads(r.output)["added"], json.loads(r.output)["partial_lines"]) == (1, []), r.output


def test_a_resumed_claude_code_session_continues_the_one_imported_before(app: Memsync, conn: DictConn,
                                                                         tom: str) -> None:
    """Resuming a Claude Code session writes a new log (a new session id) with the earlier
    history copied in: imported, in either order, it is one session whose turns come in once,
    the resumed one's new turn added to it; a session that shares no turn stays its own."""
    first = claude_code_log()
    resumed = [{**x, "sessionId": "s-9"} for x in first if "sessionId" in x] + [{
        **first[-1], "sessionId": "s-9", "uuid": "e9", "parentUuid": "e5", "timestamp": "2025-03-02T11:00:00Z",
        "message": {"role": "user", "content": "Back again: did the fix hold?"}}]
    other = [{**x, "sessionId": "s-5", "uuid": f"5{x['uuid']}"} for x in first if "sessionId" in x]
    for order in ((first, resumed, other), (resumed, first, other)):
        conn.execute("DELETE FROM agent.events WHERE session_id IN (SELECT id FROM agent.sessions"
                     " WHERE trace_id LIKE 'import:%%')")
        conn.execute("DELETE FROM agent.sessions WHERE trace_id LIKE 'import:%%'")
        done = [d for log in order for d in app.import_conversations(log, subject=tom)]
        assert [d.error for d in done] == [None, None, None] and sum(d.added for d in done) == 9, done
        sessions = {}
        for e in turns(conn):
            sessions.setdefault(e["trace_id"], []).append(e["payload"].get("id"))
        merged = next(ids for key, ids in sessions.items() if key != "import:s-5")
        assert len(sessions) == 2 and merged == ["e1", "e3", "e4", "e5", "e9"], sessions
        assert done[1].added == 1 if order[0] is first else done[1].added == 0



def test_the_same_messages_imported_or_sent_at_once_are_written_once(app: Memsync, conn: DictConn, tom: str) -> None:
    """Writers that overlap (a hook importing a session as it ends while a scheduled import
    reads the whole folder; a client retrying a call that timed out while the first still
    ran) each found the messages absent and each wrote them: every turn twice. Of two ends of
    a session at once, the second overwrote the first's status and summary."""
    done = at_once(*[lambda: app.import_conversations(HISTORY, subject=tom)] * 3)
    assert sorted(sum(d.added for d in run) for run in done) == [0, 0, 6], done
    first = claude_code_log()
    resumed = [{**x, "sessionId": "s-9"} for x in first if "sessionId" in x]
    done = at_once(lambda: app.import_conversations(first, subject=tom),
                   lambda: app.import_conversations(resumed, subject=tom))
    assert sum(d.added for run in done for d in run) == 4, done  # one session: the copies skipped
    session = app.start_session("chat", subject=tom).row["global_id"]
    sent = [{"speaker": "Tom", "text": f"note {i}", "id": f"n{i}"} for i in range(20)]
    done = at_once(*[lambda: app.log_messages(session, sent)] * 3)
    assert sorted(w.extra["added"] for w in done) == [0, 0, 20]
    ends = at_once(lambda: app.end_session(session, "completed", "first"),
                   lambda: app.end_session(session, "completed", "second"))
    assert sorted(str(x) for x in ends if isinstance(x, InvalidInput)) == [f"session {session} has ended (completed)"]
    held = {r["trace_id"]: r["n"] for r in conn.execute(
        "SELECT s.trace_id, count(*) AS n FROM agent.events e JOIN agent.sessions s ON s.id = e.session_id GROUP BY 1")}
    claude = "import:s-1" if "import:s-1" in held else "import:s-9"  # whichever came first holds it
    assert held == {None: 20, claude: 4, "import:s1": 4, "import:s2": 2}, held


AGENT_LOG = [  # an agent's transcript as OpenAI's chat format writes it, tools and parts included
    {"role": "system", "content": "You are Tom's assistant."},
    {"role": "user", "name": "Tom", "content": [{"type": "text", "text": "Is it raining in Lisbon?"},
                                                 {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "drizzle, 14C"},
    {"role": "assistant", "content": [{"type": "text", "text": "A light drizzle, 14C: take the umbrella."}]},
]


def test_an_agents_tool_using_transcript_imports_whole_and_its_calls_are_found(
        dsn: str, tmp_path: Path, settings: Settings, tom: str, conn: DictConn) -> None:
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path),
           "MEMSYNC_LOG_LEVEL": "ERROR"}
    r = CliRunner().invoke(main, ["import", "conversation", "-", "--subject", tom, "--json"], env=env,
                           input=json.dumps(AGENT_LOG))
    assert r.exit_code == 0, r.output
    assert (json.loads(r.output)["added"], json.loads(r.output)["failed"]) == (5, 0)
    said = [e["payload"] for e in turns(conn)]
    assert [p.get("speaker", p.get("role")) for p in said] == ["system", "Tom", "assistant", "tool", "assistant"]
    assert said[1]["text"] == "Is it raining in Lisbon?\n[image]"
    assert said[2]["text"] == 'called get_weather({"city": "Lisbon"})'
    assert said[2]["metadata"]["tool_calls"][0]["id"] == "call_1"
    assert said[3]["metadata"] == {"tool_call_id": "call_1", "name": "get_weather"}
    drain(dsn, settings)
    with Memsync(settings.model_copy(update={"dsn": dsn}), embedder=HashingEmbedder()) as app:
        hits = app.search("get_weather Lisbon", mode="lexical", k=1)
        assert hits[0].text == 'called get_weather({"city": "Lisbon"})'
        assert "drizzle, 14C" in {h.text for h in app.search("drizzle", mode="lexical", k=3)}
    # a malformed part names its message and field, and fails its session only
    r = CliRunner().invoke(main, ["import", "conversation", "-", "--subject", tom], env=env,
                           input=json.dumps([{"role": "user", "content": [{"type": "text", "text": 7}]}]))
    assert r.exit_code == 1 and "messages.0" in r.output and "content.0.text" in r.output, r.output
    assert "Traceback" not in r.output


def test_history_times_are_validated(app: Memsync, tom: str) -> None:
    with pytest.raises(FieldError, match="started_at"):
        app.start_session("conversation", subject=tom, started_at="1899-12-31T00:00:00Z")
    with pytest.raises(FieldError, match="ended_at must not be before started_at"):
        app.start_session("conversation", subject=tom, started_at="2023-05-02T00:00:00Z",
                          ended_at="2023-05-01T00:00:00Z")
    s = app.start_session("conversation", subject=tom, started_at="2023-05-01T00:00:00Z")
    with pytest.raises(FieldError, match="occurred_at"):
        app.log_event(s.row["global_id"], "note", {"text": "x"},
                      occurred_at=datetime.now(timezone.utc) + timedelta(days=3))
    e = app.log_event(s.row["global_id"], "note", {"text": "x"}, occurred_at="2023-05-01T10:00:00Z")
    assert e.row["occurred_at"] == datetime(2023, 5, 1, 10, tzinfo=timezone.utc)
    w = app.log_messages(s.row["global_id"], [{"speaker": "Tom", "text": "hello", "id": "a"},
                                               {"speaker": "Tom", "text": "hello again", "id": "a"},
                                               {"role": "assistant", "text": "hi"}])
    assert (w.extra["added"], w.extra["skipped"]) == (2, 1)
    w = app.log_messages(s.row["global_id"], [{"speaker": "Tom", "text": "hello", "id": "a"}])
    assert (w.extra["added"], w.extra["skipped"]) == (0, 1)
    w = app.log_messages(s.row["global_id"], [{"type": "reasoning", "summary": []}, {"role": "user", "text": "ok"}])
    assert (w.extra["added"], w.extra["skipped"]) == (1, 0), "the model's reasoning is not a turn"


def test_a_session_the_database_refuses_fails_alone(app: Memsync, conn: DictConn, tom: str) -> None:
    """What validation lets through and Postgres refuses (here a deployment's own CHECK on
    events) fails its session only: the import goes on with the next one. A lone surrogate
    in a message's metadata (jsonb refuses it) is caught before the database."""
    conn.execute("ALTER TABLE agent.events ADD CONSTRAINT no_secrets CHECK (payload->>'text' NOT LIKE '%%secret%%')")
    try:
        done = app.import_conversations({"sessions": [
            {"id": "r1", "messages": [{"speaker": "Tom", "text": "fine"}, {"speaker": "Tom", "text": "a secret"}]},
            {"id": "r2", "messages": [{"speaker": "Tom", "text": "odd", "metadata": {"k": "x \ud800"}}]},
            {"id": "r3", "messages": [{"speaker": "Tom", "text": "still imported"}]}]}, subject=tom)
    finally:
        conn.execute("ALTER TABLE agent.events DROP CONSTRAINT no_secrets")
    assert "session 0: the database refused it" in str(done[0].error) and "no_secrets" in str(done[0].error)
    assert "messages.0.metadata" in str(done[1].error) and "surrogate" in str(done[1].error)
    assert done[2].error is None and done[2].added == 1
    assert [e["payload"]["text"] for e in turns(conn)] == ["still imported"], "nothing of a failed session"


def test_history_comes_in_with_times_as_exports_write_them(app: Memsync, conn: DictConn, tom: str) -> None:
    """Transcripts date sessions in words ('1:56 pm on 8 May, 2023') or year first with the
    weekday ('2023/05/20 (Sat) 02:21'): read as written, no conversion step; a time that cannot
    be read fails its session, naming the field and what is accepted, and so does a turn dated
    before its session (it stopped the whole import at the sessions' check constraint)."""
    done = app.import_conversations({"sessions": [
        {"id": "w0", "date": "8 May 2023 2 pm", "messages": [
            {"speaker": "Tom", "text": "Too early", "at": "2023-05-08T13:00:00Z"}]},
        {"id": "w1", "date": "1:56 pm on 8 May, 2023", "summary": "Climbing, and Tom approves", "messages": [
            {"speaker": "Priya", "text": "I went to the climbing gym."},
            {"speaker": "Tom", "text": "Nice!", "at": "May 8, 2023 2:05 pm"}]},
        {"id": "w2", "date": "2023/05/20 (Sat) 02:21", "messages": [{"speaker": "Priya", "text": "Back again."}]},
        {"id": "w3", "date": "the 25th", "messages": [{"speaker": "Priya", "text": "Lost?"}]},
        {"id": "w4", "date": 20230508, "messages": [{"speaker": "Priya", "text": "In 1970?"}]},
        # a session dated by its day only: a turn said that morning in Tokyo or Berlin is that
        # day's, though before midnight UTC; the day before is not
        {"id": "w5", "date": "2023-06-01", "messages": [
            {"speaker": "Priya", "text": "Guten Morgen!", "at": "2023-06-01T00:30:00+02:00"}]},
        {"id": "w6", "date": "1 June 2023", "messages": [
            {"speaker": "Priya", "text": "Late night.", "at": "2023-05-31T23:30:00+02:00"}]}]}, subject=tom)
    assert [d.added for d in done] == [0, 2, 1, 0, 0, 1, 0] and done[1].error is done[2].error is done[5].error is None
    assert "messages.0.at: 2023-05-31T23:30:00+02:00 is before the session's date (2023-06-01)" in str(done[6].error)
    assert "write 2023-05-08" in str(done[4].error), "a date without separators is not a Unix time in 1970"
    assert "session 0" in str(done[0].error) and "messages.0.at" in str(done[0].error)
    assert "before the session's date" in str(done[0].error)
    error = str(done[3].error)
    assert "started_at" in error and "'the 25th' is not a time" in error and "Value error" not in error
    said = {e["payload"]["text"]: e["occurred_at"] for e in turns(conn)}
    assert said == {"I went to the climbing gym.": datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc),
                    "Nice!": datetime(2023, 5, 8, 14, 5, tzinfo=timezone.utc),
                    "Back again.": datetime(2023, 5, 20, 2, 21, tzinfo=timezone.utc),
                    "Guten Morgen!": datetime(2023, 5, 31, 22, 30, tzinfo=timezone.utc)}
    morning = conn.execute("SELECT started_at, ended_at FROM agent.sessions WHERE trace_id = 'import:w5'").fetchone()
    assert morning == {"started_at": datetime(2023, 5, 31, 22, 30, tzinfo=timezone.utc),
                       "ended_at": datetime(2023, 5, 31, 22, 30, tzinfo=timezone.utc)}, "it starts at its first turn"
    assert not {"Lost?", "Too early", "In 1970?"} & set(said)
    session = conn.execute("SELECT summary, status FROM agent.sessions WHERE trace_id = 'import:w1'").fetchone()
    assert session == {"summary": "Climbing, and Tom approves", "status": "completed"}, "the summary was dropped"


def test_turns_say_who_and_when_alone_and_with_the_turn_before(app: Memsync, dsn: str, settings: Settings,
                                                               conn: DictConn, tom: str) -> None:
    app.import_conversations(HISTORY, subject=tom)
    drain(dsn, settings)
    blocks = conn.execute(
        """SELECT b.block_type, b.heading_path, b.body_md, b.metadata, e.id, e.payload->>'id' AS mid
             FROM agent.blocks b JOIN agent.events e ON b.source_table = 'agent.events' AND e.id = b.source_id
            ORDER BY e.occurred_at, e.id""").fetchall()
    turn = {b["mid"]: b for b in blocks if b["block_type"] == "note"}
    pair = {b["mid"]: b for b in blocks if b["block_type"] == "exchange"}
    event = {b["mid"]: b["id"] for b in blocks}
    assert turn["m4"]["heading_path"] == pair["m4"]["heading_path"] == "Priya, 8 May 2023"
    assert turn["m4"]["body_md"] == "Yes, it was amazing!" and turn["m4"]["metadata"]["speaker"] == "Priya"
    assert pair["m4"]["body_md"] == "Tom: Nice! Did you like it?\nPriya: Yes, it was amazing!"
    assert pair["m4"]["metadata"]["covers"] == [event["m3"], event["m4"]]
    assert "m1" in turn and "m1" not in pair, "the first turn has none before it"
    # by words, the turn itself ranks first, then the exchanges that hold it
    hits = app.search("climbing gym", mode="lexical", k=10)
    assert hits[0].text == "I finally went to the climbing gym on Saturday." and hits[0].covers is None
    assert len(hits) == 3 and all("climbing gym" in h.text for h in hits)
    assert {tuple(h.covers) for h in hits[1:] if h.covers} == {(event["m1"], event["m2"]), (event["m2"], event["m3"])}
    assert app.search("June 2023 pottery", mode="lexical", k=1)[0].heading_path == "Priya, 1 June 2023"
    # events are ranked over both granularities; "did you like it" is answered in the next turn
    found = app.recall("like amazing", k=2, neighbours=0, mode="lexical")
    assert {h for x in found for h in x.hits} == {event["m3"], event["m4"]}


def test_an_edited_turn_re_embeds_only_what_it_touches(app: Memsync, dsn: str, settings: Settings,
                                                       conn: DictConn, tom: str) -> None:
    app.import_conversations(HISTORY, subject=tom)
    drain(dsn, settings)
    counting = Counting()
    conn.execute("""UPDATE agent.events SET payload = jsonb_set(payload, '{text}', '"Did you enjoy it?"')
                     WHERE payload->>'id' = 'm3'""")
    drain(dsn, settings, counting)
    # the edited turn alone, its exchange with the turn before, the next turn's exchange with it
    assert sorted(counting.texts) == sorted([
        "Tom, 8 May 2023\n\nDid you enjoy it?",
        "Tom, 8 May 2023\n\nPriya: I finally went to the climbing gym on Saturday.\nTom: Did you enjoy it?",
        "Priya, 8 May 2023\n\nTom: Did you enjoy it?\nPriya: Yes, it was amazing!"]), counting.texts
    counting.texts.clear()
    conn.execute("DELETE FROM agent.events WHERE payload->>'id' = 'm3'")
    drain(dsn, settings, counting)
    assert counting.texts == ["Priya, 8 May 2023\n\nPriya: I finally went to the climbing gym on Saturday.\n"
                              "Priya: Yes, it was amazing!"]
    left = conn.execute("SELECT block_type, count(*) AS n FROM agent.blocks WHERE source_table = 'agent.events'"
                        " GROUP BY block_type ORDER BY block_type").fetchall()
    assert left == [{"block_type": "exchange", "n": 3}, {"block_type": "note", "n": 5}]


def test_recall_returns_exchanges_with_neighbours_merged(app: Memsync, dsn: str, settings: Settings,
                                                         conn: DictConn, tom: str, tmp_path: Path) -> None:
    app.import_conversations(HISTORY, subject=tom)
    drain(dsn, settings)
    found = app.recall("climbing gym Saturday", k=3, neighbours=1, mode="lexical")
    assert found, "the turn that says it"
    first = found[0]
    texts = [t["payload"]["text"] for t in first.turns]
    assert texts[:3] == ["How was your weekend, Priya?", "I finally went to the climbing gym on Saturday.",
                         "Nice! Did you like it?"]
    assert first.to_dict()["text"].startswith("8 May 2023 (conversation):\nTom: How was your weekend")
    # two hits in one session whose windows overlap come back as one exchange
    both = app.recall("weekend amazing", k=5, neighbours=2, mode="lexical")
    s1 = [x for x in both if x.session_global_id == first.session_global_id]
    assert len(s1) == 1 and len(s1[0].turns) == 4  # the two turns that say it, and the exchanges holding them
    assert {t["id"] for t in s1[0].turns if t["payload"]["text"] in (
        "How was your weekend, Priya?", "Yes, it was amazing!")} <= set(s1[0].hits)
    assert app.recall("weekend", k=1, neighbours=0, mode="lexical")[0].event_ids == \
        app.recall("weekend", k=1, neighbours=0, mode="lexical")[0].hits
    with pytest.raises(InvalidInput, match="neighbours"):
        app.recall("x", neighbours=99)
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path),
           "MEMSYNC_LOG_LEVEL": "ERROR"}
    r = CliRunner().invoke(main, ["search", "climbing gym", "--events", "--mode", "lexical", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["turns"][1]["hit"] is True
    r = CliRunner().invoke(main, ["search", "climbing gym", "--events", "--mode", "lexical", "--as-of",
                                  "2023-06-20", "--no-time-window", "--json"], env=env)
    assert r.exit_code == 0 and json.loads(r.output)[0]["turns"][1]["hit"] is True, r.output
    r = CliRunner().invoke(main, ["search", "climbing gym", "--as-of", "whenever"], env=env)
    assert r.exit_code != 0 and "as_of" in r.output and "Traceback" not in r.output, r.output
    r = CliRunner().invoke(main, ["search", "  "], env=env)
    assert r.exit_code == 2 and "blank" in r.output


def test_the_conversation_recipe_returns_dated_exchanges(app: Memsync, dsn: str, settings: Settings,
                                                         tom: str, conn: DictConn) -> None:
    app.remember(tom, "Tom prefers morning calls", fact_type="preference")
    app.import_conversations(HISTORY, subject=tom)
    drain(dsn, settings)
    bundle = app.retrieve("conversation_recall", tom, query="pottery class")
    exchanges = [i for i in bundle.items if i.section == "exchanges"]
    assert exchanges and exchanges[0].kind == "conversation" and exchanges[0].table == "agent.events"
    assert exchanges[0].text.startswith("1 June 2023 (conversation):\nPriya: I signed up for a pottery class.")
    assert exchanges[0].score_breakdown["events"] and exchanges[0].global_id.startswith("event:")
    tom_gid = conn.execute("SELECT global_id FROM erp.people WHERE id = %s", (int(tom.split(":")[1]),)).fetchone()
    assert exchanges[0].score_breakdown["people"] == [tom_gid["global_id"]], "Tom answers; no Priya in erp.people"
    md = bundle.to_markdown()
    assert "Relevant exchanges" in md and "Known facts" in md and "Tom prefers morning calls" in md


def test_mcp_log_messages_then_search_events(dsn: str, tmp_path: Path, tom: str) -> None:
    import asyncio

    from tests.integration.test_mcp import fails, ok, stdio

    async def run() -> None:
        async with stdio(dsn, tmp_path, MEMSYNC_MODEL="hashing-384") as c:
            s = await ok(c, "start_session", {"session_type": "conversation", "subject": tom,
                                              "started_at": "2023-05-08T14:00:00Z"})
            w = await ok(c, "log_messages", {"session": s["global_id"], "messages": [
                {"speaker": "Tom", "text": "Which hike should we do in June?", "at": "2023-05-08T14:01:00Z"},
                {"speaker": "Priya", "text": "The ridge trail above the lake.", "at": "2023-05-08T14:02:00Z",
                 "id": "p1"}]})
            assert (w["added"], w["skipped"]) == (2, 0)
            again = await ok(c, "log_messages", {"session": s["global_id"], "messages": [
                {"speaker": "Priya", "text": "The ridge trail above the lake.", "id": "p1"}]})
            assert (again["added"], again["skipped"]) == (0, 1)
            found = await ok(c, "search", {"query": "ridge trail lake", "events": True, "mode": "lexical"})
            turns = found["exchanges"][0]["turns"]
            assert [t["speaker"] for t in turns] == ["Tom", "Priya"] and turns[1]["hit"]
            await fails(c, "log_messages", {"session": s["global_id"], "messages": [
                {"speaker": "Tom", "text": "x", "at": "1800-01-01T00:00:00Z"}]}, "messages.0.at")
            # "last month" as of June: the May turns; without the window, the same words find them too
            found = await ok(c, "search", {"query": "ridge trail last month", "events": True, "mode": "lexical",
                                           "as_of": "2023-06-10T00:00:00Z"})
            assert found["exchanges"][0]["turns"][-1]["text"] == "The ridge trail above the lake."
            found = await ok(c, "search", {"query": "ridge trail", "events": True, "time_window": False})
            assert found["exchanges"]
            await fails(c, "search", {"query": "ridge trail", "as_of": "someday"}, "as_of")
            # the library's ranking options, over MCP too; values checked by the library
            found = await ok(c, "search", {"query": "ridge trail", "events": True, "fusion": "rrf", "candidates": 10,
                                           "weights": {"dense": 0, "lexical": 1}})
            assert found["exchanges"][0]["turns"][-1]["text"] == "The ridge trail above the lake."
            hits = await ok(c, "search", {"query": "ridge trail lake", "mmr_lambda": 0.5,
                                          "recency_half_life_days": 30})
            assert hits["hits"] and "ridge trail" in hits["hits"][0]["text"]
            await fails(c, "search", {"query": "ridge trail", "weights": {"bm25": 1}}, "weights")
            await fails(c, "search", {"query": "ridge trail", "fusion": "sum"}, "fusion")
            await fails(c, "search", {"query": "ridge trail", "weights": {"dense": -1}}, "weights.dense")
            # an agent's own turns as its chat log holds them: a tool call, then the tool's answer
            logged = await ok(c, "log_messages", {"session": s["global_id"], "messages": [
                {"role": "assistant", "content": None, "at": "2023-05-08T14:03:00Z", "tool_calls": [
                    {"id": "c9", "type": "function", "function": {"name": "trail_map", "arguments": '{"trail": "ridge"}'}}]},
                {"role": "tool", "tool_call_id": "c9", "content": [{"type": "text", "text": "ridge: 11 km, 600 m up"}],
                 "at": "2023-05-08T14:03:01Z"}]})
            assert logged["added"] == 2
            found = await ok(c, "search", {"query": "trail_map 600 m up", "events": True, "mode": "lexical"})
            best = found["exchanges"][0]
            said = {t["id"]: t["text"] for t in best["turns"]}
            assert {said[e] for e in best["hits"][:2]} == {'called trail_map({"trail": "ridge"})',
                                                          "ridge: 11 km, 600 m up"}

    asyncio.run(run())


def test_a_question_that_names_a_month_recalls_that_months_turns_first(app: Memsync, dsn: str,
                                                                       settings: Settings, tom: str) -> None:
    app.import_conversations({"sessions": [
        {"id": "may", "date": "2023-05-08T14:00:00Z", "messages": [
            {"speaker": "Priya", "text": "Climbing gym all Saturday: the climbing gym has a new climbing wall.",
             "id": "c1"}]},
        {"id": "june", "date": "2023-06-10T14:00:00Z", "messages": [
            {"speaker": "Priya", "text": "Back at the gym, bouldering this time.", "id": "c2"}]},
    ]}, subject=tom)
    drain(dsn, settings)

    def first(query: str, **options: Any) -> str:
        found = app.recall(query, k=5, neighbours=0, mode="lexical", **options)
        assert len(found) == 2, query  # the other month's turn still comes back, after
        return str(found[0].turns[0]["payload"]["text"])

    assert first("climbing gym").startswith("Climbing gym")
    assert first("climbing gym in June 2023").startswith("Back at the gym")
    assert first("climbing gym in June 2023", time_window=False).startswith("Climbing gym")
    assert first("climbing gym on 8 May 2023").startswith("Climbing gym")
    # a relative window counts from as_of (default: now)
    assert first("climbing gym last month", as_of="2023-06-20T09:00:00Z").startswith("Climbing gym")
    assert first("climbing gym this month", as_of="2023-06-20T09:00:00Z").startswith("Back at the gym")
    assert first("climbing gym last month").startswith("Climbing gym"), "no turn is from last month: fused order"
    with pytest.raises(InvalidInput, match="time_window"):
        app.recall("gym", time_window="yes")
    with pytest.raises(InvalidInput, match="as_of"):
        app.recall("gym", as_of="next tuesday")


def test_speakers_link_to_the_people_they_name_and_to_no_one_else(app: Memsync, conn: DictConn, dsn: str,
                                                                 settings: Settings) -> None:
    from memsync.read.subjects import Confinement

    people = {n: conn.execute("INSERT INTO erp.people (full_name) VALUES (%s) RETURNING id, global_id",
                              (n,)).fetchone() for n in ("Priya  Raman", "Tom Hill", "Tom Baker", "Ada Lovelace")}
    org = conn.execute("INSERT INTO erp.organizations (name) VALUES ('Acme') RETURNING id").fetchone()
    assert org is not None
    gid = {n: str(r["global_id"]) for n, r in people.items() if r is not None}
    priya = f"person:{people['Priya  Raman']['id']}"  # type: ignore[index]
    data = {"sessions": [{"id": "s1", "date": "2023-05-08T14:00:00Z", "messages": [
        {"speaker": "priya", "text": "I finally went climbing."},
        {"speaker": "Tom", "text": "Which gym?"},
        {"speaker": "tom  BAKER", "text": "The one by the station."},
        {"role": "user", "text": "A role never names a person."},
        {"speaker": "Grace", "text": "Nobody here has that name."},
        {"speaker": "Someone", "text": "The caller says who.", "person": gid["Ada Lovelace"]},
    ]}]}
    done = app.import_conversations(data, subject=priya)
    assert done[0].error is None and done[0].added == 6
    assert [r["payload"].get("person") for r in turns(conn)] == [
        gid["Priya  Raman"], None, gid["Tom Baker"], None, None, gid["Ada Lovelace"]], \
        "unique first name, two Toms (none), full name, a role, no match, named by the caller"
    for person, why in (("person:999999", "no person"), (f"organization:{org['id']}", "not a person")):
        bad = {"sessions": [{"id": "s2", "messages": [{"speaker": "Ada", "text": "x"},
                                                      {"speaker": "Eve", "text": "y", "person": person}]}]}
        failed = app.import_conversations(bad, subject=priya)[0]
        assert "messages.1.person" in str(failed.error) and why in str(failed.error), failed.error
    assert len(turns(conn)) == 6, "nothing of a failed session is written"
    drain(dsn, settings)
    found = app.recall("climbing", k=1, neighbours=0, mode="lexical")
    assert found[0].to_dict()["turns"][0]["person"] == gid["Priya  Raman"]
    # a scoped caller links only to people inside its scope
    inside = Confinement.of(conn, priya)
    s = app.start_session("conversation", subject=priya, confine=inside)
    conn.execute("INSERT INTO erp.people (full_name) VALUES ('Priya Patel')")  # outside the scope
    w = app.log_messages(s.row["global_id"], [{"speaker": "Priya Raman", "text": "hello"},
                                              {"speaker": "Ada Lovelace", "text": "hi"},
                                              {"speaker": "Priya", "text": "two Priyas now"}], confine=inside)
    assert w.extra["added"] == 3
    assert [r["payload"].get("person") for r in turns(conn)][-3:] == [gid["Priya  Raman"], None, None], \
        "outside the scope: none; a name two people share, one of them outside: none"
    with pytest.raises(InvalidInput, match=r"messages\.0\.person"):
        app.log_messages(s.row["global_id"], [{"speaker": "Ada", "text": "x", "person": gid["Ada Lovelace"]}],
                         confine=inside)


def test_speaker_names_are_looked_up_through_their_indexes(conn: DictConn) -> None:
    """The full-name and first-name conditions match the indexed expressions (0029), so a
    lookup reads the matching people only, however many the ERP holds."""
    from memsync.storage.db import memory as q

    conn.execute("INSERT INTO erp.people (full_name) SELECT 'Person ' || g FROM generate_series(1, 50) g")
    conn.execute("INSERT INTO erp.people (full_name) VALUES ('  Priya   Raman ')")
    explained = Explained(conn)
    q.people_named(explained, ["priya raman"])  # type: ignore[arg-type]
    assert "people_name_key" in explained.plans[0] and "people_first_name_key" in explained.plans[0], explained.plans
    assert [r["full_name"] for r in q.people_named(conn, ["priya raman", "priya"])] == ["  Priya   Raman "]
    # fifty people answer to "person": two rows say it is ambiguous, the other 48 are not read
    assert len(q.people_named(conn, ["person"])) == 2
    assert len(q.people_named(conn, ["person 7", "person"])) == 3


def test_as_of_a_past_time_recalls_what_had_been_said_by_then(app: Memsync, conn: DictConn, dsn: str,
                                                               settings: Settings, tom: str) -> None:
    """A turn's time is when it was said, not when it was imported or synced: as of a past
    time, a later turn is neither found nor shown as a neighbour, and a recipe's conversation
    section holds the history said by then (its blocks were all written today)."""
    from memsync.storage.db import context as ctxq

    app.import_conversations(HISTORY, subject=tom)
    drain(dsn, settings)

    def said(found: list[Any]) -> list[str]:
        return [str(t["payload"]["text"]) for ex in found for t in ex.turns]

    pottery, start = "I signed up for a pottery class.", "When does it start?"  # 09:31 and 09:32 on 1 June
    assert start in said(app.recall("pottery class start", k=5, neighbours=1, mode="lexical"))
    between = "2023-06-01T09:31:30Z"
    shown = said(app.recall("pottery class start", k=5, neighbours=1, mode="lexical", as_of=between))
    assert pottery in shown and start not in shown, "neither a hit nor a neighbour before it was said"
    assert not said(app.recall("pottery class", k=5, mode="lexical", as_of="2023-05-20T00:00:00Z"))
    assert said(app.recall("pottery class", k=5, mode="lexical", as_of="2 June 2023")) == [pottery, start], \
        "a date as people write it"
    hits = app.search("pottery class start", k=10, mode="lexical", as_of=between)
    assert hits and all(start not in h.text for h in hits)
    # retrieve: the conversation section as of a past time (it was empty: the blocks are newer)
    bundle = app.retrieve("conversation_recall", tom, query="climbing gym", as_of="2023-05-20T00:00:00Z")
    texts = [i.text for i in bundle.items if i.kind == "conversation"]
    assert texts and "climbing gym" in texts[0] and not any("pottery" in t for t in texts)
    # since_days counts back from as_of by when the turns were said
    ctxq.put_recipe(conn, "last_week_talk", None, {"scope": "tree", "budget_tokens": 800, "sections": [
        {"kind": "conversation", "name": "talk", "query": "{query}", "top_k": 5, "max_items": 5, "since_days": 7,
         "mode": "lexical"}]})
    bundle = app.retrieve("last_week_talk", tom, query="climbing gym pottery class", as_of="2023-06-02T00:00:00Z")
    texts = [i.text for i in bundle.items]
    assert texts and any("pottery" in t for t in texts) and not any("climbing gym" in t for t in texts)


def test_a_semantic_section_as_of_a_past_time_serves_what_was_true_or_said_then(
        app: Memsync, conn: DictConn, dsn: str, settings: Settings, tom: str) -> None:
    """A recipe's semantic section reads time as search does: a turn by when it was said, a
    fact by when it is valid; history and facts written today with their own past times are
    memory as of those times (the section filtered every block by when it was synced)."""
    from memsync.storage.db import context as ctxq

    app.import_conversations(HISTORY, subject=tom)
    app.remember(tom, "Tom keeps bees on his allotment.", fact_type="preference",
                 valid_from=datetime(2023, 1, 1, tzinfo=timezone.utc))
    drain(dsn, settings)
    ctxq.put_recipe(conn, "related_then", None, {"scope": "tree", "budget_tokens": 800, "sections": [
        {"kind": "semantic", "name": "related", "query": "{query}", "top_k": 5, "max_items": 5, "mode": "lexical"}]})

    def texts(query: str, as_of: str, recipe: str = "related_then") -> list[str]:
        return [i.text for i in app.retrieve(recipe, tom, query=query, as_of=as_of).items]

    assert any("climbing gym" in t for t in texts("climbing gym", "2023-05-20T00:00:00Z"))
    assert not any("pottery" in t for t in texts("pottery class", "2023-05-20T00:00:00Z")), "not yet said"
    assert any("bees" in t for t in texts("bees allotment", "2023-03-01T00:00:00Z")), "valid then"
    assert not any("bees" in t for t in texts("bees allotment", "2022-12-01T00:00:00Z")), "not yet valid"
    # search agrees with the section, and says each hit's time
    bees = [h for h in app.search("bees allotment", k=5, mode="lexical", as_of="2023-03-01") if "bees" in h.text]
    assert bees and bees[0].memory_at == datetime(2023, 1, 1, tzinfo=timezone.utc)
    gym = [h for h in app.search("climbing gym", k=5, mode="lexical") if "climbing gym" in h.text]
    assert gym and gym[0].memory_at == datetime(2023, 5, 8, 14, tzinfo=timezone.utc)
    assert gym[0].to_dict()["memory_at"] == "2023-05-08T14:00:00+00:00"
    # since_days counts back from as_of by the same times
    ctxq.put_recipe(conn, "related_last_week", None, {"scope": "tree", "budget_tokens": 800, "sections": [
        {"kind": "semantic", "name": "related", "query": "{query}", "top_k": 5, "max_items": 5, "mode": "lexical",
         "since_days": 7}]})
    week = texts("climbing gym pottery class", "2023-06-02T00:00:00Z", "related_last_week")
    assert any("pottery" in t for t in week) and not any("climbing gym" in t for t in week)


def test_blocks_written_after_as_of_are_left_out_before_ranking(app: Memsync, conn: DictConn, dsn: str,
                                                                 settings: Settings, tom: str) -> None:
    """A block timed by when it was written (a note, a document) is bounded by as_of before
    ranking, so sixty newer notes that match better do not crowd an older one out of a search
    or a recipe section as of a time before them (turns and facts are timed after ranking)."""
    from memsync.storage.db import context as ctxq

    old = app.add_note(tom, "Tom mentioned the harbour once, among other things about boats, tides and weather.")
    for i in range(60):
        app.add_note(tom, f"harbour harbour harbour, note {i}")
    drain(dsn, settings)
    conn.execute("UPDATE agent.blocks SET created_at = '2020-01-01T00:00:00Z' WHERE id = %s", (old.row["id"],))
    for mode in ("lexical", "dense", "hybrid"):
        hits = app.search("harbour", k=5, mode=mode, as_of="2021-01-01")  # type: ignore[arg-type]
        assert [h.block_id for h in hits] == [old.row["id"]], mode
    assert len(app.search("harbour", k=5, mode="lexical")) == 5
    ctxq.put_recipe(conn, "notes_then", None, {"scope": "tree", "budget_tokens": 800, "sections": [
        {"kind": "semantic", "name": "related", "query": "{query}", "top_k": 3, "max_items": 3, "mode": "lexical"}]})
    items = app.retrieve("notes_then", tom, query="harbour", as_of="2021-01-01").items
    assert [i.block_id for i in items] == [old.row["id"]]


def test_one_statement_of_turns_is_captured_as_each_row_was(app: Memsync, dsn: str, settings: Settings,
                                                            conn: DictConn, tom: str) -> None:
    """Inserts are captured once per statement (migration 0028): of a statement's rows, the
    notes are queued for the index and for every mirror, an event of another type is not,
    and the turns already there that read a new turn as context are resynced; rows the
    worker writes queue nothing."""
    app.import_conversations(HISTORY, subject=tom)
    drain(dsn, settings)
    conn.execute("INSERT INTO memsync.mirrors (name) VALUES ('probe')")
    later = conn.execute("SELECT id, session_id FROM agent.events WHERE payload->>'text' = 'When does it start?'"
                         ).fetchone()
    session = later["session_id"]
    new = [r["id"] for r in conn.execute(
        """INSERT INTO agent.events (session_id, event_type, payload, memory_scope, occurred_at)
           VALUES (%(s)s, 'note', '{"speaker": "Priya", "text": "It has a bouldering wall."}', 'session',
                   '2023-06-01T09:31:30Z'),
                  (%(s)s, 'tool_call', '{"tool": "calendar"}', 'session', '2023-06-01T09:31:31Z'),
                  (%(s)s, 'note', '{"speaker": "Tom", "text": "Sounds fun."}', 'run', '2023-06-01T09:31:32Z')
           RETURNING id""", {"s": session}).fetchall()]
    queued = {(r["source_id"], r["op"]) for r in conn.execute(
        "SELECT source_id, op FROM memsync.outbox WHERE source_table = 'agent.events'")}
    # the note in a searchable scope alone, and the turn after it, which reads it as context;
    # the run-scoped note is not searchable, the tool call is not a turn
    assert queued == {(new[0], "insert"), (later["id"], "resync")}
    mirrored = {r["source_id"] for r in conn.execute(
        "SELECT source_id FROM memsync.mirror_queue WHERE mirror = 'probe' AND source_table = 'agent.events'")}
    assert mirrored == {new[0], new[2]}  # every note or decision, whatever its scope
    counting = Counting()
    drain(dsn, settings, counting)
    assert any(x.endswith("\n\nIt has a bouldering wall.") for x in counting.texts), counting.texts
    # the later turn re-embedded with the turn now before it (a note of any scope is context)
    assert any(x.endswith("\n\nTom: Sounds fun.\nTom: When does it start?") for x in counting.texts), counting.texts
    # turns appended after every turn of the session: queued as inserts, nothing resynced
    appended = [r["id"] for r in conn.execute(
        """INSERT INTO agent.events (session_id, event_type, payload, memory_scope, occurred_at)
           SELECT %s, 'note', jsonb_build_object('speaker', 'Tom', 'text', 'Later ' || g), 'session',
                  timestamptz '2023-06-01T09:40:00Z' + g * interval '1 minute' FROM generate_series(1, 3) g
           RETURNING id""", (session,)).fetchall()]
    assert {(r["source_id"], r["op"]) for r in conn.execute("SELECT source_id, op FROM memsync.outbox")} == {
        (a, "insert") for a in appended}
    drain(dsn, settings)
    with conn.transaction():
        conn.execute("SELECT set_config('memsync.origin', 'sync', true)")
        conn.execute("INSERT INTO agent.events (session_id, event_type, payload, memory_scope)"
                     " SELECT %s, 'note', '{\"text\": \"x\"}', 'session' FROM generate_series(1, 3)", (session,))
    assert conn.execute("SELECT count(*) AS n FROM memsync.outbox").fetchone() == {"n": 0}
