"""Chat messages as agents' logs write them, mapped onto memsync's message convention (`text`,
`speaker` or `role`, `metadata`). OpenAI's chat format: `content` as text, as a list of parts
or null beside `tool_calls`; `name` for the participant; `role: "tool"` answers with their
`tool_call_id`. OpenAI's Responses API items: `message`, `function_call`,
`function_call_output`. Anthropic's content blocks: `text`, `tool_use`, `tool_result`. Tool
calls are written out in the text so a later question finds them; a part memsync keeps no text
for (an image, a file) leaves a marker, so a turn never silently loses what it carried. A tool's
answer longer than a message may be (a fetched page, a file read whole) is cut to it with a
marker saying how much was left out, so one large tool output does not fail its session. Pure:
raises ValueError naming the field."""

from __future__ import annotations

import json
from typing import Any

from memsync.vocabulary import MAX_TEXT

TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
MARKERS = {"image_url": "image", "image": "image", "input_image": "image", "input_audio": "audio",
           "audio": "audio", "file": "file", "input_file": "file", "document": "file"}
# the model's own reasoning is not what was said in the conversation
UNSAID = frozenset({"thinking", "redacted_thinking", "reasoning"})
TOOL_ROLES = frozenset({"tool", "function"})  # their `name` is the tool's, not a speaker's


def type_of(value: Any) -> str | None:
    """A part's or item's `type` when it is text; None for anything else (a list, an object: a
    broken file, which then fails as what it is, named), so `type_of(p) in KINDS` never raises."""
    t = value.get("type") if isinstance(value, dict) else None
    return t if isinstance(t, str) else None


def from_chat(data: dict[str, Any]) -> dict[str, Any]:
    """A message in a chat export's shape as the convention's fields: `content` (text, parts
    or null), `tool_calls` / `function_call`, `refusal`, `name`, `tool_call_id` and
    `timestamp` read; the message's own `text`, `speaker`, `at` and `metadata` win."""
    out = dict(data)
    _item(out)
    meta: dict[str, Any] = {}
    lines: list[str] = []
    content: Any = None
    if "content" in out and "text" not in out:  # both: the model names the one too many
        content = out.pop("content")
        lines.append(content_text(content, "content"))
        if _answers_only(content) and out.get("role") == "user" and "speaker" not in out and "name" not in out:
            # Anthropic's format returns tool results in a user message: the tool said them,
            # not the person ("what did I say about the test?" must not find a file's text)
            out["role"], meta["role_in_file"] = "tool", "user"  # the file's role derives its id
            ids = [p["tool_use_id"] for p in content if isinstance(p.get("tool_use_id"), str)]
            if ids:
                meta.update({"tool_call_id": ids[0]} if len(ids) == 1 else {"tool_call_ids": ids})
    refusal = out.pop("refusal", None)
    if refusal is not None:
        if not isinstance(refusal, str):
            raise ValueError("refusal: expected text")
        lines.append(refusal)
    calls = _calls(out)
    blocks = [p for p in content if type_of(p) in CALL_PARTS] if isinstance(content, list) else []
    if calls or blocks:  # kept as they were: Anthropic's blocks where its format has no tool_calls
        meta["tool_calls"] = [*calls, *blocks]
    called = [call_text(c, f"tool_calls.{i}") for i, c in enumerate(calls)]
    lines.extend(called)
    if "tool_call_id" in out:
        meta["tool_call_id"] = out.pop("tool_call_id")
    name = out.pop("name", None)
    if name is not None:
        if str(out.get("role", "")).lower() in TOOL_ROLES or out.get("speaker") is not None:
            meta["name"] = name
        else:
            out["speaker"] = name
    if "text" not in out and (lines or "content" in data or refusal is not None):
        out["text"] = "\n".join(x for x in lines if x)
    if isinstance(out.get("text"), str) and len(out["text"]) > MAX_TEXT:
        pieces = [*_pieces(content), (refusal or "", None), *((c, CALL_CUT) for c in called)]
        if any(marker for _, marker in pieces):  # tools' inputs and answers share what the words leave
            out["text"], meta["cut"] = tools_cut(pieces, MAX_TEXT)
        elif str(out.get("role", "")).lower() in TOOL_ROLES:  # all of it is the tool's answer
            out["text"], meta["cut"] = cut(out["text"])
    if "timestamp" in out and "at" not in out:
        out["at"] = out.pop("timestamp")
    if meta:
        given = out.get("metadata")
        out["metadata"] = {**meta, **given} if isinstance(given, dict) else meta if given is None else given
    return out


