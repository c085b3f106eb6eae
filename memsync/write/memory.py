"""The agent write API: facts (remember, forget, supersede, promote_event), reflections,
notes, sessions and events as seed §4.5 prescribes, and reading one row with its
provenance (get, block_actions). Each call validates its input (a pydantic model whose
field descriptions double as the MCP tool schemas), runs in one transaction and returns
what it wrote with a sync token (memsync/write/tokens.py).

A `Confinement` (a scoped MCP server) is checked before anything is written: every row
read or written must belong to the confined subject's tree."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from memsync.errors import (
    FactEnded,
    FieldError,
    IdempotencyConflict,
    InvalidInput,
    RefError,
    ScopeError,
    SubjectError,
    field_problems,
)
from memsync.kinds.events import text_of
from memsync.kinds.facts import FactType, ended
from memsync.read.subjects import Confinement, Subject, id_part, resolve
from memsync.storage.db import DictConn
from memsync.storage.db import context as ctxq
from memsync.storage.db import memory as q
from memsync.storage.db.subjects import RELATIONS
from memsync.text.clean import has_surrogates
from memsync.text.dates import aware, read_time
from memsync.vocabulary import MAX_TEXT, EventType, MemoryScope, ReflectionMode
from memsync.write.tokens import SyncToken

MAX_JSON = 1_000_000  # characters of a JSON payload or metrics object


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Mapping[str, Any]) -> M:
    """Validate arguments; an error names each failing field, nothing is written."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise FieldError(f"invalid arguments: {field_problems(exc)}") from None


def _clean(v: str | None) -> str | None:
    if v is None:
        return None
    if "\x00" in v:
        raise ValueError("must not contain NUL characters")
    return v


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be blank")
    return v


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_not_blank)]
Ref = Annotated[str, Field(min_length=1, max_length=200, description=(
    "a row: its global_id ('fact:6f1c…') or 'type:id' ('fact:12')"))]
SubjectArg = Annotated[str, Field(min_length=1, max_length=200, description=(
    "what this is about: 'person:12', 'project:3', 'personal', or a subject's global_id"))]
Category = Annotated[str | None, Field(None, pattern=r"^[a-z][a-z0-9_]*$", max_length=64,
                                       description="a snake_case category, e.g. 'scheduling'")]
NoteBlockType = Literal["prompt_snippet", "note", "sop_step", "doc_section", "task", "goal", "other"]


def _leaves(v: Any) -> Iterator[Any]:
    """Every key and value inside a JSON-like value."""
    if isinstance(v, dict):
        for k, x in v.items():
            yield str(k)
            yield from _leaves(x)
    elif isinstance(v, list):
        for x in v:
            yield from _leaves(x)
    else:
        yield v


def _json_ok(v: Any) -> Any:
    """PostgreSQL's jsonb refuses NUL characters, lone surrogates (JSON's '\\ud800' escapes that
    are no character), NaN and infinities; a payload is bounded in size."""
    leaves = list(_leaves(v))
    if any(isinstance(x, str) and "\x00" in x for x in leaves):
        raise ValueError("must not contain NUL characters")
    if any(isinstance(x, str) and has_surrogates(x) for x in leaves):
        raise ValueError("must not contain lone surrogates (\\ud800-\\udfff escapes that are no character)")
    if any(isinstance(x, float) and not math.isfinite(x) for x in leaves):
        raise ValueError("must not contain NaN or infinite numbers (JSON has none)")
    if len(json.dumps(v, default=str)) > MAX_JSON:
        raise ValueError(f"is larger than {MAX_JSON} characters of JSON")
    return v


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        """true is not 1: a boolean where a number is expected is an error, not a coercion."""
        if isinstance(v, bool) and info.field_name is not None:
            ann = cls.model_fields[info.field_name].annotation
            if ann is not bool and bool not in get_args(ann):
                raise ValueError("expected a number, not a boolean")
        return v

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        if isinstance(v, str):
            return _clean(v)
        if isinstance(v, list) and v and all(isinstance(x, BaseModel) for x in v):
            return v  # models (a session's messages) whose own fields were checked as they were built
        return _json_ok(v) if isinstance(v, (dict, list)) else v


