-- docs_ingest: one artifact per (repository, path); deleted files keep their row
-- (deleted_at set), so a file that comes back reuses it.
CREATE UNIQUE INDEX artifacts_repo_path ON agent.artifacts ((metadata->>'repo'), (metadata->>'path'))
  WHERE source_system IN ('git', 'fs');
