"""SQL for the work queues, one implementation for all of them: the outbox (what the index
sync drains) and each mirror's part of memsync.mirror_queue. The rules, after procrastinate's
job manager:

- a claim is free when nobody holds it, its lease ran out, or another worker holds it and is
  dead (its liveness lock is gone: see 0008_worker_liveness.sql), so a killed worker's items
  are taken over at once and a hung one's when the lease runs out; a worker's own claims are
  never free to itself (they may be in flight while its lock is being re-taken);
- attempts count at claim time, so an item that kills its worker every time still reaches
  the dead-letter limit;
- ack and fail check the row version: a change that arrived meanwhile is redone with fresh
  attempts, never lost nor dead-lettered for an older failure;
- an outage of the target (an index, a mirror) defers the batch with the attempt refunded,
  backing off up to MAX_DEFER_SECONDS; a row's own failure backs off exponentially and is
  dead-lettered after max_attempts; dead letters can be retried."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from memsync.storage.db import DictConn

# Notified when outbox items leave the queue (acked or dead-lettered): read-your-writes
# waiters (memsync/write/tokens.py) wake on it instead of polling.
SYNCED_CHANNEL = "memsync_synced"
# An outage retries an item without counting an attempt, backing off up to this.
MAX_DEFER_SECONDS = 60.0


@dataclass(frozen=True)
class Queue:
    """A queue table, or one mirror's part of the mirror queue."""

    table: str  # schema.name
    mirror: str | None = None  # memsync.mirror_queue rows of this mirror
    tracks_sync: bool = False  # the outbox: acks record their lag and wake read-your-writes waiters

    @property
    def name(self) -> str:
        return f"mirror {self.mirror}" if self.mirror else self.table.split(".", 1)[1]

    def ident(self) -> sql.Composable:
        schema, table = self.table.split(".", 1)
        return sql.Identifier(schema, table)

    def mine(self) -> sql.Composable:
        """The condition on `o` (the table's alias) that keeps this queue's rows."""
        return sql.SQL("o.mirror = {}").format(sql.Literal(self.mirror)) if self.mirror else sql.SQL("true")


OUTBOX = Queue("memsync.outbox", tracks_sync=True)
MIRROR_TABLE = "memsync.mirror_queue"
TABLES = ("memsync.outbox", MIRROR_TABLE)


def mirror(name: str) -> Queue:
    return Queue(MIRROR_TABLE, mirror=name)


@dataclass(frozen=True)
class Item:
    id: int
    source_table: str
    source_id: int | None
    op: str
    version: int
    attempts: int


FREE = """(o.claimed_by IS NULL OR o.claimed_until < now()
            OR (o.claimed_by <> %(w)s AND o.claimed_by NOT IN (SELECT memsync.live_workers())))"""

# Restricts a query to some source rows (`only`); NULL arrays: no restriction.
ONLY = """(%(tables)s::text[] IS NULL OR (o.source_table, o.source_id) IN
             (SELECT * FROM unnest(%(tables)s::text[], %(ids)s::bigint[])))"""


# What claim() may hand a worker now (after {mine}): one predicate, so a count of the ready
# items cannot drift from what is claimed.
READY = f"o.dead_at IS NULL AND o.available_at <= now() AND {FREE} AND {ONLY}"


def only_params(only: Sequence[tuple[str, int]] | None) -> dict[str, Any]:
    if only is None:
        return {"tables": None, "ids": None}
    return {"tables": [t for t, _ in only], "ids": [i for _, i in only]}


def _q(text: str, queue: Queue) -> sql.Composed:
    return sql.SQL(text).format(t=queue.ident(), mine=queue.mine(), free=sql.SQL(FREE), only=sql.SQL(ONLY),
                                ready=sql.SQL(READY))


