"""The read path: hybrid search over blocks and retrieve(recipe, subject) -> a budgeted,
cited bundle (recipe specs, subject trees, fusion, budgets)."""