class Remember(_Input):
    subject: SubjectArg
    text: Text = Field(description="the fact, one self-contained statement")
    fact_type: FactType = Field(description="preference, constraint, pattern, anti_pattern, heuristic or result")
    category: Category = None
    valid_from: ValidFrom = Field(None, description="when it became true (default: now); may lie ahead")
    confidence: float | None = Field(None, ge=0, le=1)
    source: str | None = Field(None, max_length=500, description="where it came from (a URL, a session, 'user')")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200, description=(
        "a key unique to this fact: remembering with a key already used returns the first fact, not a copy"))


class Forget(_Input):
    fact: Ref
    reason: Text = Field(description="why it no longer holds (kept in the fact's metadata)")
    dry_run: bool = Field(False, description="say what would end, change nothing")


class Supersede(_Input):
    fact: Ref
    text: Text = Field(description="the new statement that replaces the old fact")
    fact_type: FactType | None = Field(None, description="default: the old fact's type")
    category: Category = None
    reason: str | None = Field(None, max_length=2000)
    confidence: float | None = Field(None, ge=0, le=1)
    source: str | None = Field(None, max_length=500)


class LogReflection(_Input):
    subject: SubjectArg
    mode: ReflectionMode
    goals: list[str] = Field(default_factory=list, max_length=200)
    accomplishments: list[str] = Field(default_factory=list, max_length=200)
    blockers: list[str] = Field(default_factory=list, max_length=200)
    decisions: list[str] = Field(default_factory=list, max_length=200)
    next_actions: list[str] = Field(default_factory=list, max_length=200)
    metrics: dict[str, Any] = Field(default_factory=dict)
    raw_text: str | None = Field(None, max_length=MAX_TEXT)
    period_start: date | None = None
    period_end: date | None = None
    session: str | None = Field(None, max_length=200, description="the session it was written in (a reference)")

    @field_validator("goals", "accomplishments", "blockers", "decisions", "next_actions")
    @classmethod
    def _items(cls, v: list[str]) -> list[str]:
        for s in v:
            _clean(s)
            if len(s) > MAX_TEXT:
                raise ValueError(f"an item is longer than {MAX_TEXT} characters")
        return v


class AddNote(_Input):
    subject: SubjectArg
    body_md: Text = Field(description="markdown")
    block_type: NoteBlockType = "prompt_snippet"
    title: str | None = Field(None, max_length=500)


EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
AHEAD = timedelta(days=1)  # clocks differ: history may be stamped up to a day ahead of ours


def check_when(v: datetime | None) -> datetime | None:
    """A time that history brings with it: aware (naive means UTC), from 1900 to a day ahead."""
    v = aware(v)
    if v is None:
        return None
    if v < EARLIEST:
        raise ValueError("must not be before 1900")
    if v > datetime.now(timezone.utc) + AHEAD:
        raise ValueError("must not be more than a day ahead of now")
    return v


def read_when(v: Any) -> Any:
    """History's times and a fact's validity as callers write them (memsync.text.dates)."""
    return None if v is None else read_time(v)


When = Annotated[datetime | None, BeforeValidator(read_when), AfterValidator(check_when)]
# when a fact becomes true: written as history writes times, and it may lie ahead (a fact not
# yet valid is kept and served once it is)
def in_calendar(v: datetime | None) -> datetime | None:
    """A time that lies ahead, within the years every reader can hold (1 to 9999 in UTC): a
    fact valid from '9999-12-31T23:59-14:00' (year 10000 in UTC) would be stored, and then
    no read of that subject's facts could load it."""
    v = aware(v)
    if v is not None:
        try:
            v.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("must fall within the years 1 to 9999 in UTC") from None
    return v


