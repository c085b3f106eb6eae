-- The blocks of a subject scope that hold one of a tsquery's lexemes, read through the GIN
-- index over (subject key, lexical vector) of 0024 and by no other path. BM25 in a scope built
-- its tsquery at run time, which the planner cannot estimate: depending on the ANALYZE sample
-- it took the subject-key btree and tested every block of the scope, or scanned the whole
-- table, instead of the index (on a 3,000-block scope of a 12,000-block database: 16-20 ms
-- at p50 against 2-3 ms). Inside this function sequential scans are off, and the only
-- conditions are the index's own, so the index is the path; the caller applies its other
-- filters to what comes back (a budget of a few hundred expected matches bounds it).
CREATE FUNCTION memsync.scope_lexical_matches(keys text[], q tsquery) RETURNS SETOF agent.blocks
LANGUAGE sql STABLE ROWS 100 SET enable_seqscan = off AS $$
  SELECT * FROM agent.blocks b WHERE ARRAY[b.subject_key] && keys AND b.tsv @@ q
$$;

-- Upkeep after a batch of block writes, one round trip for the worker: the BM25 statistics
-- deltas folded (0025), and the GIN index's pending list merged. The index takes new entries
-- into an unsorted pending list (fastupdate) that every search reads in full until it
-- passes 4 MB or autovacuum comes by: after importing 6,000 turns it held 327 pages, and BM25
-- in a scope took 10-14 ms at p50 where the merged index gives 3-4 ms. Merging after each
-- batch keeps what a search reads to one batch's entries, and inserts keep their bulk speed.
-- SECURITY DEFINER: merging the list is for the index's owner, the role that migrated.
CREATE FUNCTION memsync.lexical_upkeep(OUT folded bigint, OUT pending_pages bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  folded := memsync.bm25_fold();
  pending_pages := gin_clean_pending_list('agent.blocks_scope_tsv'::regclass);
END $$;
