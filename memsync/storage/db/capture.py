"""SQL for change capture: trigger installation, outbox claim / ack / fail, LISTEN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from memsync.storage.db import DictConn

CHANNEL = "memsync_outbox"
# Notified when items leave the queue (acked or dead-lettered): read-your-writes waiters
# (memsync/write/tokens.py) wake on it instead of polling.
SYNCED_CHANNEL = "memsync_synced"


def _table(name: str) -> sql.Composable:
    schema, table = name.split(".", 1)
    return sql.Identifier(schema, table)


def install_source_triggers(conn: DictConn, table: str, columns: tuple[str, ...], func: str,
                            only: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> None:
    """Idempotent (CREATE OR REPLACE): insert, update of content columns (only when a value
    really changed), delete, and truncate each enqueue work for `table`; with `only`
    (column, values) conditions, just for rows meeting them all (before or after)."""
    t = _table(table)
    f = sql.Identifier("memsync", func)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    old = sql.SQL(", ").join(sql.SQL("OLD.{}").format(sql.Identifier(c)) for c in columns)
    new = sql.SQL(", ").join(sql.SQL("NEW.{}").format(sql.Identifier(c)) for c in columns)

    def holds(row: str) -> sql.Composable:
        conds = [sql.SQL("{}.{} IN ({})").format(sql.SQL(row), sql.Identifier(col),
                                                 sql.SQL(", ").join(sql.Literal(v) for v in values))
                 for col, values in only]
        return sql.SQL("(") + sql.SQL(" AND ").join(conds) + sql.SQL(")") if conds else sql.SQL("true")

    for stmt in (
        sql.SQL("CREATE OR REPLACE TRIGGER memsync_capture_insert AFTER INSERT ON {} "
                "FOR EACH ROW WHEN ({}) EXECUTE FUNCTION {}()").format(t, holds("NEW"), f),
        sql.SQL("CREATE OR REPLACE TRIGGER memsync_capture_update AFTER UPDATE OF {} ON {} "
                "FOR EACH ROW WHEN (ROW({}) IS DISTINCT FROM ROW({}) AND ({} OR {})) EXECUTE FUNCTION {}()"
                ).format(cols, t, old, new, holds("OLD"), holds("NEW"), f),
        sql.SQL("CREATE OR REPLACE TRIGGER memsync_capture_delete AFTER DELETE ON {} "
                "FOR EACH ROW WHEN ({}) EXECUTE FUNCTION {}()").format(t, holds("OLD"), f),
        sql.SQL("CREATE OR REPLACE TRIGGER memsync_capture_truncate AFTER TRUNCATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION memsync.capture_truncate()").format(t),
    ):
        conn.execute(stmt)


@dataclass(frozen=True)
class Item:
    id: int
    source_table: str
    source_id: int | None
    op: str
    version: int
    attempts: int


# A claim is free when nobody holds it, its lease ran out, or another worker holds it and
# is dead (its liveness lock is gone: see 0008_worker_liveness.sql). A worker's own claims
# are never free to itself: they may be in flight while its lock is being re-taken.
_FREE = """(o.claimed_by IS NULL OR o.claimed_until < now()
             OR (o.claimed_by <> %(w)s AND o.claimed_by NOT IN (SELECT memsync.live_workers())))"""


# Restricts a query of the outbox to some source rows (`only`); NULL arrays: no restriction.
ONLY = """(%(tables)s::text[] IS NULL OR (o.source_table, o.source_id) IN
             (SELECT * FROM unnest(%(tables)s::text[], %(ids)s::bigint[])))"""


def only_params(only: Sequence[tuple[str, int]] | None) -> dict[str, Any]:
    if only is None:
        return {"tables": None, "ids": None}
    return {"tables": [t for t, _ in only], "ids": [i for _, i in only]}


def claim(conn: DictConn, worker: str, limit: int, lease_seconds: float, max_attempts: int | None = None,
          only: Sequence[tuple[str, int]] | None = None) -> list[Item]:
    """Claim ready items. SKIP LOCKED lets workers share the queue; a dead worker's claims
    are taken over at once, a hung one's when the lease runs out. Attempts count at claim
    time, so an item that kills its worker every time still reaches the dead-letter limit:
    an abandoned item already at the limit is dead-lettered instead of claimed again."""
    with conn.transaction():
        if max_attempts is not None:
            conn.execute(
                f"""UPDATE memsync.outbox o
                       SET dead_at = now(), claimed_by = NULL, claimed_until = NULL,
                           last_error = concat_ws('; ', o.last_error,
                                                  'abandoned by ' || o.claimed_by || ' on attempt ' || o.attempts)
                     WHERE o.id IN (SELECT o.id FROM memsync.outbox o
                                     WHERE o.dead_at IS NULL AND o.claimed_by IS NOT NULL
                                       AND o.attempts >= %(max)s AND {_FREE}
                                       FOR UPDATE SKIP LOCKED)""",
                {"max": max_attempts, "w": worker},
            )
        rows = conn.execute(
            f"""UPDATE memsync.outbox o
                  SET claimed_by = %(w)s,
                      claimed_until = now() + make_interval(secs => %(lease)s),
                      attempts = o.attempts + 1
                WHERE o.id IN (SELECT o.id FROM memsync.outbox o
                                WHERE o.dead_at IS NULL AND o.available_at <= now() AND {_FREE}
                                  AND {ONLY}
                                ORDER BY o.available_at, o.id
                                LIMIT %(n)s
                                FOR UPDATE SKIP LOCKED)
            RETURNING o.id, o.source_table, o.source_id, o.op, o.version, o.attempts""",
            {"w": worker, "lease": lease_seconds, "n": limit, **only_params(only)},
        ).fetchall()
    return sorted((Item(**r) for r in rows), key=lambda i: i.id)


def ack(conn: DictConn, item: Item, worker: str) -> bool:
    """Delete the item if no newer change arrived meanwhile; else release it for a redo."""
    return ack_many(conn, [item], worker) == 1


def ack_many(conn: DictConn, items: list[Item], worker: str) -> int:
    """ack() for a batch in two statements; returns how many were deleted."""
    if not items:
        return 0
    deleted = conn.execute(
        """WITH gone AS (
             DELETE FROM memsync.outbox o USING unnest(%s::bigint[], %s::int[]) AS x(id, v)
              WHERE o.id = x.id AND o.version = x.v AND o.claimed_by = %s
             RETURNING o.id, o.source_table, o.enqueued_at),
           lag AS (INSERT INTO memsync.ack_lag (source_table, lag_seconds)
                   SELECT source_table, extract(epoch FROM clock_timestamp() - enqueued_at) FROM gone)
           SELECT id FROM gone""",
        ([i.id for i in items], [i.version for i in items], worker),
    ).fetchall()
    gone = {r["id"] for r in deleted}
    if gone:
        notify_synced(conn)
    rest = [i.id for i in items if i.id not in gone]
    if rest:
        conn.execute(
            "UPDATE memsync.outbox SET claimed_by = NULL, claimed_until = NULL, attempts = 0"
            " WHERE id = ANY(%s) AND claimed_by = %s", (rest, worker))
    return len(gone)


def release(conn: DictConn, item: Item, worker: str) -> None:
    conn.execute(
        "UPDATE memsync.outbox SET claimed_by = NULL, claimed_until = NULL, attempts = 0"
        " WHERE id = %s AND claimed_by = %s",
        (item.id, worker),
    )


def release_worker(conn: DictConn, worker: str) -> int:
    """Hand back every claim of a worker that lost its connection, refunding the attempt
    each claim counted: a lost connection or a server restart is not the items' fault."""
    return conn.execute(
        "UPDATE memsync.outbox SET claimed_by = NULL, claimed_until = NULL, attempts = greatest(attempts - 1, 0)"
        " WHERE claimed_by = %s", (worker,)
    ).rowcount


