-- A starter recipe for recalling what was said with a person: the exchanges of their
-- conversations that match the question (each matching turn with one turn either side),
-- what is known about them, and their recent sessions. Added only where no recipe of that
-- name exists (a user's own version is left alone).
INSERT INTO agent.context_recipes (name, version, description, retrieval_spec)
SELECT 'conversation_recall', 1,
       'Recall conversations with a person: the exchanges that match the question (dated, who said what), known facts about them, and their recent sessions.',
       '{"subject_types": ["person"], "scope": "tree", "budget_tokens": 1500, "sections": [
          {"name": "exchanges", "title": "Relevant exchanges", "kind": "conversation", "query": "{query}",
           "top_k": 6, "neighbours": 1, "priority": 1, "max_items": 6},
          {"name": "facts", "title": "Known facts", "kind": "facts", "priority": 2, "max_items": 8},
          {"name": "recent_sessions", "title": "Recent sessions", "kind": "sessions", "priority": 3, "max_items": 5}
        ]}'::jsonb
 WHERE NOT EXISTS (SELECT 1 FROM agent.context_recipes WHERE name = 'conversation_recall');
