"""Sync tokens: read-your-writes for agents. Every write returns a token naming the source
rows it changed and when; a read given the token first waits until the outbox holds none
of those changes (each is indexed, or dead-lettered, which fails the wait at once).

The waiter LISTENs on the channel the worker notifies when items leave the queue, so it
wakes at ack time; the periodic re-check only covers a notification lost to a reconnect."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memsync.errors import TokenError
from memsync.storage.db import DictConn, capture, queue
from memsync.storage.db import memory as q

PREFIX = "mst1."
RECHECK_SECONDS = 1.0  # safety net only: the notification is what wakes a waiter
DEFAULT_WAIT_MS = 5000


@dataclass(frozen=True)
class SyncToken:
    """(source table, row id, written at) for each change a write made."""

    changes: tuple[tuple[str, int, datetime], ...] = ()

    @classmethod
    def of(cls, at: datetime, rows: Iterable[tuple[str, int]]) -> SyncToken:
        return cls(tuple((t, int(i), at) for t, i in rows))

    def merge(self, other: SyncToken | None) -> SyncToken:
        """Both tokens' changes; per row, the later write (waiting for it covers the earlier)."""
        if other is None:
            return self
        latest: dict[tuple[str, int], datetime] = {}
        for t, i, at in (*self.changes, *other.changes):
            latest[(t, i)] = max(at, latest.get((t, i), at))
        return SyncToken(tuple((t, i, at) for (t, i), at in sorted(latest.items())))

    def encode(self) -> str:
        data = [[t, i, at.isoformat()] for t, i, at in self.changes]
        return PREFIX + base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()

    def __str__(self) -> str:
        return self.encode()

    @classmethod
    def decode(cls, text: str | SyncToken | None) -> SyncToken:
        if text is None:
            return cls()
        if isinstance(text, SyncToken):
            return text
        if not isinstance(text, str) or not text.startswith(PREFIX):
            raise TokenError(f"after: {str(text)[:40]!r} is not a memsync sync token (they start with {PREFIX!r})")
        try:
            data = json.loads(base64.urlsafe_b64decode(text[len(PREFIX):].encode()))
            return cls(tuple((str(t), int(i), datetime.fromisoformat(at)) for t, i, at in data))
        except (ValueError, TypeError) as exc:
            raise TokenError(f"after: the sync token is damaged ({exc})") from None


def merged(tokens: Sequence[SyncToken | None]) -> SyncToken:
    out = SyncToken()
    for t in tokens:
        out = out.merge(t)
    return out


def wait(conn: DictConn, token: SyncToken, wait_ms: int = DEFAULT_WAIT_MS) -> list[dict[str, Any]]:
    """Wait until every change the token names is synced; returns what is still pending at
    the deadline (empty: all synced). A dead-lettered change ends the wait at once: it will
    not sync until someone retries it. `conn` must be in autocommit mode."""
    pending = q.unsynced(conn, token.changes)
    if not pending or any(p["dead"] for p in pending) or wait_ms <= 0:
        return pending
    deadline = time.monotonic() + wait_ms / 1000
    capture.listen(conn, queue.SYNCED_CHANNEL)
    try:
        while True:
            pending = q.unsynced(conn, token.changes)  # after LISTEN: an ack in between is not missed
            left = deadline - time.monotonic()
            if not pending or any(p["dead"] for p in pending) or left <= 0:
                return pending
            for _ in conn.notifies(timeout=min(left, RECHECK_SECONDS), stop_after=1):
                pass
    finally:
        capture.unlisten(conn, queue.SYNCED_CHANNEL)


def describe(pending: list[dict[str, Any]]) -> str:
    parts = []
    for p in pending[:10]:
        state = ("dead-lettered: " + str(p["last_error"] or "")[:200]) if p["dead"] else (
            f"held by {p['claimed_by']}" if p["claimed_by"] else "queued")
        parts.append(f"{p['table']}#{p['id']} ({state})")
    more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
    return "; ".join(parts) + more
