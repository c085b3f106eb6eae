"""The MCP tools: each a name, an argument model (its JSON schema is what an agent sees),
whether it writes, and how it calls the application object. Pure table plus thin calls;
the server (server.py) adds per-connection state, scope, profiles and logging."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from memsync.app import Memsync
from memsync.errors import InvalidInput
from memsync.faces import json_default
from memsync.read.subjects import Confinement, parse_ref
from memsync.vocabulary import MAX_HITS, SearchMode
from memsync.write import conversations as cv
from memsync.write import memory as w
from memsync.write.tokens import DEFAULT_WAIT_MS, SyncToken


@dataclass
class Caller:
    """What one client connection carries between calls: its writes' merged sync token (its
    reads wait for them) and the session it started, whose calls are logged as events."""

    token: SyncToken = field(default_factory=SyncToken)
    session: str | None = None  # global_id of the open session started through this connection
    track_session: bool = True  # False where several clients may share the Caller (stateless HTTP)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wrote(self, token: SyncToken) -> None:
        with self.lock:
            self.token = self.token.merge(token)


@dataclass(frozen=True)
class Env:
    app: Memsync
    confine: Confinement | None
    profile: str | None


class _Args(w._Input):
    """Read tools' arguments, checked like the write API's: NUL, booleans as numbers, JSON."""


WaitMs = Field(DEFAULT_WAIT_MS, ge=0, le=120_000, description=(
    "how long to wait for earlier writes (this connection's, and `after`) to become searchable"))
After = Field(None, max_length=100_000, description="a sync_token returned by a write; waits until it is searchable")
StaleOk = Field(False, description="on a wait timeout, answer anyway (stale: true, pending: [...]) instead of failing")


class RetrieveArgs(_Args):
    recipe: str = Field(min_length=1, max_length=200, description="a context recipe name (see list_recipes)")
    subject: w.SubjectArg
    query: str | None = Field(None, max_length=10_000, description="what the agent is working on; steers the "
                                                                   "semantic sections")
    budget_tokens: int | None = Field(None, ge=1, le=200_000, description="token budget (default: the recipe's)")
    as_of: str | None = Field(None, max_length=64,
                              description="ISO time (or a date such as 8 May 2023): the memory as it stood then")
    after: str | None = After
    wait_ms: int = WaitMs
    stale_ok: bool = StaleOk


class SearchArgs(_Args):
    query: str = Field(min_length=1, max_length=10_000)
    k: int = Field(10, ge=1, le=MAX_HITS, description="how many hits")
    mode: SearchMode = "hybrid"
    block_types: list[str] = Field(default_factory=list, description="only these block types (fact, note, "
                                                                     "doc_section, sop_step, reflection_section, …)")
    source_tables: list[str] = Field(default_factory=list, description="only blocks from these tables "
                                                                       "('agent.facts', 'agent.events', …)")
    subjects: list[str] = Field(default_factory=list, description="only blocks about these subjects ('project:3')")
    artifact_ids: list[int] = Field(default_factory=list, description="only blocks of these agent.artifacts ids")
    created_after: str | None = Field(None, max_length=64, description="ISO time")
    created_before: str | None = Field(None, max_length=64, description="ISO time")
    events: bool = Field(False, description="return conversation exchanges instead of blocks: each matching "
                                            "turn (agent.events) with `neighbours` turns around it in its session")
    neighbours: int = Field(1, ge=0, le=20, description="with events: turns kept on each side of a matching turn")
    as_of: str | None = Field(None, max_length=64, description="ISO time or a date such as 8 May 2023 (default: "
                                                                "now): facts current then, and 'last week' in the "
                                                                "query counted from it")
    time_window: bool = Field(True, description="with events: turns inside the time window the query names "
                                                "('in May 2023', 'last month') rank first")
    # ranking, as the library's SearchOptions: unset ones keep its defaults, and its check
    # (memsync.read.hybrid) judges the values, so MCP refuses what Python refuses and no more
    fusion: Literal["zscore", "rrf"] | None = Field(None, description="hybrid: fuse standardised scores "
                                                                     "(zscore, the default) or ranks (rrf)")
    rrf_k: int | None = Field(None, description="with fusion rrf: the rank constant (default 60)")
    weights: dict[str, float] | None = Field(None, description="hybrid: weight per signal, e.g. "
                                                               "{\"dense\": 1, \"lexical\": 2}")
    candidates: int | None = Field(None, description="candidates per signal (default max(4k, 40))")
    mmr_lambda: float | None = Field(None, description="blocks: trade relevance (1) against diversity (0) "
                                                       "among the hits")
    recency_half_life_days: float | None = Field(None, description="blocks: older hits lose up to half their "
                                                                   "score, halving at this age")
    after: str | None = After
    wait_ms: int = WaitMs

    def ranking(self) -> dict[str, Any]:
        """The ranking options a caller set, as search/recall take them."""
        chosen = {"fusion": self.fusion, "rrf_k": self.rrf_k, "weights": self.weights, "candidates": self.candidates,
                  "mmr_lambda": self.mmr_lambda, "recency_half_life_days": self.recency_half_life_days}
        return {k: v for k, v in chosen.items() if v is not None}


class GetArgs(_Args):
    ref: w.Ref


class BlockActionsArgs(_Args):
    block: w.Ref
    profile: str | None = Field(None, max_length=200, description="agent.profiles name (default: the server's "
                                                                  "--profile)")


class NoArgs(_Args):
    pass


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args: type[BaseModel]
    writes: bool
    call: Callable[[Env, Caller, Any], Any]


def _subjects(refs: list[str]) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for r in refs:
        t, i, gid = parse_ref(r)
        if gid is not None:
            raise InvalidInput(f"subjects: use 'type:id' here, not a global_id ({r[:60]!r})")
        out.append((t, i))
    return out


def _retrieve(env: Env, c: Caller, a: RetrieveArgs) -> Any:
    tok = c.token.merge(SyncToken.decode(a.after) if a.after else None)
    return env.app.retrieve(a.recipe, a.subject, query=a.query, budget_tokens=a.budget_tokens, as_of=a.as_of,
                            after=tok, wait_ms=a.wait_ms, stale_ok=a.stale_ok, confine=env.confine)


def _search(env: Env, c: Caller, a: SearchArgs) -> Any:
    tok = c.token.merge(SyncToken.decode(a.after) if a.after else None)
    filters = {k: v for k, v in {
        "block_types": a.block_types, "source_tables": a.source_tables, "subjects": _subjects(a.subjects),
        "artifact_ids": a.artifact_ids,
        "created_after": a.created_after, "created_before": a.created_before}.items() if v}
    if a.events:
        found = env.app.recall(a.query, k=a.k, neighbours=a.neighbours, mode=a.mode, filters=filters, after=tok,
                               wait_ms=a.wait_ms, confine=env.confine, as_of=a.as_of, time_window=a.time_window,
                               **a.ranking())
        return {"exchanges": [x.to_dict() for x in found]}
    hits = env.app.search(a.query, k=a.k, mode=a.mode, filters=filters, after=tok, wait_ms=a.wait_ms,
                          confine=env.confine, as_of=a.as_of, **a.ranking())
    return {"hits": [h.to_dict() for h in hits]}


def _written(c: Caller, out: w.Written) -> dict[str, Any]:
    c.wrote(out.token)
    return out.to_dict()


def _write(fn: Callable[..., w.Written]) -> Callable[[Env, Caller, Any], Any]:
    def call(env: Env, c: Caller, a: BaseModel) -> Any:
        with env.app.connection() as conn:
            return _written(c, fn(conn, a, env.confine))
    return call


def _start_session(env: Env, c: Caller, a: w.StartSession) -> Any:
    if a.profile is None and env.profile is not None:
        a = a.model_copy(update={"profile": env.profile})
    with env.app.connection() as conn:
        out = w.start_session(conn, a, env.app.settings.redacted(), env.confine)
    if c.track_session:
        c.session = out.row["global_id"]
    return _written(c, out)


def _end_session(env: Env, c: Caller, a: w.EndSession) -> Any:
    with env.app.connection() as conn:
        out = w.end_session(conn, a, env.confine)
    if c.session in (out.row["global_id"], f"session:{out.row['id']}"):
        c.session = None
    return _written(c, out)


def _get(env: Env, c: Caller, a: GetArgs) -> Any:
    return env.app.get(a.ref, confine=env.confine)


def _block_actions(env: Env, c: Caller, a: BlockActionsArgs) -> Any:
    profile = a.profile or env.profile
    if profile is None:
        raise InvalidInput("profile: name the profile whose tools may act (or start the server with --profile)")
    if env.profile is not None and profile != env.profile:
        raise InvalidInput(f"profile: this server acts for profile {env.profile!r} only")
    return {"actions": env.app.block_actions(a.block, profile=profile, confine=env.confine)}


def _list_recipes(env: Env, c: Caller, a: NoArgs) -> Any:
    return {"recipes": [{k: r[k] for k in ("name", "version", "description") if k in r}
                        for r in env.app.recipes()]}


def _status(env: Env, c: Caller, a: NoArgs) -> Any:
    s = env.app.status()
    # counts only: the dead letters' rows and errors may name memory outside a scoped server's tree
    return {"backlog": s["backlog"], "lag": s["lag"], "model": s["model"], "model_loaded": env.app.runtime.embedder.loaded,
            "vectors": s["vectors"],
            "workers_alive": sum(1 for x in s["workers"] if x.get("alive")),
            "writes_of_this_connection": len(c.token.changes),
            "unsynced_of_this_connection": len(env.app.wait_synced(c.token, 0))}


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("retrieve", "Gather a budgeted, cited context bundle for a subject with a context recipe (see "
             "list_recipes). Returns markdown to read and the structured items with their citations. Waits for "
             "this connection's earlier writes to be searchable first.", RetrieveArgs, False, _retrieve),
    ToolSpec("search", "Hybrid (semantic + keyword) search over memory blocks: facts, notes, decisions, "
             "reflections, documents, SOP steps. Each hit names the row it came from.", SearchArgs, False, _search),
    ToolSpec("get", "Read one row by global_id or 'type:id' ('fact:12', 'session:3', 'block:9', 'project:2') "
             "with its blocks, its artifact, the row a block came from, and its subject.", GetArgs, False, _get),
    ToolSpec("list_recipes", "List the context recipes retrieve accepts.", NoArgs, False, _list_recipes),
    ToolSpec("block_actions", "The actions a block offers (agent.block_actions) that the profile's tools can "
             "perform.", BlockActionsArgs, False, _block_actions),
    ToolSpec("status", "Sync health: backlog, dead letters, lag, the model (and whether it has loaded: searches are "
             "served before it has, writes wait for it to be synced) and indexes.", NoArgs, False, _status),
    ToolSpec("remember", "Store a durable fact about a subject (a preference, constraint, pattern, anti_pattern, "
             "heuristic or result). Pass idempotency_key when a retry could repeat the call. Returns the fact "
             "and a sync_token.", w.Remember, True, _write(w.remember)),
    ToolSpec("forget", "End a fact's validity now (it is kept for history, never deleted): it stops appearing "
             "in retrieval and search at once.", w.Forget, True, _write(w.forget)),
    ToolSpec("supersede", "Replace a fact with a corrected one: the old one ends, the new one names it.",
             w.Supersede, True, _write(w.supersede)),
    ToolSpec("log_reflection", "Record a daily, weekly or monthly reflection about a subject: goals, "
             "accomplishments, blockers, decisions, next actions, metrics.", w.LogReflection, True,
             _write(w.log_reflection)),
    ToolSpec("add_note", "Write a markdown note or prompt snippet about a subject; it becomes searchable.",
             w.AddNote, True, _write(w.add_note)),
    ToolSpec("start_session", "Open a working session (planning, execution, …). Later tool calls through this "
             "connection are logged as its events until end_session.", w.StartSession, True, _start_session),
    ToolSpec("log_event", "Record an event of a running session. Notes and decisions (prose under payload.text) "
             "become searchable memory.", w.LogEvent, True, _write(w.log_event)),
    ToolSpec("log_messages", "Record the messages of a conversation in a running session, in order: each "
             "{text, speaker or role, at?, id?, person?}, or as chat logs write it ({role, content as text or "
             "parts, name?, tool_calls?, tool_call_id?}: tool calls are written out in the text). "
             "A message whose id the session already holds is skipped. "
             "A speaker is linked to the erp.people row whose full (or unique first) name it is. "
             "They become searchable with who said them and when.", cv.LogMessages, True, _write(cv.log_messages)),
    ToolSpec("end_session", "Close a session as completed or failed, with a summary.", w.EndSession, True,
             _end_session),
    ToolSpec("promote_event", "Turn a session event (a note or decision) into a durable fact, linked to it.",
             w.PromoteEvent, True, _write(w.promote_event)),
)

READ_TOOLS = tuple(t.name for t in TOOLS if not t.writes)
BY_NAME = {t.name: t for t in TOOLS}


def schema(spec: ToolSpec) -> dict[str, Any]:
    return spec.args.model_json_schema()


def jsonable(value: Any) -> Any:
    """Rows hold timestamps and numerics: the JSON an MCP client receives."""
    return json.loads(json.dumps(value, default=json_default))
