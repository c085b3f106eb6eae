-- Mirrors: external memory stores (Zep) that get copies of some rows, never the record.
-- Each enabled mirror has its own queue of source keys, so an outage of one never holds back
-- the vector indexes (memsync.outbox) or another mirror. Rows are queued only once a mirror
-- is enabled (`memsync run` enables the mirrors configured in MEMSYNC_INDEXES and queues
-- what exists then).
CREATE TABLE memsync.mirrors (
  name       TEXT PRIMARY KEY,
  enabled_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE memsync.mirror_queue (
  id                BIGSERIAL PRIMARY KEY,
  mirror            TEXT NOT NULL REFERENCES memsync.mirrors(name) ON DELETE CASCADE,
  source_table      TEXT NOT NULL,
  source_id         BIGINT NOT NULL,
  op                TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete', 'resync')),
  version           INTEGER NOT NULL DEFAULT 1,
  first_enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  available_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  attempts          INTEGER NOT NULL DEFAULT 0,
  deferrals         INTEGER NOT NULL DEFAULT 0,
  claimed_by        TEXT,
  claimed_until     TIMESTAMPTZ,
  last_error        TEXT,
  dead_at           TIMESTAMPTZ,
  UNIQUE (mirror, source_table, source_id)
);
CREATE INDEX mirror_queue_ready ON memsync.mirror_queue (mirror, available_at, id) WHERE dead_at IS NULL;

-- What each mirror holds for a row: its id there, the hash of what was sent, when.
CREATE TABLE memsync.mirror_items (
  mirror       TEXT NOT NULL,
  source_table TEXT NOT NULL,
  source_id    BIGINT NOT NULL,
  remote_id    TEXT NOT NULL,
  content_hash TEXT,
  deleted      BOOLEAN NOT NULL DEFAULT false,
  mirrored_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (mirror, source_table, source_id)
);

CREATE FUNCTION memsync.mirror_enqueue(p_table TEXT, p_id BIGINT, p_op TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO memsync.mirror_queue AS q (mirror, source_table, source_id, op)
  SELECT m.name, p_table, p_id, p_op FROM memsync.mirrors m
  ON CONFLICT (mirror, source_table, source_id) DO UPDATE
     SET op = EXCLUDED.op, version = q.version + 1, available_at = now(), attempts = 0,
         dead_at = NULL, last_error = NULL;
  IF FOUND THEN
    PERFORM pg_notify('memsync_mirror', '');
  END IF;
END $$;

CREATE FUNCTION memsync.capture_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM memsync.mirror_enqueue(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, OLD.id, 'delete');
  ELSE
    PERFORM memsync.mirror_enqueue(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, NEW.id, lower(TG_OP));
  END IF;
  RETURN NULL;
END $$;

-- What a mirror may hold: people (Zep users), sessions, notes and decisions, reflections.
CREATE TRIGGER memsync_mirror AFTER INSERT OR UPDATE OR DELETE ON erp.people
  FOR EACH ROW EXECUTE FUNCTION memsync.capture_mirror();
CREATE TRIGGER memsync_mirror AFTER INSERT OR UPDATE OR DELETE ON agent.sessions
  FOR EACH ROW EXECUTE FUNCTION memsync.capture_mirror();
CREATE TRIGGER memsync_mirror_ins AFTER INSERT ON agent.events
  FOR EACH ROW WHEN (NEW.event_type IN ('note', 'decision')) EXECUTE FUNCTION memsync.capture_mirror();
CREATE TRIGGER memsync_mirror_upd AFTER UPDATE ON agent.events
  FOR EACH ROW WHEN (OLD.event_type IN ('note', 'decision') OR NEW.event_type IN ('note', 'decision'))
  EXECUTE FUNCTION memsync.capture_mirror();
CREATE TRIGGER memsync_mirror_del AFTER DELETE ON agent.events
  FOR EACH ROW WHEN (OLD.event_type IN ('note', 'decision')) EXECUTE FUNCTION memsync.capture_mirror();
CREATE TRIGGER memsync_mirror AFTER INSERT OR UPDATE OR DELETE ON agent.reflections
  FOR EACH ROW EXECUTE FUNCTION memsync.capture_mirror();

-- Facts a mirror extracted come back as candidates, once each (memsync zep pull).
CREATE UNIQUE INDEX facts_zep_fact_uuid ON agent.facts ((metadata->>'zep_fact_uuid'))
  WHERE metadata ? 'zep_fact_uuid';
