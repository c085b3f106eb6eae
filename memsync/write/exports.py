"""Chat apps' data exports and coding agents' session logs read as sessions of the message
convention: ChatGPT's `conversations.json` (each conversation a tree of messages, `mapping`,
whose shown branch ends at `current_node`), Claude's (each conversation with its
`chat_messages`), and the JSON Lines logs Claude Code and Codex CLI keep of each session. A
conversation becomes one session: its id, its title as the session's summary, its messages with
their ids and times, so a later, longer export or log adds only the new turns. What the app shows nowhere (hidden
system messages, custom instructions, the model's thoughts) is left out; a part with no text (an
image, an attached file) leaves a marker, as in memsync.write.chat. Pure: raises ValueError
naming the field."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from memsync.vocabulary import MAX_TEXT
from memsync.write import chat

# ChatGPT content types that are not turns of the conversation: the user's standing
# instructions and the model's reasoning
CHATGPT_UNSAID = frozenset({"user_editable_context", "model_editable_context", "thoughts", "reasoning_recap"})
CHATGPT_MARKERS = {"image_asset_pointer": "image", "audio_asset_pointer": "audio",
                   "real_time_user_audio_video_asset_pointer": "audio", "file_asset_pointer": "file"}
CLAUDE_ROLES = {"human": "user", "assistant": "assistant"}


def is_chatgpt(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("mapping"), dict)


def is_claude(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("chat_messages"), list)


def session_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """One exported conversation as a session, or None when nothing was said in it (an export
    also lists chats that were opened and never written in)."""
    messages = chatgpt_messages(data) if is_chatgpt(data) else claude_messages(data)
    if not messages:
        return None
    out: dict[str, Any] = {"messages": messages}
    cid = conversation_id(data)
    if cid:
        out["id"] = cid
    title = data.get("title") if is_chatgpt(data) else data.get("name")
    if isinstance(title, str) and title.strip():
        out["summary"] = title
    if not any("at" in m for m in messages):  # else the session spans its messages' own times
        created = data.get("create_time", data.get("created_at"))
        if created is not None:
            out["started_at"] = created
    return out


def conversation_id(data: Mapping[str, Any]) -> str | None:
    """An exported conversation's own id (ChatGPT's conversation_id or id, Claude's uuid)."""
    cid = data.get("conversation_id") or data.get("id") or data.get("uuid")
    return cid if isinstance(cid, str) and cid.strip() else None


# ------------------------------------------------------------------ ChatGPT


def chatgpt_messages(conv: dict[str, Any]) -> list[dict[str, Any]]:
    """The shown branch's messages, first to last, as chat-shaped messages."""
    mapping: dict[str, Any] = conv["mapping"]
    out = []
    for node_id in branch(mapping, conv.get("current_node")):
        node = mapping[node_id]
        message = node.get("message") if isinstance(node, dict) else None
        if isinstance(message, dict):
            m = chatgpt_message(message, f"mapping.{node_id}.message", node_id)
            if m is not None:
                out.append(m)
    return out


def off_branch(conv: Mapping[str, Any]) -> set[str]:
    """The ids of a ChatGPT conversation's messages the app no longer shows: an edited
    message's earlier version and the turns that followed it, an answer regenerated. Only
    when the export names its current node: the shown branch is then known, not guessed."""
    mapping, current = conv.get("mapping"), conv.get("current_node")
    if not is_chatgpt(conv) or not isinstance(mapping, dict) or not isinstance(current, str) or current not in mapping:
        return set()
    shown = set(branch(mapping, current))
    return {message_id(node["message"], node_id) for node_id, node in mapping.items()
            if node_id not in shown and isinstance(node, dict) and isinstance(node.get("message"), dict)}


def message_id(m: Mapping[str, Any], node_id: str) -> str:
    """A ChatGPT message's id: its own, else its node's."""
    return m["id"] if isinstance(m.get("id"), str) else node_id


