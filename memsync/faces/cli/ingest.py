"""`memsync ingest`: markdown repositories into artifacts and blocks."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from memsync.faces.cli.base import _app, main

if TYPE_CHECKING:
    pass

@main.command("ingest")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--watch", is_flag=True, help="Keep running: rescan after file changes (debounced).")
@click.option("--include", multiple=True, help="Only paths matching this gitignore-style glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip paths matching this glob (repeatable).")
@click.option("--follow-external-links", is_flag=True,
              help="Also read files and folders that symlinks inside PATH lead to outside it (off: skipped, reported).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (one object per pass).")
@click.pass_context
def ingest_cmd(ctx: click.Context, path: Path, watch: bool, include: tuple[str, ...], exclude: tuple[str, ...],
               follow_external_links: bool, as_json: bool) -> None:
    """Ingest a folder or git checkout of markdown (.md, .mdx, .markdown) into agent.artifacts
    and agent.blocks, incrementally: unchanged files are skipped on their stat, edited files
    re-embed only their changed chunks, deleted files lose their blocks and vectors.

    Front matter (YAML) is kept as metadata; `type: sop` makes an SOP; `subject: project:42`
    (or `project: <global_id>`) links the document to an ERP row. Exit code 1 when any file failed.
    """
    from tqdm import tqdm

    from docs_ingest.ingest import Ingestor, Summary
    from memsync.storage import migrate

    app = _app(ctx)
    rt = app.runtime
    migrate.migrate(rt.dsn)
    failed = False
    bar: Any = None

    def start_bar(total: int) -> None:
        nonlocal bar
        bar = tqdm(total=total, unit="file", desc="ingest", disable=True if as_json else None, leave=False)

    def report(summary: Summary) -> None:
        nonlocal failed
        if bar is not None:
            bar.close()
        failed = failed or summary.failed > 0
        if as_json:
            click.echo(json.dumps(summary.to_dict()))
            return
        click.echo(summary.line())
        for e in summary.errors:
            click.echo(f"  failed  {e['path']}: {e['error']}", err=True)
        for w in summary.warnings:
            click.echo(f"  warning {w['path']}: {w['warning']}", err=True)

    ingestor = Ingestor(rt, path, include, exclude, progress=lambda n: bar.update(n) if bar else None,
                        on_total=start_bar, follow_external_links=follow_external_links)
    try:
        if watch:
            from docs_ingest.watch import watch as run_watch

            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            run_watch(ingestor, stop, report, rt.settings.watch_debounce)
        else:
            report(ingestor.run())
    finally:
        app.close()
    if failed:
        ctx.exit(1)


