"""Chunkers: pure functions from a source row to the blocks it should produce.

Each Chunk has a stable chunk_key (so an edit touches only the blocks whose text changed)
and the text that gets embedded is the heading path (breadcrumb) plus the body. The
content hash covers that normalized text and CHUNKER_VERSION; embeddings are keyed by
(model, content_hash), so identical text is never embedded twice for one model."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CHUNKER_VERSION = "1"
TokenCounter = Callable[[str], int]

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_TABLE = re.compile(r"^\s*\|")
_STEP = re.compile(r"^(\d{1,3})[.)]\s+(.*)$")
_STEP_HEADING = re.compile(r"^step\s+(\d{1,3})\b[:.\-\s]*(.*)$", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Chunk:
    chunk_key: str
    block_type: str
    body_md: str
    heading_path: str | None = None
    title: str | None = None
    ordinal: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tokens: int = 0  # model tokens of `text` as the chunker counted them; 0: not counted

    @property
    def text(self) -> str:
        return embed_text(self.heading_path, self.body_md)

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def embed_text(heading_path: str | None, body: str | None) -> str:
    parts = [p for p in (heading_path, body) if p and p.strip()]
    return normalize("\n\n".join(parts))


def content_hash(text: str) -> str:
    return hashlib.sha256(f"{CHUNKER_VERSION}\x00{normalize(text)}".encode()).hexdigest()


def approx_tokens(text: str) -> int:
    """Fallback counter (~WordPiece density) for tests and when no tokenizer is loaded."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def strip_front_matter(text: str) -> str:
    if text.startswith("---\n") or text.startswith("---\r\n"):
        end = re.search(r"^(---|\.\.\.)\s*$", text[4:], re.MULTILINE)
        if end:
            return text[4 + end.end():].lstrip("\n")
    return text


# ------------------------------------------------------------------ markdown


@dataclass
class _Section:
    path: list[str]
    lines: list[str] = field(default_factory=list)


def _sections(text: str) -> list[_Section]:
    """Split by ATX headings (not inside fences), keeping each section's heading path."""
    sections = [_Section([])]
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)[0] * 3
            fence = None if fence and marker == fence else (fence or marker)
        h = None if fence else _HEADING.match(line)
        if h:
            level, title = len(h.group(1)), h.group(2).strip()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            sections.append(_Section([t for _, t in stack]))
        else:
            sections[-1].lines.append(line)
    return sections


def _units(lines: list[str]) -> list[str]:
    """Paragraph-level units; a fenced code block or a table is one unit, never split."""
    units: list[str] = []
    buf: list[str] = []
    i = 0

    def flush() -> None:
        if buf and any(s.strip() for s in buf):
            units.append("\n".join(buf).strip("\n"))
        buf.clear()

    while i < len(lines):
        line = lines[i]
        m = _FENCE.match(line)
        if m:
            flush()
            marker = m.group(1)
            block = [line]
            i += 1
            while i < len(lines):
                block.append(lines[i])
                if lines[i].strip().startswith(marker[0] * len(marker)) and len(block) > 1:
                    break
                i += 1
            units.append("\n".join(block))
            i += 1
            continue
        if _TABLE.match(line):
            flush()
            block = []
            while i < len(lines) and _TABLE.match(lines[i]):
                block.append(lines[i])
                i += 1
            units.append("\n".join(block))
            continue
        if not line.strip():
            flush()
        else:
            buf.append(line)
        i += 1
    flush()
    return units


Sized = tuple[str, int]  # a piece of text and its token count


def _split_long(unit: str, budget: int, count: TokenCounter) -> list[Sized]:
    """Split an oversized prose unit by sentences, then by words. Every piece comes with
    its token count, so nothing is tokenized twice; a sentence too long on its own is cut
    into runs of words sized by its average tokens per word (one tokenizer call, not one
    per word)."""
    size = count(unit)
    if size <= budget or unit.lstrip().startswith(("```", "~~~", "|")):
        return [(unit, size)]
    pieces: list[Sized] = []
    for sentence in _SENTENCE.split(unit):
        n = count(sentence)
        if n <= budget:
            pieces.append((sentence, n))
            continue
        words = sentence.split(" ")
        per = max(1, int(len(words) * budget / n))
        for start in range(0, len(words), per):
            run = words[start:start + per]
            pieces.append((" ".join(run), max(1, round(n * len(run) / len(words)))))
    return pieces