def branch(mapping: dict[str, Any], leaf: Any) -> list[str]:
    """The node ids from the root to `leaf` (the conversation's current node; without one, the
    last node that has no children). A message edited in the app forks the tree: the branch
    shown is the one the export names."""
    if not isinstance(leaf, str) or leaf not in mapping:
        ends = [k for k, n in mapping.items() if isinstance(n, dict) and not n.get("children")]
        leaf = ends[-1] if ends else None
    chain: list[str] = []
    while isinstance(leaf, str) and leaf in mapping and leaf not in chain:
        chain.append(leaf)
        node = mapping[leaf]
        leaf = node.get("parent") if isinstance(node, dict) else None
    return chain[::-1]


def chatgpt_message(m: dict[str, Any], where: str, node_id: str) -> dict[str, Any] | None:
    meta = _obj(m.get("metadata"))
    if meta.get("is_visually_hidden_from_conversation"):
        return None
    content = m.get("content")
    if not isinstance(content, dict):
        raise ValueError(f"{where}.content: expected an object with a content_type")
    if isinstance(content.get("content_type"), str) and content["content_type"] in CHATGPT_UNSAID:
        return None
    text = chatgpt_text(content, f"{where}.content")
    # a file the person uploaded: its name (the export holds no text of it), so "the report
    # I sent" finds the turn
    files = [f"[file: {a['name'].strip()}]" for a in _list(meta.get("attachments"))
             if isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"].strip()]
    text = "\n".join(x for x in [text, *files] if x.strip())
    if not text.strip():  # the empty system message every conversation starts with
        return None
    author = _obj(m.get("author"))
    role = author.get("role") if isinstance(author.get("role"), str) else "unknown"
    recipient = m.get("recipient")
    if role == "assistant" and isinstance(recipient, str) and recipient not in ("all", ""):
        text = chat.call_text({"name": recipient, "arguments": text}, where)  # code sent to a tool
    out: dict[str, Any] = {"id": message_id(m, node_id), "role": role, "text": text}
    if isinstance(author.get("name"), str) and author["name"]:
        out["name"] = author["name"]  # a tool's name ('python', 'browser'), kept in metadata
    when = m.get("create_time")
    if when is not None:
        out["at"] = when
    return out


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def chatgpt_text(content: dict[str, Any], where: str) -> str:
    """A message's content as text: its parts (text, or a marker for an image or audio; a spoken
    message's transcript), else the text of code, a tool's output or a quote."""
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n".join(x for x in (_part(p, f"{where}.parts.{i}") for i, p in enumerate(parts)) if x)
    lines = [content.get(k) for k in ("title", "text", "result")]
    return "\n".join(x for x in lines if isinstance(x, str) and x)


def _part(part: Any, where: str) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    kind = part.get("content_type")
    if isinstance(part.get("text"), str):  # a spoken message's transcript
        return str(part["text"])
    marker = CHATGPT_MARKERS.get(kind, kind) if isinstance(kind, str) else "attachment"
    return f"[{marker}]"


# ------------------------------------------------------------------ Claude


def claude_messages(conv: dict[str, Any]) -> list[dict[str, Any]]:
    """Its chat_messages as chat-shaped messages: the content blocks when there are any (text,
    tool use and results, thinking left out), else the message's text; an attached file leaves
    its name and the text Claude extracted from it (attached)."""
    out = []
    for i, m in enumerate(conv["chat_messages"]):
        where = f"chat_messages.{i}"
        if not isinstance(m, dict):
            raise ValueError(f"{where}: expected a message object")
        sender = m.get("sender")
        content = m.get("content")
        parts: list[Any] = list(content) if isinstance(content, list) and content else []
        if not parts and isinstance(m.get("text"), str):
            parts = [{"type": "text", "text": m["text"]}]
        files, record = attached(parts, [*_list(m.get("attachments")), *_list(m.get("files"))], where)
        if files:
            parts.append({"type": "text", "text": files})
        msg: dict[str, Any] = {"role": CLAUDE_ROLES.get(sender, sender) if isinstance(sender, str) else sender,
                               "content": parts}
        if record:
            msg["metadata"] = {"cut": record}
        if _blank(msg):
            continue  # only thinking, or nothing
        if isinstance(m.get("uuid"), str):
            msg["id"] = m["uuid"]
        if m.get("created_at") is not None:
            msg["at"] = m["created_at"]
        out.append(msg)
    return out


FILE_CUT = "\n[… {:,} characters of the file cut]"


def attached(parts: list[Any], files: list[Any], where: str) -> tuple[str, dict[str, int] | None]:
    """A message's attached files as text: '[file: name]' and the text Claude extracted from
    it (a long paste is an attachment too: what the person shared, in their turn), or the
    marker alone for a file without text (an image). Together with what the message says
    they fit a message (MAX_TEXT): the files share the room its own text leaves, each
    cut with a marker (chat.tools_cut); the record says how much was kept (None when
    nothing was cut)."""
    pieces: list[tuple[str, str | None]] = []
    for f in files:
        name = f.get("file_name") if isinstance(f, dict) else None
        body = f.get("extracted_content") if isinstance(f, dict) else None
        pieces += [(f"[file: {name}]" if isinstance(name, str) and name else "[file]", None),
                   (body if isinstance(body, str) and body.strip() else "", FILE_CUT)]
    whole = "\n".join(t for t, _ in pieces if t)
    if not any(t for t, m in pieces if m):
        return whole, None
    said = chat.content_text(parts, f"{where}.content") if parts else ""
    if len(said) + bool(said) + len(whole) <= MAX_TEXT:
        return whole, None
    text, record = chat.tools_cut([(said, None), *pieces], MAX_TEXT)
    return text[len(said) + 1:] if said else text, record  # what was said is never cut: its prefix stands


# ------------------------------------------------------------------ agents' session logs


def is_agent_log(data: Any) -> bool:
    """Entries of a coding agent's session log (a .jsonl file read line by line): Claude Code's
    (`sessionId`, `type`, `message`) or Codex CLI's (`type: response_item` with its `payload`)."""
    return (isinstance(data, list) and bool(data) and all(isinstance(x, dict) and "type" in x for x in data)
            and any(_claude_code(x) or _codex(x) for x in data))


def _claude_code(x: dict[str, Any]) -> bool:
    return "sessionId" in x and isinstance(x.get("message"), dict)


def _codex(x: dict[str, Any]) -> bool:
    return x.get("type") == "response_item" and isinstance(x.get("payload"), dict)


def agent_log_sessions(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A session log's entries as sessions, one per session id, in the order they began. What
    the user and the model said, the tool calls and their results come in, each at its entry's
    time; the tool's bookkeeping (file snapshots, meta notices, system entries, Codex's event
    copies of the same messages), subagents' chats (Claude Code's sidechains, whose "user" is
    the agent that called them) and the model's thinking are left out. A Claude Code summary
    entry becomes its session's summary. An entry whose message is malformed is kept, so the
    session's import names it."""
    sessions: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}  # entry uuid -> its session, for the summaries that point at one
    codex = "codex"
    for x in entries:
        payload = _obj(x.get("payload"))
        if x.get("type") == "session_meta" and isinstance(payload.get("id"), str):
            codex = payload["id"]
        if _claude_code(x):
            sid = str(x["sessionId"])
            if isinstance(x.get("uuid"), str):
                owner[x["uuid"]] = sid
            if x.get("isMeta") or x.get("type") not in ("user", "assistant"):
                continue
            if x.get("isSidechain") is True:  # a subagent's own chat: its "user" is the main agent
                continue  # (what it found comes back to the session as the Task call's result)
            m = x["message"]
            msg = {"role": m.get("role", x["type"]), "content": m.get("content")}
            if isinstance(x.get("uuid"), str):
                msg["id"] = x["uuid"]
        elif _codex(x):
            sid = codex
            if chat.type_of(payload) not in chat.ITEMS:  # reasoning, snapshots, compactions: no turns
                continue
            msg = dict(payload)
        else:
            continue
        if x.get("timestamp") is not None:
            msg["at"] = x["timestamp"]
        if not _blank(msg) and not _injected(msg):
            # Claude Code's entry uuids are unique beyond their file: a resumed session (a new
            # file, its history copied in) continues the session imported before
            sessions.setdefault(sid, {"id": sid, "messages": [], **({"global_ids": True} if _claude_code(x) else {})}
                                )["messages"].append(msg)
    for x in entries:
        sid = owner.get(str(x.get("leafUuid")), "")
        if x.get("type") == "summary" and sid in sessions and isinstance(x.get("summary"), str):
            sessions[sid]["summary"] = x["summary"]
    return list(sessions.values())


