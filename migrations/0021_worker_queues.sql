-- One worker registry for every queue: a worker row says which queue its loop drains
-- ('outbox', or 'mirror <name>') and how often `memsync run` restarted that loop after it
-- crashed, so status and health can show each loop, the mirrors' included.
ALTER TABLE memsync.workers ADD COLUMN queue TEXT NOT NULL DEFAULT 'outbox';
ALTER TABLE memsync.workers ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX mirror_queue_claimed_by ON memsync.mirror_queue (claimed_by) WHERE claimed_by IS NOT NULL;
