-- Schema v0.1, reconstructed from agent-memory-schema-context-v0.1.md.
-- erp.* holds business reality, agent.* holds execution and memory, memsync.* holds
-- the sync machinery. Every table: id BIGSERIAL, global_id TEXT UNIQUE ('<entity>:<uuid>'),
-- created_at/updated_at TIMESTAMPTZ (updated_at kept by a trigger).

CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS erp;
CREATE SCHEMA IF NOT EXISTS agent;
CREATE SCHEMA IF NOT EXISTS memsync;

CREATE FUNCTION memsync.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

-- The fixed vocabulary of subject types (seed 2.4). Extend it with an additive
-- migration: INSERT INTO agent.subject_types ... Every subject_type column references it.
CREATE TABLE agent.subject_types (
  name         TEXT PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
  erp_relation TEXT,   -- the table whose id subject_id holds; NULL for 'personal'
  description  TEXT NOT NULL DEFAULT ''
);
INSERT INTO agent.subject_types (name, erp_relation, description) VALUES
  ('person',       'erp.people',        'an individual (primary user, client, collaborator)'),
  ('organization', 'erp.organizations', 'a company or other organisation'),
  ('project',      'erp.projects',      'an internal or client-facing project'),
  ('engagement',   'erp.engagements',   'a concrete client engagement'),
  ('task',         'erp.tasks',         'an actionable unit of work'),
  ('okr',          'erp.okrs',          'an objective with key results'),
  ('personal',     NULL,                'the primary user''s own life, not a business row');

