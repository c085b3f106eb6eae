-- Execution runs become searchable memory (memsync/kinds/execution_runs.py): one
-- 'run_summary' block per run, so the block type vocabulary gains that word.
ALTER TABLE agent.blocks DROP CONSTRAINT blocks_block_type_check;
ALTER TABLE agent.blocks ADD CONSTRAINT blocks_block_type_check CHECK (block_type IN
  ('sop_step', 'task', 'goal', 'doc_section', 'prompt_snippet', 'reflection_section', 'fact', 'note', 'other',
   'run_summary'));
