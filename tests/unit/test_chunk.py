from memsync.text.chunk import approx_tokens, block_text, chunk_markdown, content_hash, normalize

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
    setup = chunk_markdown(DOC, title="Handbook", max_tokens=40, overlap=0)
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


def test_block_text_for_direct_and_derived_blocks() -> None:
    assert block_text({"chunk_key": None, "title": "T", "heading_path": None, "body_md": "b"}) == "T\n\nb"
    assert block_text({"chunk_key": "k", "title": "T", "heading_path": None, "body_md": "b"}) == "b"