# The tags coding agents wrap the context they log as the user's in (Codex's contextual
# fragments, Claude Code's records of slash and shell commands): by name, so a person who
# pastes XML of their own (<dependency>…</dependency>) is still heard.
AGENT_TAGS = frozenset({
    "environment_context", "user_instructions", "user_shell_command", "turn_aborted", "subagent_notification",
    "skill", "collaboration_mode", "realtime_conversation", "personality_spec", "tool_context",
    "reasoning_context", "pinned_notes",
    "command-name", "command-message", "command-args", "command-contents", "local-command-stdout",
    "local-command-stderr", "local-command-caveat", "bash-input", "bash-stdout", "bash-stderr", "system-reminder",
})


def _injected(msg: dict[str, Any]) -> bool:
    """A user entry the agent wrote into its own log, not the person: context it gives the
    model as tagged blocks (Codex's <environment_context> and <user_instructions>, the
    AGENTS.md it read; Claude Code's <command-name> and <local-command-stdout> of a slash
    command), the whole text nothing but such blocks (AGENT_TAGS)."""
    if msg.get("role") != "user":
        return False
    content = msg.get("content")
    texts = [content] if isinstance(content, str) else [
        p.get("text") for p in content if isinstance(p, dict)] if isinstance(content, list) and content else []
    return bool(texts) and all(isinstance(t, str) and _tagged(t) for t in texts)