def claim(conn: DictConn, queue: Queue, worker: str, limit: int, lease_seconds: float,
          max_attempts: int | None = None, only: Sequence[tuple[str, int]] | None = None) -> list[Item]:
    """Claim ready items (SKIP LOCKED: workers share the queue). An abandoned item already at
    the attempt limit is dead-lettered instead of claimed again."""
    with conn.transaction():
        if max_attempts is not None:
            conn.execute(_q(
                """UPDATE {t} o
                      SET dead_at = now(), claimed_by = NULL, claimed_until = NULL,
                          last_error = concat_ws('; ', o.last_error,
                                                 'abandoned by ' || o.claimed_by || ' on attempt ' || o.attempts)
                    WHERE o.id IN (SELECT o.id FROM {t} o
                                    WHERE {mine} AND o.dead_at IS NULL AND o.claimed_by IS NOT NULL
                                      AND o.attempts >= %(max)s AND {free}
                                      FOR UPDATE SKIP LOCKED)""", queue),
                {"max": max_attempts, "w": worker})
        rows = conn.execute(_q(
            """UPDATE {t} o
                  SET claimed_by = %(w)s, claimed_until = now() + make_interval(secs => %(lease)s),
                      attempts = o.attempts + 1
                WHERE o.id IN (SELECT o.id FROM {t} o
                                WHERE {mine} AND {ready}
                                ORDER BY o.available_at, o.id
                                LIMIT %(n)s
                                FOR UPDATE SKIP LOCKED)
            RETURNING o.id, o.source_table, o.source_id, o.op, o.version, o.attempts""", queue),
            {"w": worker, "lease": lease_seconds, "n": limit, **only_params(only)}).fetchall()
    return sorted((Item(**r) for r in rows), key=lambda i: i.id)


def ready_writes(conn: DictConn, queue: Queue, worker: str, only: Sequence[tuple[str, int]] | None = None) -> int:
    """How many items claim() could hand this worker now that write rows (inserts, updates,
    resyncs: each gives at least one block), deletions left out."""
    row = conn.execute(_q(
        """SELECT count(*) AS n FROM {t} o
            WHERE {mine} AND {ready} AND o.op IN ('insert', 'update', 'resync')""", queue),
        {"w": worker, **only_params(only)}).fetchone()
    return int(row["n"]) if row else 0


def ack(conn: DictConn, queue: Queue, item: Item, worker: str) -> bool:
    """Delete the item if no newer change arrived meanwhile; else release it for a redo."""
    return ack_many(conn, queue, [item], worker) == 1


def ack_many(conn: DictConn, queue: Queue, items: Sequence[Item], worker: str) -> int:
    """ack() for a batch in two statements; returns how many were deleted."""
    if not items:
        return 0
    gone_sql = """DELETE FROM {t} o USING unnest(%s::bigint[], %s::int[]) AS x(id, v)
                   WHERE o.id = x.id AND o.version = x.v AND o.claimed_by = %s"""
    params = ([i.id for i in items], [i.version for i in items], worker)
    if queue.tracks_sync:
        deleted = conn.execute(_q(
            "WITH gone AS (" + gone_sql + """ RETURNING o.id, o.source_table, o.enqueued_at),
                  lag AS (INSERT INTO memsync.ack_lag (source_table, lag_seconds)
                          SELECT source_table, extract(epoch FROM clock_timestamp() - enqueued_at) FROM gone)
             SELECT id FROM gone""", queue), params).fetchall()
    else:
        deleted = conn.execute(_q(gone_sql + " RETURNING o.id", queue), params).fetchall()
    gone = {r["id"] for r in deleted}
    if gone and queue.tracks_sync:
        notify_synced(conn)
    rest = [i for i in items if i.id not in gone]
    if rest:
        release(conn, queue, rest, worker)
    return len(gone)


def release(conn: DictConn, queue: Queue, items: Sequence[Item], worker: str) -> None:
    """Hand items back for a redo with fresh attempts (a newer change arrived)."""
    conn.execute(_q("UPDATE {t} o SET claimed_by = NULL, claimed_until = NULL, attempts = 0"
                    " WHERE o.id = ANY(%s) AND o.claimed_by = %s", queue), ([i.id for i in items], worker))


def release_worker(conn: DictConn, queue: Queue, worker: str) -> int:
    """Hand back every claim of a worker that lost its connection, refunding the attempt
    each claim counted: a lost connection or a server restart is not the items' fault."""
    return conn.execute(_q(
        "UPDATE {t} o SET claimed_by = NULL, claimed_until = NULL, attempts = greatest(o.attempts - 1, 0)"
        " WHERE {mine} AND o.claimed_by = %s", queue), (worker,)).rowcount


