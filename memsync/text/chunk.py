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
from memsync.vocabulary import CHUNK_OVERLAP, CHUNK_TOKENS

# What the chunkers produce; `memsync rechunk` brings stored rows up to a new version.
CHUNKER_VERSION = "6"
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
    def context(self) -> str | None:
        """What the model reads between the heading and the body, never searched by words
        nor shown as the block's text, kept in metadata['context'] so a stored block embeds
        the same text again. Conversation turns of chunker 5 carried the turns before them
        here; no chunker writes it now, and stored blocks that have it still re-embed true."""
        value = self.metadata.get("context")
        return str(value) if value else None

    @property
    def text(self) -> str:
        return embed_text(self.heading_path, self.body_md, self.context)

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def embed_text(heading_path: str | None, body: str | None, context: str | None = None) -> str:
    parts = [p for p in (heading_path, context, body) if p and p.strip()]
    return normalize("\n\n".join(parts))


def content_hash(text: str) -> str:
    return hashlib.sha256(f"{HASH_SCHEME}\x00{normalize(text)}".encode()).hexdigest()


def approx_tokens(text: str) -> int:
    """Fallback counter (~WordPiece density) for tests and when no tokenizer is loaded; a
    long unbroken string costs what it weighs (see long_word_surcharge)."""
    return len(re.findall(r"\w+|[^\w\s]", text)) + long_word_surcharge(text)


# WordPiece tokenizers (MiniLM's included) map any word over 100 characters to one [UNK]
# token, so a tokenizer count is no size bound for data URIs, hashes or minified code. Such a
# word is charged what an LLM would see: about one token per 4 characters.
LONG_WORD = re.compile(r"\S{101,}")
CHARS_PER_TOKEN = 4


