-- BM25 in a subject scope found its candidates either by reading every block of the scope
-- (a heap page each: ~20 ms for 2,000 blocks of a 100k-block database) or, in scopes of
-- 8,000 and more, through the lexemes' GIN postings over the whole corpus, the scope checked
-- on each match. One GIN index over both the block's subject key and its lexical vector
-- intersects the two inside the index: only blocks of the scope that hold a selected lexeme
-- are read (10 ms at 2,000, 16 ms at 8,000 where the two paths took 18 and 37;
-- bench/bm25_scope_bench.py). The key is an array because GIN indexes text only through
-- btree_gin, an extension a server need not have. The index serves lexical search without a
-- scope too (a condition on its second column alone), so it replaces blocks_tsv.
CREATE INDEX blocks_scope_tsv ON agent.blocks USING gin ((ARRAY[subject_key]), tsv);
DROP INDEX agent.blocks_tsv;