def fail(conn: DictConn, item: Item, worker: str, error: str, max_attempts: int, backoff: float) -> bool:
    """Record a failure; dead-letter after max_attempts. True when dead-lettered."""
    row = conn.execute(
        """UPDATE memsync.outbox
              SET claimed_by = NULL, claimed_until = NULL, last_error = %(e)s,
                  available_at = now() + make_interval(secs => %(b)s * power(2, attempts - 1)),
                  dead_at = CASE WHEN attempts >= %(max)s THEN now() END
            WHERE id = %(id)s AND claimed_by = %(w)s AND version = %(v)s
        RETURNING dead_at""",
        {"e": error[:4000], "b": backoff, "max": max_attempts, "id": item.id, "w": worker, "v": item.version},
    ).fetchone()
    if row is None:  # a newer change arrived: it gets fresh attempts
        release(conn, item, worker)
        return False
    if row["dead_at"] is not None:
        notify_synced(conn)  # a waiter for it learns now that it will not sync
    return row["dead_at"] is not None


def notify_synced(conn: DictConn) -> None:
    conn.execute(sql.SQL("SELECT pg_notify({}, '')").format(sql.Literal(SYNCED_CHANNEL)))


# An index outage retries an item without counting an attempt, backing off up to this.
MAX_DEFER_SECONDS = 60.0


