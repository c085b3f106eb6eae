"""The time window a question names (memsync.read.when): calendar expressions read one way
only; none, or two that differ, give no window."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from memsync.read.when import window

NOW = datetime(2026, 12, 2, 10, 30, tzinfo=timezone.utc)  # a Wednesday


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


@pytest.mark.parametrize(("question", "start", "end"), [
    ("Where did Priya go hiking in May 2023?", utc(2023, 5, 1), utc(2023, 6, 1)),
    ("what happened in december 2022", utc(2022, 12, 1), utc(2023, 1, 1)),
    ("Which band did Tom see in Sept. 2023?", utc(2023, 9, 1), utc(2023, 10, 1)),
    ("What did we decide on 8 May 2023?", utc(2023, 5, 8), utc(2023, 5, 9)),
    ("notes from May 8th, 2023 please", utc(2023, 5, 8), utc(2023, 5, 9)),
    ("Did Tom travel during 2024?", utc(2024, 1, 1), utc(2025, 1, 1)),
    ("what did I say yesterday", utc(2026, 12, 1), utc(2026, 12, 2)),
    ("anything today?", utc(2026, 12, 2), utc(2026, 12, 3)),
    ("what did we agree last week", utc(2026, 11, 23), utc(2026, 11, 30)),
    ("what came up last month", utc(2026, 11, 1), utc(2026, 12, 1)),
    ("this year's plans", utc(2026, 1, 1), NOW),
    ("the 8 May 2023 call, in May 2023", utc(2023, 5, 8), utc(2023, 5, 9)),  # the day sits in the month: the day
])
def test_a_named_window(question: str, start: datetime, end: datetime) -> None:
    w = window(question, NOW)
    assert w is not None and (w.start, w.end) == (start, end), question


@pytest.mark.parametrize("question", [
    "What pet did Priya adopt?",
    "the 2023 budget review",  # a year alone is a number, not a window
    "what did she do in May",  # which May?
    "May I ask about the plan?",
    "How many days passed between March 2023 and April 2023?",  # two windows
    "on 31 February 2023 or in June 2023",
])
def test_no_window(question: str) -> None:
    assert window(question, NOW) is None, question


def test_holds_is_end_exclusive_and_reads_naive_times_as_utc() -> None:
    w = window("in May 2023", NOW)
    assert w is not None
    assert w.holds(utc(2023, 5, 31, 23, 59)) and not w.holds(utc(2023, 6, 1))
    assert w.holds(datetime(2023, 5, 1))


@pytest.mark.parametrize("phrase", ["yesterday", "today", "last week", "this week", "past week", "last month",
                                    "this month", "past month", "last year", "this year", "past year"])
def test_a_relative_window_at_the_ends_of_the_calendar_is_none_or_a_window_never_an_error(phrase: str) -> None:
    """Searched as of the first or last instant Python's calendar holds (`--as-of 0001-01-01`):
    a window that would begin before the calendar is no window."""
    for now in (datetime.min.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc)):
        w = window(f"what did we say {phrase}", now)
        assert w is None or w.start <= now, (phrase, now)
