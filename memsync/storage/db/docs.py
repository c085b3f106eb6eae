"""SQL for docs_ingest: artifacts keyed by (repository, path), and subject resolution."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from memsync.storage.db import DictConn


def existing(conn: DictConn, repo: str) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        """SELECT id, metadata->>'path' AS path, (metadata->>'size')::bigint AS size,
                  (metadata->>'mtime_ns')::bigint AS mtime_ns, metadata->>'sha256' AS sha256, deleted_at
             FROM agent.artifacts WHERE source_system IN ('git', 'fs') AND metadata->>'repo' = %s""",
        (repo,),
    ).fetchall()
    return {r["path"]: r for r in rows}


def upsert(conn: DictConn, *, repo: str, path: str, system: str, external_id: str, artifact_type: str,
           title: str, summary: str | None, body: str, subject: tuple[str | None, int | None],
           metadata: dict[str, Any]) -> int:
    meta = {**metadata, "repo": repo, "path": path}
    row = conn.execute(
        """INSERT INTO agent.artifacts AS a (artifact_type, title, external_id, summary, source_system, body_md,
                                             subject_type, subject_id, metadata)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT ((metadata->>'repo'), (metadata->>'path')) WHERE source_system IN ('git', 'fs')
           DO UPDATE SET artifact_type = EXCLUDED.artifact_type, title = EXCLUDED.title,
                         external_id = EXCLUDED.external_id, summary = EXCLUDED.summary,
                         source_system = EXCLUDED.source_system, body_md = EXCLUDED.body_md,
                         subject_type = EXCLUDED.subject_type, subject_id = EXCLUDED.subject_id,
                         metadata = EXCLUDED.metadata, deleted_at = NULL
           RETURNING id""",
        (artifact_type, title, external_id, summary, system, body, subject[0], subject[1], Jsonb(meta)),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def touch_stat(conn: DictConn, artifact_id: int, size: int, mtime_ns: int) -> None:
    """Same bytes, new mtime: remember the stat so the next run skips the read."""
    conn.execute(
        "UPDATE agent.artifacts SET metadata = metadata || jsonb_build_object('size', %s::bigint, 'mtime_ns', %s::bigint)"
        " WHERE id = %s",
        (size, mtime_ns, artifact_id),
    )


def mark_deleted(conn: DictConn, ids: list[int]) -> int:
    if not ids:
        return 0
    return conn.execute(
        "UPDATE agent.artifacts SET deleted_at = now() WHERE id = ANY(%s) AND deleted_at IS NULL", (ids,)
    ).rowcount
