-- A block's lexical vector and its BM25 length (the number of positions) computed once per
-- write. As two generated columns each built the tsvector (a generated column cannot read
-- another) and the length unnested it through an SQL function: 55 us of the ~180 us the
-- server spent on a 100-character turn's block write, 0.68 ms of a 1 kB docs chunk's, serial
-- with the model in the drain (EXPLAIN ANALYZE of a worker batch; 11,804 conversation texts:
-- 0.94 s as generated columns, 0.70 s with this trigger, 0.40 s for the vector alone).
-- Counting distinct lexemes instead, read from the vector's header for free, lost lexical
-- nDCG@10 on every docs set (0.964 -> 0.961, 0.893 -> 0.885, 0.825 -> 0.814), so the length
-- keeps its meaning. The stored values stay: nothing is recomputed here.
ALTER TABLE agent.blocks ALTER COLUMN tsv DROP EXPRESSION, ALTER COLUMN tsv_len DROP EXPRESSION;

CREATE FUNCTION memsync.block_lexical() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.tsv := to_tsvector('english'::regconfig,
                         memsync.lexical_text(NEW.heading_path, NEW.title, NEW.chunk_key, NEW.body_md));
  NEW.tsv_len := memsync.tsv_length(NEW.tsv);
  RETURN NEW;
END $$;

-- tsv and tsv_len among the columns: a write to either is overwritten, as a generated
-- column refused it
CREATE TRIGGER blocks_lexical BEFORE INSERT OR UPDATE OF heading_path, title, chunk_key, body_md, tsv, tsv_len
  ON agent.blocks FOR EACH ROW EXECUTE FUNCTION memsync.block_lexical();
