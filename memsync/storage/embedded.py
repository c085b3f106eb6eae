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
    fresh = not (pgdata / "PG_VERSION").exists()
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
        if fresh:
            _tune(server.get_uri(), pgdata)
    except Exception as exc:  # pgserver raises bare asserts and CalledProcessError
        raise DatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    from memsync.storage.db.server import ensure_database

    if ensure_database(server.get_uri(), database):
        log.info("created database %s", database)
    return str(server.get_uri(database))


def memory_settings(ram_bytes: int) -> dict[str, str]:
    """initdb's defaults (128 MB shared buffers, 64 MB for index builds) are sized for a
    tiny machine: a vector index outgrows them at a few tens of thousands of blocks, and an
    HNSW build that does not fit maintenance_work_mem is several times slower."""
    mb = ram_bytes // (1024 * 1024)
    return {
        "shared_buffers": f"{max(128, min(2048, mb // 8))}MB",
        "maintenance_work_mem": f"{max(64, min(1024, mb // 16))}MB",
        "effective_cache_size": f"{max(512, mb // 2)}MB",
    }


def _tune(uri: str, pgdata: Path) -> None:
    """On a server this process just created (nobody else attached yet): size its memory to
    the machine, then restart it once, since shared_buffers only changes on a restart."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

    from memsync.storage.db import connect
    from memsync.storage.db.server import set_system

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    sizes = memory_settings(ram)
    with connect(uri, autocommit=True) as conn:
        set_system(conn, sizes)
    pg_ctl(["-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"], pgdata=pgdata,
           user="pgserver" if os.geteuid() == 0 else None)
    log.info("embedded PostgreSQL sized for %d MB of RAM: %s", ram // 2**20, sizes)


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
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
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
