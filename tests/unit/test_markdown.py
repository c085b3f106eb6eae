"""Markdown structure through the CommonMark parser: each construct the line rules got
wrong or disagreed on."""

from memsync.kinds.artifacts import chunk_sop
from memsync.text.chunk import approx_tokens, chunk_markdown
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


def test_tables_html_and_mdx_blocks_stay_whole_within_the_budget() -> None:
    table = "| a | b |\n|---|---|\n" + "".join(f"| row {i} | value {i} |\n" for i in range(4))
    mdx = "<Tabs>\n  <Tab label=\"npm\">npm install thing and more words here</Tab>\n</Tabs>"
    doc = f"# T\n\n{table}\n{mdx}\n\nAfter.\n"
    bodies = [c.body_md for c in chunk_markdown(doc, max_tokens=48, overlap=0)]
    assert table.strip() in bodies
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


def test_blocks_over_the_budget_are_cut_between_lines_and_fences_rewrapped() -> None:
    code = "```python\n" + "\n".join(f"value_{i} = compute({i}, factor={i * 3})" for i in range(60)) + "\n```"
    table = "| a | b |\n|---|---|\n" + "".join(f"| row {i} | value {i} |\n" for i in range(60))
    chunks = chunk_markdown(f"# T\n\n{code}\n\n{table}", max_tokens=64, overlap=0)
    assert all(approx_tokens(c.text) <= 64 for c in chunks)
    fenced = [c.body_md for c in chunks if "compute" in c.body_md]
    assert len(fenced) > 1 and all(b.startswith("```python\n") and b.endswith("\n```") for b in fenced)
    rows = [line for c in chunks for line in c.body_md.split("\n") if line.startswith("| row")]
    assert len(rows) == 60  # every row kept, none cut in half


def test_data_uris_and_blobs_are_kept_out_of_chunks() -> None:
    image = "data:image/png;base64," + "iVBORw0KGgo" * 100_000
    doc = f"# Logo\n\n![logo]({image})\n\nThe logo above. Token: {'x' * 5000}\n"
    (chunk,) = chunk_markdown(doc)
    assert "data:image/png;base64,[1,100,022 characters omitted]" in chunk.body_md
    assert "characters omitted]" in chunk.body_md.split("Token: ")[1]
    assert len(chunk.body_md) < 400


def test_long_unbroken_strings_cost_what_they_weigh() -> None:
    assert approx_tokens("a " + "x" * 400) == 1 + 100


def test_editing_one_item_of_a_long_list_moves_no_other_cut() -> None:
    items = [f"- item {i}: " + " ".join(f"word{i}_{j}" for j in range(30)) for i in range(40)]
    before = chunk_markdown("# L\n\n" + "\n".join(items), max_tokens=128, overlap=0)
    items[20] = items[20].replace("word20_3 ", "word20_3 edited ")
    after = chunk_markdown("# L\n\n" + "\n".join(items), max_tokens=128, overlap=0)
    changed = {c.content_hash for c in after} - {c.content_hash for c in before}
    assert len(before) > 5 and len(changed) == 1
