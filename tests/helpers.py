"""Helpers the integration tests share: counting rows, waiting on a condition (never a
bare sleep), the CLI as a subprocess and its environment, a database migrated as an older
release left it, and the plans of the statements a function runs."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from psycopg import sql

from memsync.storage.db import DictConn

CLI = [sys.executable, "-m", "memsync.faces.cli"]


def count(conn: DictConn, q: str, params: Any = None) -> int:
    """The `n` column of a one-row query."""
    row = conn.execute(q, params).fetchone()
    return int(row["n"]) if row else 0


def wait_for(pred: Callable[[], Any], timeout: float = 60.0, step: float = 0.05, *,
             tolerate: bool = False) -> float:
    """Poll until pred() is true; returns the seconds it took. `tolerate`: an exception from
    pred (a server restarting) counts as not yet."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if pred():
                return time.monotonic() - start
        except Exception:
            if not tolerate:
                raise
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def env_for(dsn: str, **extra: str) -> dict[str, str]:
    """The CLI's environment: memsync's defaults (lease, attempts, backoff), the fast
    deterministic model."""
    return {**os.environ, "MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_LOG_LEVEL": "WARNING",
            **extra}


def drain(dsn: str, settings: Any, embedder: Any = None, indexes: list[Any] | None = None) -> Any:
    """One `run --once` of a sync worker on `dsn` (the fake embedder and pgvector unless
    given); returns its totals."""
    from memsync.embed import HashingEmbedder
    from memsync.index.pgvector import PgvectorIndex
    from memsync.write.worker import Worker

    return Worker(settings.model_copy(update={"dsn": dsn}), dsn, embedder or HashingEmbedder(),
                  [PgvectorIndex(dsn)] if indexes is None else indexes).run_once()


def migrate_before(dsn: str, name: str, folder: Path) -> None:
    """Migrate `dsn` with the shipped files that sort before `name` (copied into `folder`),
    and the capture triggers the code of that time installed: a row trigger for inserts too
    (today's statement-level one calls a function of migration 0028)."""
    from memsync.storage import migrate
    from memsync.storage.db import capture

    folder.mkdir()
    for f in sorted(migrate.migrations_dir().glob("*.sql")):
        if f.name < name:
            shutil.copy(f, folder / f.name)
    real = capture.install_source_triggers
    capture.install_source_triggers = lambda *a, inserted=None, **k: real(*a, **k)  # type: ignore[assignment]
    try:
        migrate.migrate(dsn, folder)
    finally:
        capture.install_source_triggers = real  # type: ignore[assignment]


class Explained:
    """Stands in for a connection: each statement is EXPLAINed with sequential scans off (a
    small test table would be scanned anyway), and its plan kept in `plans`, so a test sees
    whether the statement the code runs can use an index."""

    def __init__(self, conn: DictConn):
        self.conn = conn
        self.plans: list[str] = []

    def execute(self, query: Any, params: Any = None) -> Any:
        with self.conn.transaction():
            self.conn.execute("SET LOCAL enable_seqscan = off")
            rows = self.conn.execute(sql.SQL("EXPLAIN ") + (query if isinstance(query, sql.Composable)
                                                             else sql.SQL(query)), params).fetchall()
        self.plans.append("\n".join(r["QUERY PLAN"] for r in rows))
        return self.conn.execute("SELECT 1 WHERE false")  # no rows: the caller sees nothing found


# ------------------------------------------------------------------ chat apps' exports

