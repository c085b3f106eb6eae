-- Sync machinery: the durable outbox, the capture trigger functions, stored embeddings,
-- and the pgvector projection of blocks.

-- One pending row per source key (coalesced); TRUNCATE is recorded with source_id NULL.
-- version moves on every new change, so a worker that processed an older version does not
-- delete the row (it releases it and the newer change is processed again).
CREATE TABLE memsync.outbox (
  id                BIGSERIAL PRIMARY KEY,
  source_table      TEXT NOT NULL,
  source_id         BIGINT,
  op                TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete', 'truncate', 'resync')),
  version           INTEGER NOT NULL DEFAULT 1,
  first_enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  enqueued_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  available_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  attempts          INTEGER NOT NULL DEFAULT 0,
  claimed_by        TEXT,
  claimed_until     TIMESTAMPTZ,
  last_error        TEXT,
  dead_at           TIMESTAMPTZ,
  CONSTRAINT outbox_source_key UNIQUE NULLS NOT DISTINCT (source_table, source_id)
);
CREATE INDEX outbox_ready ON memsync.outbox (available_at, id) WHERE dead_at IS NULL;

CREATE FUNCTION memsync.enqueue(p_table TEXT, p_id BIGINT, p_op TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO memsync.outbox AS o (source_table, source_id, op)
  VALUES (p_table, p_id, p_op)
  ON CONFLICT ON CONSTRAINT outbox_source_key DO UPDATE
     SET op = EXCLUDED.op, version = o.version + 1, enqueued_at = now(),
         available_at = now(), attempts = 0, dead_at = NULL, last_error = NULL;
  -- wake-up only: the payload carries nothing the worker needs
  PERFORM pg_notify('memsync_outbox', '');
END $$;

-- Row trigger for a registered source. Writes made by the sync worker itself set
-- memsync.origin = 'sync' and are not captured (they are the result, not a change).
CREATE FUNCTION memsync.capture_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  tbl TEXT := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
BEGIN
  IF current_setting('memsync.origin', true) = 'sync' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    PERFORM memsync.enqueue(tbl, OLD.id, 'delete');
  ELSE
    PERFORM memsync.enqueue(tbl, NEW.id, lower(TG_OP));
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION memsync.capture_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM memsync.enqueue(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, NULL, 'truncate');
  RETURN NULL;
END $$;

-- agent.blocks: a block memsync derived from a source (chunk_key set) is owned by that
-- source, so a direct change to it resyncs the source; any other block is its own source.
CREATE FUNCTION memsync.capture_block() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r agent.blocks;
BEGIN
  IF current_setting('memsync.origin', true) = 'sync' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  IF r.chunk_key IS NOT NULL AND r.source_table IS NOT NULL AND r.source_id IS NOT NULL THEN
    PERFORM memsync.enqueue(r.source_table, r.source_id, 'resync');
  END IF;
  IF r.chunk_key IS NULL OR TG_OP = 'DELETE' THEN
    PERFORM memsync.enqueue('agent.blocks', r.id, lower(TG_OP));
  END IF;
  RETURN NULL;
END $$;

-- Embeddings keyed by (model, content_hash): every index is rebuilt from here without
-- recomputing. The dimension is per model, so the column is untyped.
CREATE TABLE memsync.embeddings (
  model        TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  dim          INTEGER NOT NULL,
  embedding    vector NOT NULL,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (model, content_hash)
);

-- The pgvector projection: one row per (model, block). An HNSW expression index per model
-- (with that model's dimension) is created by memsync when the model is first used.
CREATE TABLE memsync.pgvector_index (
  model        TEXT NOT NULL,
  block_id     BIGINT NOT NULL REFERENCES agent.blocks(id) ON DELETE CASCADE,
  content_hash TEXT NOT NULL,
  embedding    vector NOT NULL,
  indexed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (model, block_id)
);
CREATE INDEX ON memsync.pgvector_index (block_id);

-- Key/value state: last successful sync, active model, ...
CREATE TABLE memsync.state (
  key        TEXT PRIMARY KEY,
  value      JSONB NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
