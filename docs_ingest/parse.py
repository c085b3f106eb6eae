"""Pure parsing of one markdown file: front matter, title, summary, type, subject, links."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pathspec

from memsync.errors import SourceError
from memsync.text.yaml_text import read_yaml

Spec = pathspec.PathSpec[Any]

MARKDOWN_SUFFIXES = (".md", ".mdx", ".markdown")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


@dataclass(frozen=True)
class SubjectRef:
    subject_type: str
    ref: str  # numeric id or global_id


@dataclass
class ParsedDoc:
    title: str
    summary: str | None
    body: str
    artifact_type: str
    front_matter: dict[str, Any]
    subject: SubjectRef | None
    links: list[str] = field(default_factory=list)


def split_front_matter(text: str, where: str) -> tuple[dict[str, Any], str]:
    m = _FRONT.match(text)
    if not m:
        return {}, text
    try:
        data = read_yaml(m.group(1)) or {}
    except ValueError as exc:
        raise SourceError(f"{where}: invalid YAML front matter: {exc}") from None
    if not isinstance(data, dict):
        raise SourceError(f"{where}: front matter must be a mapping, got {type(data).__name__}")
    _bounded(data, where)
    return {str(k): v for k, v in data.items()}, text[m.end():]


FRONT_MATTER_MAX_NODES = 10_000
FRONT_MATTER_MAX_CHARS = 64 * 1024


def _bounded(data: Any, where: str) -> None:
    """YAML aliases let a few hundred bytes stand for megabytes (each alias is the same
    object again); walk what the front matter expands to, within a budget, before anything
    serializes it."""
    nodes, chars = 0, 0
    stack = [data]
    while stack:
        value = stack.pop()
        nodes += 1
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        else:
            chars += len(str(value))
        if nodes > FRONT_MATTER_MAX_NODES or chars > FRONT_MATTER_MAX_CHARS:
            raise SourceError(f"{where}: front matter expands to more than {FRONT_MATTER_MAX_NODES} values or "
                              f"{FRONT_MATTER_MAX_CHARS // 1024} KB of text (YAML aliases?); refused")


def _first_paragraph(body: str) -> str | None:
    in_fence = False
    para: list[str] = []
    for line in body.splitlines():
        s = line.strip()
        if s.startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence or s.startswith(("#", "|", "<", "!", "import ", "export ")):
            if para:
                break
            continue
        if not s:
            if para:
                break
            continue
        para.append(s)
    if not para:
        return None
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", " ".join(para))
    text = re.sub(r"[*_`]", "", text)
    return text[:297] + "..." if len(text) > 300 else text


def _subject(fm: dict[str, Any], subject_types: Collection[str], where: str) -> SubjectRef | None:
    raw = fm.get("subject")
    if raw is not None:
        kind, sep, ref = str(raw).partition(":")
        if not sep or not ref.strip():
            raise SourceError(f"{where}: front matter subject {raw!r} must look like 'project:42'")
        kind = kind.strip()
        if kind not in subject_types:
            raise SourceError(f"{where}: front matter subject type {kind!r} is not one of {sorted(subject_types)}")
        return SubjectRef(kind, ref.strip())
    for kind in subject_types:
        if kind in fm and fm[kind] not in (None, ""):
            return SubjectRef(kind, str(fm[kind]).strip())
    return None


def _links(body: str, rel_path: str) -> list[str]:
    out: list[str] = []
    base = posixpath.dirname(rel_path)
    for target in _LINK.findall(body):
        if _SCHEME.match(target) or target.startswith(("#", "/")):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path.lower().endswith(MARKDOWN_SUFFIXES):
            continue
        norm = posixpath.normpath(posixpath.join(base, path))
        if not norm.startswith("..") and norm not in out:
            out.append(norm)
    return out


def parse(text: str, rel_path: str, *, subject_types: Collection[str],
          sop_paths: Spec | None = None) -> ParsedDoc:
    fm, body = split_front_matter(text, rel_path)
    heading = _HEADING.search(body)
    title = str(fm.get("title") or (heading.group(1).strip() if heading else "") or
                posixpath.splitext(posixpath.basename(rel_path))[0])
    summary = str(fm["description"]) if fm.get("description") else _first_paragraph(body)
    declared = str(fm.get("type", "")).lower()
    is_sop = declared == "sop" or (not declared and sop_paths is not None and sop_paths.match_file(rel_path))
    return ParsedDoc(
        title=title,
        summary=summary,
        body=body,
        artifact_type="sop" if is_sop else "doc",
        front_matter=fm,
        subject=_subject(fm, subject_types, rel_path),
        links=_links(body, rel_path),
    )