def node(nid: str, parent: str | None, children: list[str], message: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": nid, "parent": parent, "children": children, "message": message}


def said(mid: str, role: str, parts: list[Any], at: float | None, **extra: Any) -> dict[str, Any]:
    return {"id": mid, "author": {"role": role, "name": extra.pop("name", None), "metadata": {}},
            "create_time": at, "content": {"content_type": extra.pop("content_type", "text"), "parts": parts},
            "status": "finished_successfully", "weight": 1.0, "metadata": extra.pop("metadata", {}),
            "recipient": extra.pop("recipient", "all"), **extra}


def chatgpt_conversation() -> dict[str, Any]:
    """A conversation as ChatGPT exports it: a tree whose first answer was regenerated (two
    branches), the shown one ending at current_node."""
    t = 1_683_554_160.0  # 2023-05-08 13:56 UTC
    return {
        "title": "Climbing gym plans", "create_time": t, "update_time": t + 600, "conversation_id": "c-1",
        "current_node": "a2",
        "mapping": {
            "root": node("root", None, ["sys"], None),
            "sys": node("sys", "root", ["ctx"], said("sys", "system", [""], None,
                                                     metadata={"is_visually_hidden_from_conversation": True})),
            "ctx": node("ctx", "sys", ["u1"], {"id": "ctx", "author": {"role": "user"}, "create_time": None,
                                               "content": {"content_type": "user_editable_context",
                                                           "user_profile": "I climb.", "user_instructions": ""}}),
            "u1": node("u1", "ctx", ["a1-old", "a1"], said("u1", "user", ["I went to the climbing gym today.",
                                                                       {"content_type": "image_asset_pointer",
                                                                        "asset_pointer": "file-service://x"}],
                                                         t + 10)),
            "a1-old": node("a1-old", "u1", [], said("a1-old", "assistant", ["A first answer, regenerated."], t + 20)),
            "a1": node("a1", "u1", ["code"], said("a1", "assistant", ["Nice! How did it go?"], t + 30)),
            "code": node("code", "a1", ["out"], {
                "id": "code", "author": {"role": "assistant"}, "create_time": t + 40, "recipient": "python",
                "content": {"content_type": "code", "language": "python", "text": "print(2 * 3)"}}),
            "out": node("out", "code", ["think"], {
                "id": "out", "author": {"role": "tool", "name": "python"}, "create_time": t + 41,
                "content": {"content_type": "execution_output", "text": "6"}}),
            "think": node("think", "out", ["a2"], {
                "id": "think", "author": {"role": "assistant"}, "create_time": t + 42,
                "content": {"content_type": "thoughts", "thoughts": [{"summary": "x", "content": "y"}]}}),
            "a2": node("a2", "think", [], said("a2", "assistant", ["Six routes, well done."], t + 50)),
        }}


def claude_code_log() -> list[dict[str, Any]]:
    """A Claude Code session log (~/.claude/projects/*/<session>.jsonl), one entry per line."""
    base = {"sessionId": "s-1", "cwd": "/work/app", "version": "2.0.1", "userType": "external", "isSidechain": False}
    return [
        {"type": "summary", "summary": "Fix the flaky upload test", "leafUuid": "e5"},
        {"type": "file-history-snapshot", "messageId": "m0", "snapshot": {}},
        {**base, "type": "user", "uuid": "e0", "isMeta": True, "timestamp": "2025-03-02T10:00:00Z",
         "message": {"role": "user", "content": "Caveat: the messages below were generated by local commands."}},
        {**base, "type": "user", "uuid": "e1", "parentUuid": None, "timestamp": "2025-03-02T10:00:01Z",
         "message": {"role": "user", "content": "The upload test fails one run in ten. Why?"}},
        {**base, "type": "assistant", "uuid": "e2", "parentUuid": "e1", "timestamp": "2025-03-02T10:00:04Z",
         "message": {"id": "msg_1", "role": "assistant", "model": "claude-x",
                     "content": [{"type": "thinking", "thinking": "Look at the test.", "signature": "x"}]}},
        {**base, "type": "assistant", "uuid": "e3", "parentUuid": "e2", "timestamp": "2025-03-02T10:00:05Z",
         "message": {"id": "msg_1", "role": "assistant", "content": [
             {"type": "tool_use", "id": "tu1", "name": "Read", "input": {"file_path": "tests/test_upload.py"}}]}},
        {**base, "type": "user", "uuid": "e4", "parentUuid": "e3", "timestamp": "2025-03-02T10:00:06Z",
         "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1",
                                                  "content": "def test_upload(): sleep(0.1) ..."}]}},
        {**base, "type": "system", "uuid": "s1", "timestamp": "2025-03-02T10:00:07Z", "content": "compacted"},
        {**base, "type": "assistant", "uuid": "e5", "parentUuid": "e4", "timestamp": "2025-03-02T10:00:09Z",
         "message": {"id": "msg_2", "role": "assistant",
                     "content": [{"type": "text", "text": "It sleeps instead of waiting for the upload."}]}},
    ]


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; each one's result, or the exception it
    raised, in the order given. For writers that overlap, as agents and their hooks do."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        try:
            return call()
        except Exception as exc:  # the caller asserts on it
            return exc
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))
