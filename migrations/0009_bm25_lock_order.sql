-- Lock order of the BM25 statistics: every writer locks term_stats rows (sorted) before the
-- corpus_stats row. The update trigger locked corpus_stats even when no lexical vector
-- changed, so an UPDATE of a block that left its text alone (vector_key, metadata) took
-- corpus_stats first and deadlocked with a concurrent insert. It now touches corpus_stats
-- only when a tsv changed, after term_stats.
CREATE OR REPLACE FUNCTION memsync.bm25_stats_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  len_delta bigint;
BEGIN
  WITH changed AS (
    SELECT o.tsv AS old_tsv, n.tsv AS new_tsv
      FROM old_rows o JOIN new_rows n USING (id)
     WHERE o.tsv IS DISTINCT FROM n.tsv
  ), delta AS (
    SELECT u.lexeme, 1 AS d FROM changed c, unnest(c.new_tsv) u
    UNION ALL
    SELECT u.lexeme, -1 FROM changed c, unnest(c.old_tsv) u
  )
  INSERT INTO memsync.term_stats AS t (term, df)
    SELECT lexeme, sum(d) FROM delta GROUP BY lexeme HAVING sum(d) <> 0 ORDER BY lexeme
  ON CONFLICT (term) DO UPDATE SET df = t.df + EXCLUDED.df;
  SELECT sum(n.tsv_len - o.tsv_len) INTO len_delta
    FROM old_rows o JOIN new_rows n USING (id) WHERE o.tsv IS DISTINCT FROM n.tsv;
  IF len_delta IS NOT NULL AND len_delta <> 0 THEN
    UPDATE memsync.corpus_stats SET total_len = total_len + len_delta;
  END IF;
  RETURN NULL;
END $$;
