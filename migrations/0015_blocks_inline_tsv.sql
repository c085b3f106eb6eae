-- BM25 in a scope tests each block's tsvector; with the default toast_tuple_target (~2 KB) a
-- block with a body of ~750 bytes and its ~1.1 KB tsvector is moved out of line, and every
-- test fetches it back through the TOAST index. Rows up to ~4 KB now stay inline: on 100k
-- synthetic blocks, BM25 in a scope of 2,000 took 18.7 ms instead of 22-25 ms (p50), with no
-- TOAST reads. Existing rows move inline as they are rewritten (any update of the block).
DO $$
BEGIN
  ALTER TABLE agent.blocks SET (toast_tuple_target = 4080);
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'agent.blocks toast_tuple_target not set (not the owner); search works as before';
END $$;
