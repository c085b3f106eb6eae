"""Chat logs as agents write them (OpenAI's chat format, Anthropic's content blocks) read into
memsync's message convention: the text said or read, tool calls written out, markers for
parts with no text, and a malformed field named."""

from __future__ import annotations

import pytest

from memsync.write.chat import from_chat
from memsync.write.conversations import Message, _derived_id


def test_content_parts_become_the_turns_text_with_markers_for_what_has_none() -> None:
    m = from_chat({"role": "user", "name": "Priya", "content": [
        {"type": "text", "text": "What is on this receipt?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "file", "file": {"filename": "march.pdf", "file_data": "…"}},
        "and this line"]})
    assert m == {"role": "user", "speaker": "Priya",
                 "text": "What is on this receipt?\n[image]\n[file: march.pdf]\nand this line"}


def test_tool_calls_and_their_answers_are_searchable_text_and_kept_as_they_were() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    asked = from_chat({"role": "assistant", "content": None, "tool_calls": [call]})
    assert asked["text"] == 'called get_weather({"city": "Paris"})'
    assert asked["metadata"] == {"tool_calls": [call]}
    answered = from_chat({"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "18C"})
    assert answered == {"role": "tool", "text": "18C", "metadata": {"tool_call_id": "c1", "name": "get_weather"}}
    legacy = from_chat({"role": "assistant", "content": "Let me look.",
                        "function_call": {"name": "lookup", "arguments": "{}"}})
    assert legacy["text"] == "Let me look.\ncalled lookup({})"


def test_anthropic_blocks_reasoning_left_out() -> None:
    said = from_chat({"role": "assistant", "content": [
        {"type": "thinking", "thinking": "the user wants a note"},
        {"type": "text", "text": "Noted."},
        {"type": "tool_use", "id": "t1", "name": "note", "input": {"text": "pay rent", "due": 1}}]})
    assert said["text"] == 'Noted.\ncalled note({"due": 1, "text": "pay rent"})'
    result = from_chat({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "saved"}]}]})
    assert result["text"] == "saved"


def test_the_messages_own_fields_win() -> None:
    m = from_chat({"speaker": "Tom", "name": "tom_bot", "text": "hi", "timestamp": "2023-05-08",
                   "metadata": {"name": "mine"}})
    assert m == {"speaker": "Tom", "text": "hi", "at": "2023-05-08", "metadata": {"name": "mine"}}
    both = from_chat({"role": "user", "text": "a", "content": "b"})
    assert both["content"] == "b", "left for the model to refuse as a field too many"


