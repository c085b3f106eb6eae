"""docs_ingest on a real PostgreSQL with temporary repositories."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from docs_ingest.ingest import Ingestor, Summary
from docs_ingest.watch import watch
from memsync.embed import HashingEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage.db import DictConn

pytestmark = pytest.mark.integration

GUIDE = "# Guide\n\nHow to use the tool.\n\n## Install\n\nRun the installer.\n\n## Configure\n\nEdit the config file.\n"


@pytest.fixture
def rt(dsn: str, settings: Settings, fake_embedder: HashingEmbedder) -> Runtime:
    return Runtime(settings, dsn, fake_embedder, [PgvectorIndex(dsn)])


def write(root: Path, rel: str, text: str | bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def artifact(conn: DictConn, path: str) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM agent.artifacts WHERE metadata->>'path' = %s", (path,)).fetchone()
    assert row is not None, path
    return row


def blocks_of(conn: DictConn, artifact_id: int) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM agent.blocks WHERE artifact_id = %s ORDER BY ordinal", (artifact_id,)).fetchall()


def vectors(conn: DictConn) -> int:
    row = conn.execute("SELECT count(*) AS n FROM memsync.pgvector_index").fetchone()
    return int(row["n"]) if row else 0


def test_incremental_ingest(conn: DictConn, rt: Runtime, tmp_path: Path) -> None:
    emb = rt.embedder
    assert isinstance(emb, HashingEmbedder)
    root = tmp_path / "repo"
    write(root, "guide.md", GUIDE)
    write(root, "notes/ideas.md", "# Ideas\n\nBuild a [guide](../guide.md) and [site](https://x.org/a.md).\n")
    s = Ingestor(rt, root).run()
    assert (s.files, s.added, s.failed) == (2, 2, 0)
    guide = artifact(conn, "guide.md")
    assert guide["title"] == "Guide" and guide["summary"] == "How to use the tool." and guide["source_system"] == "fs"
    assert [b["heading_path"] for b in blocks_of(conn, guide["id"])] == ["Guide", "Guide > Install", "Guide > Configure"]
    assert artifact(conn, "notes/ideas.md")["metadata"]["links"] == ["guide.md"]
    assert s.embeddings_computed == emb.encoded == 4 and vectors(conn) == 4

    # unchanged re-run: no read, no write, no embedding
    stamp = conn.execute("SELECT max(updated_at) AS t FROM agent.artifacts").fetchone()
    again = Ingestor(rt, root).run()
    assert (again.unchanged, again.added, again.changed, again.embeddings_computed) == (2, 0, 0, 0)
    assert conn.execute("SELECT max(updated_at) AS t FROM agent.artifacts").fetchone() == stamp
    assert emb.encoded == 4

    # touched, same bytes: still nothing to embed
    os.utime(root / "guide.md", ns=(time.time_ns(), time.time_ns()))
    assert Ingestor(rt, root).run().embeddings_computed == 0

    # one section edited: that block alone re-embedded
    write(root, "guide.md", GUIDE.replace("Edit the config file.", "Edit the settings file."))
    edited = Ingestor(rt, root).run()
    assert (edited.changed, edited.embeddings_computed) == (1, 1) and emb.encoded == 5

    # rename: a new artifact, the old one marked deleted; only its one chunk re-embedded (the
    # heading carries the file's path words)
    (root / "notes/ideas.md").rename(root / "notes/plans.md")
    moved = Ingestor(rt, root).run()
    assert (moved.added, moved.deleted, moved.embeddings_computed) == (1, 1, 1)
    old = artifact(conn, "notes/ideas.md")
    assert old["deleted_at"] is not None and blocks_of(conn, old["id"]) == []

    # delete: blocks and vectors go, the artifact row stays marked deleted
    (root / "guide.md").unlink()
    gone = Ingestor(rt, root).run()
    assert gone.deleted == 1
    assert artifact(conn, "guide.md")["deleted_at"] is not None and blocks_of(conn, guide["id"]) == []
    assert vectors(conn) == 1

    # the file comes back: the same artifact row is revived
    write(root, "guide.md", GUIDE)
    back = Ingestor(rt, root).run()
    assert back.added == 1 and back.embeddings_computed == 0
    assert artifact(conn, "guide.md")["id"] == guide["id"] and artifact(conn, "guide.md")["deleted_at"] is None


def test_a_files_path_words_reach_its_chunks(conn: DictConn, rt: Runtime, tmp_path: Path) -> None:
    from memsync.read.hybrid import SearchOptions, search

    root = tmp_path / "repo"
    write(root, "deployment/kubernetes-rollouts.md", "# Rollouts\n\nShift traffic in small steps and watch errors.\n")
    write(root, "guide.md", GUIDE)
    Ingestor(rt, root).run()
    hits = search(rt, conn, "kubernetes", SearchOptions(k=5, mode="lexical"))
    assert [h.heading_path for h in hits] == ["Rollouts (deployment / kubernetes / rollouts)"]
    assert artifact(conn, "guide.md")["title"] == "Guide"
    assert {b["heading_path"] for b in blocks_of(conn, artifact(conn, "guide.md")["id"])} >= {"Guide"}, \
        "a path that says no more than the title adds nothing"
    (root / "deployment").rename(root / "operations")
    Ingestor(rt, root).run()
    assert search(rt, conn, "kubernetes operations", SearchOptions(k=5, mode="lexical"))
    assert not search(rt, conn, "deployment", SearchOptions(k=5, mode="lexical")), "the old path left the index"


def test_front_matter_subject_and_sop(conn: DictConn, rt: Runtime, tmp_path: Path) -> None:
    pid, gid = conn.execute("INSERT INTO erp.projects (name) VALUES ('Portal') RETURNING id, global_id").fetchone().values()  # type: ignore[union-attr]
    root = tmp_path / "r"
    write(root, "a.md", f"---\nsubject: project:{pid}\ndescription: About the portal\ntags: [x]\n---\n# A\n\nBody.\n")
    write(root, "b.md", f"---\nproject: {gid}\ndate: 2026-01-02\n---\n# B\n\nBody b.\n")
    write(root, "c.md", "---\nsubject: project:999999\n---\n# C\n")
    write(root, "d.md", "---\nsubject: galaxy:1\n---\n# D\n")
    write(root, "e.md", "---\n: [unclosed\n---\n# E\n")
    write(root, "release.md", "---\ntype: sop\n---\n# Release\n\n1. Freeze\n2. Test\n3. Ship\n")
    write(root, "sops/backup.md", "# Backup\n\n1. Snapshot\n2. Verify\n")
    s = Ingestor(rt, root).run()
    a, b = artifact(conn, "a.md"), artifact(conn, "b.md")
    assert (a["subject_type"], a["subject_id"], a["summary"]) == ("project", pid, "About the portal")
    assert a["metadata"]["front_matter"]["tags"] == ["x"]
    assert (b["subject_type"], b["subject_id"]) == ("project", pid)
    assert b["metadata"]["front_matter"]["date"] == "2026-01-02"
    assert {(x["subject_type"], x["subject_id"]) for x in blocks_of(conn, a["id"])} == {("project", pid)}
    errors = {e["path"]: e["error"] for e in s.errors}
    assert s.failed == 3 and set(errors) == {"c.md", "d.md", "e.md"}
    assert "project:999999 does not exist" in errors["c.md"]
    assert "galaxy" in errors["d.md"] and "invalid YAML" in errors["e.md"]
    for path, steps in (("release.md", 3), ("sops/backup.md", 2)):
        art = artifact(conn, path)
        assert art["artifact_type"] == "sop"
        assert [x["block_type"] for x in blocks_of(conn, art["id"])] == ["sop_step"] * steps


def test_bad_inputs_are_reported_and_the_run_goes_on(conn: DictConn, rt: Runtime, tmp_path: Path) -> None:
    root = tmp_path / "r"
    write(root, "ok.md", "# Fine\n\nGood text.\n")
    write(root, "binary.md", b"\x89PNG\x00\x00data")
    write(root, "latin1.md", "# Caf\xe9\n\nna\xefve text\n".encode("latin-1"))
    write(root, "empty.md", "")
    write(root, "huge.md", "# Big\n\n" + "x" * 3000)
    os.symlink(root / "missing.md", root / "dangling.md")
    small = rt.settings.model_copy(update={"ingest_max_bytes": 2000})
    s = Ingestor(Runtime(small, rt.dsn, rt.embedder, rt.indexes), root).run()
    errors = {e["path"]: e["error"] for e in s.errors}
    assert set(errors) == {"binary.md", "huge.md", "dangling.md"}
    assert "binary" in errors["binary.md"] and "over the limit" in errors["huge.md"]
    assert "cannot stat" in errors["dangling.md"]
    warnings = {w["path"]: w["warning"] for w in s.warnings}
    assert "invalid UTF-8" in warnings["latin1.md"] and "empty" in warnings["empty.md"]
    assert s.added == 2 and s.skipped == 1 and s.failed == 3
    assert "Caf\ufffd" in artifact(conn, "latin1.md")["title"]


def test_gitignore_hidden_folders_and_symlink_loops(conn: DictConn, rt: Runtime, tmp_path: Path) -> None:
    root = tmp_path / "r"
    write(root, ".gitignore", "build/\n*.draft.md\n")
    write(root, "docs/.gitignore", "private.md\n")
    write(root, "docs/keep.md", "# Keep\n\nyes\n")
    write(root, "docs/private.md", "# Private\n\nno\n")
    write(root, "build/out.md", "# Out\n\nno\n")
    write(root, "x.draft.md", "# Draft\n\nno\n")
    write(root, ".obsidian/y.md", "# Hidden\n\nno\n")
    write(root, "notes.txt", "not markdown")
    os.symlink(root, root / "docs" / "loop")
    s = Ingestor(rt, root).run()
    paths = {r["metadata"]["path"] for r in conn.execute("SELECT metadata FROM agent.artifacts")}
    assert paths == {"docs/keep.md"} and s.files == 1


def test_git_checkout_identity(conn: DictConn, rt: Runtime, tmp_path: Path) -> None:
    root = tmp_path / "gitrepo"
    write(root, "README.md", "# Project\n\nHello.\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(root), *cmd], check=True, env=env)
    sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    Ingestor(rt, root).run()
    art = artifact(conn, "README.md")
    assert art["source_system"] == "git" and art["external_id"].endswith(f"README.md@{sha}")
    assert art["metadata"]["commit"] == sha


def test_include_exclude_and_cli(dsn: str, tmp_path: Path) -> None:
    from memsync.faces.cli import main

    root = tmp_path / "r"
    write(root, "docs/a.md", "# A\n\ntext\n")
    write(root, "docs/b.mdx", "# B\n\ntext\n")
    write(root, "blog/c.markdown", "# C\n\ntext\n")
    write(root, "docs/bad.md", b"\x00\x01")
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384"}
    res = CliRunner().invoke(main, ["-q", "ingest", str(root), "--include", "docs/**", "--exclude", "*.mdx", "--json"],
                             env=env)
    assert res.exit_code == 1  # bad.md failed
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["added"] == 1 and summary["failed"] == 1 and summary["errors"][0]["path"] == "docs/bad.md"
    (root / "docs/bad.md").unlink()
    res = CliRunner().invoke(main, ["-q", "ingest", str(root)], env=env)
    assert res.exit_code == 0, res.output
    assert "2 added" in res.stdout and "0 failed" in res.stdout


def test_watch_mode_picks_up_changes(conn: DictConn, rt: Runtime, tmp_path: Path) -> None:
    root = tmp_path / "w"
    write(root, "before.md", "# Before\n\nwritten before the watcher started\n")
    passes: list[Summary] = []
    stop = threading.Event()
    t = threading.Thread(target=watch, args=(Ingestor(rt, root), stop, passes.append, 0.2))
    t.start()

    def wait_for(pred: Any, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError(f"watch did not catch up; passes: {[p.line() for p in passes]}")

    def live(path: str) -> dict[str, Any] | None:
        return conn.execute("SELECT * FROM agent.artifacts WHERE metadata->>'path' = %s AND deleted_at IS NULL",
                            (path,)).fetchone()

    try:
        wait_for(lambda: live("before.md") is not None)
        for i in range(5):  # a save storm
            write(root, "new.md", f"# New\n\nversion {i}\n")
        wait_for(lambda: (row := live("new.md")) is not None and "version 4" in (row["body_md"] or ""))
        wait_for(lambda: any("version 4" in (b["body_md"] or "") for b in
                             conn.execute("SELECT body_md FROM agent.blocks").fetchall()))
        write(root, "new.md", "# New\n\nedited\n")
        wait_for(lambda: (row := live("new.md")) is not None and "edited" in (row["body_md"] or ""))
        (root / "new.md").unlink()
        wait_for(lambda: live("new.md") is None)
    finally:
        stop.set()
        t.join(timeout=30)
    assert not t.is_alive()
    assert len(passes) <= 8  # debounced: not one pass per event


def test_ingest_syncs_only_its_own_files(conn: DictConn, rt: Runtime, dsn: str, tmp_path: Path) -> None:
    """Another source's pending or failing items are not the ingest's: it neither processes
    them nor reports them as ingest failures."""
    from memsync.storage.db import capture

    capture.enqueue(conn, "agent.nonexistent", 1)  # would fail (unknown source) if the ingest touched it
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'not the ingest''s business')")
    write(tmp_path / "docs", "a.md", "# A\n\nAlpha text.\n")
    summary = Ingestor(rt, tmp_path / "docs").run()
    assert summary.failed == 0 and summary.added == 1 and summary.blocks_written == 1
    pending = {r["source_table"]: r["attempts"] for r in conn.execute(
        "SELECT source_table, attempts FROM memsync.outbox").fetchall()}
    assert pending == {"agent.nonexistent": 0, "agent.facts": 0}
    result = CliRunner().invoke(__import__("memsync.faces.cli", fromlist=["main"]).main,
                                ["ingest", str(tmp_path / "docs")], env={"MEMSYNC_DSN": dsn,
                                                                         "MEMSYNC_MODEL": "hashing-384"})
    assert result.exit_code == 0, result.output


def test_symlinks_out_of_the_folder_are_not_followed(conn: DictConn, rt: Runtime, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "secret.md", "# Secret\n\nThe launch codes.\n")
    write(outside, "dir/private.md", "# Private\n\nSalaries.\n")
    root = tmp_path / "docs"
    write(root, "a.md", "# A\n\nPublic.\n")
    write(root, "sub/inner.md", "# Inner\n\nAlso public.\n")
    (root / "leak.md").symlink_to(outside / "secret.md")
    (root / "linked").symlink_to(outside / "dir", target_is_directory=True)
    (root / "alias.md").symlink_to(root / "sub" / "inner.md")  # inside: followed
    s = Ingestor(rt, root).run()
    paths = {r["path"] for r in conn.execute("SELECT metadata->>'path' AS path FROM agent.artifacts").fetchall()}
    texts = " ".join(r["body_md"] for r in conn.execute("SELECT body_md FROM agent.blocks").fetchall())
    assert "launch codes" not in texts and "Salaries" not in texts
    assert s.skipped == 2 and {w["path"] for w in s.warnings} == {"leak.md", "linked"}
    assert all("outside the folder" in w["warning"] for w in s.warnings)
    assert s.failed == 0 and s.added == 3, paths

    s2 = Ingestor(rt, root, follow_external_links=True).run()
    assert s2.added == 2 and s2.skipped == 0
    texts = " ".join(r["body_md"] for r in conn.execute("SELECT body_md FROM agent.blocks").fetchall())
    assert "launch codes" in texts and "Salaries" in texts


def test_front_matter_that_expands_through_aliases_is_refused(conn: DictConn, rt: Runtime, tmp_path: Path) -> None:
    bomb = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x, x]"]
                     + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
                        f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
                        f" *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(6)])
    write(tmp_path / "d", "bomb.md", f"---\n{bomb}\n---\n# Bomb\n\nBody.\n")
    write(tmp_path / "d", "ok.md", "---\nbase: &b {x: 1}\ncopy: *b\n---\n# Fine\n\nAliases in moderation are fine.\n")
    s = Ingestor(rt, tmp_path / "d").run()
    assert s.failed == 1 and s.added == 1
    (err,) = s.errors
    assert err["path"] == "bomb.md" and "front matter expands to more than" in err["error"]
    assert conn.execute("SELECT count(*) AS n FROM agent.artifacts WHERE metadata->>'path' = 'bomb.md'"
                        ).fetchone() == {"n": 0}
