"""`memsync demo` / `make demo`: the main job on the embedded default, end to end."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from psycopg.types.json import Jsonb

from memsync import migrate, ops, runtime
from memsync.db import DictConn, connect
from memsync.hybrid import SearchOptions, search
from memsync.settings import Settings
from memsync.worker import Worker

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


def _id(row: dict[str, Any] | None) -> int:
    assert row is not None
    return int(row["id"])


def seed(c: DictConn) -> bool:
    """Write sample ERP rows and memory once; False when already there."""
    if c.execute("SELECT 1 FROM agent.artifacts WHERE external_id = 'demo:portal-architecture'").fetchone():
        return False
    with c.transaction():
        person = _id(c.execute("INSERT INTO erp.people (full_name, email, is_primary_user) VALUES "
                               "('Ada Example', 'ada@example.com', true) RETURNING id").fetchone())
        project = _id(c.execute("INSERT INTO erp.projects (name, owner_person_id) VALUES "
                                "('Client portal', %s) RETURNING id", (person,)).fetchone())
        c.execute("INSERT INTO agent.artifacts (artifact_type, title, external_id, source_system, body_md,"
                  " subject_type, subject_id) VALUES ('doc', 'Client portal architecture',"
                  " 'demo:portal-architecture', 'demo', %s, 'project', %s)", (DESIGN_DOC, project))
        c.execute("INSERT INTO agent.artifacts (artifact_type, title, external_id, source_system, body_md,"
                  " subject_type, subject_id) VALUES ('sop', 'Deploying the client portal',"
                  " 'demo:deploy-sop', 'demo', %s, 'project', %s)", (DEPLOY_SOP, project))
        c.execute("INSERT INTO agent.reflections (mode, focal_entity_type, focal_entity_id, goals,"
                  " accomplishments, blockers, next_actions, raw_text) VALUES ('daily', 'project', %s,"
                  " %s, %s, %s, %s, %s)",
                  (project, Jsonb(["Ship invoice export"]), Jsonb(["Finished PDF layout"]),
                   Jsonb(["Waiting on the client's SSO metadata"]), Jsonb(["Chase SSO metadata"]),
                   "Good focus in the morning; meetings after lunch broke the flow."))
        c.execute("INSERT INTO agent.facts (fact_type, category, content, subject_type, subject_id)"
                  " VALUES ('preference', 'scheduling', 'Ada prefers deep work before noon and"
                  " meetings after 2pm.', 'person', %s)", (person,))
        c.execute("INSERT INTO agent.goals (title, description, subject_type, subject_id, success_criteria)"
                  " VALUES ('Launch the client portal', 'Portal live for the first client.', 'project', %s,"
                  " %s)", (project, Jsonb(["Checkout works end to end", "No P1 bugs for a week"])))
    return True


def run(settings: Settings, echo: Callable[[str], None]) -> None:
    rt = runtime.build(settings)
    try:
        echo(f"database: {'embedded under ' + str(settings.home) if not settings.dsn else 'MEMSYNC_DSN'}")
        applied = migrate.migrate(rt.dsn)
        echo(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
        with connect(rt.dsn, autocommit=True, vectors=True) as conn:
            echo("sample memory written" if seed(conn) else "sample memory already present")
            started = time.perf_counter()
            totals = Worker(settings, rt.dsn, rt.embedder, rt.indexes).run_once()
            echo(f"synced {totals.acked} items in {time.perf_counter() - started:.1f}s: "
                 f"{totals.blocks_written} blocks written, {totals.embedded} embeddings computed, "
                 f"{totals.points} points indexed")
            st = ops.status(conn, rt.embedder.model_id, rt.indexes)
            echo(f"blocks: {st['blocks']}, vectors: {st['vectors']}, backlog: {st['backlog']['pending']}")
            query = "when should I schedule meetings?"
            echo(f"\nhybrid search {query!r}:")
            for hit in search(rt, conn, query, SearchOptions(k=3)):
                echo(f"  {hit.score:.4f} (dense #{hit.dense_rank}, lexical #{hit.lexical_rank})  "
                     f"{hit.source_table}#{hit.source_id} [{hit.block_type}] {hit.heading_path or ''}: {hit.text[:60]!r}")
    finally:
        rt.close()
