-- The lexical vector of a block is built from a bounded prefix of its text. A tsvector
-- holds at most 1 MB, so one oversized block ("string is too long for tsvector") failed
-- its whole write batch; 100,000 characters make at most a few hundred kB of tsvector
-- whatever the text, and no chunk of a sane size comes near it. The dense vector already
-- sees only the model's window; search finds an oversized block by its beginning.
DROP INDEX agent.blocks_tsv;
ALTER TABLE agent.blocks DROP COLUMN tsv, DROP COLUMN tsv_len;

CREATE FUNCTION memsync.lexical_text(heading_path text, title text, chunk_key text, body_md text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT left(coalesce(heading_path, '') || E'\n' ||
               coalesce(CASE WHEN chunk_key IS NULL THEN title END, '') || E'\n' ||
               coalesce(body_md, ''), 100000) $$;

ALTER TABLE agent.blocks
  ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    to_tsvector('english'::regconfig, memsync.lexical_text(heading_path, title, chunk_key, body_md))
  ) STORED,
  ADD COLUMN tsv_len integer GENERATED ALWAYS AS (
    memsync.tsv_length(to_tsvector('english'::regconfig,
                                   memsync.lexical_text(heading_path, title, chunk_key, body_md)))
  ) STORED;
CREATE INDEX blocks_tsv ON agent.blocks USING gin (tsv);

-- the columns were rebuilt without firing the statistics triggers: recount
DELETE FROM memsync.term_stats;
INSERT INTO memsync.term_stats (term, df)
  SELECT lexeme, count(*) FROM agent.blocks, unnest(tsv) GROUP BY lexeme;
UPDATE memsync.corpus_stats
   SET n_docs = (SELECT count(*) FROM agent.blocks),
       total_len = (SELECT coalesce(sum(tsv_len), 0) FROM agent.blocks);
