-- A derived block deleted together with its source (an artifact deleted: its blocks cascade)
-- needs no outbox item of its own: the source's delete item drops every point of that source
-- by its source key. Deleting a large artifact queued one item per block (11,307 for one
-- document). Now only a derived block deleted on its own (its source still there: the
-- source resync) and a direct block (its own item) queue work.
CREATE OR REPLACE FUNCTION memsync.capture_block() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r agent.blocks;
  alive boolean;
BEGIN
  IF current_setting('memsync.origin', true) = 'sync' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  IF r.chunk_key IS NOT NULL AND r.source_table IS NOT NULL AND r.source_id IS NOT NULL THEN
    IF TG_OP = 'DELETE' THEN
      -- source_table is checked by a CHECK constraint (schema.table in erp or agent)
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE id = $1)',
                     split_part(r.source_table, '.', 1), split_part(r.source_table, '.', 2))
        INTO alive USING r.source_id;
      IF NOT alive THEN
        RETURN NULL;  -- the source's own delete item removes its points
      END IF;
    END IF;
    PERFORM memsync.enqueue(r.source_table, r.source_id, 'resync');
  END IF;
  IF r.chunk_key IS NULL OR TG_OP = 'DELETE' THEN
    PERFORM memsync.enqueue('agent.blocks', r.id, lower(TG_OP));
  END IF;
  RETURN NULL;
END $$;
