-- Two lookups by normalised text read whole tables: a conversation's speakers linked to
-- erp.people by name (every imported session, every log_messages call: ~40 ms at 5,000
-- people, ~390 ms at 50,000), and remember()'s check for the same fact already held (every
-- fact of the subject's type, e.g. of all people: ~7 ms at 20,000 facts). Both are now
-- indexed expressions, so each reads only the rows that match.

-- Trimmed, inner whitespace runs as one space, lower case: how both lookups compare text
-- (speaker names are normalised the same way in Python). IMMUTABLE (its parts are), so it
-- can be indexed; an SQL function, so the planner inlines it and matches the indexes.
CREATE FUNCTION memsync.text_key(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT lower(regexp_replace(btrim(p_text), '\s+', ' ', 'g'))
$$;

CREATE INDEX IF NOT EXISTS people_name_key ON erp.people (memsync.text_key(full_name));
CREATE INDEX IF NOT EXISTS people_first_name_key ON erp.people (split_part(memsync.text_key(full_name), ' ', 1));
-- a fact's text may be long (up to 100,000 characters): its hash is what fits a btree entry
CREATE INDEX IF NOT EXISTS facts_same_text ON agent.facts
  (subject_type, subject_id, fact_type, md5(memsync.text_key(content)));
