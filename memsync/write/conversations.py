"""Conversations as episodic memory: each message is a `note` event of a session whose
payload follows one convention (`text`, `speaker` or `role`, optional `id`), stamped with
the time it was said. Messages are logged in bulk into a running session, or whole
conversations are imported with their real times: one transaction per session,
idempotent by the messages' ids (a re-import adds nothing)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psycopg
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from memsync.errors import FieldError, InvalidInput
from memsync.read.subjects import Confinement, Subject
from memsync.storage.db import DictConn
from memsync.storage.db import memory as q
from memsync.text.dates import day_only
from memsync.vocabulary import MEMORY_SCOPES, MemoryScope
from memsync.write import chat, exports
from memsync.write.memory import (
    Ref,
    Text,
    When,
    Written,
    _Input,
    _open_session,
    _subject,
    _token,
    parse,
)
from memsync.write.tokens import SyncToken

MAX_MESSAGES = 10_000  # messages of one call or one imported session
IMPORT_SESSION_TYPE = "conversation"


class Message(_Input):
    """One message: who said it (`speaker`, a name, or `role`: user, assistant, …), what, and
    optionally when (`at`) and a stable `id` that makes a re-import skip it. Chat logs' own
    fields are read as they write them (memsync.write.chat): `content` (text or parts),
    tool calls, `name`, `tool_call_id`, `timestamp`."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=chat.schema)

    text: Text
    speaker: str | None = Field(None, min_length=1, max_length=200, description="who said it, by name")
    role: str | None = Field(None, min_length=1, max_length=64, description="user, assistant, system, …")
    at: When = Field(None, description="when it was said (default: the session's start, or now)")
    id: str | None = Field(None, min_length=1, max_length=200, description="a stable id: a repeat is skipped")
    person: Ref | None = Field(None, description=(
        "the erp.people row who said it ('person:12' or its global_id); default: the one person "
        "whose full name, or else first name, is the speaker's"))
    metadata: dict[str, Any] = Field(default_factory=dict)

    # a Responses API reasoning item: the model's own thinking, not a turn. Validated in its
    # place and left out when written, so every other message keeps the index errors name
    _unsaid: bool = PrivateAttr(False)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return chat.from_chat(data) if isinstance(data, dict) else data

    @model_validator(mode="wrap")
    @classmethod
    def _reasoning(cls, data: Any, handler: Any) -> Message:
        if chat.type_of(data) in chat.UNSAID:
            m: Message = handler({"role": "assistant", "text": f"({data['type']})"})
            m._unsaid = True
            return m
        return handler(data)  # type: ignore[no-any-return]

    @property
    def said(self) -> bool:
        return not self._unsaid

    @model_validator(mode="after")
    def _complete(self) -> Message:
        if not self.text.strip():
            raise ValueError("text is blank")
        if not (self.speaker or "").strip() and not (self.role or "").strip():
            raise ValueError("needs a speaker or a role (not blank)")
        return self

    def payload(self, mid: str | None, person: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "kind": "message"}
        for key, value in (("speaker", self.speaker), ("role", self.role), ("id", mid), ("person", person)):
            if value is not None:
                out[key] = value
        if self.metadata:
            out["metadata"] = self.metadata
        return out


class LogMessages(_Input):
    session: Ref
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    memory_scope: MemoryScope = "session"


