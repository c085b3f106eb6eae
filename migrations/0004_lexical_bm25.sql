-- Lexical search over blocks: a stored tsvector (GIN) and the term statistics BM25 needs
-- (document frequency per lexeme, corpus size and total length), kept current by
-- statement-level triggers so a batch of block writes costs one update per distinct term.

-- Document length for BM25 = number of lexeme occurrences (positions), not distinct lexemes.
CREATE FUNCTION memsync.tsv_length(t tsvector) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::int FROM unnest(t) $$;

ALTER TABLE agent.blocks
  ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    to_tsvector('english'::regconfig,
                coalesce(heading_path, '') || E'\n' ||
                coalesce(CASE WHEN chunk_key IS NULL THEN title END, '') || E'\n' ||
                coalesce(body_md, ''))
  ) STORED,
  -- stored so that ranking never re-counts positions (a generated column cannot read tsv)
  ADD COLUMN tsv_len integer GENERATED ALWAYS AS (
    memsync.tsv_length(to_tsvector('english'::regconfig,
                coalesce(heading_path, '') || E'\n' ||
                coalesce(CASE WHEN chunk_key IS NULL THEN title END, '') || E'\n' ||
                coalesce(body_md, '')))
  ) STORED;
CREATE INDEX blocks_tsv ON agent.blocks USING gin (tsv);

CREATE TABLE memsync.term_stats (
  term TEXT PRIMARY KEY,
  df   INTEGER NOT NULL
);

CREATE TABLE memsync.corpus_stats (
  id        BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
  n_docs    BIGINT NOT NULL DEFAULT 0,
  total_len BIGINT NOT NULL DEFAULT 0
);

INSERT INTO memsync.term_stats (term, df)
  SELECT lexeme, count(*) FROM agent.blocks, unnest(tsv) GROUP BY lexeme;
INSERT INTO memsync.corpus_stats (n_docs, total_len)
  SELECT count(*), coalesce(sum(tsv_len), 0) FROM agent.blocks;

-- Terms are applied in sorted order so concurrent writers lock rows in the same order.
CREATE FUNCTION memsync.bm25_stats_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO memsync.term_stats AS t (term, df)
    SELECT u.lexeme, count(*) FROM new_rows r, unnest(r.tsv) u GROUP BY u.lexeme ORDER BY u.lexeme
  ON CONFLICT (term) DO UPDATE SET df = t.df + EXCLUDED.df;
  UPDATE memsync.corpus_stats
     SET n_docs = n_docs + (SELECT count(*) FROM new_rows),
         total_len = total_len + (SELECT coalesce(sum(tsv_len), 0) FROM new_rows);
  RETURN NULL;
END $$;

CREATE FUNCTION memsync.bm25_stats_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE memsync.term_stats t SET df = t.df - d.n
    FROM (SELECT u.lexeme, count(*) AS n FROM old_rows r, unnest(r.tsv) u
           GROUP BY u.lexeme ORDER BY u.lexeme) d
   WHERE t.term = d.lexeme;
  UPDATE memsync.corpus_stats
     SET n_docs = n_docs - (SELECT count(*) FROM old_rows),
         total_len = total_len - (SELECT coalesce(sum(tsv_len), 0) FROM old_rows);
  RETURN NULL;
END $$;

CREATE FUNCTION memsync.bm25_stats_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
  UPDATE memsync.corpus_stats
     SET total_len = total_len
       + (SELECT coalesce(sum(n.tsv_len - o.tsv_len), 0)
            FROM old_rows o JOIN new_rows n USING (id) WHERE o.tsv IS DISTINCT FROM n.tsv);
  RETURN NULL;
END $$;

CREATE FUNCTION memsync.bm25_stats_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM memsync.term_stats;
  UPDATE memsync.corpus_stats SET n_docs = 0, total_len = 0;
  RETURN NULL;
END $$;

CREATE TRIGGER bm25_stats_insert AFTER INSERT ON agent.blocks
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION memsync.bm25_stats_insert();
CREATE TRIGGER bm25_stats_delete AFTER DELETE ON agent.blocks
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION memsync.bm25_stats_delete();
CREATE TRIGGER bm25_stats_update AFTER UPDATE ON agent.blocks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION memsync.bm25_stats_update();
CREATE TRIGGER bm25_stats_truncate AFTER TRUNCATE ON agent.blocks
  FOR EACH STATEMENT EXECUTE FUNCTION memsync.bm25_stats_truncate();
