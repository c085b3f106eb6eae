"""Chat apps' data exports (ChatGPT's and Claude's conversations.json) and coding agents'
session logs read as sessions of the message convention: the branch the app shows, in order,
with ids and times; what the app shows nowhere left out; parts with no text leave a marker."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest
from helpers import chatgpt_conversation, claude_code_log

from memsync.errors import MemsyncError
from memsync.vocabulary import MAX_TEXT
from memsync.write import exports
from memsync.write.chat import from_chat
from memsync.write.conversations import ImportedSession, read_session, sessions_of


def test_a_chatgpt_conversation_reads_as_its_shown_branch() -> None:
    [conv] = sessions_of([chatgpt_conversation()])
    s = exports.session_of(conv)
    assert s is not None and s["id"] == "c-1" and s["summary"] == "Climbing gym plans" and "started_at" not in s
    assert [(m["id"], m["role"], m["text"]) for m in s["messages"]] == [
        ("u1", "user", "I went to the climbing gym today.\n[image]"),
        ("a1", "assistant", "Nice! How did it go?"),
        ("code", "assistant", "called python(print(2 * 3))"),
        ("out", "tool", "6"),
        ("a2", "assistant", "Six routes, well done."),
    ]
    assert s["messages"][3]["name"] == "python" and s["messages"][0]["at"] == 1_683_554_170.0
    # without a current node: the last node with no children ends the branch
    conv = {**chatgpt_conversation(), "current_node": None}
    assert [m["id"] for m in exports.chatgpt_messages(conv)][-1] == "a2"
    # a file the person uploaded leaves its name (the export has no text of it)
    uploaded = chatgpt_conversation()
    uploaded["mapping"]["u1"]["message"]["metadata"] = {"attachments": [
        {"id": "file-1", "name": "route-map.pdf", "size": 1200, "mime_type": "application/pdf"}]}
    assert exports.chatgpt_messages(uploaded)[0]["text"] == (
        "I went to the climbing gym today.\n[image]\n[file: route-map.pdf]")
    # what the app no longer shows (the regenerated answer) is known only from a named current node
    assert exports.off_branch(chatgpt_conversation()) == {"a1-old"} and exports.off_branch(conv) == set()
    # a conversation with nothing said in it (only its hidden system message) is nothing to import
    empty = {"title": "New chat", "create_time": 1.7e9, "mapping": {"sys": chatgpt_conversation()["mapping"]["sys"]}}
    assert exports.session_of(empty) is None
    broken = chatgpt_conversation()
    broken["mapping"]["a2"]["message"]["content"] = "text"
    with pytest.raises(ValueError, match=r"mapping\.a2\.message\.content: expected an object"):
        exports.session_of(broken)


def test_a_claude_conversation_reads_its_messages_with_their_blocks() -> None:
    conv = {"uuid": "k-1", "name": "Trip", "created_at": "2024-05-01T09:00:00Z", "chat_messages": [
        {"uuid": "h1", "sender": "human", "text": "Plan Lisbon.", "content": [], "created_at": "2024-05-01T09:00:05Z",
         "attachments": [{"file_name": "itinerary.txt", "extracted_content": "Day 1: ..."}], "files": []},
        {"uuid": "b1", "sender": "assistant", "text": "", "created_at": "2024-05-01T09:00:09Z", "content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "tool_use", "name": "web_search", "input": {"query": "Lisbon trams"}},
            {"type": "tool_result", "name": "web_search", "content": [{"type": "text", "text": "Tram 28 runs daily."}]},
            {"type": "text", "text": "Take tram 28."}]},
        {"uuid": "b2", "sender": "assistant", "text": "", "content": [{"type": "thinking", "thinking": "only this"}],
         "created_at": "2024-05-01T09:00:10Z"}]}
    [raw] = sessions_of(conv)
    s = exports.session_of(raw)
    assert s is not None and (s["id"], s["summary"]) == ("k-1", "Trip")
    assert [(m["id"], m["role"], m["at"]) for m in s["messages"]] == [
        ("h1", "user", "2024-05-01T09:00:05Z"), ("b1", "assistant", "2024-05-01T09:00:09Z")]
    assert from_chat(s["messages"][0])["text"] == "Plan Lisbon.\n[file: itinerary.txt]\nDay 1: ..."
    assert from_chat(s["messages"][1])["text"] == (
        'called web_search({"query": "Lisbon trams"})\nTram 28 runs daily.\nTake tram 28.')
    assert exports.session_of({"uuid": "k-2", "name": "", "chat_messages": []}) is None
    # a long paste (an attachment with its text): in the person's turn, cut to fit beside what
    # they wrote, which is kept whole; an image leaves its name
    note = "Which clause lets me leave early? " * 50
    conv["chat_messages"][0].update({"content": [{"type": "text", "text": note}], "files": [{"file_name": "a.png"}],
                                     "attachments": [{"file_name": "", "extracted_content": "Rent is due monthly. " * 9000},
                                                     {"file_name": "memo.txt", "extracted_content": "Short memo."}]})
    said = from_chat(exports.claude_messages(conv)[0])
    assert len(said["text"]) <= MAX_TEXT and said["text"].startswith(note + "\n[file]\nRent is due monthly.")
    assert said["text"].endswith("characters of the file cut]\n[file: memo.txt]\nShort memo.\n[file: a.png]")
    assert said["metadata"]["cut"]["of"] == len(note) + len("\n[file]\n") + 21 * 9000 + len(
        "\n[file: memo.txt]\nShort memo.\n[file: a.png]")


def test_a_coding_agents_session_log_reads_as_its_session() -> None:
    [s] = sessions_of(claude_code_log())
    assert (s["id"], s["summary"]) == ("s-1", "Fix the flaky upload test")
    assert [(m["id"], m["role"], m["at"]) for m in s["messages"]] == [
        ("e1", "user", "2025-03-02T10:00:01Z"), ("e3", "assistant", "2025-03-02T10:00:05Z"),
        ("e4", "user", "2025-03-02T10:00:06Z"), ("e5", "assistant", "2025-03-02T10:00:09Z")]
    # a subagent's chat (a sidechain: its "user" is the agent that called it) is not the session's
    helper = {**claude_code_log()[3], "uuid": "sc1", "isSidechain": True,
              "message": {"role": "user", "content": "Search the repo for sleep() calls."}}
    [s] = sessions_of([*claude_code_log(), helper])
    assert "sc1" not in {m["id"] for m in s["messages"]} and len(s["messages"]) == 4
    # a project's logs read together: one session per session id, each with its own summary
    other = [{**x, "sessionId": "s-2", "uuid": f"2{x['uuid']}"} for x in claude_code_log() if "uuid" in x]
    assert [(x["id"], len(x["messages"]), x.get("summary")) for x in sessions_of([*claude_code_log(), *other])] == [
        ("s-1", 4, "Fix the flaky upload test"), ("s-2", 4, None)]
    codex = [
        {"timestamp": "2025-03-03T08:00:00Z", "type": "session_meta", "payload": {"id": "cx-7", "cwd": "/work"}},
        {"timestamp": "2025-03-03T08:00:01Z", "type": "response_item", "payload": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the TODOs."}]}},
        {"timestamp": "2025-03-03T08:00:01Z", "type": "event_msg", "payload": {"type": "user_message",
                                                                              "message": "List the TODOs."}},
        {"timestamp": "2025-03-03T08:00:02Z", "type": "response_item", "payload": {"type": "reasoning", "summary": []}},
        {"timestamp": "2025-03-03T08:00:03Z", "type": "response_item", "payload": {
            "type": "function_call", "name": "shell", "arguments": '{"command": ["rg", "TODO"]}', "call_id": "c1"}},
        {"timestamp": "2025-03-03T08:00:04Z", "type": "response_item", "payload": {
            "type": "function_call_output", "call_id": "c1", "output": "src/a.py:3: TODO retry"}},
    ]
    # what Codex writes into the log as the user's but is context it gives the model
    codex[1:1] = [{"timestamp": "2025-03-03T08:00:00Z", "type": "response_item", "payload": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}} for text in (
            "<user_instructions>\nUse rg, not grep.\n</user_instructions>",
            "<environment_context>\n  <cwd>/work</cwd>\n  <shell>bash</shell>\n</environment_context>")]
    # the tools Codex calls besides functions (a patch, the shell), and its own bookkeeping items
    codex += [
        {"timestamp": "2025-03-03T08:00:05Z", "type": "response_item", "payload": {
            "type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"}},
        {"timestamp": "2025-03-03T08:00:06Z", "type": "response_item", "payload": {
            "type": "custom_tool_call_output", "call_id": "c2", "output": "Success."}},
        {"timestamp": "2025-03-03T08:00:06Z", "type": "response_item", "payload": {
            "type": "ghost_snapshot", "ghost_commit": {"id": "abc"}}},
        {"timestamp": "2025-03-03T08:00:07Z", "type": "response_item", "payload": {
            "type": "compaction", "encrypted_content": "..."}}]
    [c] = sessions_of(codex)
    assert c["id"] == "cx-7" and [m["type"] for m in c["messages"]] == [
        "message", "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output"]
    read = read_session(0, c)
    assert isinstance(read, ImportedSession) and read.messages[3].text == "called apply_patch(*** Begin Patch)"
    # a slash command's bookkeeping in Claude Code's log, beside a person who writes a tag
    command = {**claude_code_log()[3], "uuid": "cmd", "message": {"role": "user", "content": (
        "<command-name>/clear</command-name>\n<command-message>clear</command-message>\n<command-args></command-args>")}}
    tagged = {**claude_code_log()[3], "uuid": "tag", "message": {"role": "user", "content": "Why is <main> empty?"}}
    pasted = {**claude_code_log()[3], "uuid": "xml", "message": {"role": "user", "content": (
        "<dependency><artifactId>junit</artifactId></dependency>")}}  # a person's own XML, whole
    [s] = sessions_of([*claude_code_log(), command, tagged, pasted])
    assert [m["id"] for m in s["messages"]][-2:] == ["tag", "xml"] and "cmd" not in {m["id"] for m in s["messages"]}
    assert c["messages"][0]["at"] == "2025-03-03T08:00:01Z"
    with pytest.raises(ValueError, match="line 2: not JSON"):
        exports.json_lines('{"type": "summary"}\n{broken\n')
    # a live log read mid-write: its unfinished last line is left for the next import, not failed
    assert exports.json_lines('{"a": 1}\n{"b": 2}\n{"c": 3, "d') == ([{"a": 1}, {"b": 2}], 3)
    assert exports.json_lines('{"a": 1}\n{"b": 2}') == ([{"a": 1}, {"b": 2}], None)
    with pytest.raises(ValueError, match="line 2: not JSON"):  # broken mid-file stays broken
        exports.json_lines('{"a": 1}\n{"b": \n{"c": 3}')


def test_an_odd_export_reads_what_it_can_and_never_loops() -> None:
    """A cycle in the tree, a current node that is not there, nodes without messages, parts of
    unknown kinds: the branch is read once, unknown parts leave markers, nothing raises."""
    t = 1_700_000_000.0
    mapping: dict[str, Any] = {
        "a": {"id": "a", "parent": "c", "children": ["b"], "message": None},
        "b": {"id": "b", "parent": "a", "children": ["c"], "message": {
            "id": "b", "author": {"role": "user"}, "create_time": t,
            "content": {"content_type": "multimodal_text", "parts": [None, "Look", {"asset": 1},
                                                                     {"content_type": "audio_transcription",
                                                                      "text": "said aloud"}]}}},
        "c": {"id": "c", "parent": "b", "children": [], "message": {
            "id": "c", "author": {"role": "assistant"}, "create_time": t + 1,
            "content": {"content_type": "tether_quote", "title": "Docs", "url": "https://x", "text": "A quote"}}},
        "d": "not a node",
    }
    s = exports.session_of({"title": None, "create_time": t, "current_node": "gone", "mapping": mapping})
    assert s is not None and "summary" not in s and "id" not in s
    assert [m["text"] for m in s["messages"]] == ["Look\n[attachment]\nsaid aloud", "Docs\nA quote"]
    assert s["messages"][0]["at"] == t and "started_at" not in s, "the turns' own times span the session"


CLAUDE = {"uuid": "c-1", "name": "Trip", "created_at": "2025-01-02T10:00:00Z", "chat_messages": [
    {"uuid": "u1", "sender": "human", "text": "Book Lisbon", "created_at": "2025-01-02T10:00:01Z",
     "content": [{"type": "text", "text": "Book Lisbon"}], "attachments": [{"file_name": "a.pdf", "extracted_content": "x"}],
     "files": [{"file_name": "b.png"}]},
    {"uuid": "u2", "sender": "assistant", "created_at": "2025-01-02T10:00:05Z", "content": [
        {"type": "thinking", "thinking": "hm"}, {"type": "tool_use", "name": "search", "input": {"q": "x"}},
        {"type": "tool_result", "content": [{"type": "text", "text": "ok"}]}, {"type": "text", "text": "Done"}]}]}
CODEX = [
    {"timestamp": "2025-03-03T08:00:00Z", "type": "session_meta", "payload": {"id": "cx-7"}},
    {"timestamp": "2025-03-03T08:00:01Z", "type": "response_item", "payload": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "find TODOs"}]}},
    {"timestamp": "2025-03-03T08:00:03Z", "type": "response_item", "payload": {
        "type": "function_call", "name": "shell", "arguments": '{"command": ["rg"]}', "call_id": "c1"}},
    {"timestamp": "2025-03-03T08:00:04Z", "type": "response_item", "payload": {
        "type": "function_call_output", "call_id": "c1", "output": "a"}}]
OWN = {"sessions": [{"id": "s1", "date": "2023-05-08T14:00:00Z", "summary": "x", "messages": [
    {"speaker": "Priya", "text": "hi", "at": "2023-05-08T14:00:05Z", "id": "m1"},
    {"role": "user", "name": "Tom", "content": [{"type": "text", "text": "a"}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c", "content": "r"}]}]}
RESPONSES = {"model": "m", "instructions": "be kind", "input": [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    {"type": "reasoning", "summary": []}]}
ODD = [None, 7, -1, 1e300, float("nan"), True, "", "x", "9999-12-31T00:00:00Z", "\x00", [], [None], {}, {"a": None}]


def _paths(x: Any, at: tuple[Any, ...] = ()) -> Any:
    yield at
    for k, v in (x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()):
        yield from _paths(v, (*at, k))


def _with(x: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    y = copy.deepcopy(x)
    into = y
    for k in at[:-1]:
        into = into[k]
    if value is KeyError:
        del into[at[-1]]
    else:
        into[at[-1]] = value
    return y


@pytest.mark.parametrize("sample", [[chatgpt_conversation()], [CLAUDE], claude_code_log(), CODEX, OWN, RESPONSES],
                         ids=["chatgpt", "claude", "claude-code", "codex", "own", "responses-request"])
def test_a_broken_file_of_any_shape_gets_a_named_error_never_an_exception(sample: Any) -> None:
    """Every field of a real file's shape replaced by a value of another kind (or left out):
    reading it gives sessions or a named error for the file or its session, never an
    exception a user would see as a traceback (a list where a type was, attachments as a
    number, once raised TypeError)."""
    now = datetime.now(timezone.utc)
    for at in _paths(sample):
        for value in [*ODD, *([KeyError] if at else [])]:
            broken = _with(sample, at, value)
            try:
                sessions = sessions_of(broken)
            except MemsyncError:
                continue
            for i, data in enumerate(sessions):
                try:
                    s = read_session(i, data)
                    if isinstance(s, ImportedSession):
                        s.span(now)
                        assert all(isinstance(m.said, bool) for m in s.messages)
                    else:
                        assert s.empty or (s.error or "").startswith(f"session {i}: ")
                except Exception as exc:  # any exception here is the bug
                    pytest.fail(f"{'.'.join(map(str, at))} = {value!r}: {type(exc).__name__}: {exc}")
