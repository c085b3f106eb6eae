"""Markdown structure through the CommonMark parser: each construct the line rules got
wrong or disagreed on."""

from memsync.kinds.artifacts import chunk_sop
from memsync.text.chunk import chunk_markdown
from memsync.text.markdown import sections


def test_setext_headings_open_sections() -> None:
    doc = "Intro.\n\nGuide\n=====\n\nText.\n\nInstall\n-------\n\nRun pip.\n"
    assert [c.heading_path for c in chunk_markdown(doc)] == [None, "Guide", "Guide > Install"]


def test_a_hash_inside_a_fence_inside_a_list_is_not_a_heading() -> None:
    doc = "# Setup\n\n- Run this:\n\n  ```sh\n  # not a heading\n  make\n  ```\n- Then that.\n\n# Use\n\nGo.\n"
    chunks = chunk_markdown(doc)
    assert [c.heading_path for c in chunks] == ["Setup", "Use"]
    assert "# not a heading" in chunks[0].body_md and "Then that." in chunks[0].body_md


def test_headings_in_quotes_and_html_are_not_sections() -> None:
    doc = "# Real\n\n> # quoted heading\n> text\n\n<div>\n\n# inside html? no: a new block\n</div>\n"
    paths = [s.path for s in sections(doc)]
    assert ["Real"] in paths and ["quoted heading"] not in paths


def test_tables_html_and_mdx_blocks_stay_whole() -> None:
    table = "| a | b |\n|---|---|\n" + "".join(f"| row {i} | value {i} |\n" for i in range(40))
    mdx = "<Tabs>\n  <Tab label=\"npm\">npm install thing and more words here</Tab>\n</Tabs>"
    doc = f"# T\n\n{table}\n{mdx}\n\nAfter.\n"
    bodies = [c.body_md for c in chunk_markdown(doc, max_tokens=32, overlap=0)]
    assert table.strip() in bodies  # over the budget, but never cut
    assert any(mdx in b for b in bodies)
    (section,) = [s for s in sections(doc) if s.path == ["T"]]
    assert [u.atomic for u in section.units] == [True, True, False]


def test_sop_steps_from_the_parser() -> None:
    sop = ("# Release\n\nRead first.\n\n1. Freeze\n\n   ```sh\n   1. not a step\n   ```\n2. Test\n3. Ship\n\n"
           "Afterwards, tell the team.\n")
    chunks = chunk_sop(sop, title="Release")
    steps = [c for c in chunks if c.block_type == "sop_step"]
    assert [c.metadata["step"] for c in steps] == [1, 2, 3]
    assert "1. not a step" in steps[0].body_md
    assert steps[2].body_md == "Ship\nAfterwards, tell the team."
    assert [c.body_md for c in chunks if c.block_type == "doc_section"] == ["Read first."]
    setext = chunk_sop("Step 1: Prepare\n---------------\n\nCoffee.\n\nStep 2: Work\n------------\n\nCode.\n")
    assert [c.body_md for c in setext] == ["Prepare\nCoffee.", "Work\nCode."]
