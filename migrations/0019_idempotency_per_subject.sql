-- Idempotency keys belong to the subject a fact is about: the same key under two subjects
-- names two facts. A global key space let one tenant's key collide with (and confirm the
-- existence of) another tenant's fact. Existing keys were unique globally, so they are
-- unique per subject too: the new index always builds.
CREATE UNIQUE INDEX facts_idempotency_key_subject ON agent.facts
  (subject_type, (coalesce(subject_id, 0)), (metadata->>'idempotency_key'))
  WHERE metadata ? 'idempotency_key';
DROP INDEX agent.facts_idempotency_key;
