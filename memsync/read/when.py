"""The time window a question names ("in May 2023", "on 8 May 2023", "last week"), for
conversation recall: turns that happened inside it rank ahead of the others. Pure: text and
a reference time in, a window (UTC, end exclusive) or None out. Only calendar expressions a
reader cannot take two ways are read: a bare month ("in May") or a number alone is not a
window, and a question that names two windows apart gets none."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from memsync.text.dates import MONTHS

_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(1[9]\d\d|20\d\d|2100)"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
# most specific first: a day inside a month inside a year
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("day_month_year", re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.I)),
    ("month_day_year", re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.I)),
    ("month_year", re.compile(rf"\b{_MONTH},?\s+(?:of\s+)?{_YEAR}\b", re.I)),
    ("year", re.compile(rf"\b(?:in|during|throughout)\s+{_YEAR}\b", re.I)),
    ("relative", re.compile(r"\b(yesterday|today|(?:last|this|past)\s+(?:week|month|year))\b", re.I)),
]


@dataclass(frozen=True)
class Window:
    start: datetime  # inclusive
    end: datetime  # exclusive
    text: str  # the words that named it

    def holds(self, when: datetime) -> bool:
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        return self.start <= when < self.end


def window(question: str, now: datetime | None = None) -> Window | None:
    """The window the question names, or None (none, or two apart)."""
    now = now or datetime.now(timezone.utc)
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    found: list[Window] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(question):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue  # inside a more specific match already read
            w = _read(kind, m, now)
            if w is not None:
                found.append(w)
                taken.append(m.span())
    if not found:
        return None
    narrow = min(found, key=lambda w: w.end - w.start)
    # "the 8 May 2023 call, in May 2023": windows inside one another name the narrowest; two
    # apart ("between March 2023 and April 2023") name no single window
    return narrow if all(w.start <= narrow.start and narrow.end <= w.end for w in found) else None


def _read(kind: str, m: re.Match[str], now: datetime) -> Window | None:
    g = m.groups()
    try:
        if kind == "day_month_year":
            start = datetime(int(g[2]), MONTHS[g[1].lower()], int(g[0]), tzinfo=timezone.utc)
            return Window(start, start + timedelta(days=1), m.group(0))
        if kind == "month_day_year":
            start = datetime(int(g[2]), MONTHS[g[0].lower()], int(g[1]), tzinfo=timezone.utc)
            return Window(start, start + timedelta(days=1), m.group(0))
        if kind == "month_year":
            year, month = int(g[1]), MONTHS[g[0].lower()]
            start = datetime(year, month, 1, tzinfo=timezone.utc)
            return Window(start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc), m.group(0))
        if kind == "year":
            year = int(g[0])
            return Window(datetime(year, 1, 1, tzinfo=timezone.utc), datetime(year + 1, 1, 1, tzinfo=timezone.utc),
                          m.group(0))
        return _relative(g[0].lower().split(), now, m.group(0))
    except ValueError:  # 31 February and the like: not a date, so not a window
        return None
    except OverflowError:  # "yesterday" as of 1 January of year 1: before the calendar starts
        return None


def _relative(words: list[str], now: datetime, text: str) -> Window:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if words == ["today"]:
        return Window(today, today + timedelta(days=1), text)
    if words == ["yesterday"]:
        return Window(today - timedelta(days=1), today, text)
    which, unit = words
    if unit == "week":
        monday = today - timedelta(days=today.weekday())
        start = monday if which == "this" else monday - timedelta(days=7)
        # "past week": the seven days up to now; "last week": the calendar week before this one
        return Window(today - timedelta(days=7), now, text) if which == "past" else Window(
            start, start + timedelta(days=7) if which == "last" else now, text)
    if unit == "month":
        first = today.replace(day=1)
        before = (first - timedelta(days=1)).replace(day=1)
        if which == "past":
            return Window(now - timedelta(days=30), now, text)
        return Window(before, first, text) if which == "last" else Window(first, now, text)
    first = today.replace(month=1, day=1)
    if which == "past":
        return Window(now - timedelta(days=365), now, text)
    return Window(first.replace(year=first.year - 1), first, text) if which == "last" else Window(first, now, text)
