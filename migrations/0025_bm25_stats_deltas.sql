-- BM25 statistics kept as appended deltas. The statement triggers updated the one
-- corpus_stats row and the term_stats rows in place, and those row locks lasted until the
-- writing transaction committed: a transaction with two block statements (a cascade that
-- deletes the blocks of several artifacts, a worker batch) took term rows after holding
-- corpus_stats, so a user's DELETE of artifacts deadlocked with a worker's batch, and every
-- writer of blocks waited for every other. Now a statement only appends its deltas (no row
-- is shared, nothing waits); readers add the deltas to the folded totals, and
-- memsync.bm25_fold() (the worker, after each batch) moves committed deltas into the
-- totals in one short transaction.
CREATE TABLE memsync.term_stats_delta (
  term TEXT    NOT NULL,
  df   INTEGER NOT NULL
);
CREATE INDEX term_stats_delta_term ON memsync.term_stats_delta (term);

CREATE TABLE memsync.corpus_stats_delta (
  n_docs    BIGINT NOT NULL,
  total_len BIGINT NOT NULL
);

-- the key every fold and the truncate trigger take, so that they never interleave
CREATE FUNCTION memsync.bm25_lock_key() RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT 7318462050917732352 $$;

CREATE OR REPLACE FUNCTION memsync.bm25_stats_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO memsync.term_stats_delta (term, df)
    SELECT u.lexeme, count(*) FROM new_rows r, unnest(r.tsv) u GROUP BY u.lexeme;
  INSERT INTO memsync.corpus_stats_delta (n_docs, total_len)
    SELECT count(*), coalesce(sum(tsv_len), 0) FROM new_rows HAVING count(*) > 0;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION memsync.bm25_stats_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO memsync.term_stats_delta (term, df)
    SELECT u.lexeme, -count(*) FROM old_rows r, unnest(r.tsv) u GROUP BY u.lexeme;
  INSERT INTO memsync.corpus_stats_delta (n_docs, total_len)
    SELECT -count(*), -coalesce(sum(tsv_len), 0) FROM old_rows HAVING count(*) > 0;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION memsync.bm25_stats_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
  INSERT INTO memsync.term_stats_delta (term, df)
    SELECT lexeme, sum(d) FROM delta GROUP BY lexeme HAVING sum(d) <> 0;
  INSERT INTO memsync.corpus_stats_delta (n_docs, total_len)
    SELECT 0, sum(n.tsv_len - o.tsv_len)
      FROM old_rows o JOIN new_rows n USING (id) WHERE o.tsv IS DISTINCT FROM n.tsv
    HAVING coalesce(sum(n.tsv_len - o.tsv_len), 0) <> 0;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION memsync.bm25_stats_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(memsync.bm25_lock_key());
  DELETE FROM memsync.term_stats;
  DELETE FROM memsync.term_stats_delta;
  DELETE FROM memsync.corpus_stats_delta;
  UPDATE memsync.corpus_stats SET n_docs = 0, total_len = 0;
  RETURN NULL;
END $$;

-- Moves the committed deltas into the totals; returns how many delta rows it folded, or
-- NULL when another fold (or a truncate) holds the lock: that one does the work. Readers
-- see the totals before or after, never half of a fold (both are one transaction).
CREATE FUNCTION memsync.bm25_fold() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  folded bigint;
BEGIN
  IF NOT pg_try_advisory_xact_lock(memsync.bm25_lock_key()) THEN
    RETURN NULL;
  END IF;
  WITH d AS (DELETE FROM memsync.term_stats_delta RETURNING term, df),
       s AS (SELECT term, sum(df) AS df, count(*) AS n FROM d GROUP BY term),
       up AS (INSERT INTO memsync.term_stats AS t (term, df)
                SELECT term, df FROM s WHERE df <> 0 ORDER BY term
              ON CONFLICT (term) DO UPDATE SET df = t.df + EXCLUDED.df)
  SELECT coalesce(sum(n), 0) INTO folded FROM s;
  WITH d AS (DELETE FROM memsync.corpus_stats_delta RETURNING n_docs, total_len),
       s AS (SELECT count(*) AS n, coalesce(sum(n_docs), 0) AS n_docs, coalesce(sum(total_len), 0) AS total_len
               FROM d),
       up AS (UPDATE memsync.corpus_stats c
                 SET n_docs = c.n_docs + s.n_docs, total_len = c.total_len + s.total_len
                FROM s WHERE s.n > 0)
  SELECT folded + n INTO folded FROM s;
  RETURN folded;
END $$;

-- the statistics as a reader needs them: folded totals plus the deltas not folded yet
CREATE VIEW memsync.bm25_corpus AS
  SELECT (c.n_docs + coalesce(d.n_docs, 0))::bigint AS n_docs,
         (c.total_len + coalesce(d.total_len, 0))::bigint AS total_len
    FROM memsync.corpus_stats c
   CROSS JOIN (SELECT sum(n_docs) AS n_docs, sum(total_len) AS total_len FROM memsync.corpus_stats_delta) d;

CREATE VIEW memsync.bm25_terms AS
  SELECT term, sum(df)::bigint AS df
    FROM (SELECT term, df FROM memsync.term_stats UNION ALL SELECT term, df FROM memsync.term_stats_delta) x
   GROUP BY term;
