"""SQL for the worker registry: liveness locks, heartbeats, and what status reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memsync.storage.db import DictConn, queue
from memsync.storage.db.queue import ONLY, only_params

# the items a worker holds, in every queue
_HELD = """(SELECT claimed_by, dead_at FROM memsync.outbox WHERE claimed_by IS NOT NULL
            UNION ALL SELECT claimed_by, dead_at FROM memsync.mirror_queue WHERE claimed_by IS NOT NULL)"""


def register(conn: DictConn, worker: str, host: str, pid: int, mode: str, queue: str = "outbox",
             restarts: int = 0) -> int:
    """Record the worker and take its liveness lock on `conn` (which must live exactly as
    long as the worker); `restarts`: how often its loop crashed and was started again before
    it. Rows of workers long gone are pruned on the way."""
    with conn.transaction():
        conn.execute(
            f"""DELETE FROM memsync.workers w
                WHERE w.heartbeat_at < now() - interval '1 day'
                  AND w.id NOT IN (SELECT memsync.live_workers())
                  AND NOT EXISTS (SELECT 1 FROM {_HELD} h WHERE h.claimed_by = w.id)""")
        row = conn.execute(
            """INSERT INTO memsync.workers (id, host, pid, lock_key, mode, queue, restarts)
               VALUES (%s, %s, %s, nextval('memsync.worker_lock_key'), %s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL
               RETURNING lock_key""",
            (worker, host, pid, mode, queue, restarts),
        ).fetchone()
    assert row is not None
    key = int(row["lock_key"])
    conn.execute("SELECT pg_advisory_lock(memsync.worker_lock_class(), %s)", (key,))
    return key


def heartbeat(conn: DictConn, worker: str, lease_seconds: float | None) -> int:
    """Mark the worker alive; with a lease, renew the leases of the items it holds (its
    batch is still making progress). Returns the number of leases renewed."""
    conn.execute("UPDATE memsync.workers SET heartbeat_at = now() WHERE id = %s", (worker,))
    if lease_seconds is None:
        return 0
    return queue.renew(conn, worker, lease_seconds)


def prune_ack_lag(conn: DictConn, keep: int = 10000) -> None:
    conn.execute(
        """DELETE FROM memsync.ack_lag WHERE acked_at < (SELECT acked_at FROM memsync.ack_lag
                                                         ORDER BY acked_at DESC OFFSET %s LIMIT 1)""",
        (keep,),
    )


def stopped(conn: DictConn, worker: str, key: int) -> None:
    conn.execute("UPDATE memsync.workers SET stopped_at = now(), heartbeat_at = now() WHERE id = %s", (worker,))
    conn.execute("SELECT pg_advisory_unlock(memsync.worker_lock_class(), %s)", (key,))


def listing(conn: DictConn, recent_seconds: float = 3600) -> list[dict[str, Any]]:
    """Live workers, and dead ones that stopped or were last seen within `recent_seconds`
    or still hold items."""
    return conn.execute(
        f"""WITH live AS (SELECT memsync.live_workers() AS id),
                held AS (SELECT claimed_by AS id, count(*) AS items FROM {_HELD} h
                          WHERE dead_at IS NULL GROUP BY claimed_by)
           SELECT w.id, w.host, w.pid, w.mode, w.queue, w.restarts, w.started_at, w.heartbeat_at, w.stopped_at,
                  w.id IN (SELECT id FROM live) AS alive, coalesce(h.items, 0) AS items_held
             FROM memsync.workers w LEFT JOIN held h ON h.id = w.id
            WHERE w.id IN (SELECT id FROM live) OR h.items > 0
               OR w.heartbeat_at > now() - make_interval(secs => %s)
            ORDER BY w.started_at""",
        (recent_seconds,),
    ).fetchall()


def backlog_by_table(conn: DictConn) -> dict[str, int]:
    rows = conn.execute(
        "SELECT source_table, count(*) AS n FROM memsync.outbox WHERE dead_at IS NULL"
        " GROUP BY source_table ORDER BY source_table").fetchall()
    return {r["source_table"]: int(r["n"]) for r in rows}


def lag(conn: DictConn, last: int = 1000) -> dict[str, Any]:
    row = conn.execute(
        """SELECT count(*) AS n,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_seconds) AS p50_seconds,
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_seconds) AS p99_seconds
             FROM (SELECT lag_seconds FROM memsync.ack_lag ORDER BY acked_at DESC LIMIT %s) x""",
        (last,),
    ).fetchone()
    return dict(row) if row else {"n": 0, "p50_seconds": None, "p99_seconds": None}


def leftovers(conn: DictConn, ids: list[int]) -> list[dict[str, Any]]:
    """Of these outbox items, the ones still there and why: dead-lettered, held by a live
    worker, backing off after a failure, or ready."""
    return conn.execute(
        """SELECT o.id, o.source_table, o.source_id, o.attempts, o.deferrals, o.last_error, o.claimed_by,
                  CASE WHEN o.dead_at IS NOT NULL THEN 'dead_lettered'
                       WHEN o.claimed_by IS NOT NULL AND o.claimed_until >= now()
                            AND o.claimed_by IN (SELECT memsync.live_workers()) THEN 'held_by_live_worker'
                       WHEN o.available_at > now() THEN 'backing_off'
                       ELSE 'ready' END AS reason,
                  extract(epoch FROM greatest(o.available_at - now(), interval '0')) AS retry_in_seconds
             FROM memsync.outbox o WHERE o.id = ANY(%s) ORDER BY o.id""",
        (ids,),
    ).fetchall()


def pending_ids(conn: DictConn, only: Sequence[tuple[str, int]] | None = None) -> list[int]:
    """Items a drain is asked to process: everything not dead-lettered (of these source rows)."""
    rows = conn.execute(f"SELECT o.id FROM memsync.outbox o WHERE o.dead_at IS NULL AND {ONLY}",
                        only_params(only)).fetchall()
    return [r["id"] for r in rows]


def alive_on(conn: DictConn, host: str | None, within_seconds: float) -> list[dict[str, Any]]:
    """Workers of `host` (None: any host) that hold their liveness lock and heartbeated
    within the window."""
    return conn.execute(
        """SELECT w.id, w.queue, w.restarts, w.heartbeat_at FROM memsync.workers w
            WHERE (%s::text IS NULL OR w.host = %s) AND w.stopped_at IS NULL
              AND w.heartbeat_at > now() - make_interval(secs => %s)
              AND w.id IN (SELECT memsync.live_workers())""",
        (host, host, within_seconds),
    ).fetchall()
