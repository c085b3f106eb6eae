-- One definition of "current" for every row with a validity interval (facts, goals):
-- valid_from <= at < valid_to. A fact that is not yet valid is not current; one forgotten
-- before it became valid has valid_to = valid_from (the CHECK forbids less), an empty
-- interval that is current at no time. SQL-language and IMMUTABLE, so the planner inlines it.
CREATE OR REPLACE FUNCTION memsync.is_current(valid_from timestamptz, valid_to timestamptz, at timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT valid_from <= at AND (valid_to IS NULL OR valid_to > at)
$$;