ValidFrom = Annotated[datetime | None, BeforeValidator(read_when), AfterValidator(in_calendar)]


class StartSession(_Input):
    session_type: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64,
                              description="planning, scheduling, reflection, execution, conversation, …")
    subject: str | None = Field(None, max_length=200, description="what the session is about ('project:3')")
    client_person: int | None = Field(None, ge=1, description="erp.people id of the client it serves")
    profile: str | None = Field(None, max_length=200, description="agent.profiles name")
    context_recipe: str | None = Field(None, max_length=200, description="agent.context_recipes name")
    trace_id: str | None = Field(None, max_length=200)
    started_at: When = Field(None, description="when it began, for history brought in later (default: now)")
    ended_at: When = Field(None, description="when it ended: the session is then completed (history)")

    @model_validator(mode="after")
    def _order(self) -> StartSession:
        if self.ended_at is not None and self.ended_at < (self.started_at or datetime.now(timezone.utc)):
            raise ValueError("ended_at must not be before started_at")
        return self


class LogEvent(_Input):
    session: Ref
    event_type: EventType
    payload: dict[str, Any] = Field(description="JSON; a note or decision keeps its prose under 'text'")
    memory_scope: MemoryScope = "session"
    subject: str | None = Field(None, max_length=200, description="default: the session's subject")
    tool: str | None = Field(None, max_length=200, description="agent.tools name, for tool_call/tool_result")
    occurred_at: When = Field(None, description="when it happened, for history brought in later (default: now)")


class EndSession(_Input):
    session: Ref
    status: Literal["completed", "failed"] = "completed"
    summary: str | None = Field(None, max_length=MAX_TEXT)


class PromoteEvent(_Input):
    event: Ref
    fact_type: FactType
    category: Category = None
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT, description="default: the event's text")


@dataclass
class Written:
    """What a write stored, and the token a read can wait for (`after=`)."""

    table: str
    row: dict[str, Any]
    token: SyncToken
    created: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "id": self.row.get("id"), "global_id": self.row.get("global_id"),
                "created": self.created, "sync_token": self.token.encode(), **self.extra, "row": self.row}


# ------------------------------------------------------------------ references


