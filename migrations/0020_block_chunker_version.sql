-- Each block a chunker made records that chunker's version, so `memsync status` can say how
-- many stored blocks really predate the running chunker. One install-wide value (set only
-- by a full `memsync rechunk`) said "all of them" on a fresh install. Blocks made before
-- this migration get the version of the last full rechunk when there was one, else NULL
-- (unknown: counted as older).
ALTER TABLE agent.blocks ADD COLUMN chunker_version text;
UPDATE agent.blocks b SET chunker_version = s.value->>'version'
  FROM memsync.state s
 WHERE s.key = 'chunker_version' AND b.chunk_key IS NOT NULL;
