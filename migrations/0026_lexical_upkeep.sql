-- Upkeep after a batch of block writes, one round trip for the worker: the BM25 statistics
-- deltas folded (0025), and the GIN index's pending list merged. The index takes new entries
-- into an unsorted pending list (fastupdate) that every search reads in full until it
-- passes 4 MB or autovacuum comes by: after importing 6,000 turns it held 327 pages (7 ms of
-- reading for a scan that found nothing), and BM25 in a person's scope took 10-20 ms at p50
-- where it takes 5.7-7.5 with the list merged (6 ANALYZE samples). Merging after each
-- batch keeps what a search reads to one batch's entries, and inserts keep their bulk speed.
-- SECURITY DEFINER: merging the list is for the index's owner, the role that migrated.
CREATE FUNCTION memsync.lexical_upkeep(OUT folded bigint, OUT pending_pages bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  folded := memsync.bm25_fold();
  -- the fold stands even if the index is gone or renamed by a later change
  BEGIN
    pending_pages := gin_clean_pending_list('agent.blocks_scope_tsv'::regclass);
  EXCEPTION WHEN undefined_table OR insufficient_privilege THEN
    RAISE WARNING 'memsync.lexical_upkeep: pending list not merged: %', SQLERRM;
    pending_pages := 0;
  END;
END $$;