def _pack(units: list[Sized], budget: int, overlap: int, sep: str) -> list[Sized]:
    """Greedy packing of counted units into chunks of at most `budget` tokens; when a chunk
    is full, the next one starts with trailing units of the previous up to `overlap`
    tokens. WordPiece counts add up across whitespace, so a chunk's count is the sum of
    its units' (linear, where re-counting joined text was quadratic)."""
    chunks: list[Sized] = []
    cur: list[int] = []  # indexes into units
    total = 0
    for i, (_, size) in enumerate(units):
        if cur and total + size > budget:
            chunks.append((sep.join(units[j][0] for j in cur), total))
            tail: list[int] = []
            kept = 0
            for j in reversed(cur):
                if kept + units[j][1] > overlap:
                    break
                tail.insert(0, j)
                kept += units[j][1]
            cur, total = (tail, kept) if tail and kept + size <= budget else ([], 0)
        cur.append(i)
        total += size
    if cur:
        chunks.append((sep.join(units[j][0] for j in cur), total))
    return chunks


def _slug(text: str) -> str:
    s = re.sub(r"[^\w]+", "-", text.lower()).strip("-")
    return s[:60] or "section"


def chunk_markdown(
    text: str,
    *,
    title: str | None = None,
    max_tokens: int = 256,
    overlap: int = 32,
    count: TokenCounter = approx_tokens,
    block_type: str = "doc_section",
    key_prefix: str = "",
) -> list[Chunk]:
    body = normalize(strip_front_matter(text))
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for section in _sections(body):
        path = list(section.path)
        if title and path and path[0].strip().lower() == title.strip().lower():
            path = path[1:]
        crumbs = [title, *path] if title else path
        heading_path = " > ".join(c for c in crumbs if c) or None
        head_tokens = count(heading_path) if heading_path else 0
        budget = max(16, max_tokens - head_tokens)
        units = [p for u in _units(section.lines) for p in _split_long(u, budget, count)]
        if not units:
            continue
        base = key_prefix + ("/".join(_slug(p) for p in section.path) or "_root")
        n = seen.get(base, 0)
        seen[base] = n + 1
        if n:
            base = f"{base}~{n}"
        for i, (piece, tokens) in enumerate(_pack(units, budget, overlap, "\n\n")):
            chunks.append(
                Chunk(
                    chunk_key=f"{base}#{i}",
                    block_type=block_type,
                    body_md=piece,
                    heading_path=heading_path,
                    title=section.path[-1] if section.path else title,
                    ordinal=len(chunks),
                    tokens=head_tokens + tokens,
                )
            )
    return chunks


# ------------------------------------------------------------------ SOPs


def chunk_sop(
    text: str,
    *,
    title: str | None = None,
    max_tokens: int = 256,
    overlap: int = 32,
    count: TokenCounter = approx_tokens,
) -> list[Chunk]:
    """One sop_step block per step: a top-level numbered list item or a 'Step N' heading.
    The step number is the ordinal; it stays out of the embedded text so that inserting a
    step does not re-embed the ones after it. Text before the first step is a doc_section."""
    body = normalize(strip_front_matter(text))
    steps: list[tuple[int, list[str]]] = []
    preamble: list[str] = []
    fence = False
    for line in body.split("\n"):
        if _FENCE.match(line):
            fence = not fence
        h = None if fence else _HEADING.match(line)
        step_head = _STEP_HEADING.match(h.group(2)) if h else None
        item = None if fence else _STEP.match(line)
        if step_head:
            steps.append((int(step_head.group(1)), [step_head.group(2)] if step_head.group(2) else []))
        elif item:
            steps.append((int(item.group(1)), [item.group(2)]))
        elif h and steps and not step_head:
            steps[-1][1].append(line)
        elif steps:
            steps[-1][1].append(line[3:] if line.startswith("   ") else line)
        else:
            preamble.append(line)
    if not steps:
        return chunk_markdown(text, title=title, max_tokens=max_tokens, overlap=overlap, count=count)
    chunks = chunk_markdown(
        "\n".join(preamble), title=title, max_tokens=max_tokens, overlap=overlap, count=count,
        key_prefix="preamble/",
    )
    used: dict[int, int] = {}
    for position, (number, lines) in enumerate(steps, start=1):
        step_body = normalize("\n".join(lines))
        if not step_body:
            continue
        dup = used.get(number, 0)
        used[number] = dup + 1
        chunks.append(
            Chunk(
                chunk_key=f"step-{number}" + (f"~{dup}" if dup else ""),
                block_type="sop_step",
                body_md=step_body,
                heading_path=title,
                title=f"Step {number}",
                ordinal=position,
                metadata={"step": number},
            )
        )
    return chunks


