"""Chat apps' data exports read as sessions of the message convention: ChatGPT's
`conversations.json` (each conversation a tree of messages, `mapping`, whose shown branch ends
at `current_node`) and Claude's (each conversation with its `chat_messages`). A conversation
becomes one session: its id, its title as the session's summary, its messages with their ids
and times, so a later, longer export adds only the new turns. What the app shows nowhere (hidden
system messages, custom instructions, the model's thoughts) is left out; a part with no text (an
image, an attached file) leaves a marker, as in memsync.write.chat. Pure: raises ValueError
naming the field."""

from __future__ import annotations

from typing import Any

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
    cid = data.get("conversation_id") or data.get("id") or data.get("uuid")
    if isinstance(cid, str) and cid.strip():
        out["id"] = cid
    title = data.get("title") if is_chatgpt(data) else data.get("name")
    if isinstance(title, str) and title.strip():
        out["summary"] = title
    if not any("at" in m for m in messages):  # else the session spans its messages' own times
        created = data.get("create_time", data.get("created_at"))
        if created is not None:
            out["started_at"] = created
    return out


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
    if content.get("content_type") in CHATGPT_UNSAID:
        return None
    text = chatgpt_text(content, f"{where}.content")
    if not text.strip():  # the empty system message every conversation starts with
        return None
    author = _obj(m.get("author"))
    role = author.get("role") if isinstance(author.get("role"), str) else "unknown"
    recipient = m.get("recipient")
    if role == "assistant" and isinstance(recipient, str) and recipient not in ("all", ""):
        text = chat.call_text({"name": recipient, "arguments": text}, where)  # code sent to a tool
    out: dict[str, Any] = {"id": m.get("id") if isinstance(m.get("id"), str) else node_id, "role": role, "text": text}
    if isinstance(author.get("name"), str) and author["name"]:
        out["name"] = author["name"]  # a tool's name ('python', 'browser'), kept in metadata
    when = m.get("create_time")
    if when is not None:
        out["at"] = when
    return out


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
    a marker with its name (its extracted text is a document: ingest it as one)."""
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
        for f in [*(m.get("attachments") or []), *(m.get("files") or [])]:
            name = f.get("file_name") if isinstance(f, dict) else None
            parts.append({"type": "text", "text": f"[file: {name}]" if isinstance(name, str) and name else "[file]"})
        msg: dict[str, Any] = {"role": CLAUDE_ROLES.get(sender, sender) if isinstance(sender, str) else sender,
                               "content": parts}
        if not chat.content_text(parts, f"{where}.content").strip():
            continue  # only thinking, or nothing
        if isinstance(m.get("uuid"), str):
            msg["id"] = m["uuid"]
        if m.get("created_at") is not None:
            msg["at"] = m["created_at"]
        out.append(msg)
    return out
