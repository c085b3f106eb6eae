"""Times as chat exports and transcripts write them ("1:56 pm on 8 May, 2023",
"2023/05/20 (Sat) 02:21", "May 8, 2023 1:56 pm", RFC 2822's "Mon, 08 May 2023 13:56:00 +0000"), read
into datetimes so history comes in with its real times without a conversion step. Pure.

Only writings a reader cannot take two ways are read: the month is a word, or the year comes
first (2023/05/20); "03/04/2023" (March or April?) and a date without a year are not. ISO 8601
and Unix times are read by pydantic. `read_time` is the one reader of a time a caller gives
(history's times, a fact's validity, a search's or bundle's as_of)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import TypeAdapter, ValidationError

MONTHS = {name: i for i, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
    ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
    ("december", "dec")), start=1) for name in names}
_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = re.compile(r"\(?\b(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?\b\.?\)?",
                      re.I)
_ZONE = re.compile(r"\s*(?:\b(utc|gmt)|(?<=\d)z|([+-])(\d{2}):?(\d{2}))$", re.I)
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([ap])\.?m\b\.?)?|\b(\d{1,2})\s*([ap])\.?m\b\.?", re.I)
_DATES = (
    ("dmy", re.compile(rf"(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\s+(\d{{4}})", re.I)),
    ("mdy", re.compile(rf"{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\s+(\d{{4}})", re.I)),
    ("ymd", re.compile(r"(\d{4})([/.-])(\d{1,2})\2(\d{1,2})")),
)


_ISO = TypeAdapter(datetime)


def aware(v: datetime | None) -> datetime | None:
    """Naive means UTC (as everywhere in memsync), whatever the server's TimeZone."""
    return v.replace(tzinfo=timezone.utc) if v is not None and v.tzinfo is None else v


def read_time(v: Any) -> datetime:
    """A time as a caller writes it: ISO 8601, a Unix time, or words ('1:56 pm on 8 May, 2023',
    '2023/05/20 (Sat) 02:21'); anything else raises ValueError saying what to write. Naive
    when it names no zone (memsync reads that as UTC)."""
    if isinstance(v, datetime):
        return v
    if isinstance(v, bool):
        raise ValueError("expected a time, not true or false")
    if isinstance(v, (int, str)) and re.fullmatch(r"(19|20)\d\d[01]\d[0-3]\d", str(v).strip()):
        # 20230508 would be read as a Unix time in August 1970: surely meant as a date
        d = str(v).strip()
        raise ValueError(f"{v!r} is a date without separators, which would read as a Unix time in 1970: "
                         f"write {d[:4]}-{d[4:6]}-{d[6:]}")
    if isinstance(v, str) and (w := written(v)) is not None:
        return w
    try:
        return _ISO.validate_python(v)
    except ValidationError as exc:
        # ISO-shaped ('2023-02-30'): pydantic's reason says what is wrong with it
        why = f" ({exc.errors()[0]['msg'].split(', ', 1)[-1]})" if isinstance(v, str) and re.match(r"\s*\d{4}-", v) \
            else ""
        shown = repr(v[:80]) if isinstance(v, str) else f"{type(v).__name__} {str(v)[:80]!r}"
        raise ValueError(f"{shown} is not a time{why}: write ISO 8601 ('2023-05-08T13:56:00Z'), a Unix time, "
                         "or the month in words ('8 May 2023 1:56 pm', 'May 8, 2023')") from None


def written(text: str) -> datetime | None:
    """The time `text` writes, or None when it is not one of the writings above. Without a
    zone the time is naive (the caller decides; memsync reads it as UTC)."""
    s = " ".join(text.split())
    if not s or len(s) > 100:
        return None
    zone = None
    if (z := _ZONE.search(s)) is not None:
        zone = timezone.utc if z.group(1) or not z.group(2) else timezone(
            (1 if z.group(2) == "+" else -1) * timedelta(hours=int(z.group(3)), minutes=int(z.group(4))))
        s = s[:z.start()]
    clock = (0, 0, 0)
    if (t := _TIME.search(s)) is not None:
        read = _clock(t)
        if read is None:
            return None
        clock, s = read, s[:t.start()] + " " + s[t.end():]
    s = _WEEKDAY.sub(" ", s)
    s = re.sub(r"\b(?:on|at)\b|,", " ", s, flags=re.I)
    s = " ".join(s.split())
    for kind, pattern in _DATES:
        if (m := pattern.fullmatch(s)) is not None:
            g = m.groups()
            year, month, day = ((int(g[2]), MONTHS[g[1].lower()], int(g[0])) if kind == "dmy" else
                                (int(g[2]), MONTHS[g[0].lower()], int(g[1])) if kind == "mdy" else
                                (int(g[0]), int(g[2]), int(g[3])))
            try:
                return datetime(year, month, day, *clock, tzinfo=zone)
            except ValueError:  # 31 February and the like
                return None
    return None


def day_only(text: str) -> bool:
    """True when `text` names a calendar day and no clock or zone ('2023-05-08', '8 May 2023'):
    a day, not the midnight UTC it is read as."""
    s = " ".join(text.split())
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        return True
    return written(s) is not None and _TIME.search(s) is None and _ZONE.search(s) is None


def _clock(m: re.Match[str]) -> tuple[int, int, int] | None:
    hour_s, minute, second, half = (m.group(1), m.group(2), m.group(3), m.group(4)) if m.group(1) else (
        m.group(5), "0", None, m.group(6))
    hour = int(hour_s)
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half.lower() == "p" else 0)
    clock = (hour, int(minute), int(second or 0))
    return clock if clock[0] < 24 and clock[1] < 60 and clock[2] < 60 else None