def parse_ref(ref: str | int, expect: str | None = None) -> tuple[str, int | None, str | None]:
    """'fact:12', 'fact:<uuid>' (a global_id), or a bare id when `expect` names the table.
    -> (table, id, global_id); pure."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        if expect is None:
            raise RefError(f"reference {ref!r} needs a type: 'fact:{ref}'")
        return expect, ref, None
    text = str(ref).strip()
    if "\x00" in text:
        raise RefError("reference must not contain NUL characters")
    if expect is not None and re.fullmatch(r"[0-9]+", text):  # a bare id; str.isdigit() takes '²' and '٣'
        return expect, int(text), None
    kind, sep, rest = text.partition(":")
    table = q.ENTITIES.get(kind)
    if not sep or not rest or table is None:
        raise RefError(f"reference {text[:80]!r} must look like 'fact:12' or a global_id; "
                       f"types: {', '.join(sorted(q.ENTITIES))}")
    if expect is not None and table != expect:
        raise RefError(f"reference {text[:80]!r} names a {kind}, expected a {_entity(expect)}")
    try:
        rid = id_part(rest)
    except ValueError as exc:
        raise RefError(f"reference {text[:80]!r}: {exc}") from None
    return (table, rid, None) if rid is not None else (table, None, text)


def _entity(table: str) -> str:
    return next((k for k, t in q.ENTITIES.items() if t == table), table)


def load(conn: DictConn, ref: str | int, expect: str | None = None, *, lock: bool = False,
         confine: Confinement | None = None) -> tuple[str, dict[str, Any]]:
    """The row a reference names. Under a confinement, a row outside it and a row that does
    not exist get the same answer, so a caller cannot learn which ids exist elsewhere."""
    table, rid, gid = parse_ref(ref, expect)
    found = q.row(conn, table, id=rid, global_id=gid, lock=lock)
    if confine is not None and (found is None or not confine.allows(*subject_of(table, found))):
        raise ScopeError(f"no {_entity(table)} {ref!r} in this scope ({confine.subject.key} and its tree)")
    if found is None:
        raise RefError(f"no {_entity(table)} {ref!r}")
    return table, found


def subject_of(table: str, row: Mapping[str, Any]) -> tuple[str | None, int | None]:
    if table in RELATIONS.values():  # an ERP row is a subject itself
        return next(k for k, t in RELATIONS.items() if t == table), int(row["id"])
    cols = q.subject_columns(table)
    return (row.get(cols[0]), row.get(cols[1])) if cols else (None, None)


def _subject(conn: DictConn, ref: str, confine: Confinement | None, what: str) -> Subject:
    if confine is None:
        return resolve(conn, ref)
    try:
        subj = resolve(conn, ref)
    except SubjectError as exc:
        if "unknown subject type" in str(exc) or "must look like" in str(exc) or "needs an id" in str(exc):
            raise  # malformed, not a question of existence
        subj = None
    if subj is None or not confine.allows(subj.type, subj.id):
        raise ScopeError(f"{what} no subject {ref!r} in this scope ({confine.subject.key} and its tree)")
    return subj


def _check_row(table: str, row: Mapping[str, Any], confine: Confinement | None, ref: str | int) -> None:
    if confine is not None:
        confine.check(*subject_of(table, row), f"{_entity(table)} {ref}")


def _token(conn: DictConn, *changes: tuple[str, int]) -> SyncToken:
    # this statement's time, not the transaction's start: a row another writer committed while
    # this one waited for a lock (the fact a duplicate remember returns) was queued after that
    # start, and a read given the token would not wait for it
    return SyncToken.of(q.statement_time(conn), changes)


# ------------------------------------------------------------------ facts


def _fact_fields(subj: Subject, text: str, fact_type: str, category: str | None, confidence: float | None,
                 valid_from: datetime | None, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"fact_type": fact_type, "category": category, "content": text.strip(), "subject_type": subj.type,
            "subject_id": subj.id, "confidence": confidence, "valid_from": valid_from, "metadata": metadata}


def remember(conn: DictConn, a: Remember, confine: Confinement | None = None) -> Written:
    with conn.transaction():
        subj = _subject(conn, a.subject, confine, "remember:")
        meta: dict[str, Any] = {"written_by": "memsync.remember"}
        if a.source:
            meta["source"] = a.source
        if a.idempotency_key:
            meta["idempotency_key"] = a.idempotency_key
        fields = _fact_fields(subj, a.text, a.fact_type, a.category, a.confidence, a.valid_from, meta)
        if not a.idempotency_key and a.valid_from is None:
            q.lock_statement(conn, fields)
            same = q.same_fact(conn, fields)  # the same statement again: the fact already held
            if same is not None:
                return Written("agent.facts", same, _token(conn, ("agent.facts", same["id"])), created=False,
                               extra={"duplicate_of": same["global_id"]})
        fact, created = q.insert_fact(conn, fields)
        if not created:
            differ = _differing(fact, fields)
            if differ:
                raise IdempotencyConflict(f"idempotency_key {a.idempotency_key!r} was used for another fact about "
                                          f"{subj.key}: {', '.join(differ)} differ; use a new key")
        return Written("agent.facts", fact, _token(conn, ("agent.facts", fact["id"])), created)


def _differing(first: Mapping[str, Any], again: Mapping[str, Any]) -> list[str]:
    """The fields in which a repeated remember differs from the fact its key made."""
    def norm(text: Any) -> str:
        return " ".join(str(text or "").split()).lower()

    out = []
    if norm(first["content"]) != norm(again["content"]):
        out.append("text")
    for name in ("fact_type", "category"):
        if first[name] != again[name]:
            out.append(name)
    if again["confidence"] is not None and (first["confidence"] is None
                                            or float(first["confidence"]) != float(again["confidence"])):
        out.append("confidence")
    if again["valid_from"] is not None and first["valid_from"] != again["valid_from"]:
        out.append("valid_from")
    return out


def _current_fact(conn: DictConn, ref: str, confine: Confinement | None, hint: str = "") -> tuple[str, dict[str, Any]]:
    """The fact, locked, provided it is inside the confinement and has not ended. A fact not
    yet valid counts: forgetting it ends it at once (an empty interval, never served). Ended
    as of now, not as of this transaction's start: a supersede that held the lock ended it at
    its own start, after this one's, and two supersedes at once made two current successors."""
    table, fact = load(conn, ref, "agent.facts", lock=True, confine=confine)
    if ended(fact, q.statement_time(conn)):
        end = fact["valid_to"].isoformat()
        if fact["valid_to"] <= fact["valid_from"]:
            raise FactEnded(f"fact {ref} was already withdrawn before it became valid (ended at {end}){hint}")
        raise FactEnded(f"fact {ref} already ended at {end}{hint}")
    return table, fact


