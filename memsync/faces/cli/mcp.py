"""`memsync mcp`: the Model Context Protocol server for agents."""

from __future__ import annotations

import click

from memsync.faces.cli.base import _app, log, main


def _host_port(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    return (host.strip("[]") or "127.0.0.1", int(port))


@main.command("mcp")
@click.option("--http", "http", callback=_host_port, metavar="HOST:PORT",
              help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio. Off loopback, "
                   "MEMSYNC_MCP_TOKEN is required and checked as a bearer token.")
@click.option("--profile", metavar="NAME", help="Act for this agent.profiles row: list and accept only the memsync "
              "tools agent.profile_tools grants it; sessions started here use it.")
@click.option("--scope", metavar="SUBJECT", help="Confine every read and write to this subject and its tree "
              "(e.g. person:12).")
@click.option("--read-only", is_flag=True, help="Expose only the read tools (retrieve, search, get, list_recipes, "
              "block_actions, status).")
@click.option("--no-sync", is_flag=True, help="Do not run a sync worker in this process (when `memsync run` runs "
              "beside it; with a Qdrant local folder, only one process may open it).")
@click.pass_context
def mcp_cmd(ctx: click.Context, http: tuple[str, int] | None, profile: str | None, scope: str | None,
            read_only: bool, no_sync: bool) -> None:
    """Serve memsync to agents over the Model Context Protocol (stdio by default).

    Tools: retrieve, search, get, list_recipes, block_actions, status, remember, forget,
    supersede, log_reflection, add_note, start_session, log_event, end_session,
    promote_event. Prompts: one per context recipe. Resources: memsync://recipes/{name},
    memsync://{subject_type}/{id}. Reads through one connection wait for its own writes.

    Client configuration (stdio): {"mcpServers": {"memsync": {"command": "memsync",
    "args": ["mcp"]}}}
    """
    from memsync.faces.mcp.server import Options, leave, serve

    _migrated(ctx)
    with _app(ctx) as app:
        serve(app, Options(profile=profile, scope=scope, read_only=read_only, sync=not no_sync), http)
    leave()  # the app is closed: skip the interpreter's slow teardown


def _migrated(ctx: click.Context) -> None:
    """An MCP client starts the server with nothing but its environment: the embedded
    default is migrated here (a no-op when up to date); a database given by DSN is never
    migrated behind its owner's back, only named."""
    from memsync.faces.cli.base import _settings
    from memsync.runtime import resolve_dsn
    from memsync.storage import migrate

    settings = _settings(ctx)
    dsn = resolve_dsn(settings)
    if settings.dsn is None:
        applied = migrate.migrate(dsn)
        if applied:
            log.info("migrated the embedded database: %s", ", ".join(applied))
        return
    pending = [m.name for m in migrate.status(dsn) if m.state == "pending"]
    if pending:
        raise click.ClickException(f"the database at MEMSYNC_DSN has {len(pending)} pending migration(s) "
                                   f"({', '.join(pending[:3])}{', …' if len(pending) > 3 else ''}); "
                                   "run `memsync db migrate` first")