def fail(conn: DictConn, queue: Queue, item: Item, worker: str, error: str, max_attempts: int,
         backoff: float) -> bool:
    """Record a failure; dead-letter after max_attempts. True when dead-lettered."""
    row = conn.execute(_q(
        """UPDATE {t} o
              SET claimed_by = NULL, claimed_until = NULL, last_error = %(e)s,
                  available_at = now() + make_interval(secs => %(b)s * power(2, o.attempts - 1)),
                  dead_at = CASE WHEN o.attempts >= %(max)s THEN now() END
            WHERE o.id = %(id)s AND o.claimed_by = %(w)s AND o.version = %(v)s
        RETURNING o.dead_at""", queue),
        {"e": error[:4000], "b": backoff, "max": max_attempts, "id": item.id, "w": worker, "v": item.version},
    ).fetchone()
    if row is None:  # a newer change arrived: it gets fresh attempts
        release(conn, queue, [item], worker)
        return False
    if row["dead_at"] is not None and queue.tracks_sync:
        notify_synced(conn)  # a waiter for it learns now that it will not sync
    return row["dead_at"] is not None


def defer(conn: DictConn, queue: Queue, items: Sequence[Item], worker: str, error: str, backoff: float) -> None:
    """Give claimed items back for a later retry, refunding the attempt their claim counted:
    the failure was the target's, not theirs."""
    conn.execute(_q(
        """UPDATE {t} o
              SET claimed_by = NULL, claimed_until = NULL, last_error = %(e)s,
                  attempts = greatest(o.attempts - 1, 0), deferrals = o.deferrals + 1,
                  available_at = now() + make_interval(secs => least(%(b)s * power(2, o.deferrals), %(cap)s))
            WHERE o.id = ANY(%(ids)s) AND o.claimed_by = %(w)s""", queue),
        {"e": error[:4000], "b": max(backoff, 0.1), "cap": MAX_DEFER_SECONDS,
         "ids": [i.id for i in items], "w": worker})


def renew(conn: DictConn, worker: str, lease_seconds: float) -> int:
    """Extend the leases of every item the worker holds, in every queue."""
    return sum(conn.execute(_q("UPDATE {t} o SET claimed_until = now() + make_interval(secs => %s)"
                               " WHERE o.claimed_by = %s AND o.claimed_until IS NOT NULL", Queue(t)),
                            (lease_seconds, worker)).rowcount for t in TABLES)


def retry_dead(conn: DictConn, queue: Queue, ids: Sequence[int] | None = None) -> int:
    return conn.execute(_q(
        """UPDATE {t} o SET dead_at = NULL, attempts = 0, available_at = now(),
                  claimed_by = NULL, claimed_until = NULL
            WHERE {mine} AND o.dead_at IS NOT NULL AND (%(ids)s::bigint[] IS NULL OR o.id = ANY(%(ids)s))""",
        queue), {"ids": list(ids) if ids else None}).rowcount


def backlog(conn: DictConn, queue: Queue) -> dict[str, Any]:
    row = conn.execute(_q(
        """SELECT count(*) FILTER (WHERE o.dead_at IS NULL) AS pending,
                  count(*) FILTER (WHERE o.dead_at IS NULL AND o.claimed_until > now()) AS in_progress,
                  count(*) FILTER (WHERE o.dead_at IS NOT NULL) AS dead,
                  EXTRACT(EPOCH FROM now() - min(o.first_enqueued_at) FILTER (WHERE o.dead_at IS NULL))
                    AS oldest_pending_seconds
             FROM {t} o WHERE {mine}""", queue)).fetchone()
    assert row is not None
    return dict(row)


def dead_letters(conn: DictConn, queue: Queue, limit: int = 50) -> list[dict[str, Any]]:
    return conn.execute(_q(
        """SELECT o.id, o.source_table, o.source_id, o.op, o.attempts, o.last_error, o.dead_at
             FROM {t} o WHERE {mine} AND o.dead_at IS NOT NULL ORDER BY o.dead_at DESC LIMIT %s""", queue),
        (limit,)).fetchall()


def notify_synced(conn: DictConn) -> None:
    conn.execute(sql.SQL("SELECT pg_notify({}, '')").format(sql.Literal(SYNCED_CHANNEL)))