@pytest.mark.parametrize(("message", "named"), [
    ({"role": "user", "content": 5}, "content: expected text"),
    ({"role": "user", "content": [{"type": "text", "text": 3}]}, "content.0.text: expected text"),
    ({"role": "user", "content": [7]}, "content.0: expected text or a content part"),
    ({"role": "user", "content": [{"text": "no type"}]}, "content.0.type"),
    ({"role": "assistant", "tool_calls": {"id": "x"}}, "tool_calls: expected a list"),
    ({"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}, "tool_calls.0: a tool call needs its name"),
    ({"role": "assistant", "refusal": 1}, "refusal: expected text"),
])
def test_a_malformed_field_is_named(message: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        from_chat(message)


def test_the_responses_apis_typed_items_are_turns_too() -> None:
    said = from_chat({"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]})
    assert said == {"id": "msg_1", "role": "assistant", "text": "Checking."}
    call = from_chat({"type": "function_call", "id": "fc_1", "call_id": "call_7", "name": "get_weather",
                      "arguments": '{"city": "Oslo"}', "status": "completed"})
    assert call["role"] == "assistant" and call["text"] == 'called get_weather({"city": "Oslo"})'
    assert call["metadata"]["tool_calls"][0]["id"] == "call_7" and call["id"] == "fc_1"
    answer = from_chat({"type": "function_call_output", "call_id": "call_7", "output": "snow, -3C"})
    assert answer == {"role": "tool", "text": "snow, -3C", "metadata": {"tool_call_id": "call_7"}}
    # the other tools' calls and answers, as the API and Codex's logs write them
    patch = from_chat({"type": "custom_tool_call", "id": "ctc_1", "call_id": "c2", "name": "apply_patch",
                       "input": "*** Begin Patch\n*** Update File: a.py\n*** End Patch", "status": "completed"})
    assert patch["text"].startswith("called apply_patch(*** Begin Patch") and patch["role"] == "assistant"
    assert from_chat({"type": "custom_tool_call_output", "call_id": "c2", "output": "Success. Updated a.py"}) == {
        "role": "tool", "text": "Success. Updated a.py", "metadata": {"tool_call_id": "c2"}}
    shell = from_chat({"type": "local_shell_call", "call_id": "c3", "status": "completed",
                       "action": {"type": "exec", "command": ["rg", "TODO"]}})
    assert shell["text"] == 'called local_shell({"command": ["rg", "TODO"], "type": "exec"})'
    searched = from_chat({"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "oslo"}})
    assert searched["text"] == 'called web_search({"query": "oslo", "type": "search"})'
    with pytest.raises(ValueError, match="'file_search_call' items are not conversation turns"):
        from_chat({"type": "file_search_call", "status": "completed"})


def test_a_tool_answer_longer_than_a_message_is_cut_with_a_marker_and_a_record() -> None:
    from memsync.vocabulary import MAX_TEXT

    page = "<p>row</p>" * 25_000  # a fetched page of 250,000 characters
    answered = from_chat({"role": "tool", "tool_call_id": "c1", "content": page})
    assert len(answered["text"]) <= MAX_TEXT and answered["text"].startswith("<p>row</p>")
    kept = answered["metadata"]["cut"]["kept"]
    assert answered["text"].endswith(f"[… {len(page) - kept:,} characters of tool output cut]")
    assert answered["metadata"]["cut"] == {"kept": kept, "of": len(page)}
    block = from_chat({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": page}]})
    assert len(block["text"]) <= MAX_TEXT and "cut" in block["metadata"]
    given = from_chat({"role": "tool", "text": page})  # the convention's own field: a tool's answer all the same
    assert len(given["text"]) <= MAX_TEXT and given["metadata"]["cut"]["of"] == len(page)
    # beside the results, the person's own text is kept whole; the results share what room it leaves
    note = "Summarise both; my note stands: the deadline is Friday."
    both = from_chat({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": page},
        {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "short answer"}]},
        {"type": "text", "text": note}]})
    assert len(both["text"]) == MAX_TEXT and both["text"].endswith("cut]\nshort answer\n" + note)
    assert both["metadata"]["cut"] == {"kept": MAX_TEXT - len("\n[… 150,117 characters of tool output cut]"),
                                       "of": len(page) + len("short answer") + len(note) + 2}
    two = from_chat({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{i}", "content": page}
                                                 for i in range(2)]})
    assert len(two["text"]) <= MAX_TEXT and two["text"].count("characters of tool output cut]") == 2
    assert (two["role"], two["metadata"]["tool_call_ids"]) == ("tool", ["t0", "t1"]), "the tool's words, not the user's"
    assert both["role"] == "user", "a person wrote beside the results"
    # what a person or the assistant said is never cut: it is refused, naming the field, later
    said = from_chat({"role": "user", "content": page})
    assert said["text"] == page and "metadata" not in said


def test_a_message_read_as_the_tools_keeps_the_id_it_was_given_as_the_users() -> None:
    """A message without an id gets one from its role and text; tool results sent back in a
    user message were the user's before they were read as the tool's: the id stays the same,
    so re-importing a file imported before adds nothing."""
    sent = Message.model_validate({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                                                "content": "drizzle, 14C"}]})
    before = Message.model_validate({"role": "user", "text": "drizzle, 14C"})
    assert sent.role == "tool" and _derived_id(3, sent) == _derived_id(3, before)


def test_anthropics_server_and_mcp_tool_blocks_are_calls_and_what_they_found() -> None:
    """A web search Claude ran itself and an MCP tool it called, as the Messages API writes
    them: written out as calls, their results as what was found (no bare markers)."""
    said = from_chat({"role": "assistant", "content": [
        {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"query": "lisbon tram 28"}},
        {"type": "web_search_tool_result", "tool_use_id": "s1", "content": [
            {"type": "web_search_result", "title": "Tram 28", "url": "https://x.pt/28", "encrypted_content": "z"}]},
        {"type": "web_search_tool_result", "tool_use_id": "s2", "content": {
            "type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}},
        {"type": "mcp_tool_use", "id": "m1", "name": "search_notes", "server_name": "notes", "input": {"q": "tram"}},
        {"type": "mcp_tool_result", "tool_use_id": "m1", "content": [{"type": "text", "text": "Tram 28 runs daily"}]},
        {"type": "text", "text": "Take tram 28."}]})
    assert said["text"] == (
        'called web_search({"query": "lisbon tram 28"})\nTram 28 (https://x.pt/28)\n'
        '[web search failed: max_uses_exceeded]\ncalled search_notes({"q": "tram"})\nTram 28 runs daily\nTake tram 28.')


def test_a_tool_call_longer_than_a_message_is_cut_and_what_was_said_beside_it_kept() -> None:
    """A coding agent writing a whole file calls its tool with the file as input: the call is
    the tool's input, not prose, so it is cut to fit (it failed the session), the words beside
    it kept whole, in Anthropic's blocks and in OpenAI's tool_calls alike."""
    from memsync.vocabulary import MAX_TEXT

    body = "x = 1\n" * 30_000  # a 180,000-character file
    words = "Writing the module now."
    block = from_chat({"role": "assistant", "content": [
        {"type": "text", "text": words},
        {"type": "tool_use", "id": "t1", "name": "Write", "input": {"file_path": "big.py", "content": body}}]})
    assert len(block["text"]) <= MAX_TEXT and block["text"].startswith(words + "\ncalled Write(")
    assert block["text"].endswith("characters of the call cut]") and block["metadata"]["cut"]["of"] > MAX_TEXT
    assert block["metadata"]["tool_calls"][0]["input"]["content"] == body, "Anthropic's block kept as it was"
    calls = from_chat({"role": "assistant", "content": words, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "write_file", "arguments": body}}]})
    assert len(calls["text"]) <= MAX_TEXT and calls["text"].startswith(words + "\ncalled write_file(x = 1")
    assert calls["metadata"]["tool_calls"][0]["function"]["arguments"] == body, "the call itself kept whole"
