"""Times as transcripts write them (memsync.text.dates): read where a reader cannot take
them two ways, refused (None) otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from memsync.text.dates import day_only, written

UTC = timezone.utc


@pytest.mark.parametrize(("text", "when"), [
    ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56)),
    ("2023/05/20 (Sat) 02:21", datetime(2023, 5, 20, 2, 21)),
    ("May 8, 2023 13:56", datetime(2023, 5, 8, 13, 56)),
    ("May 8, 2023 2:05 pm", datetime(2023, 5, 8, 14, 5)),
    ("Saturday, 20 May 2023 at 12:05 AM", datetime(2023, 5, 20, 0, 5)),
    ("20th of May 2023, 12pm", datetime(2023, 5, 20, 12, 0)),
    ("10:30 am, Sept. 3, 2024", datetime(2024, 9, 3, 10, 30)),
    ("8 May 2023", datetime(2023, 5, 8)),
    ("2023.05.20", datetime(2023, 5, 20)),
    ("2023-05-08 1:56 pm", datetime(2023, 5, 8, 13, 56)),
    ("8 May 2023 13:56:07 UTC", datetime(2023, 5, 8, 13, 56, 7, tzinfo=UTC)),
    ("2023/05/20 02:21 +02:00", datetime(2023, 5, 20, 2, 21, tzinfo=timezone(timedelta(hours=2)))),
    ("Mon, 08 May 2023 13:56:00 -0500", datetime(2023, 5, 8, 13, 56, tzinfo=timezone(timedelta(hours=-5)))),
])
def test_written_times_are_read(text: str, when: datetime) -> None:
    assert written(text) == when


@pytest.mark.parametrize("text", [
    "03/04/2023",  # March or April?
    "8 May",  # which year?
    "May 2023",  # a month is not a time
    "yesterday",
    "31 February 2023",
    "25:00 8 May 2023",
    "13 pm 8 May 2023",
    "8 Mayo 2023",
    "8 May 2023 and then some",
    "2023-05-08T13:56:00Z",  # ISO 8601 and Unix times are pydantic's
    "1683554160",
    "",
])
def test_anything_else_is_not_read(text: str) -> None:
    assert written(text) is None


@pytest.mark.parametrize(("text", "day"), [
    ("2023-05-08", True), ("8 May 2023", True), ("Saturday, 20 May 2023", True), ("2023/05/20 (Sat)", True),
    ("2023-05-08T00:00:00Z", False), ("8 May 2023 2 pm", False), ("2023/05/20 (Sat) 02:21", False),
    ("8 May 2023 UTC", False), ("the 25th", False), ("", False)])
def test_a_day_without_a_clock_is_told_apart(text: str, day: bool) -> None:
    assert day_only(text) is day


def test_one_reader_for_every_time_a_caller_gives() -> None:
    """History's times and a search's or bundle's as_of are read alike: what an import takes,
    `retrieve --as-of` takes, and both refuse the same writings, saying why."""
    from memsync.errors import RecipeError
    from memsync.read.context import parse_when
    from memsync.text.dates import read_time

    for given, when in [("May 8, 2023 14:05", datetime(2023, 5, 8, 14, 5, tzinfo=UTC)),
                        ("2023-05-08T14:05:00+02:00", datetime(2023, 5, 8, 12, 5, tzinfo=UTC)),
                        (1683554700, datetime(2023, 5, 8, 14, 5, tzinfo=UTC)),
                        ("1683554700", datetime(2023, 5, 8, 14, 5, tzinfo=UTC))]:
        assert parse_when(given, "as_of") == when, given  # type: ignore[arg-type]
        read = read_time(given)
        assert (read if read.tzinfo else read.replace(tzinfo=UTC)) == when, given
    for bad, why in [("2023-02-30", "day value is outside expected range"), ("03/04/2023", "is not a time"),
                     ("20230508", "write 2023-05-08"), (True, "not true or false"), ("soon", "is not a time")]:
        with pytest.raises(ValueError, match=why):
            read_time(bad)
        with pytest.raises(RecipeError, match=f"as_of: .*{why}"):
            parse_when(bad, "as_of")  # type: ignore[arg-type]