# ------------------------------------------------------------------ reflections, facts, goals

REFLECTION_SECTIONS = ("goals", "accomplishments", "blockers", "decisions", "next_actions")


def as_markdown_list(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, Iterable):
        lines = []
        for item in value:
            if isinstance(item, Mapping):
                text = item.get("text") or item.get("title") or json.dumps(item, sort_keys=True)
            else:
                text = str(item)
            if str(text).strip():
                lines.append(f"- {str(text).strip()}")
        return "\n".join(lines)
    return str(value)


def chunk_reflection(
    row: Mapping[str, Any],
    *,
    max_tokens: int = 256,
    overlap: int = 32,
    count: TokenCounter = approx_tokens,
) -> list[Chunk]:
    period = row.get("period_start") or row.get("created_at")
    label = f"{str(row.get('mode') or '').capitalize()} reflection"
    if period is not None:
        label += f" {str(period)[:10]}"
    chunks: list[Chunk] = []
    for name in REFLECTION_SECTIONS:
        body = as_markdown_list(row.get(name))
        if not body:
            continue
        heading = f"{label} > {name.replace('_', ' ').capitalize()}"
        head_tokens = count(heading)
        budget = max(16, max_tokens - head_tokens)
        pieces = _pack([p for u in body.split("\n") for p in _split_long(u, budget, count)], budget, overlap, "\n")
        for i, (piece, tokens) in enumerate(pieces):
            chunks.append(Chunk(f"{name}#{i}", "reflection_section", piece, heading, name, len(chunks),
                                tokens=head_tokens + tokens))
    raw = row.get("raw_text")
    if raw and str(raw).strip():
        for c in chunk_markdown(str(raw), title=label, max_tokens=max_tokens, overlap=overlap,
                                count=count, block_type="reflection_section", key_prefix="raw_text/"):
            chunks.append(Chunk(c.chunk_key, c.block_type, c.body_md, c.heading_path, "raw_text", len(chunks),
                                tokens=c.tokens))
    return chunks


def chunk_fact(row: Mapping[str, Any]) -> list[Chunk]:
    content = normalize(str(row.get("content") or ""))
    if not content:
        return []
    label = str(row.get("fact_type") or "fact").replace("_", " ")
    if row.get("category"):
        label += f" ({row['category']})"
    return [Chunk("fact", "fact", content, label.capitalize(), label)]


def chunk_goal(row: Mapping[str, Any]) -> list[Chunk]:
    parts = [str(row.get("description") or "").strip()]
    criteria = as_markdown_list(row.get("success_criteria"))
    if criteria:
        parts.append("Success criteria:\n" + criteria)
    body = normalize("\n\n".join(p for p in parts if p))
    title = str(row.get("title") or "").strip()
    if not (title or body):
        return []
    return [Chunk("goal", "goal", body or title, f"Goal: {title}" if title else None, title or None)]


def block_text(row: Mapping[str, Any]) -> str:
    """The text embedded for a stored block. Derived blocks (chunk_key set) embed exactly
    what their chunker hashed; a block written directly falls back to its title."""
    head = row.get("heading_path") if row.get("chunk_key") else (row.get("heading_path") or row.get("title"))
    return embed_text(head, row.get("body_md"))
