"""`memsync run`, `status` and `retry`: the sync daemon and its queue."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

import click

from memsync.faces.cli.base import _app, _settings, emit, log, main

if TYPE_CHECKING:
    pass

@main.command("run")
@click.option("--once", is_flag=True, help="Drain the outbox and exit (for cron and tests): exit 1 when items it was "
              "asked to drain are left (dead-lettered, held by a live worker, backing off), listing them.")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="With --once: how long to wait for items other live workers hold.")
@click.option("--no-wait", is_flag=True, help="With --once: do not wait for items other live workers hold.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker threads sharing one model, the model's threads divided among them [MEMSYNC_WORKERS, 1]. "
                   "For workers on several cores or machines, start `memsync run` several times.")
@click.option("--json", "as_json", is_flag=True, help="Print the totals (and, with --once, what is left) as JSON.")
@click.pass_context
def run_cmd(ctx: click.Context, once: bool, wait_seconds: float, no_wait: bool, workers: int | None,
            as_json: bool) -> None:
    """Run the sync daemon: outbox -> blocks -> embeddings -> indexes.

    SIGINT/SIGTERM finish the current batch and exit cleanly. Any number of `memsync run`
    processes, here or on other machines, share the queue; a killed one's items are taken
    over at once.
    """
    from dataclasses import asdict

    from memsync import runtime
    from memsync.storage.db import workers as registry
    from memsync.write.worker import make_pool, run_pool

    settings = _settings(ctx)
    with _app(ctx) as app:
        rt = app.runtime
        # with no MEMSYNC_MODEL, follow the model `memsync reembed` makes active
        follow = runtime.model_loader(rt.settings) if runtime.follows_active_model(settings) else None
        n = max(1, workers or rt.settings.workers)
        # load the model before taking work: a missing model fails here, not on a claimed
        # batch. A drain with nothing to drain loads nothing (torch and the model are most
        # of the start-up cost).
        if not once or _has_work(app):
            dim = rt.embedder.dim
            where = ", ".join(str(v) for v in (getattr(rt.embedder, "active_device", None),
                                                getattr(rt.embedder, "active_precision", None)) if v)
            log.info("model %s ready (dimension %d%s)", rt.embedder.model_id, dim, f"; {where}" if where else "")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        pool = make_pool(rt, n, follow)
        log.info("memsync %s: %d worker(s), model %s, indexes %s", "drain" if once else "daemon started",
                 n, rt.embedder.model_id, ",".join(i.name for i in rt.indexes))
        from memsync.mirror import worker as mirror_worker

        mirrors = mirror_worker.start(rt.settings, rt.dsn, stop, once=once)  # own queues: never hold search back
        totals = run_pool(pool, stop, once=once, wait_seconds=0.0 if no_wait else wait_seconds)
        if once and not stop.is_set():
            # as the daemon does when idle: a drain that loaded the model leaves the query graph
            # ready (once per home and model), so the first search after a cron run does not
            # load the model to export it
            pool[0].idle()
        for t in mirrors:
            t.join() if once else t.join(timeout=30)
        left: list[dict[str, Any]] = []
        if once:
            with app.connection() as conn:
                left = registry.leftovers(conn, sorted({i for w in pool for i in w.asked}))
    result = asdict(totals)
    result.pop("synced")
    if once:
        result["drained"] = not left
        result["left"] = left
    emit(result, as_json, lambda d: _run_text(d, left))
    if left:
        ctx.exit(1)


def _has_work(app: Any) -> bool:
    from memsync.storage.db import workers as registry

    with app.connection() as conn:
        return bool(registry.pending_ids(conn))


def _run_text(d: dict[str, Any], left: list[dict[str, Any]]) -> str:
    lines = [f"synced {d['acked']} items ({d['failed']} failures, {d['dead']} dead-lettered, "
             f"{d['deferred']} deferred for a down index), {d['embedded']} embeddings computed, "
             f"{d['points']} points written"]
    if left:
        reasons: dict[str, int] = {}
        for r in left:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        lines.append(f"not drained: {len(left)} items left (" +
                     ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in sorted(reasons.items())) + ")")
        for r in left[:20]:
            who = f" by {r['claimed_by']}" if r["reason"] == "held_by_live_worker" else ""
            retry = f", retry in {float(r['retry_in_seconds']):.1f}s" if r["reason"] == "backing_off" else ""
            error = f": {r['last_error'][:200]}" if r["last_error"] else ""
            lines.append(f"  #{r['id']} {r['source_table']} id={r['source_id']} {r['reason']}{who}{retry}{error}")
        if len(left) > 20:
            lines.append(f"  ... and {len(left) - 20} more (--json lists all)")
    return "\n".join(lines)


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """Backlog, dead letters, blocks and vectors per index, last sync, model."""
    with _app(ctx) as app:
        data = app.status()

    def text(d: dict[str, Any]) -> str:
        b = d["backlog"]
        age = b["oldest_pending_seconds"]
        lag = d["lag"]
        lines = [
            f"model:        {d['model']}",
            f"backlog:      {b['pending']} pending ({b['in_progress']} in progress)"
            + (f", oldest {float(age):.1f}s" if age is not None else "")
            + ("" if not d["backlog_by_table"] else
               " [" + ", ".join(f"{t}: {k}" for t, k in d["backlog_by_table"].items()) + "]"),
            "lag:          " + (f"p50 {lag['p50_seconds']:.3f}s, p99 {lag['p99_seconds']:.3f}s over the last "
                                 f"{lag['n']} items (change -> indexed)" if lag["n"] else "no items synced yet"),
            f"dead letters: {b['dead']}",
            f"blocks:       {d['blocks']}  embeddings: {d['embeddings']}",
            "vectors:      " + ", ".join(f"{k}={v}" for k, v in d["vectors"].items()),
            f"last sync:    {_last_sync(d)}",
            f"workers:      {sum(1 for w in d['workers'] if w['alive'])} alive",
        ]
        for name, m in d.get("mirrors", {}).items():
            age = m["oldest_pending_seconds"]
            lines.append(f"mirror {name}:  {m['pending']} pending" + (f", oldest {float(age):.1f}s" if age else "")
                         + f", {m['dead']} dead-lettered")
        cv = d["chunker_version"]
        if cv["older_blocks"]:
            lines.insert(5, f"chunker:      version {cv['code']}; {cv['older_blocks']} stored blocks were made by "
                            "an earlier one: run `memsync rechunk`")
        for w in d["workers"]:
            state = "alive" if w["alive"] else ("stopped" if w["stopped_at"] else "dead")
            restarts = f", restarted {w['restarts']} times" if w["restarts"] else ""
            lines.append(f"  {w['id']} ({w['queue']}, {w['mode']}, host {w['host']}, pid {w['pid']}): {state}, "
                         f"last heartbeat {w['heartbeat_at']:%Y-%m-%d %H:%M:%S%z}, {w['items_held']} items held"
                         + restarts)
        for dl in d["dead_letters"]:
            lines.append(f"  dead #{dl['id']} {dl['source_table']} id={dl['source_id']}: {dl['last_error']}")
        return "\n".join(lines)

    emit(data, as_json, text)


def _last_sync(d: dict[str, Any]) -> str:
    session = d["last_sync_session"]
    if not session:
        return "never"
    ended = session["ended_at"] or "-"
    return f"session {session['id']} {session['status']}, ended {ended}: {session['summary'] or ''}"


@main.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--mirror", metavar="NAME", help="Requeue this mirror's dead letters (e.g. zep) instead of the outbox's.")
@click.pass_context
def retry_cmd(ctx: click.Context, ids: tuple[int, ...], mirror: str | None) -> None:
    """Requeue dead-lettered items (all of them, or the ids given, as `memsync status` lists
    them) of the outbox, or of a mirror's queue."""
    with _app(ctx) as app:
        n = app.retry(ids, mirror)
    click.echo(f"requeued {n} item(s)")




