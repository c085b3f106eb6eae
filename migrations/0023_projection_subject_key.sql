-- The dense exact scan of a subject scope found its vectors by probing the projection's key
-- with each block id of the scope: ~4 buffer reads and ~4.5 us a block, 9 ms for a scope of
-- 2,000 blocks in a 100k-block database, most of a scoped search. The projection now carries
-- the block's subject key, so a scope's vectors are one index range (4 ms there). The key is
-- the block's, kept so by the two triggers below whoever writes either table; search still
-- checks every other filter against agent.blocks.
CREATE FUNCTION memsync.block_subject_key(bigint) RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT subject_key FROM agent.blocks WHERE id = $1 $$;

-- Filled by rewriting the table once: an UPDATE of every row would insert each one into the
-- HNSW indexes again (391 s for 100k rows, and a table twice its size); the rewrite rebuilds
-- them in bulk (61 s), with memory enough to build a 100k-vector graph in one pass.
SET LOCAL maintenance_work_mem = '512MB';
ALTER TABLE memsync.pgvector_index ADD COLUMN subject_key text;
ALTER TABLE memsync.pgvector_index ALTER COLUMN subject_key TYPE text USING memsync.block_subject_key(block_id);

CREATE INDEX pgvector_index_scope ON memsync.pgvector_index (model, subject_key);

CREATE FUNCTION memsync.projection_subject_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.subject_key := memsync.block_subject_key(NEW.block_id);
  RETURN NEW;
END $$;

CREATE TRIGGER pgvector_index_subject_key BEFORE INSERT OR UPDATE OF block_id, subject_key
  ON memsync.pgvector_index FOR EACH ROW EXECUTE FUNCTION memsync.projection_subject_key();

CREATE FUNCTION memsync.block_subject_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE memsync.pgvector_index SET subject_key = NEW.subject_key WHERE block_id = NEW.id;
  RETURN NULL;
END $$;

CREATE TRIGGER blocks_subject_moved AFTER UPDATE OF subject_type, subject_id ON agent.blocks
  FOR EACH ROW WHEN (OLD.subject_key IS DISTINCT FROM NEW.subject_key)
  EXECUTE FUNCTION memsync.block_subject_moved();
