-- Workers and their liveness. Each sync worker holds a session-level advisory lock
-- (memsync.worker_lock_class(), lock_key) on a connection that lives as long as it does;
-- Postgres drops the lock the moment that connection dies, so a dead worker's claims are
-- free at once instead of after their lease. Leases stay for a worker that is alive but
-- hung; a live worker's heartbeat renews the leases of the batch it is working on.
CREATE TABLE memsync.workers (
  id           TEXT PRIMARY KEY,
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  lock_key     INTEGER NOT NULL UNIQUE,
  mode         TEXT NOT NULL DEFAULT 'daemon',
  started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  stopped_at   TIMESTAMPTZ
);
CREATE SEQUENCE memsync.worker_lock_key AS integer CYCLE;

CREATE FUNCTION memsync.worker_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 720451 $$;

-- Workers whose liveness lock is held right now (pg_locks is readable by every role).
CREATE FUNCTION memsync.live_workers() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
  SELECT w.id FROM memsync.workers w
    JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                   AND l.classid = memsync.worker_lock_class()::oid
                   AND l.objid = w.lock_key::oid
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
$$;

-- An index outage retries an item without counting an attempt; deferrals drive its backoff.
ALTER TABLE memsync.outbox ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_claimed_by ON memsync.outbox (claimed_by) WHERE claimed_by IS NOT NULL;

-- Commit-to-index lag of recent acks (enqueue of the last change -> ack), for status.
CREATE TABLE memsync.ack_lag (
  acked_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  source_table TEXT NOT NULL,
  lag_seconds  DOUBLE PRECISION NOT NULL
);
CREATE INDEX ack_lag_acked_at ON memsync.ack_lag (acked_at);
