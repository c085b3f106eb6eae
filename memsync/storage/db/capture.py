"""SQL for change capture: trigger installation, enqueueing into the outbox, LISTEN. The
outbox's claim / ack / fail are the one queue's (memsync/storage/db/queue.py)."""

from __future__ import annotations

from psycopg import sql

from memsync.storage.db import DictConn

CHANNEL = "memsync_outbox"


def _table(name: str) -> sql.Composable:
    schema, table = name.split(".", 1)
    return sql.Identifier(schema, table)


def install_source_triggers(conn: DictConn, table: str, columns: tuple[str, ...], func: str,
                            only: tuple[tuple[str, tuple[str, ...]], ...] = (),
                            inserted: str | None = None) -> None:
    """Idempotent (CREATE OR REPLACE): insert, update of content columns (only when a value
    really changed), delete, and truncate each enqueue work for `table`; with `only`
    (column, values) conditions, just for rows meeting them all (before or after).

    `inserted`: a statement-level function that queues a statement's new rows at once (its
    argument: the `only` condition over the row's columns, migration 0028); without it each
    inserted row runs `func`."""
    t = _table(table)
    f = sql.Identifier("memsync", func)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    old = sql.SQL(", ").join(sql.SQL("OLD.{}").format(sql.Identifier(c)) for c in columns)
    new = sql.SQL(", ").join(sql.SQL("NEW.{}").format(sql.Identifier(c)) for c in columns)

    def holds(row: str | None) -> sql.Composable:
        conds = [sql.SQL("{}{} IN ({})").format(sql.SQL(f"{row}." if row else ""), sql.Identifier(col),
                                                sql.SQL(", ").join(sql.Literal(v) for v in values))
                 for col, values in only]
        return sql.SQL("(") + sql.SQL(" AND ").join(conds) + sql.SQL(")") if conds else sql.SQL("true")

    if inserted:
        on_insert = sql.SQL("CREATE OR REPLACE TRIGGER memsync_capture_insert AFTER INSERT ON {} "
                            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {}({})"
                            ).format(t, sql.Identifier("memsync", inserted), sql.Literal(holds(None).as_string(conn)))
    else:
        on_insert = sql.SQL("CREATE OR REPLACE TRIGGER memsync_capture_insert AFTER INSERT ON {} "
                            "FOR EACH ROW WHEN ({}) EXECUTE FUNCTION {}()").format(t, holds("NEW"), f)

    for stmt in (
        on_insert,
        sql.SQL("CREATE OR REPLACE TRIGGER memsync_capture_update AFTER UPDATE OF {} ON {} "
                "FOR EACH ROW WHEN (ROW({}) IS DISTINCT FROM ROW({}) AND ({} OR {})) EXECUTE FUNCTION {}()"
                ).format(cols, t, old, new, holds("OLD"), holds("NEW"), f),
        sql.SQL("CREATE OR REPLACE TRIGGER memsync_capture_delete AFTER DELETE ON {} "
                "FOR EACH ROW WHEN ({}) EXECUTE FUNCTION {}()").format(t, holds("OLD"), f),
        sql.SQL("CREATE OR REPLACE TRIGGER memsync_capture_truncate AFTER TRUNCATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION memsync.capture_truncate()").format(t),
    ):
        conn.execute(stmt)


def enqueue(conn: DictConn, table: str, source_id: int | None, op: str = "resync") -> None:
    conn.execute("SELECT memsync.enqueue(%s, %s, %s)", (table, source_id, op))


def enqueue_all(conn: DictConn, table: str) -> int:
    """Queue every row of a source table for a resync (one statement; the NOTIFYs of one
    transaction collapse into one)."""
    row = conn.execute(
        sql.SQL("SELECT count(memsync.enqueue(%s, id, 'resync')) AS n FROM {}").format(_table(table)), (table,)
    ).fetchone()
    return int(row["n"]) if row else 0


def listen(conn: DictConn, channel: str = CHANNEL) -> None:
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


def unlisten(conn: DictConn, channel: str) -> None:
    conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(channel)))

