"""`memsync mcp`: the agent face as a Model Context Protocol server (the official `mcp` SDK).

- tools (tools.py), filtered by --read-only and by the profile's agent.profile_tools;
- one prompt per context recipe, resources memsync://recipes/{name} and
  memsync://{subject_type}/{id};
- per client connection: its writes' sync token (its reads wait for them) and the session
  it started (its tool calls are logged as tool_call/tool_result events of that session);
- --scope confines every read and write to one subject's tree;
- start-up answers initialize and list_tools at once: the model (torch) loads on a
  background thread, then, unless --no-sync, an in-process sync worker starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.prompts.base import Prompt
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent
from pydantic import Field, WithJsonSchema

from memsync.app import Memsync
from memsync.errors import FieldError, InvalidInput, MemsyncError, ServerError
from memsync.faces.mcp import stdio
from memsync.faces.mcp import tools as t
from memsync.read.subjects import Confinement
from memsync.storage.db import memory as memq
from memsync.write import memory as w

log = logging.getLogger("memsync.mcp")

PAYLOAD_CAP = 2000  # characters of a tool call's arguments or result kept in its session event
# a key that names a secret ('token', 'api_key', 'x-auth-token'), not one that merely contains
# the word ('budget_tokens' is a number the audit must keep)
SECRET_KEYS = re.compile(r"(^|[_\-.])(token|secret|password|passwd|api_?key|authorization|credentials?)$", re.I)
NOT_LOGGED = ("start_session", "log_event", "log_messages", "end_session")  # they are session records themselves
NEEDS_MODEL = ("retrieve", "search")  # they embed the query (and wait for writes the local worker syncs)
MODEL_WAIT_SECONDS = 300.0
EXIT_GRACE_SECONDS = 0.3  # how long a closing server waits for its background thread
RECENT = 10  # rows of each kind a subject resource shows
MAX_SESSIONS = 10_000  # HTTP sessions whose read-your-writes state is kept (the oldest unused go first)


@dataclass
class Options:
    profile: str | None = None
    scope: str | None = None
    read_only: bool = False
    sync: bool = True


@dataclass
class Memory:
    """What the server shares between requests; the model loads behind it."""

    app: Memsync
    env: t.Env  # as built at start-up; current() is what a call runs with
    exposed: tuple[str, ...]
    scope: str | None = None
    # set once the model is loaded and (unless --no-sync) the in-process worker runs
    ready: threading.Event = field(default_factory=threading.Event)
    # set once queries can be embedded: from a checked query graph that is about a second after
    # start, before the model itself (~10 s of importing torch) has loaded
    queries_ready: threading.Event = field(default_factory=threading.Event)
    process_caller: t.Caller = field(default_factory=t.Caller)
    principals: dict[str, t.Caller] = field(default_factory=dict)
    sessions: dict[str, t.Caller] = field(default_factory=dict)  # HTTP sessions by token and Mcp-Session-Id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> t.Env:
        """The environment for one call. A scoped server computes its subject's tree again at
        every call (three small indexed queries), so a subject moved out of the tree is refused
        on the next call and one moved in is reachable, without a restart."""
        if self.scope is None:
            return self.env
        return t.Env(self.app, self.app.confinement(self.scope), self.env.profile)

    def wait_ready(self, caller: t.Caller | None = None) -> None:
        """Until a read can be served: the query path where the caller has written nothing (no
        write of theirs waits for the worker), else the model and the worker that syncs it."""
        event = self.queries_ready if caller is not None and not caller.token.changes else self.ready
        if not event.wait(MODEL_WAIT_SECONDS):
            raise ServerError(f"the embedding model is not loaded after {MODEL_WAIT_SECONDS:.0f}s; see the server log")

    def caller(self, ctx: Context) -> t.Caller:
        """Who is calling, for read-your-writes and session logging.

        stdio: the process serves exactly one client, so it is the connection. HTTP with a
        session (Mcp-Session-Id, handshake-era clients): that session. Stateless HTTP (the
        2026-07-28 protocol has no connection): the bearer token's holder; reads then wait for
        every write made with that token, and no session is tracked implicitly."""
        headers = ctx.headers
        if headers is None:
            return self.process_caller
        principal = hashlib.sha256(str(headers.get("authorization", "")).encode()).hexdigest()
        session = headers.get("mcp-session-id")
        with self.lock:
            if session:  # the SDK checked the id against its live sessions before this call
                key = f"{principal}:{session}"
                caller = self.sessions.pop(key, None) or t.Caller()
                self.sessions[key] = caller  # most recent last
                while len(self.sessions) > MAX_SESSIONS:  # ended sessions age out
                    self.sessions.pop(next(iter(self.sessions)))
                return caller
            return self.principals.setdefault(principal, t.Caller(track_session=False))


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if SECRET_KEYS.search(str(k)) else _redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _capped(value: Any) -> Any:
    safe = t.jsonable(_redact(value))
    text = json.dumps(safe)
    return safe if len(text) <= PAYLOAD_CAP else {"truncated": text[:PAYLOAD_CAP]}


def _message(exc: BaseException) -> str:
    import psycopg

    if isinstance(exc, MemsyncError):
        return str(exc)
    if isinstance(exc, psycopg.Error):
        return f"database unavailable or refused the call ({type(exc).__name__}): {str(exc).strip()[:300]}; retry"
    return f"internal error ({type(exc).__name__}): {exc}"


# ------------------------------------------------------------------ tools


def _signature(model: type[Any]) -> inspect.Signature:
    """The argument model's fields as keyword parameters. The SDK derives the tool's JSON
    schema from this signature and validates arguments against it before the handler runs,
    answering a wrong type in pydantic's own words; so each parameter carries its field's
    schema (names, types, defaults, descriptions) but accepts any value, and the handler's
    check against the model answers in memsync's ('field: message', as everywhere else)."""
    schema = _inlined(model.model_json_schema())
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for name, f in model.model_fields.items():
        default = inspect.Parameter.empty if f.is_required() else f.get_default(call_default_factory=True)
        prop = dict(schema["properties"][name])
        ann = Annotated[Any, WithJsonSchema(prop), Field(description=f.description)]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann))
    return inspect.Signature(params, return_annotation=CallToolResult)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every local $ref replaced by its definition (a parameter's schema
    travels alone, without the model's $defs)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk({**defs[ref.split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(x) for x in node]
        return node

    return walk(schema)  # type: ignore[no-any-return]


def _tool(mem: Memory, spec: t.ToolSpec) -> Any:
    async def handler(ctx: Context, **kwargs: Any) -> CallToolResult:
        caller = mem.caller(ctx)
        session = caller.session if spec.name not in NOT_LOGGED else None
        try:
            _no_unknown(ctx, spec)
            args = w.parse(spec.args, kwargs)
            if spec.name in NEEDS_MODEL and not mem.ready.is_set():
                await anyio.to_thread.run_sync(mem.wait_ready, caller)
            env = await anyio.to_thread.run_sync(mem.current)
            if session:
                await anyio.to_thread.run_sync(_log_call, mem, env, session, spec.name, "tool_call", kwargs)
            result = await anyio.to_thread.run_sync(spec.call, env, caller, args)
        except Exception as exc:
            if not isinstance(exc, MemsyncError):
                log.warning("tool %s failed: %s", spec.name, _message(exc))
            if session:
                await anyio.to_thread.run_sync(_log_call, mem, None, session, spec.name, "tool_result",
                                               {"ok": False, "error": _message(exc)})
            raise ToolError(_message(exc)) from None
        out = _result(result)
        if session:
            await anyio.to_thread.run_sync(_log_call, mem, env, session, spec.name, "tool_result",
                                           {"ok": True, "result": out.structured_content})
        return out

    handler.__signature__ = _signature(spec.args)  # type: ignore[attr-defined]
    handler.__name__ = spec.name
    return handler


def _no_unknown(ctx: Context, spec: t.ToolSpec) -> None:
    """The SDK drops arguments a tool does not declare; a misspelt option must not pass silently."""
    params = getattr(ctx.request_context, "params", None) or {}
    given = params.get("arguments") or {}
    unknown = sorted(set(given) - set(spec.args.model_fields))
    if unknown:
        raise FieldError(f"unknown argument(s) {', '.join(unknown)}; {spec.name} takes: "
                           f"{', '.join(spec.args.model_fields) or 'no arguments'}")


def _result(result: Any) -> CallToolResult:
    from memsync.read.context import ContextBundle

    if isinstance(result, ContextBundle):
        data = t.jsonable(result.to_dict())
        return CallToolResult(content=[TextContent(type="text", text=result.to_markdown())], structured_content=data)
    data = t.jsonable(result)
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(data))], structured_content=data)


