from memsync.chunk import (
    approx_tokens,
    block_text,
    chunk_fact,
    chunk_goal,
    chunk_markdown,
    chunk_reflection,
    chunk_sop,
    content_hash,
    normalize,
)

DOC = """---
title: ignored front matter
---
# Handbook

Welcome text.

## Setup

```bash
# this is a comment, not a heading
pip install memsync
```

| flag | meaning |
|------|---------|
| -v   | verbose |

## Usage

### Daemon
Run it beside Postgres.
"""


def test_heading_paths_and_front_matter() -> None:
    chunks = chunk_markdown(DOC, title="Handbook")
    assert [c.heading_path for c in chunks] == ["Handbook", "Handbook > Setup", "Handbook > Usage > Daemon"]
    assert "front matter" not in " ".join(c.body_md for c in chunks)
    assert chunks[2].text.startswith("Handbook > Usage > Daemon\n\nRun it")


def test_code_blocks_and_tables_stay_whole() -> None:
    setup = chunk_markdown(DOC, title="Handbook", max_tokens=24, overlap=0)
    bodies = [c.body_md for c in setup if c.heading_path == "Handbook > Setup"]
    assert any(b.startswith("```bash") and b.rstrip().endswith("```") for b in bodies)
    assert any(b.startswith("| flag") and "| -v" in b for b in bodies)


def test_long_sections_are_token_bounded_with_stable_keys() -> None:
    text = "# T\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(20))
    chunks = chunk_markdown(text, max_tokens=128, overlap=16)
    assert len(chunks) > 3
    assert all(approx_tokens(c.text) <= 128 for c in chunks)
    assert len({c.chunk_key for c in chunks}) == len(chunks)
    assert chunk_markdown(text, max_tokens=128, overlap=16) == chunks  # deterministic


def test_editing_one_section_changes_only_its_chunk() -> None:
    before = {c.chunk_key: c.content_hash for c in chunk_markdown(DOC, title="Handbook")}
    after = {c.chunk_key: c.content_hash
             for c in chunk_markdown(DOC.replace("Run it beside", "Run it next to"), title="Handbook")}
    assert before.keys() == after.keys()
    assert [k for k in before if before[k] != after[k]] == ["handbook/usage/daemon#0"]


def test_hash_is_normalized_text() -> None:
    assert content_hash("a  \r\nb\n\n\n\nc ") == content_hash("a\nb\n\nc")
    assert content_hash("a") != content_hash("b")
    assert normalize("x\r\n\r\n\r\ny") == "x\n\ny"


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


def test_block_text_for_direct_and_derived_blocks() -> None:
    assert block_text({"chunk_key": None, "title": "T", "heading_path": None, "body_md": "b"}) == "T\n\nb"
    assert block_text({"chunk_key": "k", "title": "T", "heading_path": None, "body_md": "b"}) == "b"