def forget(conn: DictConn, a: Forget, confine: Confinement | None = None) -> Written:
    with conn.transaction():
        table, fact = _current_fact(conn, a.fact, confine)
        if a.dry_run:
            return Written(table, fact, SyncToken(), created=False, extra={"dry_run": True, "would_end": True})
        ended = q.end_fact(conn, fact["id"], {"ended": {"reason": a.reason, "by": "memsync.forget"}})
        return Written(table, ended, _token(conn, (table, fact["id"])), created=False)


def supersede(conn: DictConn, a: Supersede, confine: Confinement | None = None) -> Written:
    """End the old fact and write its successor in one transaction, linked both ways."""
    with conn.transaction():
        table, old = _current_fact(conn, a.fact, confine, "; remember a new one")
        subj = Subject(old["subject_type"], old["subject_id"]) if old["subject_type"] else Subject("personal", None)
        meta: dict[str, Any] = {"written_by": "memsync.supersede", "supersedes": old["global_id"]}
        if a.source:
            meta["source"] = a.source
        new, _ = q.insert_fact(conn, _fact_fields(subj, a.text, a.fact_type or old["fact_type"],
                                                  a.category or old["category"], a.confidence, None, meta))
        ended = q.end_fact(conn, old["id"], {"superseded_by": new["global_id"],
                                             "ended": {"reason": a.reason or "superseded", "by": "memsync.supersede"}})
        tok = _token(conn, (table, old["id"]), (table, new["id"]))
        return Written(table, new, tok, extra={"superseded": {"id": ended["id"], "global_id": ended["global_id"],
                                                              "valid_to": ended["valid_to"]}})


# ------------------------------------------------------------------ reflections and notes


def log_reflection(conn: DictConn, a: LogReflection, confine: Confinement | None = None) -> Written:
    with conn.transaction():
        subj = _subject(conn, a.subject, confine, "log_reflection:")
        session_id = None
        if a.session:
            _st, srow = load(conn, a.session, "agent.sessions", confine=confine)
            session_id = srow["id"]
        row = q.insert_reflection(conn, {
            "session_id": session_id, "mode": a.mode, "subject_type": subj.type, "subject_id": subj.id,
            "period_start": a.period_start, "period_end": a.period_end, "goals": a.goals,
            "accomplishments": a.accomplishments, "blockers": a.blockers, "decisions": a.decisions,
            "next_actions": a.next_actions, "metrics": a.metrics, "raw_text": a.raw_text,
        })
        return Written("agent.reflections", row, _token(conn, ("agent.reflections", row["id"])))