def defer(conn: DictConn, items: Sequence[Item], worker: str, error: str, backoff: float) -> None:
    """Give claimed items back for a later retry, refunding the attempt their claim counted:
    the failure was an index's, not theirs."""
    conn.execute(
        """UPDATE memsync.outbox
              SET claimed_by = NULL, claimed_until = NULL, last_error = %(e)s,
                  attempts = greatest(attempts - 1, 0), deferrals = deferrals + 1,
                  available_at = now() + make_interval(secs => least(%(b)s * power(2, deferrals), %(cap)s))
            WHERE id = ANY(%(ids)s) AND claimed_by = %(w)s""",
        {"e": error[:4000], "b": max(backoff, 0.1), "cap": MAX_DEFER_SECONDS,
         "ids": [i.id for i in items], "w": worker},
    )


def retry_dead(conn: DictConn, ids: list[int] | None = None) -> int:
    return conn.execute(
        """UPDATE memsync.outbox SET dead_at = NULL, attempts = 0, available_at = now(),
                  claimed_by = NULL, claimed_until = NULL
            WHERE dead_at IS NOT NULL AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))""",
        {"ids": ids},
    ).rowcount


def enqueue(conn: DictConn, table: str, source_id: int | None, op: str = "resync") -> None:
    conn.execute("SELECT memsync.enqueue(%s, %s, %s)", (table, source_id, op))


def enqueue_all(conn: DictConn, table: str) -> int:
    """Queue every row of a source table for a resync (one statement; the NOTIFYs of one
    transaction collapse into one)."""
    row = conn.execute(
        sql.SQL("SELECT count(memsync.enqueue(%s, id, 'resync')) AS n FROM {}").format(_table(table)), (table,)
    ).fetchone()
    return int(row["n"]) if row else 0


def backlog(conn: DictConn) -> dict[str, Any]:
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE dead_at IS NULL) AS pending,
                  count(*) FILTER (WHERE dead_at IS NULL AND claimed_until > now()) AS in_progress,
                  count(*) FILTER (WHERE dead_at IS NOT NULL) AS dead,
                  EXTRACT(EPOCH FROM now() - min(first_enqueued_at) FILTER (WHERE dead_at IS NULL))
                    AS oldest_pending_seconds
             FROM memsync.outbox"""
    ).fetchone()
    assert row is not None
    return dict(row)


def dead_letters(conn: DictConn, limit: int = 50) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT id, source_table, source_id, op, attempts, last_error, dead_at
             FROM memsync.outbox WHERE dead_at IS NOT NULL ORDER BY dead_at DESC LIMIT %s""",
        (limit,),
    ).fetchall()


def listen(conn: DictConn, channel: str = CHANNEL) -> None:
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


def unlisten(conn: DictConn, channel: str) -> None:
    conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(channel)))

