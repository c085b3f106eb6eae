"""Generic chunking: markdown sections, splitting, packing, hashing. Pure functions; each
memory kind's own chunker (memsync/kinds/) builds on these.

Each Chunk has a stable chunk_key (so an edit touches only the blocks whose text changed)
and the text that gets embedded is the heading path (breadcrumb) plus the body. The
content hash covers that normalized text (not the chunker version); embeddings are keyed by
(model, content_hash), so identical text is never embedded twice for one model."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from memsync.text import markdown

# What the chunkers produce; `memsync rechunk` brings stored rows up to a new version.
CHUNKER_VERSION = "2"
# The content hash keys stored embeddings: it covers only the embedded text (and this scheme
# tag), so a chunker change re-embeds the blocks whose text changed, and no others.
HASH_SCHEME = "1"
TokenCounter = Callable[[str], int]

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
    return hashlib.sha256(f"{HASH_SCHEME}\x00{normalize(text)}".encode()).hexdigest()


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


Sized = tuple[str, int]  # a piece of text and its token count


def split_long(unit: str, budget: int, count: TokenCounter, atomic: bool = False) -> list[Sized]:
    """Split an oversized prose unit by sentences, then by words (an atomic unit: code, a
    table, an HTML block, is kept whole). Every piece comes with its token count, so
    nothing is tokenized twice; a sentence too long on its own is cut into runs of words
    sized by its average tokens per word (one tokenizer call, not one per word)."""
    size = count(unit)
    if size <= budget or atomic:
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


def pack(units: list[Sized], budget: int, overlap: int, sep: str) -> list[Sized]:
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
    for section in markdown.sections(body):
        path = list(section.path)
        if title and path and path[0].strip().lower() == title.strip().lower():
            path = path[1:]
        crumbs = [title, *path] if title else path
        heading_path = " > ".join(c for c in crumbs if c) or None
        head_tokens = count(heading_path) if heading_path else 0
        budget = max(16, max_tokens - head_tokens)
        units = [p for u in section.units for p in split_long(u.text, budget, count, u.atomic)]
        if not units:
            continue
        base = key_prefix + ("/".join(_slug(p) for p in section.path) or "_root")
        n = seen.get(base, 0)
        seen[base] = n + 1
        if n:
            base = f"{base}~{n}"
        for i, (piece, tokens) in enumerate(pack(units, budget, overlap, "\n\n")):
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


# ------------------------------------------------------------------ structured values


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


def block_text(row: Mapping[str, Any]) -> str:
    """The text embedded for a stored block. Derived blocks (chunk_key set) embed exactly
    what their chunker hashed; a block written directly falls back to its title."""
    head = row.get("heading_path") if row.get("chunk_key") else (row.get("heading_path") or row.get("title"))
    return embed_text(head, row.get("body_md"))