class ImportedSession(_Input):
    """A conversation session from a file: `date` (or `started_at`), optional `ended_at`
    (default: its last message), `id` (default: derived from its date and first message),
    `system` (the prompt an API request gave beside its messages: written first, role system)."""

    id: str | None = Field(None, min_length=1, max_length=200)
    session_type: str = Field(IMPORT_SESSION_TYPE, pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    started_at: When = None
    ended_at: When = None
    summary: str | None = Field(None, max_length=100_000)
    system: Message | None = None
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    # its messages' ids are unique beyond it (Claude Code's uuids): a session imported before
    # that holds one of them is this one, continued (a resumed Claude Code session is a new
    # log file with a new id, the earlier history copied into it)
    global_ids: bool = False

    @model_validator(mode="after")
    def _said(self) -> ImportedSession:
        if not any(m.said for m in self.messages):
            raise ValueError("messages: none is a turn of the conversation (only reasoning items)")
        return self

    # the session's date names a day only ('2023-05-08'): a turn said that day in its own
    # zone belongs to it, even before midnight UTC (a chat east of UTC starts there)
    _day: bool = PrivateAttr(False)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and "date" in data and "started_at" not in data:
            data = dict(data)
            data["started_at"] = data.pop("date")
        if isinstance(data, dict) and isinstance(data.get("system"), (str, list)):
            data = {**data, "system": {"role": "system", "content": data["system"], "id": "system"}}
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _order(cls, data: Any, handler: Any) -> ImportedSession:
        """Its end after its start, and every message said inside them: a session's row may not
        end before it starts, and a turn stamped outside its session is a date written wrong."""
        raw = data.get("started_at", data.get("date")) if isinstance(data, dict) else None
        self: ImportedSession = handler(data)
        self._day = isinstance(raw, str) and day_only(raw)
        start = self.started_at
        shown = "" if start is None else (start.date() if self._day else start).isoformat()

        def before(t: datetime) -> bool:
            return start is not None and (t.date() < start.date() if self._day else t < start)

        if self.ended_at and before(self.ended_at):
            raise ValueError("ended_at must not be before started_at")
        for i, m in enumerate(self.messages):
            if m.at is not None and before(m.at):
                raise ValueError(f"messages.{i}.at: {m.at.isoformat()} is before the session's date ({shown})")
            if m.at is not None and self.ended_at is not None and m.at > self.ended_at:
                raise ValueError(f"messages.{i}.at: {m.at.isoformat()} is after the session's ended_at "
                                 f"({self.ended_at.isoformat()})")
        return self

    def key(self) -> str:
        """The trace id that finds this session again on a re-import."""
        if self.id:
            return f"import:{self.id}"
        first = next(m for m in self.messages if m.said)
        seed = f"{self.started_at.isoformat() if self.started_at else ''}\x00{first.speaker or first.role}\x00{first.text}"
        return f"import:sha1-{hashlib.sha1(seed.encode()).hexdigest()[:16]}"

    def span(self, now: datetime) -> tuple[datetime, datetime]:
        """When it began and ended: as given, else its messages' times, else `now` (an imported
        session is history, so it has ended: it is never left running)."""
        times = [m.at for m in self.messages if m.at is not None]
        start = self.started_at or (min(times) if times else now)
        end = self.ended_at or (max(times) if times else start)
        if self._day:  # a turn said that day east of UTC comes before its midnight UTC
            start = min(start, end, *times)
        return start, end


@dataclass
class Imported:
    """What one session's import did."""

    index: int
    key: str
    session: dict[str, Any] | None = None
    created: bool = False
    added: int = 0
    skipped: int = 0
    error: str | None = None
    empty: bool = False  # an exported conversation with nothing said in it
    withdrawn: int = 0  # messages an earlier import brought in that the app no longer shows
    token: SyncToken = field(default_factory=SyncToken)

    def to_dict(self) -> dict[str, Any]:
        s = self.session or {}
        return {"index": self.index, "key": self.key, "session_id": s.get("id"), "global_id": s.get("global_id"),
                "created": self.created, "added": self.added, "skipped": self.skipped, "error": self.error,
                "empty": self.empty, "withdrawn": self.withdrawn}


# a message to write: the message, its id, who said it (an erp.people global_id, see speakers)
ToWrite = tuple[Message, str | None, str | None]


def _insert(conn: DictConn, session: Mapping[str, Any], messages: Sequence[ToWrite], scope: str,
            default_at: datetime | None) -> list[dict[str, Any]]:
    return q.insert_events(conn, [
        {"session_id": session["id"], "event_type": "note", "payload": m.payload(mid, person),
         "memory_scope": scope, "subject_type": session["subject_type"], "subject_id": session["subject_id"],
         "occurred_at": m.at or default_at}
        for m, mid, person in messages])


def _name(text: str) -> str:
    return " ".join(text.split()).lower()


def linked(names: Iterable[str], people: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Speaker name (as _name writes it) -> the erp.people global_id it names: the one person
    with that full name, else, for a single word, the one person with that first name. A
    name two people could answer to links to neither: a wrong link is worse than none. Pure."""
    full: dict[str, list[str]] = {}
    first: dict[str, list[str]] = {}
    for p in people:
        n = _name(str(p["full_name"]))
        full.setdefault(n, []).append(str(p["global_id"]))
        first.setdefault(n.split(" ")[0], []).append(str(p["global_id"]))
    out: dict[str, str] = {}
    for n in names:
        found = full.get(n) or ([] if " " in n else first.get(n, []))
        if len(found) == 1:
            out[n] = found[0]
    return out


def speakers(conn: DictConn, messages: Sequence[Message], confine: Confinement | None) -> list[str | None]:
    """Who said each message, as an erp.people global_id, or None: the message's own `person`,
    else the person its speaker's name links to (see linked). Never required; a scoped caller
    links only to people inside its scope."""
    names = {_name(m.speaker) for m in messages if m.speaker and m.person is None}
    rows = q.people_named(conn, sorted(names)) if names else []
    found = linked(names, rows)  # ambiguity judged over everyone, then the scope applied
    if confine is not None:
        inside = {str(r["global_id"]) for r in rows if confine.allows("person", int(r["id"]))}
        found = {n: g for n, g in found.items() if g in inside}
    named: dict[str, str | None] = {}  # each explicit reference resolved once, however many messages use it
    out: list[str | None] = []
    for i, m in enumerate(messages):
        if m.person is None:
            out.append(found.get(_name(m.speaker)) if m.speaker else None)
            continue
        if m.person not in named:
            try:
                subj = _subject(conn, m.person, confine, "")
            except InvalidInput as exc:
                raise FieldError(f"messages.{i}.person: {str(exc).strip()}") from None
            if subj.type != "person":
                raise FieldError(f"messages.{i}.person: {m.person!r} is a {subj.type}, not a person")
            named[m.person] = subj.global_id
        out.append(named[m.person])
    return out


def log_messages(conn: DictConn, a: LogMessages, confine: Confinement | None = None) -> Written:
    """Messages into a running session, in order, in one transaction; a message whose id the
    session already holds is skipped."""
    with conn.transaction():
        # locked: the same messages sent twice at once (a client retrying a call that timed
        # out while the first still ran) would each find the ids absent and write them
        srow = _open_session(conn, a.session, confine, lock=True)
        have = q.message_ids(conn, srow["id"])
        people = speakers(conn, a.messages, confine)
        new = [(m, m.id, p) for m, p in zip(a.messages, people, strict=True)
               if m.said and (m.id is None or m.id not in have)]
        rows = _insert(conn, srow, _first_of_each_id(new), a.memory_scope, None)
        tok = _token(conn, *(("agent.events", int(r["id"])) for r in rows))
        said = sum(m.said for m in a.messages)
        return Written("agent.sessions", srow, tok, created=False, extra={
            "added": len(rows), "skipped": said - len(rows), "events": [r["global_id"] for r in rows]})


def _first_of_each_id(messages: list[ToWrite]) -> list[ToWrite]:
    seen: set[str] = set()
    out = []
    for x in messages:
        if x[1] is not None:
            if x[1] in seen:
                continue
            seen.add(x[1])
        out.append(x)
    return out


def memory_scope(value: str) -> MemoryScope:
    if value not in MEMORY_SCOPES:
        raise FieldError(f"memory_scope: expected one of {', '.join(MEMORY_SCOPES)}, got {value!r}")
    return value  # type: ignore[return-value]


def import_subject(conn: DictConn, subject: str | None, confine: Confinement | None) -> Subject | None:
    """Whom an import's sessions belong to: `subject` resolved (raising, naming it, when it is
    not a row in `confine`'s scope), else a scoped caller's own subject, else no one."""
    if subject:
        return _subject(conn, subject, confine, "import:")
    return confine.subject if confine is not None else None


def read_session(index: int, data: Any) -> ImportedSession | Imported:
    """One session of a file read and checked, or why it cannot be imported (an error naming
    it and its field, or an export's conversation with nothing said). Pure: whatever shape a
    broken file has, the answer is one of the two, never an exception."""
    if not isinstance(data, Mapping):
        return Imported(index, "?", error=f"session {index}: expected an object with messages")
    if exports.is_chatgpt(data) or exports.is_claude(data):
        key = f"import:{exports.conversation_id(data) or '?'}"
        try:
            converted = exports.session_of(dict(data))
        except ValueError as exc:
            return Imported(index, key, error=f"session {index}: {exc}")
        if converted is None:  # a chat opened and never written in: nothing to import
            return Imported(index, key, empty=True)
        data = converted
    try:
        return parse(ImportedSession, data)
    except FieldError as exc:
        sid = data.get("id")
        return Imported(index, f"import:{sid}" if sid else "?", error=f"session {index}: {exc}{_which(exc, data)}")


def import_session(conn: DictConn, index: int, data: Any, subj: Subject | None,
                   confine: Confinement | None = None, memory_scope: MemoryScope = "session") -> Imported:
    """One conversation session, all or nothing: found again by its key, messages without an
    id get one from their position and text, so a re-import adds nothing."""
    s = read_session(index, data)
    if isinstance(s, Imported):
        return s
    off = exports.off_branch(data)
    imp = Imported(index, s.key())
    try:
        with conn.transaction():
            st, sid = (subj.type, subj.id) if subj else (None, None)
            # a session whose messages' ids hold beyond it may continue another key's session
            # (a resumed Claude Code log): such imports of one subject wait for each other
            q.lock_import(conn, "*" if s.global_ids else imp.key, st, sid)
            srow = q.imported_session(conn, imp.key, st, sid, lock=True)
            if srow is None and s.global_ids:
                srow = q.session_holding(conn, [m.id for m in s.messages if m.id], st, sid)
            if srow is None:
                start, end = s.span(datetime.now(timezone.utc))
                srow = q.insert_session(conn, {
                    "session_type": s.session_type, "client_person_id": None, "subject_type": st, "subject_id": sid,
                    "trace_id": imp.key, "profile_id": None, "context_recipe_id": None,
                    "applied_harness_config": {"imported": {"key": imp.key, "by": "memsync.import"}},
                    "started_at": start, "ended_at": end, "summary": s.summary})
                imp.created = True
            have = q.message_ids(conn, srow["id"])
            gone = q.delete_messages(conn, int(srow["id"]), sorted(have & off)) if have & off else []
            have -= off  # edited or regenerated in the app since an earlier import: no longer said
            spoken = [*([s.system] if s.system else []), *s.messages]
            ids = [*([s.system.id] if s.system else []), *(m.id or _derived_id(i, m) for i, m in enumerate(s.messages))]
            people = speakers(conn, spoken, confine)
            new = _first_of_each_id([(m, mid, p) for m, mid, p in zip(spoken, ids, people, strict=True)
                                     if m.said and mid not in have])
            rows = _insert(conn, srow, new, memory_scope, srow["started_at"])
            if rows and not imp.created:  # a longer export of a session: it holds its new turns
                said = [r["occurred_at"] for r in rows]
                q.extend_session(conn, int(srow["id"]), min(said), max(said))
            imp.session, imp.added, imp.skipped = srow, len(rows), sum(m.said for m in spoken) - len(rows)
            imp.withdrawn = len(gone)
            imp.token = _token(conn, *(("agent.events", int(i)) for i in [*(r["id"] for r in rows), *gone]))
    except InvalidInput as exc:
        imp.error = f"session {index}: {exc}"
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        # what validation let through and the database refused is this session's own: it fails
        # alone (rolled back), the import goes on; a lost connection still stops it
        imp.error = f"session {index}: the database refused it: {str(exc).splitlines()[0]}"
    return imp


def _which(exc: FieldError, data: Mapping[str, Any]) -> str:
    """' (message id …)' when the error names a message that has an id: an export's messages
    are found by id, not by their place among the turns read from it."""
    found = re.search(r"\bmessages\.(\d+)", str(exc))
    messages = data.get("messages")
    if found is None or not isinstance(messages, list) or int(found[1]) >= len(messages):
        return ""
    m = messages[int(found[1])]
    mid = m.get("id", m.get("uuid")) if isinstance(m, Mapping) else None
    return f" (message id {str(mid)[:80]!r})" if isinstance(mid, (str, int)) and not isinstance(mid, bool) else ""


def _derived_id(i: int, m: Message) -> str:
    # the role as the file wrote it: a message read as another's (tool results sent back in a
    # user message) keeps the id an earlier import gave it, so a re-import still adds nothing
    role = m.metadata.get("role_in_file")
    seed = f"{m.speaker or role or m.role or ''}\x00{m.text}"
    return f"m{i}-{hashlib.sha1(seed.encode()).hexdigest()[:12]}"


def sessions_of(data: Any) -> list[Any]:
    """The sessions a conversation file holds. Accepted: {"sessions": [...]}, a list of
    sessions, one conversation as {"messages": [...]} (optionally with id, date) or a plain
    list of messages (OpenAI style: role, content), a saved API request body (`model`
    beside `messages` or the Responses API's `input`: its `system` or `instructions` is the
    session's first message, the request's other settings are not conversation), or a chat
    app's data export (ChatGPT's or Claude's conversations.json, or one conversation of it),
    or a coding agent's session log (Claude Code's or Codex CLI's .jsonl entries; see
    memsync.write.exports). Pure; raises InvalidInput."""
    if isinstance(data, dict) and "model" in data and ("messages" in data or "input" in data):
        data = _request(data)
    if exports.is_chatgpt(data) or exports.is_claude(data):
        return [data]
    if exports.is_agent_log(data):
        return exports.agent_log_sessions(data)
    if isinstance(data, list) and data and all(exports.is_chatgpt(x) or exports.is_claude(x) for x in data):
        return data  # each read by import_session, so one it cannot read fails alone
    if isinstance(data, dict) and "sessions" in data:
        data = data["sessions"]
        if not isinstance(data, list):
            raise InvalidInput("sessions: expected a list of sessions")
        return data
    if isinstance(data, dict) and "messages" in data:
        return [data]
    if isinstance(data, list):
        if data and all(isinstance(x, dict) and "messages" in x for x in data):
            return data
        if data and all(isinstance(x, dict) and "messages" not in x for x in data):
            return [{"messages": data}]
        if not data:
            raise InvalidInput("the file holds no sessions or messages")
        raise InvalidInput("expected a list of sessions (each with messages) or a list of messages, not a mix")
    raise InvalidInput('expected {"sessions": [...]}, {"messages": [...]}, or a list of sessions or messages')


SESSION_KEYS = ("id", "session_type", "date", "started_at", "ended_at", "summary")


def _request(body: dict[str, Any]) -> dict[str, Any]:
    """A chat completions, Messages or Responses API request body as one conversation."""
    messages = body.get("messages", body.get("input"))
    where = "messages" if "messages" in body else "input"
    if isinstance(messages, str):  # the Responses API takes a bare text as the user's message
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list) or not messages:
        raise InvalidInput(f"{where}: expected a list of messages")
    system = body.get("system", body.get("instructions"))
    own = {k: body[k] for k in SESSION_KEYS if k in body}  # a session that also names its model keeps its own
    return {**own, "messages": messages, **({"system": system} if system else {})}