def _log_call(mem: Memory, env: t.Env | None, session: str, tool: str, kind: str, payload: Any) -> None:
    """A call made inside a session becomes its event; a failure to log never fails the call."""
    try:
        env = env or mem.current()
        with mem.app.connection() as conn:
            key = "arguments" if kind == "tool_call" else "outcome"
            event = w.parse(w.LogEvent, {"session": session, "event_type": kind, "tool": tool,
                                         "payload": {"tool": tool, key: _capped(payload)}})
            w.log_event(conn, event, env.confine)
    except Exception as exc:
        log.warning("could not log %s of %s in %s: %s", kind, tool, session, _message(exc))


# ------------------------------------------------------------------ prompts and resources


def _prompts(server: MCPServer, mem: Memory) -> None:
    for r in mem.app.recipes():
        name, desc = str(r["name"]), str(r.get("description") or f"context recipe {r['name']}")

        def render(subject: str, query: str | None = None, _recipe: str = name) -> Any:
            mem.wait_ready()
            bundle = mem.app.retrieve(_recipe, subject, query=query, after=mem.process_caller.token,
                                      confine=mem.current().confine)
            return bundle.to_markdown()

        async def prompt(subject: str, query: str | None = None, _render: Any = render) -> str:
            """subject: 'project:3' or a global_id; query: what the agent is working on."""
            try:
                return str(await anyio.to_thread.run_sync(_render, subject, query))
            except MemsyncError as exc:  # the SDK replaces any other error's reason with its own line
                raise MCPError(INVALID_PARAMS, str(exc)) from None

        prompt.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
            inspect.Parameter("subject", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
            inspect.Parameter("query", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=str | None),
        ], return_annotation=str)
        server.add_prompt(Prompt.from_function(prompt, name=name, description=f"{desc} (retrieves the context "
                                               "bundle for the subject)"))


