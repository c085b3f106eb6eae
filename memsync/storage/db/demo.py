"""SQL for the demo's sample memory (`memsync demo`)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from memsync.storage.db import DictConn


def _id(row: dict[str, Any] | None) -> int:
    assert row is not None
    return int(row["id"])


def seed(c: DictConn, design_doc: str, deploy_sop: str) -> bool:
    """Write sample ERP rows and memory once; False when already there."""
    if c.execute("SELECT 1 FROM agent.artifacts WHERE external_id = 'demo:portal-architecture'").fetchone():
        return False
    with c.transaction():
        person = _id(c.execute("INSERT INTO erp.people (full_name, email, is_primary_user) VALUES "
                               "('Ada Example', 'ada@example.com', true) RETURNING id").fetchone())
        project = _id(c.execute("INSERT INTO erp.projects (name, owner_person_id) VALUES "
                                "('Client portal', %s) RETURNING id", (person,)).fetchone())
        c.execute("INSERT INTO erp.tasks (title, project_id, assignee_person_id, status, priority, due_at) VALUES"
                  " ('Chase the client for SSO metadata', %s, %s, 'todo', 1, now() + interval '1 day'),"
                  " ('Finish invoice PDF export', %s, %s, 'in_progress', 2, now() + interval '3 days'),"
                  " ('Kickoff call', %s, %s, 'done', 3, NULL)", (project, person) * 3)
        c.execute("INSERT INTO agent.artifacts (artifact_type, title, external_id, source_system, body_md,"
                  " subject_type, subject_id) VALUES ('doc', 'Client portal architecture',"
                  " 'demo:portal-architecture', 'demo', %s, 'project', %s)", (design_doc, project))
        c.execute("INSERT INTO agent.artifacts (artifact_type, title, external_id, source_system, body_md,"
                  " subject_type, subject_id) VALUES ('sop', 'Deploying the client portal',"
                  " 'demo:deploy-sop', 'demo', %s, 'project', %s)", (deploy_sop, project))
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


def person_id(conn: DictConn) -> int:
    return _id(conn.execute("SELECT id FROM erp.people WHERE email = 'ada@example.com' ORDER BY id LIMIT 1").fetchone())
