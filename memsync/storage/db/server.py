"""SQL about the server itself (not its data): creating a database, server settings."""

from __future__ import annotations

from psycopg import sql

from memsync.storage.db import DictConn, connect


def ensure_database(admin_dsn: str, name: str) -> bool:
    """Create database `name` unless it exists; True when it was created."""
    with connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def set_system(conn: DictConn, settings: dict[str, str]) -> None:
    """ALTER SYSTEM SET each (written to postgresql.auto.conf; some need a restart)."""
    for name, value in settings.items():
        conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