def _resources(server: MCPServer, mem: Memory) -> None:
    @server.resource("memsync://recipes/{name}", name="recipe", mime_type="application/json",
                     description="A context recipe: its latest version and retrieval spec.")
    async def recipe(name: str) -> str:
        return await _resource(mem.app.recipe, name)

    @server.resource("memsync://{subject_type}/{id}", name="subject", mime_type="application/json",
                     description="A subject (person, organization, project, engagement, task, okr): its row and "
                                 "its recent memory (current facts, notes and decisions, sessions).")
    async def subject(subject_type: str, id: str) -> str:
        return await _resource(_subject, mem, subject_type, id)


async def _resource(fn: Any, *args: Any) -> str:
    try:
        return json.dumps(t.jsonable(await anyio.to_thread.run_sync(fn, *args)))
    except Exception as exc:  # a clear resource error, never a traceback
        raise ResourceError(_message(exc)) from None


def _subject(mem: Memory, subject_type: str, sid: str) -> dict[str, Any]:
    from memsync.read.subjects import resolve

    if not sid.isdigit():
        raise InvalidInput(f"subject id {sid!r} must be a number")
    with mem.app.connection() as conn:
        subj = resolve(conn, (subject_type, int(sid)))
        confine = mem.current().confine
        if confine is not None:
            confine.check(subj.type, subj.id, f"subject {subj.key}")
        return {"subject": subj.key, "name": subj.name, "row": subj.row,
                "memory": memq.recent_memory(conn, subj.type, subj.id, RECENT)}


# ------------------------------------------------------------------ assembly


def register_tools(app: Memsync) -> int:
    """memsync's tools in agent.tools (name, description, JSON schema), for profiles to grant."""
    with app.connection() as conn:
        return memq.upsert_tools(conn, [(s.name, s.description, t.schema(s)) for s in t.TOOLS])


def build(app: Memsync, opts: Options) -> tuple[MCPServer, Memory]:
    register_tools(app)
    names = [s.name for s in t.TOOLS if not (opts.read_only and s.writes)]
    if opts.profile is not None:
        with app.connection() as conn:
            prof = memq.profile(conn, opts.profile)
            if prof is None:
                raise ServerError(f"--profile: no agent.profiles row named {opts.profile!r}")
            permitted = set(memq.profile_tools(conn, prof["id"]))
        names = [n for n in names if n in permitted]
    confine: Confinement | None = app.confinement(opts.scope) if opts.scope else None
    mem = Memory(app, t.Env(app, confine, opts.profile), tuple(names), scope=opts.scope)
    server: MCPServer = MCPServer(
        "memsync", version=_version(), log_level="WARNING",
        instructions="memsync is this user's long-term memory in Postgres. Use retrieve (with a recipe from "
                     "list_recipes) or search before answering about a person, project or engagement; remember "
                     "durable facts, log notes and decisions in a session; reads through this connection see "
                     "its own writes." + (f" Confined to {confine.subject.key} and its tree." if confine else ""),
    )
    for spec in t.TOOLS:
        if spec.name in names:
            server.add_tool(_tool(mem, spec), name=spec.name, description=spec.description)
    # profiles gate everything, not tools alone: a prompt renders a retrieve, a resource is a get
    if "retrieve" in names:
        _prompts(server, mem)
    if "get" in names:
        _resources(server, mem)
    return server, mem


