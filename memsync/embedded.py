"""The embedded default database: PostgreSQL 16 + pgvector started with pgserver, data
under MEMSYNC_HOME. The server outlives the process that started it, so the daemon, the
CLI and an agent's process all attach to the same one."""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path

from memsync.errors import DatabaseError

log = logging.getLogger(__name__)
DATABASE = "memsync"


def pgdata_dir(home: Path) -> Path:
    return home / "pgdata"


def server_uri(home: Path, database: str = DATABASE) -> str:
    """Start the embedded server if needed (or attach to the running one); return a DSN
    for `database`, creating that database on first use."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver  # heavy import; only the embedded path needs it

    pgdata = pgdata_dir(home)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
    except Exception as exc:  # pgserver raises bare asserts and CalledProcessError
        raise DatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    from memsync.db import ensure_database

    if ensure_database(server.get_uri(), database):
        log.info("created database %s", database)
    return str(server.get_uri(database))


def is_running(home: Path) -> bool:
    pid_file = pgdata_dir(home) / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def stop(home: Path) -> bool:
    """Stop the embedded server; False when it was not running."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

    pgdata = pgdata_dir(home)
    if not is_running(home):
        return False
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError as exc:
        raise DatabaseError(f"could not stop the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return True