def _tagged(text: str) -> bool:
    """Whether `text` is one or more '<tag>…</tag>' blocks of AGENT_TAGS and nothing else (read block by
    block: a pattern with a back-reference can take exponential time on a hostile log)."""
    at, end = 0, len(text.rstrip())
    while True:
        opened = _OPEN_TAG.match(text, _SPACE.match(text, at).end())  # type: ignore[union-attr]
        if opened is None or opened[1] not in AGENT_TAGS:
            return False
        close = text.find(f"</{opened[1]}>", opened.end())
        if close < 0:
            return False
        at = close + len(opened[1]) + 3
        if at >= end:
            return True


_OPEN_TAG = re.compile(r"<([A-Za-z][\w-]*)>")
_SPACE = re.compile(r"\s*")


def _blank(msg: dict[str, Any]) -> bool:
    """A message with nothing said in it (a thinking block alone). One that cannot be read is
    not blank: its session's import names it."""
    try:
        return not chat.from_chat(msg).get("text", "x").strip()
    except (ValueError, TypeError):
        return False


def json_lines(text: str) -> tuple[list[Any], int | None]:
    """A JSON Lines file's objects (blank lines skipped); ValueError naming a broken line.
    A last line without its line end that is not JSON yet is a line still being written (a
    live session log read mid-write): it is left out, and its number returned, not failed;
    the next import adds it (imports add only what is new)."""
    out = []
    lines = text.splitlines()
    for n, line in enumerate(lines, start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if n == len(lines) and not text.endswith(("\n", "\r")):
                    return out, n
                raise ValueError(f"line {n}: not JSON: {exc.msg} (column {exc.colno})") from None
    return out, None
