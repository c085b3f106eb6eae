-- Inserts are captured once per statement, from its new rows (a transition table), instead
-- of once per row: importing a conversation writes a session's turns in one statement, and
-- three row triggers per turn (the outbox, the turns that read it as context, the mirrors)
-- cost about as much as the insert itself. Updates and deletes stay row triggers: they come
-- one at a time, and their conditions compare old and new values.
--
-- The triggers are installed by memsync.write.sources (every `memsync db migrate`); this
-- file holds the functions they call.

-- Many rows of one table into the outbox in one statement, in id order (the order every
-- enqueuer takes conflicting rows in); one wake-up. Returns how many it queued. The
-- per-row memsync.enqueue (0002) calls it, so the outbox has one way in.
CREATE FUNCTION memsync.enqueue_many(p_table text, p_ids bigint[], p_op text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  INSERT INTO memsync.outbox AS o (source_table, source_id, op)
  SELECT DISTINCT p_table, i, p_op FROM unnest(p_ids) i ORDER BY 2
  ON CONFLICT ON CONSTRAINT outbox_source_key DO UPDATE
     SET op = EXCLUDED.op, version = o.version + 1, enqueued_at = now(),
         available_at = now(), attempts = 0, dead_at = NULL, last_error = NULL;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM pg_notify('memsync_outbox', '');  -- wake-up only
  END IF;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION memsync.enqueue(p_table text, p_id bigint, p_op text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM memsync.enqueue_many(p_table, ARRAY[p_id], p_op);
END $$;

-- The statement trigger of a source table: its new rows that meet the source's condition
-- (TG_ARGV[0], an SQL condition over the row's columns written by memsync itself, never
-- by a user; 'true' for every row) are queued as inserts, into the outbox, or with
-- TG_ARGV[1] = 'mirror' into the mirrors' queue (which takes the worker's writes too, as
-- capture_mirror, 0013, does).
CREATE FUNCTION memsync.capture_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
  mirror boolean := coalesce(TG_ARGV[1], 'outbox') = 'mirror';
BEGIN
  IF NOT mirror AND current_setting('memsync.origin', true) = 'sync' THEN
    RETURN NULL;
  END IF;
  EXECUTE format('SELECT array_agg(id) FROM new_rows WHERE %s', coalesce(TG_ARGV[0], 'true')) INTO ids;
  IF ids IS NULL THEN
    RETURN NULL;
  ELSIF mirror THEN
    PERFORM memsync.mirror_enqueue_many(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, ids, 'insert');
  ELSE
    PERFORM memsync.enqueue_many(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, ids, 'insert');
  END IF;
  RETURN NULL;
END $$;

-- The turns that read a turn as context: the next context_turns() turns of its session.
-- One definition for the row trigger of updates and deletes (0017's function, now calling
-- it) and the statement trigger of inserts below.
CREATE FUNCTION memsync.turns_after(p_session bigint, p_at timestamptz, p_id bigint) RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
  SELECT x.id FROM agent.events x
   WHERE x.session_id = p_session AND x.event_type IN ('note', 'decision')
     AND (x.occurred_at, x.id) > (p_at, p_id)
   ORDER BY x.occurred_at, x.id LIMIT memsync.context_turns() $$;

CREATE OR REPLACE FUNCTION memsync.capture_next_turns() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r agent.events;
BEGIN
  IF current_setting('memsync.origin', true) = 'sync' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  PERFORM memsync.enqueue('agent.events', n, 'resync') FROM memsync.turns_after(r.session_id, r.occurred_at, r.id) n;
  RETURN NULL;
END $$;

-- New turns: the turns just after them in their sessions are resynced; turns of the same
-- statement are new themselves and already queued. Only sessions holding an older turn at
-- or after their earliest new one are looked into: a session imported whole has none, and
-- the lookup per new turn was most of this trigger's time (1.0 ms of a 20-turn statement).
CREATE FUNCTION memsync.capture_next_turns_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
BEGIN
  IF current_setting('memsync.origin', true) = 'sync' THEN
    RETURN NULL;
  END IF;
  -- a session's turns at or after its earliest new one, more than its new ones: an older
  -- turn is among them (a count over the session's index range, no join with new_rows)
  WITH touched AS (
    SELECT f.session_id
      FROM (SELECT session_id, min(occurred_at) AS at, count(*) AS n FROM new_rows
             WHERE event_type IN ('note', 'decision') GROUP BY session_id) f
     WHERE (SELECT count(*) FROM agent.events x
             WHERE x.session_id = f.session_id AND x.occurred_at >= f.at
               AND x.event_type IN ('note', 'decision')) > f.n)
  SELECT array_agg(n) INTO ids
    FROM new_rows r
    JOIN touched t ON t.session_id = r.session_id
    CROSS JOIN LATERAL memsync.turns_after(r.session_id, r.occurred_at, r.id) n
   WHERE r.event_type IN ('note', 'decision')
     AND NOT EXISTS (SELECT 1 FROM new_rows y WHERE y.id = n);
  IF ids IS NOT NULL THEN
    PERFORM memsync.enqueue_many('agent.events', ids, 'resync');
  END IF;
  RETURN NULL;
END $$;

-- The mirrors' queue, the same way: one function takes many rows, and the per-row one
-- (0013) calls it.
CREATE FUNCTION memsync.mirror_enqueue_many(p_table text, p_ids bigint[], p_op text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  INSERT INTO memsync.mirror_queue AS q (mirror, source_table, source_id, op)
  SELECT m.name, p_table, x.i, p_op FROM memsync.mirrors m, (SELECT DISTINCT i FROM unnest(p_ids) i) x
   ORDER BY 1, 3
  ON CONFLICT (mirror, source_table, source_id) DO UPDATE
     SET op = EXCLUDED.op, version = q.version + 1, available_at = now(), attempts = 0,
         dead_at = NULL, last_error = NULL;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM pg_notify('memsync_mirror', '');
  END IF;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION memsync.mirror_enqueue(p_table TEXT, p_id BIGINT, p_op TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM memsync.mirror_enqueue_many(p_table, ARRAY[p_id], p_op);
END $$;

DROP TRIGGER memsync_next_turns_insert ON agent.events;
CREATE TRIGGER memsync_next_turns_insert AFTER INSERT ON agent.events REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION memsync.capture_next_turns_inserted();

DROP TRIGGER memsync_mirror_ins ON agent.events;
CREATE TRIGGER memsync_mirror_ins AFTER INSERT ON agent.events REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION memsync.capture_inserted('event_type IN (''note'', ''decision'')', 'mirror');
