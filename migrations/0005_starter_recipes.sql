-- Starter context recipes (see README "Context recipes"). New versions are added with
-- `memsync recipes put`; these rows are version 1.
INSERT INTO agent.context_recipes (name, version, description, retrieval_spec) VALUES
('daily_planning', 1, 'Plan a person''s day: open tasks, active goals, preferences and constraints, recent reflections, related SOPs and docs.',
 '{"subject_types": ["person"], "scope": "tree", "budget_tokens": 1500, "sections": [
   {"name": "open_tasks", "title": "Open tasks", "kind": "records", "relation": "erp.tasks",
    "where": {"status": ["todo", "in_progress", "blocked"]}, "order_by": "due_at", "priority": 1, "min_items": 3, "max_items": 15},
   {"name": "goals", "title": "Active goals", "kind": "goals", "statuses": ["active"], "priority": 2, "max_items": 5},
   {"name": "preferences", "title": "Preferences and constraints", "kind": "facts",
    "fact_types": ["preference", "constraint", "heuristic"], "priority": 2, "max_items": 8},
   {"name": "recent_reflections", "title": "Recent reflections", "kind": "reflections", "modes": ["daily"],
    "since_days": 7, "priority": 3, "max_items": 3, "max_tokens": 400},
   {"name": "related", "title": "Related SOPs and notes", "kind": "semantic",
    "query": "{query} {subject.name} today plan priorities", "top_k": 5, "priority": 4, "max_items": 5}
 ]}'::jsonb),
('project_context', 1, 'Everything about a project: the project, its engagements, open tasks and OKRs, goals, facts, and related docs (its tasks'' docs too).',
 '{"subject_types": ["project"], "scope": "tree", "budget_tokens": 2000, "sections": [
   {"name": "project", "title": "Project", "kind": "records", "relation": "erp.projects", "scope": "subject", "priority": 1, "min_items": 1, "max_items": 1},
   {"name": "engagements", "title": "Engagements", "kind": "records", "relation": "erp.engagements", "priority": 3, "max_items": 5},
   {"name": "open_tasks", "title": "Open tasks", "kind": "records", "relation": "erp.tasks",
    "where": {"status": ["todo", "in_progress", "blocked"]}, "order_by": "priority", "priority": 2, "max_items": 10},
   {"name": "okrs", "title": "OKRs", "kind": "records", "relation": "erp.okrs", "where": {"status": ["active"]}, "priority": 3, "max_items": 5},
   {"name": "goals", "title": "Goals", "kind": "goals", "include_personal": false, "priority": 2, "max_items": 5},
   {"name": "facts", "title": "Known facts", "kind": "facts", "include_personal": false, "priority": 3, "max_items": 8},
   {"name": "docs", "title": "Related docs", "kind": "semantic", "query": "{subject.name} {subject.description} {query}",
    "top_k": 8, "priority": 4, "max_items": 8}
 ]}'::jsonb),
('engagement_planning', 1, 'Plan an engagement: the engagement and its project, tasks, goals, facts, recent sessions, and planning SOPs.',
 '{"subject_types": ["engagement"], "scope": "tree", "budget_tokens": 2000, "sections": [
   {"name": "engagement", "title": "Engagement", "kind": "records", "relation": "erp.engagements", "scope": "subject", "priority": 1, "min_items": 1, "max_items": 1},
   {"name": "project", "title": "Project", "kind": "records", "relation": "erp.projects", "priority": 2, "max_items": 2},
   {"name": "tasks", "title": "Tasks", "kind": "records", "relation": "erp.tasks", "where": {"status": ["todo", "in_progress", "blocked"]},
    "order_by": "due_at", "priority": 2, "max_items": 10},
   {"name": "goals", "title": "Goals", "kind": "goals", "include_personal": false, "priority": 2, "max_items": 5},
   {"name": "facts", "title": "Facts", "kind": "facts", "include_personal": false, "priority": 3, "max_items": 8},
   {"name": "recent_sessions", "title": "Recent sessions", "kind": "sessions", "since_days": 30, "priority": 4, "max_items": 5},
   {"name": "playbooks", "title": "Planning SOPs and notes", "kind": "semantic",
    "query": "{query} engagement planning {subject.name}", "top_k": 6, "priority": 4, "max_items": 6}
 ]}'::jsonb),
('weekly_reflection', 1, 'Prepare a weekly reflection: the week''s daily reflections, decisions, sessions, goals, patterns, and related blockers.',
 '{"subject_types": ["person", "personal", "project"], "scope": "tree", "budget_tokens": 2500, "sections": [
   {"name": "daily_reflections", "title": "This week''s reflections", "kind": "reflections", "modes": ["daily"], "since_days": 7,
    "priority": 1, "min_items": 1, "max_items": 7},
   {"name": "decisions", "title": "Decisions", "kind": "events", "event_types": ["decision"], "since_days": 7, "priority": 2, "max_items": 10},
   {"name": "sessions", "title": "Sessions", "kind": "sessions", "since_days": 7, "priority": 4, "max_items": 10},
   {"name": "goals", "title": "Goals", "kind": "goals", "priority": 2, "max_items": 6},
   {"name": "patterns", "title": "Known patterns", "kind": "facts", "fact_types": ["pattern", "anti_pattern", "heuristic"],
    "priority": 3, "max_items": 8},
   {"name": "related", "title": "Related notes", "kind": "semantic", "query": "{query} blockers lessons learned",
    "block_types": ["reflection_section", "doc_section", "sop_step"], "top_k": 5, "priority": 5, "max_items": 5}
 ]}'::jsonb);