def _version() -> str:
    from memsync.version import __version__

    return __version__


def warm_up(mem: Memory, sync: bool, stop: threading.Event) -> threading.Thread:
    """Load the model off the request path, then run a sync worker in this process (so an
    agent's writes become searchable without a separate daemon). `mem.ready` is set either
    way: a failed load is reported by the calls that need the model."""
    app = mem.app

    def body() -> None:
        try:
            # the query path first: from a graph an earlier start exported and checked it needs
            # no model, so reads are served while the model loads (else this loads the model and
            # exports the graph once per home)
            app.runtime.embedder.encode_query("warm up")
            mem.queries_ready.set()
            app.runtime.embedder.encode(["warm up"])
            log.info("model %s loaded", app.runtime.embedder.model_id)
        except Exception as exc:
            log.error("model load failed: %s", _message(exc))
            mem.queries_ready.set()
            mem.ready.set()
            return
        if not sync:
            mem.ready.set()
            return
        from memsync.write.worker import make_pool, run_pool

        try:
            pool = make_pool(app.runtime, 1)
            mem.ready.set()
            run_pool(pool, stop)
        except Exception as exc:  # the server keeps answering; writes wait for another worker
            mem.ready.set()
            log.error("in-process sync stopped: %s", _message(exc))

    th = threading.Thread(target=body, name="memsync-mcp-warm", daemon=True)
    th.start()
    return th


def serve(app: Memsync, opts: Options, http: tuple[str, int] | None = None) -> None:
    token = (app.settings.mcp_token or "").strip()
    if http is not None and not loopback(http[0]) and len(token) < MIN_TOKEN:
        why = "set MEMSYNC_MCP_TOKEN" if not token else f"MEMSYNC_MCP_TOKEN is shorter than {MIN_TOKEN} characters"
        raise ServerError(f"--http {http[0]}:{http[1]} is not loopback: {why} (e.g. `openssl rand -hex 24`; clients "
                          "send it as 'Authorization: Bearer <token>')")
    server, mem = build(app, opts)
    stop = threading.Event()
    background = warm_up(mem, opts.sync, stop)
    try:
        if http is None:
            with stdio.guarded():  # a malformed line gets an error response, not silence
                anyio.run(server.run_stdio_async)
        else:
            anyio.run(_serve_http, server, http, app.settings.mcp_token)
    finally:
        stop.set()
        background.join(timeout=EXIT_GRACE_SECONDS)
    if background.is_alive():
        # The client is gone (stdin closed, or SIGTERM over HTTP) while the model still loads or
        # the in-process worker is inside a batch; clients kill a server that lingers past ~2 s.
        # Leave now: a batch in flight is rolled back with the connection and its items are
        # claimed at once by the next worker (liveness locks), and interpreter teardown while
        # torch runs on another thread could abort the process.
        log.info("exiting without waiting for the model load or the in-process batch (redone by the next worker)")
        leave()


def leave() -> None:
    """End the process now, output flushed, without the interpreter's teardown: torch and ONNX
    Runtime take ~1.5 s to tear down, past the ~2 s a client gives a server before SIGTERM,
    and tearing down under a thread still in torch can abort. Connections close with it."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


MIN_TOKEN = 16  # characters a bearer token needs off loopback


def loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: only this machine can connect."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve_http(server: MCPServer, http: tuple[str, int], token: str | None) -> None:
    import uvicorn

    host, port = http
    app: Any = server.streamable_http_app(host=host)
    if token:
        app = _bearer(app, token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


def _bearer(inner: Any, token: str) -> Any:
    """ASGI wrapper: every HTTP request must carry the token (compared in constant time)."""
    import hmac

    want = f"Bearer {token}".encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            got = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(got, want):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b'{"error": "missing or wrong bearer token"}'})
                return
        await inner(scope, receive, send)

    return app
