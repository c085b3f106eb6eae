"""`memsync demo` / `make demo`: the main job on the embedded default, end to end."""

from __future__ import annotations

import time
from collections.abc import Callable

from memsync.app import Memsync
from memsync.settings import Settings
from memsync.storage import migrate
from memsync.storage.db import demo as demo_data
from memsync.write.worker import Worker

DEPLOY_SOP = """# Deploying the client portal

Run this before every release of the portal.

1. Freeze the release branch and announce it in the team channel.
2. Run the full test suite and the database migration dry run.
3. Deploy to staging and click through the checkout flow.
4. Deploy to production during the agreed window and watch error rates for 30 minutes.
"""

DESIGN_DOC = """# Client portal architecture

## Authentication
Users sign in with single sign-on; sessions live for eight hours and refresh silently.

## Billing
Invoices are generated monthly from the engagement's time entries and sent as PDF.

## Data retention
Client documents are kept for seven years, then archived to cold storage.
"""


def run(settings: Settings, echo: Callable[[str], None]) -> None:
    with Memsync(settings) as app:
        rt = app.runtime
        echo(f"database: {'embedded under ' + str(settings.home) if not settings.dsn else 'MEMSYNC_DSN'}")
        applied = migrate.migrate(rt.dsn)
        echo(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
        with app.connection() as conn:
            fresh = demo_data.seed(conn, DESIGN_DOC, DEPLOY_SOP)
            person = demo_data.person_id(conn)
        echo("sample memory written" if fresh else "sample memory already present")
        started = time.perf_counter()
        totals = Worker(settings, rt.dsn, rt.embedder, rt.indexes).run_once()
        echo(f"synced {totals.acked} items in {time.perf_counter() - started:.1f}s: "
             f"{totals.blocks_written} blocks written, {totals.embedded} embeddings computed, "
             f"{totals.points} points indexed")
        st = app.status()
        echo(f"blocks: {st['blocks']}, vectors: {st['vectors']}, backlog: {st['backlog']['pending']}")
        query = "when should I schedule meetings?"
        echo(f"\nhybrid search {query!r}:")
        for hit in app.search(query, k=3):
            echo(f"  {hit.score:.4f} (dense #{hit.dense_rank or '-'}, lexical #{hit.lexical_rank or '-'})  "
                 f"{hit.source_table}#{hit.source_id} [{hit.block_type}] {hit.heading_path or ''}: {hit.text[:60]!r}")
        echo(f"\nretrieve('daily_planning', 'person:{person}'):\n")
        echo(app.retrieve("daily_planning", ("person", person), query="what should I focus on today?").to_markdown())