def _answers_only(content: Any) -> bool:
    """Content made of tool results alone (Anthropic's user message carrying them back), with
    nothing a person wrote beside them."""
    return isinstance(content, list) and bool(content) and all(
        isinstance(p, dict) and p.get("type") == "tool_result" for p in content)


CUT_MARKER = "\n[… {:,} characters of tool output cut]"
CALL_CUT = "\n[… {:,} characters of the call cut]"
# content parts that are a tool's answer, and those that call one (Anthropic's blocks)
RESULT_PARTS = frozenset({"tool_result", "mcp_tool_result", "web_search_tool_result"})
CALL_PARTS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


def cut(text: str, limit: int = MAX_TEXT, marker: str = CUT_MARKER) -> tuple[str, dict[str, int]]:
    """`text` cut to `limit` characters, its end a marker of what was left out, and that count
    for the message's metadata. A limit shorter than the marker keeps the marker alone."""
    keep = max(0, limit - len(marker.format(len(text))))
    return text[:keep] + marker.format(len(text) - keep), {"kept": keep, "of": len(text)}


def fit(pieces: list[str], room: int, marker: str | list[str] = CUT_MARKER) -> tuple[list[str], int]:
    """The pieces cut so that together they take at most `room` characters, the room shared:
    a short piece keeps all of its text and leaves the rest of its share to the longer ones,
    each one cut ending with `marker` (one for all, or one a piece). Returns the pieces and
    how many characters went."""
    out, left, dropped = list(pieces), room, 0
    markers = marker if isinstance(marker, list) else [marker] * len(out)
    order = sorted(range(len(out)), key=lambda i: len(out[i]))
    for n, i in enumerate(order):
        share = left // (len(order) - n)
        if len(out[i]) > share:
            out[i], record = cut(out[i], share, markers[i])
            dropped += record["of"] - record["kept"]
        left -= len(out[i])
    return out, dropped


def _pieces(content: Any) -> list[tuple[str, str | None]]:
    """Content's parts as text, each with the marker it is cut with, or None: what was said
    (text, a refusal) is never cut; a tool's input (a call) and its answer (a result) are."""
    if not isinstance(content, list):
        return [(content_text(content, "content"), None)]
    out = []
    for i, p in enumerate(content):
        t = type_of(p)
        marker = CUT_MARKER if t in RESULT_PARTS else CALL_CUT if t in CALL_PARTS else None
        out.append((part_text(p, f"content.{i}"), marker))
    return out


def tools_cut(pieces: list[tuple[str, str | None]], room: int) -> tuple[str, dict[str, int]]:
    """The message's text from its pieces (text, marker), the cuttable ones (a tool's input or
    answer) cut so the whole takes `room` characters: the others are kept whole, and the
    room they leave is shared among the cuttable ones (fit). Too little room (the words
    alone are too long) leaves the message too long, refused by the model naming it."""
    kept = [(t, m) for t, m in pieces if t]
    whole = len("\n".join(t for t, _ in kept))
    cuttable = [i for i, (_, m) in enumerate(kept) if m]
    left = room - (sum(len(t) for t, m in kept if not m) + len(kept) - 1)
    cut_to, dropped = fit([kept[i][0] for i in cuttable], left, [kept[i][1] or CUT_MARKER for i in cuttable])
    texts = [t for t, _ in kept]
    for i, piece in zip(cuttable, cut_to, strict=True):
        texts[i] = piece
    return "\n".join(texts), {"kept": whole - dropped, "of": whole}


# The Responses API's items that call a tool (as OpenAI's API and Codex's logs write them),
# with the tool's name where the item names none, and those that carry a tool's answer.
CALL_ITEMS: dict[str, str | None] = {"function_call": None, "custom_tool_call": None,
                                      "local_shell_call": "local_shell", "web_search_call": "web_search"}
OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output", "local_shell_call_output"})
ITEMS = frozenset({"message", *CALL_ITEMS, *OUTPUT_ITEMS})  # what _item reads


def _item(out: dict[str, Any]) -> None:
    """OpenAI's Responses API writes a conversation as typed items: a message, a function call,
    its output. Rewritten in place as the chat format's message, assistant call or tool answer."""
    if "type" not in out:
        return
    kind = out.pop("type")
    out.pop("status", None)  # 'completed': the item's state in the API, not part of what was said
    if not isinstance(kind, str):
        raise ValueError("type: expected the item's type as text")
    if kind == "message":
        return
    if kind in CALL_ITEMS:
        out.setdefault("role", "assistant")
        name, args = CALL_ITEMS[kind], out.pop("action", None)  # a shell or web search call: its action
        if name is None:
            name, args = out.pop("name", None), out.pop("arguments", out.pop("input", None))
        call = {"type": "function", "function": {"name": name, "arguments": args}}
        if "call_id" in out:
            call["id"] = out.pop("call_id")
        out["tool_calls"] = [call]
    elif kind in OUTPUT_ITEMS:
        out.setdefault("role", "tool")
        if "call_id" in out:
            out["tool_call_id"] = out.pop("call_id")
        out["content"] = out.pop("output", None)
    else:
        raise ValueError(f"type: {str(kind)[:40]!r} items are not conversation turns (a message, a tool call "
                         "or its output is, a reasoning item is left out; leave the others out)")


