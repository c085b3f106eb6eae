"""`memsync health`: is this deployment doing its job? The database reachable and
migrated, every configured index answering, the queue moving (backlog and oldest pending
age under thresholds) and no dead letters beyond what is tolerated. Judging (`evaluate`) is
pure; `gather` does the I/O and never raises: a failure is a failed check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from memsync.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Facts:
    """What gather() found; None where it could not look."""

    database_error: str | None
    pending_migrations: tuple[str, ...] | None  # None: unreadable (migration_error says why)
    index_errors: dict[str, str | None]  # index name -> its error, None when it answered
    pending: int | None
    oldest_pending_seconds: float | None
    dead: int | None
    migration_error: str | None = None
    mirrors: dict[str, dict[str, Any]] = field(default_factory=dict)  # mirror -> its queue's backlog
    live: dict[str, dict[str, int]] | None = None  # queue name -> live workers and their restarts


def evaluate(f: Facts, s: Settings) -> list[Check]:
    checks = [Check("database", f.database_error is None, f.database_error or "reachable")]
    if f.database_error is not None:
        return checks
    pm = f.pending_migrations or ()
    if f.migration_error is not None:
        checks.append(Check("migrations", False, f.migration_error))
    else:
        checks.append(Check("migrations", not pm, f"pending: {', '.join(pm)}; run `memsync db migrate`" if pm
                            else "up to date"))
    for name, err in f.index_errors.items():
        checks.append(Check(f"index:{name}", err is None, err or "answering"))
    if f.pending is not None:
        checks.append(Check("backlog", f.pending <= s.health_max_backlog,
                            f"{f.pending} pending (limit {s.health_max_backlog})"))
        age = f.oldest_pending_seconds or 0.0
        checks.append(Check("oldest_pending", age <= s.health_max_age_seconds,
                            f"{age:.0f}s (limit {s.health_max_age_seconds:.0f}s)"))
    if f.dead is not None:
        checks.append(Check("dead_letters", f.dead <= s.health_max_dead,
                            f"{f.dead} dead-lettered (limit {s.health_max_dead}; `memsync status` lists them, "
                            "`memsync retry` requeues)" if f.dead else "none"))
    for name, b in f.mirrors.items():
        age = float(b["oldest_pending_seconds"] or 0.0)
        checks.append(Check(f"mirror:{name}", age <= s.health_max_age_seconds and int(b["dead"]) <= s.health_max_dead,
                            f"{b['pending']} pending, oldest {age:.0f}s (limit {s.health_max_age_seconds:.0f}s), "
                            f"{b['dead']} dead-lettered (limit {s.health_max_dead}; "
                            f"`memsync retry --mirror {name}` requeues)"))
    if f.live and f.live.get("outbox", {}).get("workers"):
        # `memsync run` is up: each of its loops must be too (a mirror's crashed loop is
        # restarted; one that is not running at all is a fault)
        for name in f.mirrors:
            loop = f.live.get(f"mirror {name}", {"workers": 0, "restarts": 0})
            checks.append(Check(f"loop:mirror {name}", loop["workers"] > 0,
                                f"{loop['workers']} live, restarted {loop['restarts']} times" if loop["workers"]
                                else "no live loop drains it while sync workers run"))
    return checks


def gather(settings: Settings) -> Facts:
    from memsync import runtime
    from memsync.errors import MemsyncError
    from memsync.index.registry import INDEXES, MIRRORS
    from memsync.storage import migrate
    from memsync.storage.db import connect, queue
    from memsync.storage.db import workers as registry

    try:
        dsn = runtime.resolve_dsn(settings)
        connect(dsn).close()
    except Exception as exc:
        return Facts(_why(exc), None, {}, None, None, None)
    migration_error = None
    try:
        pending_migrations: tuple[str, ...] | None = tuple(
            m.name for m in migrate.status(dsn) if m.state == "pending")
    except MemsyncError as exc:
        pending_migrations, migration_error = None, _why(exc)
    errors: dict[str, str | None] = {}
    for name in settings.mirrors:
        try:
            MIRRORS[name].open(settings).probe()
            errors[name] = None
        except Exception as exc:
            errors[name] = _why(exc)
    for name in (n for n in settings.indexes if n in INDEXES):
        try:
            index = INDEXES[name].open(settings, dsn)
            try:
                index.probe()
            finally:
                close = getattr(index, "close", None)
                if close is not None:
                    close()
            errors[name] = None
        except Exception as exc:
            errors[name] = _why(exc)
    pending = oldest = dead = None
    mirrors: dict[str, dict[str, Any]] = {}
    live: dict[str, dict[str, int]] | None = None
    if pending_migrations == ():
        try:
            with connect(dsn, autocommit=True) as conn:
                b = queue.backlog(conn, queue.OUTBOX)
                mirrors = {name: queue.backlog(conn, queue.mirror(name)) for name in settings.mirrors}
                live = {}
                for w in registry.alive_on(conn, None, alive_within(settings)):
                    loop = live.setdefault(w["queue"], {"workers": 0, "restarts": 0})
                    loop["workers"] += 1
                    loop["restarts"] += int(w["restarts"])
            pending, dead = int(b["pending"]), int(b["dead"])
            oldest = float(b["oldest_pending_seconds"]) if b["oldest_pending_seconds"] is not None else None
        except Exception as exc:
            errors["queue"] = _why(exc)
    return Facts(None, pending_migrations, errors, pending, oldest, dead, migration_error, mirrors, live)


# ------------------------------------------------------------------ one container's own liveness
# A container's health check judges that container, not the deployment: one dead letter or
# an old backlog must not mark every worker and the MCP server unhealthy at once.

STALE_BEATS = 3  # a worker that missed this many heartbeats is not alive


def alive_within(settings: Settings) -> float:
    """Seconds since its last heartbeat within which a worker still counts as alive."""
    from memsync.loop import heartbeat_seconds

    return STALE_BEATS * heartbeat_seconds(settings.lease_seconds) + 5


def worker_here(settings: Settings, host: str) -> Check:
    """A sync worker of this host holds its liveness lock and heartbeats (`memsync run`
    beats every lease/4 seconds, at most 10)."""
    from memsync import runtime
    from memsync.storage.db import connect
    from memsync.storage.db import workers as registry

    try:
        with connect(runtime.resolve_dsn(settings), autocommit=True) as conn:
            rows = registry.alive_on(conn, host, alive_within(settings))
    except Exception as exc:
        return Check("worker", False, _why(exc))
    if not rows:
        return Check("worker", False, f"no live, heartbeating worker on host {host!r}")
    return Check("worker", True, f"{len(rows)} live on {host!r}: {', '.join(r['id'] for r in rows)}")


def http_answers(url: str, timeout: float = 5.0) -> Check:
    """The endpoint answers HTTP at all (a 401 for a request without the bearer token means
    the server is up and guarding its door)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return Check("http", True, f"{url} answered {resp.status}")
    except urllib.error.HTTPError as exc:
        return Check("http", True, f"{url} answered {exc.code}")
    except Exception as exc:
        return Check("http", False, f"{url}: {_why(exc)}")


def _why(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
