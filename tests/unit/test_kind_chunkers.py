"""Each memory kind's own chunker and rendering (memsync/kinds/)."""

from decimal import Decimal

from memsync.kinds import execution_runs, facts, goals
from memsync.kinds.artifacts import chunk_sop
from memsync.kinds.reflections import chunk_reflection


def chunk_fact(row: dict[str, object]) -> list:  # type: ignore[type-arg]
    return facts.chunk(row)


def chunk_goal(row: dict[str, object]) -> list:  # type: ignore[type-arg]
    return goals.chunk(row)


def test_sop_one_block_per_step_with_ordinal() -> None:
    sop = "Before you start.\n\n1. Freeze the branch\n   and tell the team.\n2. Run tests\n3. Deploy\n"
    chunks = chunk_sop(sop, title="Release")
    steps = [c for c in chunks if c.block_type == "sop_step"]
    assert [(c.ordinal, c.metadata["step"]) for c in steps] == [(1, 1), (2, 2), (3, 3)]
    assert steps[0].body_md == "Freeze the branch\nand tell the team."
    assert chunks[0].block_type == "doc_section" and chunks[0].body_md == "Before you start."
    # inserting a step renumbers, but the embedded text of moved steps is unchanged
    moved = chunk_sop(sop.replace("2. Run tests\n3. Deploy", "2. Lint\n3. Run tests\n4. Deploy"), title="Release")
    old = {c.content_hash for c in steps}
    assert sum(c.content_hash in old for c in moved if c.block_type == "sop_step") == 3


def test_sop_with_step_headings() -> None:
    chunks = chunk_sop("## Step 1: Prepare\nGet coffee.\n## Step 2: Work\nWrite code.", title="Day")
    assert [c.body_md for c in chunks] == ["Prepare\nGet coffee.", "Work\nWrite code."]


def test_reflection_sections() -> None:
    row = {"mode": "weekly", "period_start": "2026-11-23", "goals": ["Ship v1"], "accomplishments": [],
           "blockers": [{"text": "waiting on review"}], "decisions": "Use pgvector", "next_actions": None,
           "raw_text": "A calm week."}
    chunks = chunk_reflection(row)
    assert [c.chunk_key for c in chunks] == ["goals#0", "blockers#0", "decisions#0", "raw_text/_root#0"]
    assert chunks[1].heading_path == "Weekly reflection 2026-11-23 > Blockers"
    assert chunks[1].body_md == "- waiting on review"
    assert {c.block_type for c in chunks} == {"reflection_section"}


def test_fact_and_goal_are_one_block() -> None:
    (fact,) = chunk_fact({"fact_type": "anti_pattern", "category": "planning", "content": "Overbooking Mondays."})
    assert fact.block_type == "fact" and fact.heading_path == "Anti pattern (planning)"
    (goal,) = chunk_goal({"title": "Launch", "description": "Go live.", "success_criteria": ["10 users"]})
    assert goal.block_type == "goal" and "- 10 users" in goal.body_md
    assert chunk_fact({"fact_type": "result", "content": "  "}) == []



def test_fact_label_is_the_same_in_blocks_and_bundles() -> None:
    row = {"id": 1, "fact_type": "preference", "category": "Scheduling", "content": "Mornings."}
    (block,) = facts.chunk(row)
    assert facts.render(row) == f"{block.heading_path}: Mornings."


def test_execution_run_summary_block() -> None:
    row = {"id": 3, "workflow": "invoice run", "status": "completed", "started_at": "2026-11-28 09:00:00+00",
           "estimated_minutes": Decimal("30.00"), "actual_minutes": Decimal("42.50"), "estimated_cost": None,
           "actual_cost": Decimal("1.2000"), "cost_currency": "EUR", "human_minutes": None,
           "metadata": {"summary": "Two invoices bounced; the client's VAT id was missing.", "other": 1}}
    (block,) = execution_runs.chunk(row)
    assert block.block_type == "run_summary" and block.heading_path == "Run: invoice run (completed)"
    assert "Took 42.5 min (estimated 30, +12.5); cost 1.2 EUR." in block.body_md
    assert "Summary: Two invoices bounced" in block.body_md and "other" not in block.body_md
    bare = execution_runs.chunk({"id": 4, "workflow": "", "status": "running", "metadata": {}})
    assert bare[0].body_md == "Run: unnamed workflow (running)"


def test_path_label_decodes_escaped_names_and_keeps_at_signs() -> None:
    from memsync.kinds.artifacts import path_label

    sha = "0123456789abcdef0123456789abcdef01234567"
    row = {"source_system": "git", "title": "Changelog",
           "external_id": f"repo:changelogs/%40scope%2Fpkg-name.md@{sha}"}
    assert path_label(row) == "changelogs / scope / pkg / name"  # not '%40scope%2Fpkg'
    row = {"source_system": "fs", "title": "T", "external_id": "/r:guides/v2@beta/setup.md"}
    assert path_label(row) == "guides / v2 / beta / setup"  # an '@' in a path is not a commit
    assert path_label({"source_system": "fs", "title": "Server", "external_id": "/r:docs/server.md"}) is None
    assert path_label({"source_system": "api", "title": "x", "external_id": "1"}) is None
    # ordering prefixes of numbered folders name no topic; numbers inside words stay
    row = {"source_system": "git", "title": "Page", "external_id": "/r:docs/01-guides/02-getting-started/13-page.mdx"}
    assert path_label(row) == "guides / getting / started / page"
    row = {"source_system": "git", "title": "Page", "external_id": "/r:docs/http2/v3/2024.md"}
    assert path_label(row) == "http2 / v3"