-- ---------------------------------------------------------------- erp
CREATE TABLE erp.organizations (
  id          BIGSERIAL PRIMARY KEY,
  global_id   TEXT NOT NULL UNIQUE DEFAULT ('organization:' || gen_random_uuid()),
  name        TEXT NOT NULL,
  kind        TEXT NOT NULL DEFAULT 'client'
              CHECK (kind IN ('client', 'partner', 'vendor', 'own', 'other')),
  website     TEXT,
  notes       TEXT,
  metadata    JSONB NOT NULL DEFAULT '{}',
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE erp.people (
  id              BIGSERIAL PRIMARY KEY,
  global_id       TEXT NOT NULL UNIQUE DEFAULT ('person:' || gen_random_uuid()),
  full_name       TEXT NOT NULL,
  email           TEXT,
  organization_id BIGINT REFERENCES erp.organizations(id) ON DELETE SET NULL,
  role            TEXT,
  is_primary_user BOOLEAN NOT NULL DEFAULT false,
  notes           TEXT,
  metadata        JSONB NOT NULL DEFAULT '{}',
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ON erp.people (organization_id);

CREATE TABLE erp.projects (
  id              BIGSERIAL PRIMARY KEY,
  global_id       TEXT NOT NULL UNIQUE DEFAULT ('project:' || gen_random_uuid()),
  name            TEXT NOT NULL,
  description     TEXT,
  status          TEXT NOT NULL DEFAULT 'active'
                  CHECK (status IN ('planned', 'active', 'paused', 'completed', 'cancelled')),
  organization_id BIGINT REFERENCES erp.organizations(id) ON DELETE SET NULL,
  owner_person_id BIGINT REFERENCES erp.people(id) ON DELETE SET NULL,
  start_date      DATE,
  due_date        DATE,
  metadata        JSONB NOT NULL DEFAULT '{}',
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ON erp.projects (organization_id);
CREATE INDEX ON erp.projects (owner_person_id);

CREATE TABLE erp.engagements (
  id               BIGSERIAL PRIMARY KEY,
  global_id        TEXT NOT NULL UNIQUE DEFAULT ('engagement:' || gen_random_uuid()),
  name             TEXT NOT NULL,
  description      TEXT,
  status           TEXT NOT NULL DEFAULT 'active'
                   CHECK (status IN ('prospect', 'active', 'paused', 'completed', 'cancelled')),
  organization_id  BIGINT REFERENCES erp.organizations(id) ON DELETE SET NULL,
  project_id       BIGINT REFERENCES erp.projects(id) ON DELETE SET NULL,
  client_person_id BIGINT REFERENCES erp.people(id) ON DELETE SET NULL,
  start_date       DATE,
  end_date         DATE,
  metadata         JSONB NOT NULL DEFAULT '{}',
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ON erp.engagements (organization_id);
CREATE INDEX ON erp.engagements (project_id);
CREATE INDEX ON erp.engagements (client_person_id);

CREATE TABLE erp.tasks (
  id                 BIGSERIAL PRIMARY KEY,
  global_id          TEXT NOT NULL UNIQUE DEFAULT ('task:' || gen_random_uuid()),
  title              TEXT NOT NULL,
  description        TEXT,
  status             TEXT NOT NULL DEFAULT 'todo'
                     CHECK (status IN ('todo', 'in_progress', 'blocked', 'done', 'cancelled')),
  priority           SMALLINT NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
  project_id         BIGINT REFERENCES erp.projects(id) ON DELETE SET NULL,
  engagement_id      BIGINT REFERENCES erp.engagements(id) ON DELETE SET NULL,
  assignee_person_id BIGINT REFERENCES erp.people(id) ON DELETE SET NULL,
  estimate_minutes   INTEGER CHECK (estimate_minutes >= 0),
  due_at             TIMESTAMPTZ,
  completed_at       TIMESTAMPTZ,
  metadata           JSONB NOT NULL DEFAULT '{}',
  created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ON erp.tasks (project_id);
CREATE INDEX ON erp.tasks (engagement_id);
CREATE INDEX ON erp.tasks (assignee_person_id);

CREATE TABLE erp.okrs (
  id              BIGSERIAL PRIMARY KEY,
  global_id       TEXT NOT NULL UNIQUE DEFAULT ('okr:' || gen_random_uuid()),
  objective       TEXT NOT NULL,
  key_results     JSONB NOT NULL DEFAULT '[]',   -- [{"title":..,"target":..,"current":..}]
  status          TEXT NOT NULL DEFAULT 'active'
                  CHECK (status IN ('draft', 'active', 'achieved', 'missed', 'cancelled')),
  progress        NUMERIC(5, 2) CHECK (progress BETWEEN 0 AND 100),
  owner_person_id BIGINT REFERENCES erp.people(id) ON DELETE SET NULL,
  project_id      BIGINT REFERENCES erp.projects(id) ON DELETE SET NULL,
  parent_okr_id   BIGINT REFERENCES erp.okrs(id) ON DELETE SET NULL,
  period_start    DATE,
  period_end      DATE,
  metadata        JSONB NOT NULL DEFAULT '{}',
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ON erp.okrs (owner_person_id);
CREATE INDEX ON erp.okrs (project_id);

-- ---------------------------------------------------------------- agent: capability
CREATE TABLE agent.tools (
  id                BIGSERIAL PRIMARY KEY,
  global_id         TEXT NOT NULL UNIQUE DEFAULT ('tool:' || gen_random_uuid()),
  name              TEXT NOT NULL UNIQUE,
  description       TEXT,
  schema_definition JSONB NOT NULL DEFAULT '{}',   -- e.g. OpenAPI / JSON Schema for tool calling
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE agent.profiles (
  id                     BIGSERIAL PRIMARY KEY,
  global_id              TEXT NOT NULL UNIQUE DEFAULT ('profile:' || gen_random_uuid()),
  name                   TEXT NOT NULL UNIQUE,
  description            TEXT,
  system_prompt_template TEXT NOT NULL DEFAULT '',
  default_model          TEXT,
  harness_config         JSONB NOT NULL DEFAULT '{}',
  created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE agent.profile_tools (
  id         BIGSERIAL PRIMARY KEY,
  global_id  TEXT NOT NULL UNIQUE DEFAULT ('profile_tool:' || gen_random_uuid()),
  profile_id BIGINT NOT NULL REFERENCES agent.profiles(id) ON DELETE CASCADE,
  tool_id    BIGINT NOT NULL REFERENCES agent.tools(id) ON DELETE CASCADE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (profile_id, tool_id)
);

CREATE TABLE agent.context_recipes (
  id             BIGSERIAL PRIMARY KEY,
  global_id      TEXT NOT NULL UNIQUE DEFAULT ('context_recipe:' || gen_random_uuid()),
  name           TEXT NOT NULL,
  version        INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
  description    TEXT,
  retrieval_spec JSONB NOT NULL DEFAULT '{}',
  created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (name, version)
);

-- ---------------------------------------------------------------- agent: execution
CREATE TABLE agent.sessions (
  id                     BIGSERIAL PRIMARY KEY,
  global_id              TEXT NOT NULL UNIQUE DEFAULT ('session:' || gen_random_uuid()),
  -- open vocabulary (planning, scheduling, reflection, execution, sync, ...) but one naming style
  session_type           TEXT NOT NULL CHECK (session_type ~ '^[a-z][a-z0-9_]*$'),
  client_person_id       BIGINT REFERENCES erp.people(id) ON DELETE SET NULL,
  subject_type           TEXT REFERENCES agent.subject_types(name),
  subject_id             BIGINT,
  status                 TEXT NOT NULL DEFAULT 'running'
                         CHECK (status IN ('running', 'completed', 'failed')),
  trace_id               TEXT,
  profile_id             BIGINT REFERENCES agent.profiles(id) ON DELETE SET NULL,
  context_recipe_id      BIGINT REFERENCES agent.context_recipes(id) ON DELETE SET NULL,
  applied_harness_config JSONB NOT NULL DEFAULT '{}',
  summary                TEXT,
  started_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
  ended_at               TIMESTAMPTZ,
  created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK (subject_id IS NULL OR subject_type IS NOT NULL),
  CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX ON agent.sessions (subject_type, subject_id);
CREATE INDEX ON agent.sessions (session_type, started_at DESC);

CREATE TABLE agent.execution_runs (
  id                BIGSERIAL PRIMARY KEY,
  global_id         TEXT NOT NULL UNIQUE DEFAULT ('execution_run:' || gen_random_uuid()),
  session_id        BIGINT REFERENCES agent.sessions(id) ON DELETE SET NULL,
  workflow          TEXT NOT NULL DEFAULT '',
  subject_type      TEXT REFERENCES agent.subject_types(name),
  subject_id        BIGINT,
  status            TEXT NOT NULL DEFAULT 'running'
                    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
  started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  ended_at          TIMESTAMPTZ,
  estimated_minutes NUMERIC(10, 2),
  actual_minutes    NUMERIC(10, 2),
  variance_minutes  NUMERIC(10, 2) GENERATED ALWAYS AS (actual_minutes - estimated_minutes) STORED,
  estimated_cost    NUMERIC(12, 4),
  actual_cost       NUMERIC(12, 4),
  cost_currency     TEXT NOT NULL DEFAULT 'USD',
  human_minutes     NUMERIC(10, 2),
  metadata          JSONB NOT NULL DEFAULT '{}',
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK (subject_id IS NULL OR subject_type IS NOT NULL)
);
CREATE INDEX ON agent.execution_runs (subject_type, subject_id);
CREATE INDEX ON agent.execution_runs (session_id);

CREATE TABLE agent.step_evaluations (
  id           BIGSERIAL PRIMARY KEY,
  global_id    TEXT NOT NULL UNIQUE DEFAULT ('step_evaluation:' || gen_random_uuid()),
  run_id       BIGINT NOT NULL REFERENCES agent.execution_runs(id) ON DELETE CASCADE,
  step_name    TEXT NOT NULL,
  step_ordinal INTEGER,
  status       TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'needs_review')),
  score        NUMERIC(6, 3),
  feedback     TEXT,
  needs_human  BOOLEAN NOT NULL DEFAULT false,
  evaluator    TEXT,   -- 'human', a model name, a check's name
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ON agent.step_evaluations (run_id);

-- ---------------------------------------------------------------- agent: memory
CREATE TABLE agent.facts (
  id           BIGSERIAL PRIMARY KEY,
  global_id    TEXT NOT NULL UNIQUE DEFAULT ('fact:' || gen_random_uuid()),
  fact_type    TEXT NOT NULL CHECK (fact_type IN
               ('preference', 'constraint', 'pattern', 'anti_pattern', 'heuristic', 'result')),
  category     TEXT CHECK (category ~ '^[a-z][a-z0-9_]*$'),
  content      TEXT NOT NULL,
  subject_type TEXT REFERENCES agent.subject_types(name),
  subject_id   BIGINT,
  confidence   NUMERIC(4, 3) CHECK (confidence BETWEEN 0 AND 1),
  valid_from   TIMESTAMPTZ NOT NULL DEFAULT now(),
  valid_to     TIMESTAMPTZ,   -- NULL: current
  metadata     JSONB NOT NULL DEFAULT '{}',
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK (subject_id IS NULL OR subject_type IS NOT NULL),
  CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX ON agent.facts (subject_type, subject_id);

CREATE TABLE agent.events (
  id               BIGSERIAL PRIMARY KEY,
  global_id        TEXT NOT NULL UNIQUE DEFAULT ('event:' || gen_random_uuid()),
  session_id       BIGINT NOT NULL REFERENCES agent.sessions(id) ON DELETE CASCADE,
  event_type       TEXT NOT NULL
                   CHECK (event_type IN ('tool_call', 'tool_result', 'note', 'error', 'decision')),
  payload          JSONB NOT NULL DEFAULT '{}',
  memory_scope     TEXT NOT NULL DEFAULT 'session'
                   CHECK (memory_scope IN ('run', 'session', 'user', 'project', 'global')),
  subject_type     TEXT REFERENCES agent.subject_types(name),
  subject_id       BIGINT,
  tool_id          BIGINT REFERENCES agent.tools(id) ON DELETE SET NULL,
  promoted_fact_id BIGINT REFERENCES agent.facts(id) ON DELETE SET NULL,
  occurred_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK (subject_id IS NULL OR subject_type IS NOT NULL)
);
CREATE INDEX ON agent.events (session_id, occurred_at);
CREATE INDEX ON agent.events (subject_type, subject_id);

CREATE TABLE agent.reflections (
  id                BIGSERIAL PRIMARY KEY,
  global_id         TEXT NOT NULL UNIQUE DEFAULT ('reflection:' || gen_random_uuid()),
  session_id        BIGINT REFERENCES agent.sessions(id) ON DELETE SET NULL,
  mode              TEXT NOT NULL CHECK (mode IN ('daily', 'weekly', 'monthly')),
  focal_entity_type TEXT REFERENCES agent.subject_types(name),
  focal_entity_id   BIGINT,
  period_start      DATE,
  period_end        DATE,
  -- structured sections: JSON arrays of strings (or of objects with a "text" key)
  goals             JSONB NOT NULL DEFAULT '[]',
  accomplishments   JSONB NOT NULL DEFAULT '[]',
  blockers          JSONB NOT NULL DEFAULT '[]',
  decisions         JSONB NOT NULL DEFAULT '[]',
  next_actions      JSONB NOT NULL DEFAULT '[]',
  metrics           JSONB NOT NULL DEFAULT '{}',
  raw_text          TEXT,
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK (focal_entity_id IS NULL OR focal_entity_type IS NOT NULL)
);
CREATE INDEX ON agent.reflections (focal_entity_type, focal_entity_id);
CREATE INDEX ON agent.reflections (mode, created_at DESC);

CREATE TABLE agent.goals (
  id               BIGSERIAL PRIMARY KEY,
  global_id        TEXT NOT NULL UNIQUE DEFAULT ('goal:' || gen_random_uuid()),
  title            TEXT NOT NULL,
  description      TEXT,
  subject_type     TEXT REFERENCES agent.subject_types(name),
  subject_id       BIGINT,
  success_criteria JSONB NOT NULL DEFAULT '[]',
  status           TEXT NOT NULL DEFAULT 'active'
                   CHECK (status IN ('proposed', 'active', 'achieved', 'abandoned', 'paused')),
  priority         SMALLINT NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
  horizon          TEXT NOT NULL DEFAULT 'quarterly'
                   CHECK (horizon IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'long_term')),
  okr_id           BIGINT REFERENCES erp.okrs(id) ON DELETE SET NULL,   -- mirrors/refines an OKR
  due_at           TIMESTAMPTZ,
  valid_from       TIMESTAMPTZ NOT NULL DEFAULT now(),
  valid_to         TIMESTAMPTZ,
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK (subject_id IS NULL OR subject_type IS NOT NULL),
  CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX ON agent.goals (subject_type, subject_id);

CREATE TABLE agent.artifacts (
  id            BIGSERIAL PRIMARY KEY,
  global_id     TEXT NOT NULL UNIQUE DEFAULT ('artifact:' || gen_random_uuid()),
  artifact_type TEXT NOT NULL CHECK (artifact_type IN
                ('doc', 'repo', 'spreadsheet', 'recording', 'sop', 'image', 'link', 'other')),
  title         TEXT,
  external_id   TEXT,   -- URL, git path, Docmost id, ...
  summary       TEXT,
  source_system TEXT,   -- 'git', 'fs', 'docmost', ...
  body_md       TEXT,   -- inline markdown for content that lives only in the database
  subject_type  TEXT REFERENCES agent.subject_types(name),
  subject_id    BIGINT,
  metadata      JSONB NOT NULL DEFAULT '{}',
  deleted_at    TIMESTAMPTZ,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK (subject_id IS NULL OR subject_type IS NOT NULL)
);
CREATE INDEX ON agent.artifacts (source_system, external_id);
CREATE INDEX ON agent.artifacts (subject_type, subject_id);

CREATE TABLE agent.blocks (
  id           BIGSERIAL PRIMARY KEY,
  global_id    TEXT NOT NULL UNIQUE DEFAULT ('block:' || gen_random_uuid()),
  block_type   TEXT NOT NULL CHECK (block_type IN
               ('sop_step', 'task', 'goal', 'doc_section', 'prompt_snippet',
                'reflection_section', 'fact', 'note', 'other')),
  title        TEXT,
  body_md      TEXT,
  source_table TEXT CHECK (source_table ~ '^(erp|agent)\.[a-z_]+$'),
  source_id    BIGINT,
  artifact_id  BIGINT REFERENCES agent.artifacts(id) ON DELETE CASCADE,
  subject_type TEXT REFERENCES agent.subject_types(name),
  subject_id   BIGINT,
  vector_key   TEXT,   -- point id in the vector store (not authoritative)
  graph_key    TEXT,
  -- set by memsync for blocks it derives from a source (NULL for blocks written directly)
  chunk_key    TEXT,
  ordinal      INTEGER,
  heading_path TEXT,
  content_hash TEXT,
  token_count  INTEGER,
  metadata     JSONB NOT NULL DEFAULT '{}',
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK (subject_id IS NULL OR subject_type IS NOT NULL),
  CHECK (source_id IS NULL OR source_table IS NOT NULL)
);
CREATE UNIQUE INDEX blocks_source_chunk_key ON agent.blocks (source_table, source_id, chunk_key)
  WHERE chunk_key IS NOT NULL;
CREATE INDEX ON agent.blocks (artifact_id);
CREATE INDEX ON agent.blocks (subject_type, subject_id);
CREATE INDEX ON agent.blocks (content_hash);

CREATE TABLE agent.block_actions (
  id          BIGSERIAL PRIMARY KEY,
  global_id   TEXT NOT NULL UNIQUE DEFAULT ('block_action:' || gen_random_uuid()),
  block_id    BIGINT NOT NULL REFERENCES agent.blocks(id) ON DELETE CASCADE,
  tool_id     BIGINT NOT NULL REFERENCES agent.tools(id) ON DELETE CASCADE,
  action_name TEXT NOT NULL,
  description TEXT,
  parameters  JSONB NOT NULL DEFAULT '{}',
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (block_id, action_name)
);

-- updated_at on every table that has one
DO $$
DECLARE t record;
BEGIN
  FOR t IN
    SELECT c.table_schema, c.table_name FROM information_schema.columns c
     WHERE c.table_schema IN ('erp', 'agent') AND c.column_name = 'updated_at'
  LOOP
    EXECUTE format('CREATE TRIGGER touch_updated_at BEFORE UPDATE ON %I.%I '
                   'FOR EACH ROW EXECUTE FUNCTION memsync.touch_updated_at()',
                   t.table_schema, t.table_name);
  END LOOP;
END $$;