@main.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--worker", "worker", is_flag=True,
              help="Only this host's own sync worker: alive and heartbeating (a worker container's health check).")
@click.option("--http", "url", metavar="URL",
              help="Only whether this HTTP endpoint answers, e.g. http://127.0.0.1:8765/mcp (the MCP container's "
                   "health check; a 401 without the token counts as up).")
@click.pass_context
def health_cmd(ctx: click.Context, as_json: bool, worker: bool, url: str | None) -> None:
    """Exit 0 when healthy, 1 when not: the database reachable and migrated, every index in
    MEMSYNC_INDEXES answering, the backlog and its oldest item's age under
    MEMSYNC_HEALTH_MAX_BACKLOG / MEMSYNC_HEALTH_MAX_AGE_SECONDS, dead letters at most
    MEMSYNC_HEALTH_MAX_DEAD: the whole deployment, for the operator and monitors.
    --worker and --http judge one container instead (its own process), for container
    health checks."""
    import socket

    from memsync.write import health

    settings = _settings(ctx)
    if worker or url:
        checks = ([health.worker_here(settings, socket.gethostname())] if worker else []) + (
            [health.http_answers(url)] if url else [])
    else:
        checks = health.evaluate(health.gather(settings), settings)
    ok = all(c.ok for c in checks)
    emit({"healthy": ok, "checks": [c.to_dict() for c in checks]}, as_json,
         lambda d: "\n".join(f"{'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}" for c in d["checks"])
         + f"\n{'healthy' if d['healthy'] else 'unhealthy'}")
    if not ok:
        ctx.exit(1)
