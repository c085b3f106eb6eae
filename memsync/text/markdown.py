"""Markdown structure from a CommonMark parser (markdown-it-py), not line rules: sections by
heading (ATX and setext, never inside code, lists or quotes) and the block-level units of
each, cut from the source text by the parser's line maps, so fences, tables, HTML and MDX
blocks, lists and quotes are recognised the same way everywhere. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_ITEM_MARKER = re.compile(r"^(\s{0,3}(?:\d{1,9}[.)]|[-+*])[ \t]+)")
ATOMIC = frozenset({"fence", "code_block", "table_open", "html_block"})  # never split inside


@dataclass(frozen=True)
class Item:
    """A top-level list item: its text without the marker, and its number if ordered."""

    text: str  # without the marker
    number: int | None
    raw: str = ""  # as written, marker included


@dataclass(frozen=True)
class Unit:
    text: str  # the source text of the block
    atomic: bool = False  # code, a table, an HTML/MDX block: kept whole
    items: tuple[Item, ...] = ()  # for a list: its top-level items


@dataclass
class Section:
    path: list[str]  # heading titles from the top
    units: list[Unit] = field(default_factory=list)
    level: int = 0  # of the heading that opened it (0: text before any heading)


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    # only the block structure is needed: inline parsing (links, emphasis) was most of the time
    md.core.ruler.disable(["inline", "text_join"])
    return md


def _cut(lines: list[str], start: int, end: int) -> str:
    return "\n".join(lines[start:end]).strip("\n")


def _item_text(lines: list[str], start: int, end: int) -> str:
    """A list item's own text: its marker removed, continuation lines dedented by its width."""
    body = lines[start:end]
    m = _ITEM_MARKER.match(body[0])
    width = len(m.group(1)) if m else 0
    first = body[0][width:]
    rest = [line[width:] if line[:width].strip() == "" else line.lstrip() for line in body[1:]]
    return "\n".join([first, *rest]).strip("\n")


def sections(text: str) -> list[Section]:
    """The document as heading sections, each with its block-level units in order (a list is
    one unit, with its top-level items)."""
    lines = text.split("\n")
    tokens = _parser().parse(text)
    out = [Section([])]
    stack: list[tuple[int, str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.level != 0 or tok.nesting == -1 or tok.map is None:
            i += 1
            continue
        start, end = tok.map
        if tok.type == "heading_open":
            level, title = int(tok.tag[1]), tokens[i + 1].content.strip()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            out.append(Section([t for _, t in stack], level=level))
        elif tok.type in ("bullet_list_open", "ordered_list_open"):
            ordered = tok.type == "ordered_list_open"
            items: list[Item] = []
            j = i + 1
            while j < len(tokens) and not (tokens[j].level == 0 and tokens[j].nesting == -1):
                item = tokens[j]
                if item.type == "list_item_open" and item.level == 1 and item.map is not None:
                    number = int(item.info) if ordered and item.info.isdigit() else None
                    items.append(Item(_item_text(lines, *item.map), number, _cut(lines, *item.map)))
                j += 1
            out[-1].units.append(Unit(_cut(lines, start, end), items=tuple(items)))
            i = j
        elif tok.type != "hr":
            unit = _cut(lines, start, end)
            if unit.strip():
                out[-1].units.append(Unit(unit, atomic=tok.type in ATOMIC))
        i += 1
    return out
