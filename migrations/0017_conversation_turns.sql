-- Conversation turns as episodic memory. A turn's block is embedded with the turns just
-- before it in its session (a reply means little alone), so a change to a turn's text, a
-- turn deleted, or one inserted before others changes what the next turns' blocks read:
-- those next turns are queued again. Appending a turn (the usual case) queues nothing more.
-- memsync.context_turns() is how many turns before a turn its block may read (the chunker
-- bounds them by tokens too).
CREATE FUNCTION memsync.context_turns() RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 2 $$;

-- turns in session order, for the previous-turns lookup and the conversation section
CREATE INDEX IF NOT EXISTS events_session_order ON agent.events (session_id, occurred_at, id);
-- a re-import finds its sessions by their trace id
CREATE INDEX IF NOT EXISTS sessions_trace_id ON agent.sessions (trace_id) WHERE trace_id IS NOT NULL;

CREATE FUNCTION memsync.capture_next_turns() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r agent.events;
BEGIN
  IF current_setting('memsync.origin', true) = 'sync' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  PERFORM memsync.enqueue('agent.events', n.id, 'resync')
     FROM (SELECT x.id FROM agent.events x
            WHERE x.session_id = r.session_id AND x.event_type IN ('note', 'decision')
              AND (x.occurred_at, x.id) > (r.occurred_at, r.id)
            ORDER BY x.occurred_at, x.id LIMIT memsync.context_turns()) n;
  RETURN NULL;
END $$;

CREATE TRIGGER memsync_next_turns_insert AFTER INSERT ON agent.events
  FOR EACH ROW WHEN (NEW.event_type IN ('note', 'decision')) EXECUTE FUNCTION memsync.capture_next_turns();
CREATE TRIGGER memsync_next_turns_update AFTER UPDATE OF payload, event_type, occurred_at ON agent.events
  FOR EACH ROW WHEN (ROW(OLD.payload, OLD.event_type, OLD.occurred_at) IS DISTINCT FROM
                     ROW(NEW.payload, NEW.event_type, NEW.occurred_at))
  EXECUTE FUNCTION memsync.capture_next_turns();
CREATE TRIGGER memsync_next_turns_delete AFTER DELETE ON agent.events
  FOR EACH ROW WHEN (OLD.event_type IN ('note', 'decision')) EXECUTE FUNCTION memsync.capture_next_turns();
