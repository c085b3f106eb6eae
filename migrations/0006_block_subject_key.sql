-- A scope filter names (subject_type, subject_id) pairs, a type-wide subject with a NULL id.
-- Matching pairs on two columns needed a semi-join (an OR of the two cases or IS NOT DISTINCT
-- FROM would scan every block); one text key per block lets `subject_key = ANY(keys)` walk a
-- btree, and INCLUDE (id) lets the dense scope scan read the index alone.
ALTER TABLE agent.blocks
  ADD COLUMN subject_key text GENERATED ALWAYS AS (subject_type || ':' || coalesce(subject_id::text, '')) STORED;

CREATE INDEX blocks_subject_key ON agent.blocks (subject_key) INCLUDE (id);