def add_note(conn: DictConn, a: AddNote, confine: Confinement | None = None) -> Written:
    with conn.transaction():
        subj = _subject(conn, a.subject, confine, "add_note:")
        row = q.insert_block(conn, {"block_type": a.block_type, "title": a.title, "body_md": a.body_md,
                                    "subject_type": subj.type, "subject_id": subj.id,
                                    "metadata": {"written_by": "memsync.add_note"}})
        return Written("agent.blocks", row, _token(conn, ("agent.blocks", row["id"])))


# ------------------------------------------------------------------ sessions (seed §4.5)


def start_session(conn: DictConn, a: StartSession, settings: Mapping[str, Any],
                  confine: Confinement | None = None) -> Written:
    """Snapshot what the session runs with into applied_harness_config: the profile's
    harness config, model and permitted tools, the recipe, and memsync's own settings
    (secrets redacted by the caller)."""
    with conn.transaction():
        subj = _subject(conn, a.subject, confine, "start_session:") if a.subject else None
        if subj is None and confine is not None:
            subj = confine.subject  # a scoped server's sessions belong to its scope
        if a.client_person is not None:
            client = resolve(conn, ("person", a.client_person))
            if confine is not None:
                confine.check("person", client.id, f"client_person {a.client_person}")
        prof = None
        if a.profile:
            prof = q.profile(conn, a.profile)
            if prof is None:
                raise InvalidInput(f"profile: no agent.profiles row named {a.profile!r}")
        recipe = None
        if a.context_recipe:
            recipe = ctxq.recipe(conn, name=a.context_recipe)
            if recipe is None:
                raise InvalidInput(f"context_recipe: no recipe named {a.context_recipe!r}")
        applied: dict[str, Any] = {"memsync": dict(settings)}
        if prof is not None:
            applied["profile"] = {"name": prof["name"], "default_model": prof["default_model"],
                                  "harness_config": prof["harness_config"],
                                  "tools": q.profile_tools(conn, prof["id"])}
        if recipe is not None:
            applied["context_recipe"] = {"name": recipe["name"], "version": recipe["version"], "id": recipe["id"]}
        row = q.insert_session(conn, {
            "session_type": a.session_type, "client_person_id": a.client_person,
            "subject_type": subj.type if subj else None, "subject_id": subj.id if subj else None,
            "trace_id": a.trace_id, "profile_id": prof["id"] if prof else None,
            "context_recipe_id": recipe["id"] if recipe else None, "applied_harness_config": applied,
            "started_at": a.started_at, "ended_at": a.ended_at,
        })
        return Written("agent.sessions", row, SyncToken.of(q.now(conn), ()))


def _open_session(conn: DictConn, ref: str, confine: Confinement | None, *, lock: bool = False) -> dict[str, Any]:
    _table, srow = load(conn, ref, "agent.sessions", lock=lock, confine=confine)
    if srow["status"] != "running":
        raise InvalidInput(f"session {ref} has ended ({srow['status']})")
    return srow


def log_event(conn: DictConn, a: LogEvent, confine: Confinement | None = None) -> Written:
    with conn.transaction():
        # locked: an event logged while another caller ends the session is either in before
        # the end or refused after it, never written into a session already ended
        srow = _open_session(conn, a.session, confine, lock=True)
        if a.subject:
            subj = _subject(conn, a.subject, confine, "log_event:")
            st, sid = subj.type, subj.id
        else:
            st, sid = srow["subject_type"], srow["subject_id"]
        tool_id = None
        if a.tool:
            tool_id = q.tool_ids(conn, [a.tool]).get(a.tool)
            if tool_id is None:
                raise InvalidInput(f"tool: no agent.tools row named {a.tool!r}")
        if len(text_of(a.payload)) > MAX_TEXT:
            raise InvalidInput(f"payload: longer than {MAX_TEXT} characters")
        row = q.insert_event(conn, {"session_id": srow["id"], "event_type": a.event_type, "payload": a.payload,
                                    "memory_scope": a.memory_scope, "subject_type": st, "subject_id": sid,
                                    "tool_id": tool_id, "occurred_at": a.occurred_at})
        return Written("agent.events", row, _token(conn, ("agent.events", row["id"])))


