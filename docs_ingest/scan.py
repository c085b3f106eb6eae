"""Walk a folder or git checkout: markdown files only, .gitignore and hidden folders
respected, symlinked folders followed once (a loop cannot hang the walk). A symlink that
leads outside the folder is not followed unless asked: ingest never reads what it was not
pointed at."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from docs_ingest.parse import MARKDOWN_SUFFIXES, Spec


@dataclass(frozen=True)
class Entry:
    rel_path: str  # posix, relative to the root
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Repo:
    root: Path
    identity: str  # origin URL for a git checkout with a remote, else the absolute path
    system: str  # 'git' or 'fs'
    commit: str | None


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def identify(root: Path) -> Repo:
    root = root.resolve()
    if (root / ".git").exists():
        commit = _git(root, "rev-parse", "HEAD")
        origin = _git(root, "config", "--get", "remote.origin.url")
        return Repo(root, origin or str(root), "git", commit)
    return Repo(root, str(root), "fs", None)


def filters(include: Sequence[str], exclude: Sequence[str]) -> tuple[Spec, Spec]:
    # no include pattern: every markdown file (the suffix test in in_scope ignores case)
    inc = pathspec.PathSpec.from_lines("gitwildmatch", include or ["*"])
    return inc, pathspec.PathSpec.from_lines("gitwildmatch", exclude)


def in_scope(rel_path: str, include: Spec, exclude: Spec) -> bool:
    return (rel_path.lower().endswith(MARKDOWN_SUFFIXES) and include.match_file(rel_path)
            and not exclude.match_file(rel_path))


def _outside(path: Path, root: Path) -> Path | None:
    """Where a symlink leads when that is outside `root` (None: inside, or unresolvable)."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return None if target == root or root in target.parents else target


def scan(root: Path, include: Spec, exclude: Spec, errors: list[tuple[str, str]],
         skipped: list[tuple[str, str]] | None = None, *, follow_external: bool = False) -> Iterator[Entry]:
    """Yield markdown files in scope. Unreadable folders are reported in `errors`; symlinks
    to places outside the root in `skipped` (unless follow_external)."""
    root = root.resolve()
    seen: set[tuple[int, int]] = set()
    ignores: list[tuple[str, Spec]] = []  # (folder rel path, its .gitignore)

    def ignored(rel: str, is_dir: bool) -> bool:
        for base, spec in ignores:
            if base and not rel.startswith(base + "/"):
                continue
            sub = rel[len(base) + 1:] if base else rel
            if spec.match_file(sub + ("/" if is_dir else "")):
                return True
        return False

    def walk(folder: Path, rel: str) -> Iterator[Entry]:
        try:
            st = folder.stat()
        except OSError as exc:
            errors.append((rel or ".", f"cannot read folder: {exc.strerror}"))
            return
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop or a second way in
            return
        seen.add((st.st_dev, st.st_ino))
        gi = folder / ".gitignore"
        pushed = False
        if gi.is_file():
            try:
                lines = gi.read_text(errors="replace").splitlines()
                ignores.append((rel, pathspec.PathSpec.from_lines("gitwildmatch", lines)))
                pushed = True
            except OSError as exc:
                errors.append((f"{rel}/.gitignore".lstrip("/"), f"cannot read: {exc.strerror}"))
        try:
            children = sorted(os.scandir(folder), key=lambda d: d.name)
        except OSError as exc:
            errors.append((rel or ".", f"cannot list folder: {exc.strerror}"))
            children = []
        for child in children:
            if child.name.startswith("."):
                continue
            child_rel = f"{rel}/{child.name}" if rel else child.name
            try:
                is_dir = child.is_dir()  # follows symlinks; `seen` stops loops
            except OSError:
                continue
            if ignored(child_rel, is_dir):
                continue
            if not follow_external and child.is_symlink() and (is_dir or in_scope(child_rel, include, exclude)):
                target = _outside(Path(child.path), root)
                if target is not None:
                    if skipped is not None:
                        skipped.append((child_rel, f"symlink to {target}, outside the folder: not followed "
                                                   "(--follow-external-links to read it)"))
                    continue
            if is_dir:
                yield from walk(Path(child.path), child_rel)
            elif in_scope(child_rel, include, exclude):
                try:
                    cst = child.stat()
                except OSError as exc:
                    errors.append((child_rel, f"cannot stat: {exc.strerror}"))
                    continue
                yield Entry(child_rel, Path(child.path), cst.st_size, cst.st_mtime_ns)
        if pushed:
            ignores.pop()

    yield from walk(root, "")