def schema(schema: dict[str, Any]) -> None:
    """A message model's JSON schema with the chat fields it reads, so a client that checks
    arguments against the schema sends them: `text` is then one way among several to say it."""
    schema["properties"].update({
        "content": {"description": "the text as chat logs write it: text, a list of parts, or null",
                    "anyOf": [{"type": "string"}, {"type": "array", "items": {}}, {"type": "null"}]},
        "name": {"type": "string", "description": "the participant's name (a tool's, for role tool)"},
        "tool_calls": {"type": "array", "items": {"type": "object"},
                       "description": "the calls an assistant made: written out in the text, kept in metadata"},
        "tool_call_id": {"type": "string", "description": "the call a tool message answers"},
        "refusal": {"type": "string"},
        "timestamp": {"description": "when it was said (as `at`)"},
        "type": {"type": "string", "description": "a Responses API item: message, function_call, function_call_output "
                                                   "(a reasoning item is left out)"},
        "call_id": {"type": "string"}, "arguments": {"type": "string"}, "output": {}, "status": {"type": "string"},
        "summary": {}, "encrypted_content": {"type": "string"},  # a reasoning item's, which is left out
    })
    schema["required"] = [r for r in schema.get("required", []) if r != "text"]


def content_text(content: Any, where: str) -> str:
    """A message's content as text: itself, its parts joined by lines, or '' for null."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ValueError(f"{where}: expected text, a list of content parts or null")
    return "\n".join(x for x in (part_text(p, f"{where}.{i}") for i, p in enumerate(content)) if x)


def part_text(part: Any, where: str) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        raise ValueError(f"{where}: expected text or a content part (an object with a type)")
    kind = part.get("type")
    if not isinstance(kind, str):
        raise ValueError(f"{where}.type: expected the part's type as text")
    if kind in TEXT_PARTS:
        return _text(part, "text", where)
    if kind == "refusal":
        return _text(part, "refusal", where)
    if kind in CALL_PARTS:  # Anthropic's tool_use, its own tools' and MCP's too
        return call_text(part, where)
    if kind == "web_search_tool_result":
        return _found(part.get("content"))
    if kind in RESULT_PARTS:
        return content_text(part.get("content"), f"{where}.content")
    if kind in UNSAID:
        return ""
    marker = MARKERS.get(kind, kind)
    nested = part.get(kind)
    inner: dict[str, Any] = nested if isinstance(nested, dict) else part
    name = inner.get("filename") or inner.get("title") or inner.get("name")
    return f"[{marker}: {name}]" if isinstance(name, str) and name.strip() else f"[{marker}]"


def _found(content: Any) -> str:
    """A web search's results (Anthropic's web_search_tool_result) as what was found: one
    line a result, its title and address; an error as its code."""
    if isinstance(content, dict):
        return f"[web search failed: {content.get('error_code', 'error')}]"
    lines = [f"{r.get('title') or ''} ({r.get('url')})".strip() for r in content if isinstance(r, dict)] \
        if isinstance(content, list) else []
    return "\n".join(line for line in lines if line != "(None)")


def call_text(call: Any, where: str) -> str:
    """A tool call written out: `called get_weather({"city": "Paris"})`. OpenAI's
    {function: {name, arguments}} (arguments a JSON string), its older {name, arguments},
    Anthropic's {name, input}."""
    if not isinstance(call, dict):
        raise ValueError(f"{where}: expected a tool call object")
    nested = call.get("function")
    fn: dict[str, Any] = nested if isinstance(nested, dict) else call
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: a tool call needs its name")
    args = fn.get("arguments", fn.get("input"))
    if args is None:
        return f"called {name}()"
    if not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False, sort_keys=True)
    return f"called {name}({args})"


def _calls(out: dict[str, Any]) -> list[Any]:
    calls = out.pop("tool_calls", None)
    legacy = out.pop("function_call", None)
    if calls is not None and not isinstance(calls, list):
        raise ValueError("tool_calls: expected a list of tool calls")
    return [*(calls or []), *([legacy] if legacy is not None else [])]


def _text(part: dict[str, Any], key: str, where: str) -> str:
    value = part.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key}: expected text")
    return value
