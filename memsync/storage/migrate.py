"""Migration runner: numbered SQL files applied in order, each in its own transaction,
under an advisory lock, recorded with a checksum. Hand-written because it is ~100 lines
and the rules (additive files, refuse edited history) are the whole point."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from memsync.errors import MigrationError
from memsync.storage.db import connect
from memsync.storage.db import migrations as q

log = logging.getLogger(__name__)
NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parents[1]  # the memsync package
    for candidate in (here.parent / "migrations", here / "_migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError(f"no migrations folder beside {here}")


@dataclass(frozen=True)
class Migration:
    name: str
    path: Path
    checksum: str

    @property
    def body(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Status:
    name: str
    state: str  # 'applied' | 'pending'
    applied_at: str | None


def discover(folder: Path) -> list[Migration]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        if not NAME_RE.match(path.name):
            raise MigrationError(f"{path}: migration names must look like 0001_name.sql")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found.append(Migration(path.name, path, digest))
    numbers = [m.name[:4] for m in found]
    if len(numbers) != len(set(numbers)):
        raise MigrationError(f"two migrations in {folder} share a number: {numbers}")
    return found


def plan(files: list[Migration], applied: dict[str, str]) -> list[Migration]:
    """Pending migrations; refuse history that was edited or lost (pure)."""
    by_name = {m.name: m for m in files}
    for name, checksum in applied.items():
        if name not in by_name:
            raise MigrationError(f"applied migration {name} is missing from the migrations folder")
        if by_name[name].checksum != checksum:
            raise MigrationError(
                f"applied migration {name} was changed after it was applied "
                f"(checksum {checksum[:12]} in the database, {by_name[name].checksum[:12]} on disk); "
                "write a new migration instead"
            )
    pending = [m for m in files if m.name not in applied]
    if pending and applied and pending[0].name < max(applied):
        raise MigrationError(
            f"{pending[0].name} sorts before the last applied migration {max(applied)}; renumber it"
        )
    return pending


def migrate(dsn: str, folder: Path | None = None) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date)."""
    files = discover(folder or migrations_dir())
    done: list[str] = []
    with connect(dsn, autocommit=True) as conn:
        q.lock(conn)
        try:
            q.bootstrap(conn)
            applied = {n: r["checksum"] for n, r in q.applied(conn).items()}
            for mig in plan(files, applied):
                log.info("applying %s", mig.name)
                try:
                    q.apply(conn, mig.name, mig.checksum, mig.body)
                except psycopg.Error as exc:
                    raise MigrationError(f"{mig.name} failed: {exc}".strip()) from exc
                done.append(mig.name)
        finally:
            q.unlock(conn)
    from memsync.write import sources

    sources.install_triggers(dsn)
    return done


def status(dsn: str, folder: Path | None = None) -> list[Status]:
    files = discover(folder or migrations_dir())
    with connect(dsn, autocommit=True) as conn:
        applied = q.applied(conn)
    plan(files, {n: r["checksum"] for n, r in applied.items()})
    return [
        Status(m.name, "applied", applied[m.name]["applied_at"].isoformat())
        if m.name in applied
        else Status(m.name, "pending", None)
        for m in files
    ]
