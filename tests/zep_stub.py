"""A small Zep server for the tests (no Zep server can run on these machines): exactly the
/api/v2 endpoints memsync's mirror uses, with request bodies checked against what the
installed zep-python client sends (its parameter names; messages parsed with its own Message
model) and answers built from its response models (User, Session, Message, Memory, ...).
It can be told to fail: every request with a status (an outage), or the next N requests."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from zep_python.core.pydantic_utilities import pydantic_v1
from zep_python.types import (
    ApiError,
    Fact,
    Memory,
    Message,
    MessageListResponse,
    Session,
    SuccessResponse,
    User,
    UserListResponse,
)

USER_FIELDS = {"email", "first_name", "last_name", "metadata", "user_id"}
SESSION_FIELDS = {"session_id", "user_id", "metadata", "fact_rating_instruction"}
MEMORY_FIELDS = {"messages", "fact_instruction", "summary_instruction"}


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Problem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ZepStub:
    def __init__(self, api_key: str | None = None):
        self.api_key = api_key
        self.users: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.facts: dict[str, list[dict[str, Any]]] = {}  # session -> facts Zep "extracted"
        self.requests: list[tuple[str, str]] = []
        self.fail_status: int | None = None  # every request fails with this while set
        self.fail_next = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                stub._handle(self)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ZepStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_fact(self, session_id: str, text: str) -> str:
        fid = str(uuid.uuid4())
        self.facts.setdefault(session_id, []).append({"uuid": fid, "fact": text, "created_at": now(), "rating": 0.8})
        return fid

    # ------------------------------------------------------------ dispatch

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        length = int(h.headers.get("content-length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        with self.lock:
            self.requests.append((h.command, url.path))
            try:
                if self.fail_status is not None or self.fail_next > 0:
                    self.fail_next = max(0, self.fail_next - 1)
                    raise Problem(self.fail_status or 500, "injected failure")
                if self.api_key is not None and h.headers.get("authorization") != f"Api-Key {self.api_key}":
                    raise Problem(401, "bad api key")
                if not url.path.startswith("/api/v2/"):
                    raise Problem(404, f"no route {url.path}")
                status, out = self._route(h.command, url.path[len("/api/v2/"):], parse_qs(url.query), body)
            except Problem as p:
                status, out = p.status, ApiError(message=str(p))
        data = json.dumps(out.dict(by_alias=True, exclude_none=True) if hasattr(out, "dict")
                          else [[s.dict(by_alias=True, exclude_none=True) for s in g] for g in out]).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _fields(body: Any, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Problem(400, "a JSON object body is required")
        unknown = set(body) - allowed
        if unknown:
            raise Problem(400, f"unknown fields {sorted(unknown)}")
        for r in required:
            if not body.get(r):
                raise Problem(400, f"{r} is required")
        return body

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        m = re.fullmatch(r"users/([^/]+)(/sessions)?", path)
        if path == "users" and method == "POST":
            b = self._fields(body, USER_FIELDS, ("user_id",))
            if b["user_id"] in self.users:
                raise Problem(400, "user exists")
            self.users[b["user_id"]] = {**b, "uuid": str(uuid.uuid4()), "created_at": now()}
            return 201, pydantic_v1.parse_obj_as(User, self.users[b["user_id"]])
        if path == "users-ordered" and method == "GET":
            users = [pydantic_v1.parse_obj_as(User, u) for u in self.users.values()]
            size = int(query.get("page_size", ["100"])[0])
            return 200, UserListResponse(users=users[:size], total_count=len(users), row_count=min(size, len(users)))
        if m:
            uid = m.group(1)
            if uid not in self.users:
                raise Problem(404, f"user {uid} not found")
            if m.group(2) and method == "GET":
                sessions = [pydantic_v1.parse_obj_as(Session, s) for s in self.sessions.values() if s.get("user_id") == uid]
                return 200, [sessions]  # the client's model: List[List[Session]]
            if method == "GET":
                return 200, pydantic_v1.parse_obj_as(User, self.users[uid])
            if method == "PATCH":
                b = self._fields(body, USER_FIELDS - {"user_id"})
                self.users[uid].update(b)
                return 200, pydantic_v1.parse_obj_as(User, self.users[uid])
            if method == "DELETE":
                del self.users[uid]
                return 200, SuccessResponse(message="deleted")
        if path == "sessions" and method == "POST":
            b = self._fields(body, SESSION_FIELDS, ("session_id",))
            if b.get("user_id") is not None and b["user_id"] not in self.users:
                raise Problem(404, "user not found")
            self.sessions[b["session_id"]] = {**b, "uuid": str(uuid.uuid4()), "created_at": now()}
            self.messages.setdefault(b["session_id"], [])
            return 201, pydantic_v1.parse_obj_as(Session, self.sessions[b["session_id"]])
        m = re.fullmatch(r"sessions/([^/]+)(/memory|/messages(?:/([^/]+))?)?", path)
        if m:
            sid, sub, mid = m.group(1), m.group(2), m.group(3)
            if sid not in self.sessions:
                raise Problem(404, f"session {sid} not found")
            if sub is None and method == "GET":
                return 200, pydantic_v1.parse_obj_as(Session, self.sessions[sid])
            if sub is None and method == "PATCH":
                b = self._fields(body, {"metadata", "fact_rating_instruction"})
                self.sessions[sid]["metadata"] = b.get("metadata")
                return 200, pydantic_v1.parse_obj_as(Session, self.sessions[sid])
            if sub == "/memory" and method == "POST":
                b = self._fields(body, MEMORY_FIELDS)
                for raw in b.get("messages") or []:
                    msg = pydantic_v1.parse_obj_as(Message, raw)  # the client's own model
                    if not msg.content or not msg.role_type:
                        raise Problem(400, "a message needs content and role_type")
                    self.messages[sid].append({**msg.dict(by_alias=True, exclude_none=True),
                                               "uuid": str(uuid.uuid4()), "created_at": now()})
                return 200, SuccessResponse(message="ok")
            if sub == "/memory" and method == "GET":
                return 200, Memory(messages=[pydantic_v1.parse_obj_as(Message, x) for x in self.messages[sid]],
                                   relevant_facts=[pydantic_v1.parse_obj_as(Fact, f) for f in self.facts.get(sid, [])])
            if sub == "/memory" and method == "DELETE":
                self.messages[sid] = []
                self.sessions[sid]["deleted_at"] = now()
                return 200, SuccessResponse(message="deleted")
            if sub == "/messages" and method == "GET":
                limit = int(query.get("limit", ["100"])[0])
                msgs = [pydantic_v1.parse_obj_as(Message, x) for x in self.messages[sid][:limit]]
                return 200, MessageListResponse(messages=msgs, total_count=len(self.messages[sid]), row_count=len(msgs))
            if mid is not None and method == "PATCH":
                b = self._fields(body, {"metadata"})
                for x in self.messages[sid]:
                    if x["uuid"] == mid:
                        x["metadata"] = {**(x.get("metadata") or {}), **(b.get("metadata") or {})}
                        return 200, pydantic_v1.parse_obj_as(Message, x)
                raise Problem(404, "message not found")
        raise Problem(404, f"no route {method} {path}")