def long_word_surcharge(text: str) -> int:
    return sum(-(-len(w) // CHARS_PER_TOKEN) - 1 for w in LONG_WORD.findall(text))


# A data URI (an inline image, a font) is kept out of chunks: a placeholder names it.
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,[A-Za-z0-9+/=]{100,}")
# Any other unbroken string this long is cut: no text of a document needs one.
MAX_WORD_CHARS = 1000
_HUGE_WORD = re.compile(r"\S{" + str(MAX_WORD_CHARS + 1) + ",}")


def strip_blobs(text: str) -> str:
    """Replace inline data URIs with a placeholder that names them, and cut unbroken strings
    over MAX_WORD_CHARS to their start plus a note of what was left out."""
    text = _DATA_URI.sub(lambda m: f"data:{m.group(1) or 'application/octet-stream'};base64,"
                                   f"[{len(m.group(0)):,} characters omitted]", text)
    return _HUGE_WORD.sub(lambda m: f"{m.group(0)[:64]}…[{len(m.group(0)) - 64:,} characters omitted]", text)


def strip_front_matter(text: str) -> str:
    if text.startswith("---\n") or text.startswith("---\r\n"):
        end = re.search(r"^(---|\.\.\.)\s*$", text[4:], re.MULTILINE)
        if end:
            return text[4 + end.end():].lstrip("\n")
    return text


# ------------------------------------------------------------------ markdown


Sized = tuple[str, int]  # a piece of text and its token count


def split_long(unit: str, budget: int, count: TokenCounter, atomic: bool = False,
               size: int | None = None) -> list[Sized]:
    """Split an oversized prose unit by sentences, then by words (an atomic unit: code, a
    table, an HTML block, is kept whole). Every piece comes with its token count, so
    nothing is tokenized twice; a sentence too long on its own is cut into runs of words
    sized by its average tokens per word (one tokenizer call, not one per word)."""
    size = count(unit) if size is None else size
    if size <= budget:
        return [(unit, size)]
    if atomic:
        return _split_block(unit, budget, count)
    pieces: list[Sized] = []
    for sentence in _SENTENCE.split(unit):
        n = count(sentence)
        if n <= budget:
            pieces.append((sentence, n))
            continue
        words = sentence.split(" ")
        per = max(1, int(len(words) * budget / n))
        for start in range(0, len(words), per):
            pieces.extend(_fit(" ".join(words[start:start + per]), budget, count))
    return pieces


def _fit(text: str, budget: int, count: TokenCounter, sep: str = " ") -> list[Sized]:
    """`text` counted, and halved at `sep` (words, or lines) until every piece fits: an
    estimate by average size can miss when sizes vary. A single line left over is split as
    prose; a single word, by characters."""
    n = count(text)
    if n <= budget:
        return [(text, n)]
    parts = text.split(sep)
    if len(parts) > 1:
        mid = len(parts) // 2
        return _fit(sep.join(parts[:mid]), budget, count, sep) + _fit(sep.join(parts[mid:]), budget, count, sep)
    if sep != " ":
        return split_long(text, budget, count, size=n)
    step = max(1, len(text) * budget // (n + 1))
    return [p for i in range(0, len(text), step) for p in _fit(text[i:i + step], budget, count)]


_FENCE_OPEN = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


def _split_block(unit: str, budget: int, count: TokenCounter) -> list[Sized]:
    """Code, a table or an HTML block over the budget: cut between lines (a fenced block's
    pieces are each fenced again), a line too long on its own as prose. No block may exceed
    the chunk size, whatever it holds. Lines are grouped by their share of the block's count
    and each group is then counted once (and halved if the estimate missed): a tokenizer call
    per group, not per line."""
    lines = unit.split("\n")
    opener = closer = ""
    fence = _FENCE_OPEN.match(lines[0])
    if fence and len(lines) > 2 and lines[-1].strip().startswith(fence.group(1)):
        opener, closer, lines = lines[0], lines[-1], lines[1:-1]
    wrap = count(f"{opener}\n{closer}") if opener else 0
    inner = max(8, budget - wrap)
    per_char = count("\n".join(lines)) / max(1, sum(len(line) + 1 for line in lines))
    groups: list[list[str]] = [[]]
    estimate = 0.0
    for line in lines:
        n = (len(line) + 1) * per_char
        if groups[-1] and estimate + n > 0.9 * inner:
            groups.append([])
            estimate = 0.0
        groups[-1].append(line)
        estimate += n
    pieces: list[Sized] = []
    for group in groups:
        for text, n in _fit("\n".join(group), inner, count, "\n"):
            pieces.append((f"{opener}\n{text}\n{closer}" if opener else text, n + wrap))
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


def _unit_pieces(unit: markdown.Unit, budget: int, count: TokenCounter) -> list[Sized]:
    """A block-level unit as counted pieces within the budget. A list too long for one chunk
    is split at its items first, so an edit to one item does not move the cut points of the
    others (a sentence split over the whole list would, re-embedding every piece after it)."""
    size = count(unit.text)
    if size <= budget:
        return [(unit.text, size)]
    if unit.items and len(unit.items) > 1:
        return [p for item in unit.items for p in split_long(item.raw, budget, count)]
    return split_long(unit.text, budget, count, unit.atomic, size)


def bounded(text: str, heading: str | None, max_tokens: int = CHUNK_TOKENS, overlap: int = CHUNK_OVERLAP,
            count: TokenCounter = approx_tokens) -> list[Sized]:
    """One text (a fact, a goal, a step) as pieces that each fit the chunk size with their
    heading: usually one piece; blobs are replaced first (strip_blobs)."""
    text = normalize(strip_blobs(text))
    budget = max(16, max_tokens - (count(heading) if heading else 0))
    units = [p for para in text.split("\n\n") for p in split_long(para, budget, count)]
    return pack(units, budget, overlap, "\n\n")


def piece_key(base: str, i: int) -> str:
    """'fact', 'fact#1', ...: the first piece keeps the key a one-piece row always had."""
    return base if i == 0 else f"{base}#{i}"


def _slug(text: str) -> str:
    s = re.sub(r"[^\w]+", "-", text.lower()).strip("-")
    return s[:60] or "section"


def chunk_markdown(
    text: str,
    *,
    title: str | None = None,
    max_tokens: int = CHUNK_TOKENS,
    overlap: int = CHUNK_OVERLAP,
    count: TokenCounter = approx_tokens,
    block_type: str = "doc_section",
    key_prefix: str = "",
    label: str | None = None,
) -> list[Chunk]:
    """`label` (a file's path words) follows the title in every heading: 'Title (label) > ...'."""
    body = normalize(strip_blobs(strip_front_matter(text)))
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for section in markdown.sections(body):
        path = list(section.path)
        if title and path and path[0].strip().lower() == title.strip().lower():
            path = path[1:]
        head = f"{title} ({label})" if title and label else (title or label)
        crumbs = [head, *path] if head else path
        heading_path = " > ".join(c for c in crumbs if c) or None
        head_tokens = count(heading_path) if heading_path else 0
        budget = max(16, max_tokens - head_tokens)
        units = [p for u in section.units for p in _unit_pieces(u, budget, count)]
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
            text = _plain(item.get("text") or item.get("title") or item) if isinstance(item, Mapping) else _plain(item)
            if text.strip():
                lines.append(f"- {text.strip()}")
        return "\n".join(lines)
    return _plain(value)


def _plain(value: Any) -> str:
    """A JSON value as text a person writes: strings as they are, numbers as numbers,
    true/false, nothing for null, anything nested as compact JSON (not Python's repr)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def block_text(row: Mapping[str, Any]) -> str:
    """The text embedded for a stored block. Derived blocks (chunk_key set) embed exactly
    what their chunker hashed; a block written directly falls back to its title."""
    if row.get("chunk_key"):
        return embed_text(row.get("heading_path"), row.get("body_md"), row.get("context"))
    return embed_text(row.get("heading_path") or row.get("title"), row.get("body_md"))
