-- The agent write API (memsync/write/memory.py): remember(..., idempotency_key) returns
-- the first fact for a key it has seen, never a copy.
CREATE UNIQUE INDEX facts_idempotency_key ON agent.facts ((metadata->>'idempotency_key'))
  WHERE metadata ? 'idempotency_key';

-- Notes and decisions become searchable memory (memsync/kinds/events.py), except run-scoped
-- ones: memsync's own audit records (sync and retrieval sessions) move to the 'run' scope.
UPDATE agent.events SET memory_scope = 'run'
 WHERE session_id IN (SELECT id FROM agent.sessions WHERE session_type IN ('sync', 'retrieval'));
