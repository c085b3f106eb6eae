-- Conversation memory at two granularities (memsync/kinds/events.py): besides a turn's own
-- block, an 'exchange' block holds the turn with the one before it, searched by meaning
-- and by words, and maps back to both events (metadata.covers). Measured with
-- bench/granularity_probe.py: turns with such pairs recalled more of the right turns than
-- turns alone, or turns with longer windows or whole sessions, on both conversational sets.
ALTER TABLE agent.blocks DROP CONSTRAINT blocks_block_type_check;
ALTER TABLE agent.blocks ADD CONSTRAINT blocks_block_type_check CHECK (block_type IN
  ('sop_step', 'task', 'goal', 'doc_section', 'prompt_snippet', 'reflection_section', 'fact', 'note', 'other',
   'run_summary', 'exchange'));