def end_session(conn: DictConn, a: EndSession, confine: Confinement | None = None) -> Written:
    with conn.transaction():
        # locked: of two ends at once, the second is told the session has ended, not let to
        # overwrite the first's status and summary
        srow = _open_session(conn, a.session, confine, lock=True)
        row = q.end_session(conn, srow["id"], a.status, a.summary)
        return Written("agent.sessions", row, SyncToken.of(q.now(conn), ()), created=False)


def promote_event(conn: DictConn, a: PromoteEvent, confine: Confinement | None = None) -> Written:
    """Turn an event into a fact (seed §4.5: promotion), linked both ways."""
    with conn.transaction():
        _table, ev = load(conn, a.event, "agent.events", lock=True, confine=confine)
        if ev["promoted_fact_id"] is not None:
            fact = q.row(conn, "agent.facts", id=ev["promoted_fact_id"])
            if fact is not None:
                return Written("agent.facts", fact, _token(conn, ("agent.facts", fact["id"])), created=False)
        text = a.text or text_of(ev["payload"])
        if not text.strip():
            raise InvalidInput(f"event {a.event} has no text to promote; pass text")
        subj = Subject(ev["subject_type"], ev["subject_id"]) if ev["subject_type"] else Subject("personal", None)
        fact, _ = q.insert_fact(conn, _fact_fields(subj, text, a.fact_type, a.category, None, None,
                                                   {"written_by": "memsync.promote_event",
                                                    "promoted_from": ev["global_id"]}))
        q.set_promoted(conn, ev["id"], fact["id"])
        return Written("agent.facts", fact, _token(conn, ("agent.facts", fact["id"])),
                       extra={"event": {"id": ev["id"], "global_id": ev["global_id"]}})


# ------------------------------------------------------------------ provenance


def get(conn: DictConn, ref: str, confine: Confinement | None = None) -> dict[str, Any]:
    """The row, its blocks, its artifact and the ERP subject it belongs to; for a block,
    the row it was derived from."""
    table, row = load(conn, ref, confine=confine)
    out: dict[str, Any] = {"table": table, "row": row}
    if table == "agent.facts":  # get shows ended and future facts too, marked
        at = q.now(conn)
        out["current"] = row["valid_from"] <= at and not ended(row, at)
    if table == "agent.blocks":
        if row["source_table"] and row["source_id"] is not None and row["source_table"] in q.ENTITIES.values():
            out["source"] = {"table": row["source_table"], "row": q.row(conn, row["source_table"], id=row["source_id"])}
        if row["artifact_id"] is not None:
            out["artifact"] = q.row(conn, "agent.artifacts", id=row["artifact_id"])
    else:
        out["blocks"] = q.blocks_of(conn, table, int(row["id"]))
    st, sid = subject_of(table, row)
    if st is not None and table not in RELATIONS.values():
        try:
            subj = resolve(conn, f"{st}:{sid}" if sid is not None else st)
            out["subject"] = {"type": subj.type, "id": subj.id, "name": subj.name, "row": subj.row}
        except SubjectError:
            out["subject"] = {"type": st, "id": sid, "missing": True}
    return out


def block_actions(conn: DictConn, block: str | int, profile: str, confine: Confinement | None = None
                  ) -> list[dict[str, Any]]:
    _table, row = load(conn, block, "agent.blocks", confine=confine)
    if not isinstance(profile, str) or "\x00" in profile:
        raise InvalidInput("profile: must be a name without NUL characters")
    prof = q.profile(conn, profile)
    if prof is None:
        raise InvalidInput(f"profile: no agent.profiles row named {profile!r}")
    return q.block_actions(conn, int(row["id"]), int(prof["id"]))
