"""`memsync zep`: the Zep mirror's own commands (its sync runs inside `memsync run`)."""

from __future__ import annotations

import click

from memsync.faces.cli.base import _settings, emit, main


@main.group("zep")
def zep_group() -> None:
    """The Zep mirror (MEMSYNC_INDEXES containing zep, MEMSYNC_ZEP_URL, MEMSYNC_ZEP_API_KEY).
    People, sessions, notes, decisions and reflections are mirrored by `memsync run`;
    `memsync status` shows its backlog and `memsync verify` compares it with Postgres."""


@zep_group.command("pull")
@click.option("--person", "person_id", type=click.IntRange(min=1), help="Only this erp.people id.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def pull_cmd(ctx: click.Context, person_id: int | None, as_json: bool) -> None:
    """Bring Zep's extracted facts back as candidate agent.facts rows (metadata: source
    'zep', the Zep fact uuid and session; valid_from from Zep). Each Zep fact comes back
    once; a fact Postgres already has is never overwritten or deleted."""
    from memsync import runtime
    from memsync.mirror.zep import ZepMirror
    from memsync.storage.db import connect

    settings = _settings(ctx)
    mirror = ZepMirror(settings)
    with connect(runtime.resolve_dsn(settings), autocommit=True) as conn:
        result = mirror.pull(conn, person_id)
    emit(result, as_json, lambda r: f"{r['facts_added']} new candidate facts from Zep "
                                    f"({r['facts_seen']} seen; the rest were already here)")
