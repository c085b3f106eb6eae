import pathspec
import pytest

from docs_ingest.parse import SubjectRef, parse, split_front_matter
from docs_ingest.scan import filters, in_scope
from memsync.errors import SourceError

KINDS = {"project", "person", "personal"}


def test_title_summary_and_links() -> None:
    doc = parse("# Title here\n\n```py\nx\n```\n\nThe **first** [para](a.md).\nstill it.\n\nsecond\n", "d/x.md",
                subject_types=KINDS)
    assert doc.title == "Title here"
    assert doc.summary == "The first para. still it."
    assert doc.links == ["d/a.md"]
    assert doc.artifact_type == "doc" and doc.subject is None


def test_front_matter_wins_and_is_kept() -> None:
    doc = parse("---\ntitle: T\ndescription: D\ntype: sop\nsubject: project:12\n---\n# H\n\nbody\n", "x.md",
                subject_types=KINDS)
    assert (doc.title, doc.summary, doc.artifact_type) == ("T", "D", "sop")
    assert doc.subject == SubjectRef("project", "12")
    assert doc.front_matter["title"] == "T" and doc.body.startswith("# H")


def test_subject_by_key_and_errors() -> None:
    assert parse("---\nproject: project:abc\n---\n", "x.md", subject_types=KINDS).subject == \
        SubjectRef("project", "project:abc")
    with pytest.raises(SourceError, match=r"x\.md: front matter subject type 'planet'"):
        parse("---\nsubject: planet:3\n---\n", "x.md", subject_types=KINDS)
    with pytest.raises(SourceError, match="must look like"):
        parse("---\nsubject: project\n---\n", "x.md", subject_types=KINDS)
    with pytest.raises(SourceError, match="must be a mapping"):
        split_front_matter("---\n- a\n- b\n---\nbody", "x.md")


def test_sop_by_path_rule_and_file_name_title() -> None:
    sops = pathspec.PathSpec.from_lines("gitwildmatch", ["sops/"])
    doc = parse("1. a\n2. b\n", "team/sops/on-call.md", subject_types=KINDS, sop_paths=sops)
    assert doc.artifact_type == "sop" and doc.title == "on-call"
    assert parse("x", "notes.md", subject_types=KINDS, sop_paths=sops).artifact_type == "doc"


def test_scope_filters() -> None:
    inc, exc = filters(["docs/**"], ["*.draft.md"])
    assert in_scope("docs/a.md", inc, exc)
    assert not in_scope("docs/a.draft.md", inc, exc)
    assert not in_scope("blog/a.md", inc, exc)
    assert not in_scope("docs/a.txt", inc, exc)
    inc, exc = filters([], [])
    assert in_scope("a/b.mdx", inc, exc) and in_scope("C.MARKDOWN", inc, exc)


@pytest.mark.parametrize(("yaml_text", "why"), [
    ("date: 2023-02-30", "day is out of range for month"),  # an impossible date
    ("n: !!int 0xZZ", "invalid literal"),
    ("t: !!timestamp 99999-01-01", "cannot take"),
    ("at: 2001-12-14t21:59:43.10-99:00", "cannot take"),
    ("a: " + "[" * 5000 + "]" * 5000, "nested too deeply"),
])
def test_front_matter_the_yaml_reader_cannot_take_fails_its_file_by_name(yaml_text: str, why: str) -> None:
    """The YAML reader raises more than YAMLError on such values (ValueError, AttributeError,
    RecursionError): each once escaped the ingest run as a traceback and stopped it."""
    with pytest.raises(SourceError, match=rf"^d/x\.md: invalid YAML front matter: .*{why}"):
        split_front_matter(f"---\n{yaml_text}\n---\n# X\n", "d/x.md")
