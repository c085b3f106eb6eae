-- A conversation's speakers are linked to erp.people by name (memsync.write.conversations:
-- the one person with that full name, else the one with that first name), on every import
-- session and every log_messages call. The lookup normalised every person's name in a
-- sequential scan: ~40 ms a call at 5,000 people, ~390 ms at 50,000. The normalised name and
-- its first word are now indexed expressions, so the lookup reads only the matching rows.

-- Trimmed, inner whitespace runs as one space, lower case: what the lookup compares with
-- the speaker names (normalised the same way in Python). IMMUTABLE (its parts are), so it
-- can be indexed; an SQL function, so the planner inlines it and matches the indexes.
CREATE FUNCTION memsync.name_key(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT lower(regexp_replace(btrim(p_name), '\s+', ' ', 'g'))
$$;

CREATE INDEX IF NOT EXISTS people_name_key ON erp.people (memsync.name_key(full_name));
CREATE INDEX IF NOT EXISTS people_first_name_key ON erp.people (split_part(memsync.name_key(full_name), ' ', 1));
