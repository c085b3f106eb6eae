"""SQL for retrieval evaluations: each run of a labelled set is an agent.execution_runs row
(workflow 'retrieval_eval') with one agent.step_evaluations row per metric."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from memsync.storage.db import DictConn

WORKFLOW = "retrieval_eval"
EVALUATOR = "memsync eval"
SCORE_MAX = 999.999  # step_evaluations.score is NUMERIC(6, 3); the exact value goes in feedback


def row_exists(conn: DictConn, table: str, row_id: int) -> bool | None:
    """Whether `table` ('agent.events') holds row `row_id`; None when there is no such table."""
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (table,)).fetchone()
    if not found or not found["ok"]:
        return None
    schema, name = table.split(".", 1)
    row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE id = %s) AS ok").format(
        sql.Identifier(schema, name)), (row_id,)).fetchone()
    return bool(row and row["ok"])


def record(conn: DictConn, started: datetime, ended: datetime, metadata: Mapping[str, Any],
           metrics: Mapping[str, float], failed: Mapping[str, float]) -> dict[str, Any]:
    """The run and its metrics in one transaction; returns the run row."""
    with conn.transaction():
        run = conn.execute(
            """INSERT INTO agent.execution_runs (workflow, status, started_at, ended_at, actual_minutes, metadata)
               VALUES (%s, 'completed', %s, %s,
                       round((extract(epoch FROM %s::timestamptz - %s::timestamptz) / 60)::numeric, 2), %s)
               RETURNING *""",
            (WORKFLOW, started, ended, ended, started, Jsonb(dict(metadata)))).fetchone()
        assert run is not None
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO agent.step_evaluations (run_id, step_name, step_ordinal, status, score, feedback, evaluator)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                [(run["id"], name, i, "fail" if name in failed else "pass", round(min(value, SCORE_MAX), 3),
                  repr(value), EVALUATOR) for i, (name, value) in enumerate(metrics.items())])
    return run


def history(conn: DictConn, limit: int, set_name: str | None) -> list[dict[str, Any]]:
    """The last runs (newest first), each with its metrics {step_name: exact value}."""
    runs = conn.execute(
        """SELECT r.id, r.global_id, r.started_at, r.metadata,
                  coalesce(jsonb_object_agg(s.step_name, s.feedback::float8 ORDER BY s.step_ordinal)
                           FILTER (WHERE s.id IS NOT NULL), '{}') AS metrics,
                  bool_or(s.status = 'fail') AS failed
             FROM agent.execution_runs r LEFT JOIN agent.step_evaluations s ON s.run_id = r.id
            WHERE r.workflow = %s AND (%s::text IS NULL OR r.metadata->>'set' = %s)
            GROUP BY r.id ORDER BY r.started_at DESC, r.id DESC LIMIT %s""",
        (WORKFLOW, set_name, set_name, limit)).fetchall()
    return runs
