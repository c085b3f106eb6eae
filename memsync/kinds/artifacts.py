"""Artifacts (agent.artifacts): markdown documents, chunked by heading; an SOP
(artifact_type 'sop') gets one sop_step block per step. Read through semantic sections."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from memsync.kinds.base import ChunkParams, Kind, Source
from memsync.text import markdown
from memsync.text.chunk import (
    Chunk,
    TokenCounter,
    approx_tokens,
    bounded,
    chunk_markdown,
    normalize,
    piece_key,
    strip_front_matter,
)
from memsync.vocabulary import CHUNK_OVERLAP, CHUNK_TOKENS

_STEP_HEADING = re.compile(r"^step\s+(\d{1,3})\b[:.\-\s]*(.*)$", re.IGNORECASE)


def chunk_sop(
    text: str,
    *,
    title: str | None = None,
    max_tokens: int = CHUNK_TOKENS,
    overlap: int = CHUNK_OVERLAP,
    count: TokenCounter = approx_tokens,
    label: str | None = None,
) -> list[Chunk]:
    """One sop_step block per step: a top-level ordered list item or a 'Step N' heading
    (ATX or setext). The step number is the ordinal; it stays out of the embedded text so
    that inserting a step does not re-embed the ones after it. What follows a step up to
    the next belongs to it; text before the first step is a doc_section."""
    body = normalize(strip_front_matter(text))
    steps: list[tuple[int, list[str]]] = []
    preamble: list[str] = []
    for section in markdown.sections(body):
        head = _STEP_HEADING.match(section.path[-1]) if section.path else None
        if head:
            steps.append((int(head.group(1)), [head.group(2)] if head.group(2) else []))
        elif section.path and steps:  # another heading inside a step: part of it
            steps[-1][1].append("#" * section.level + " " + section.path[-1])
        elif section.path:
            preamble.append("#" * section.level + " " + section.path[-1])
        for unit in section.units:
            numbered = [i for i in unit.items if i.number is not None]
            if numbered and not head:
                steps.extend((i.number or 0, [i.text]) for i in numbered)
            elif steps:
                steps[-1][1].append(unit.text)
            else:
                preamble.append(unit.text)
    if not steps:
        return chunk_markdown(text, title=title, max_tokens=max_tokens, overlap=overlap, count=count, label=label)
    chunks = chunk_markdown(
        "\n\n".join(preamble), title=title, max_tokens=max_tokens, overlap=overlap, count=count,
        key_prefix="preamble/", label=label,
    )
    title = f"{title} ({label})" if title and label else (title or label)  # the steps' heading
    used: dict[int, int] = {}
    title_tokens = count(title) if title else 0
    for position, (number, lines) in enumerate(steps, start=1):
        step_body = normalize("\n".join(lines))
        if not step_body:
            continue
        dup = used.get(number, 0)
        used[number] = dup + 1
        key = f"step-{number}" + (f"~{dup}" if dup else "")
        for i, (piece, tokens) in enumerate(bounded(step_body, title, max_tokens, overlap, count)):
            chunks.append(Chunk(chunk_key=piece_key(key, i), block_type="sop_step", body_md=piece, heading_path=title,
                                title=f"Step {number}", ordinal=position, metadata={"step": number},
                                tokens=title_tokens + tokens))
    return chunks


# path segments that name no topic
_PATH_NOISE = {"index", "readme", "docs", "doc", "src", "content", "pages"}


def path_label(row: Mapping[str, Any]) -> str | None:
    """'deployment / server' for a file docs_ingest read from docs/deployment/server.mdx: a
    file's place in its repository names its topic, so each chunk's heading carries it, in
    its embedded text and its lexical vector; %-escaped names are decoded. None for artifacts
    that are not files, or when the title already says every word. The cost: renaming a file
    re-embeds its chunks. (Carried by the lexical vector alone, it lifted lexical but left
    hybrid below lexical on the 45-page set; dropping only the words the title repeats saved
    6.5 % of the tokens but cost 0.006 hybrid nDCG@10 on the full Mastra set.)"""
    if row.get("source_system") not in ("git", "fs"):
        return None
    external = re.sub(r"@[0-9a-f]{7,40}$", "", str(row.get("external_id") or ""))  # docs_ingest's @commit
    rel = urllib.parse.unquote(external.rsplit(":", 1)[-1])
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    # bare numbers are ordering prefixes of numbered folders ("01-guides/02-getting-started"):
    # they name no topic and took ~1/6 of a chunk's tokens on such trees
    words = [w for w in re.split(r"[/_.\-@\s]+", stem)
             if w and w.lower() not in _PATH_NOISE and not w.isdigit()]
    said = set(re.findall(r"\w+", str(row.get("title") or "").lower()))
    return None if {w.lower() for w in words} <= said else " / ".join(words) or None


def chunk(row: Mapping[str, Any], p: ChunkParams) -> list[Chunk]:
    if row.get("deleted_at") is not None or not (row.get("body_md") or "").strip():
        return []
    title = row.get("title")
    label = path_label(row)
    split = chunk_sop if row.get("artifact_type") == "sop" else chunk_markdown
    return split(row["body_md"], title=title, label=label, max_tokens=p.max_tokens, overlap=p.overlap, count=p.count)


KIND = Kind(
    "artifacts",
    Source("agent.artifacts", ("artifact_type", "title", "body_md", "subject_type", "subject_id", "deleted_at"),
           ("subject_type", "subject_id"), chunk, is_artifact=True),
)
