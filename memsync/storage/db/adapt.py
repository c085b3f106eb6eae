"""How memsync's connections read Postgres values Python has no type for: a time of
'infinity' or '-infinity' (how many schemas write "open-ended": a fact's valid_to, a task
without a due date), or one past the year 9999 or before year 1, loads as the latest or
earliest time Python holds instead of failing the query. Without this one such row, written
by the ERP or any SQL client, failed every read that touched it: the sync batch it sat in
(the rows beside it too) and every bundle of its subject."""

from __future__ import annotations

import struct
from datetime import date, datetime, timezone
from typing import Any

import psycopg
from psycopg.types import datetime as pgdt

LATEST = datetime.max.replace(tzinfo=timezone.utc)
EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


def _text_end(data: Any) -> bool | None:
    """Whether a time Python cannot hold, as Postgres writes it, lies after every other (True)
    or before (False); None when the text is not such a time (another problem: raised)."""
    raw = bytes(data).strip()
    if raw in (b"infinity", b"-infinity") or raw.endswith(b" BC"):
        return not (raw.startswith(b"-") or raw.endswith(b" BC"))
    digits = len(raw) - len(raw.lstrip(b"0123456789"))
    return True if digits > 4 and raw[digits:digits + 1] == b"-" else None  # 10000-01-01 …


def _binary_end(data: Any) -> bool:
    raw = bytes(data)
    return bool(struct.unpack(">q" if len(raw) == 8 else ">i", raw)[0] > 0)


def _bounded(base: type[Any], late: Any, early: Any, after: Any) -> type[Any]:
    class Loader(base):  # type: ignore[misc]
        def load(self, data: Any) -> Any:
            try:
                return super().load(data)
            except psycopg.DataError:
                end = after(data)
                if end is None:
                    raise
                return late if end else early

    Loader.__name__ = f"Bounded{base.__name__}"
    return Loader


LOADERS = {
    "timestamptz": (_bounded(pgdt.TimestamptzLoader, LATEST, EARLIEST, _text_end),
                    _bounded(pgdt.TimestamptzBinaryLoader, LATEST, EARLIEST, _binary_end)),
    "timestamp": (_bounded(pgdt.TimestampLoader, datetime.max, datetime.min, _text_end),
                  _bounded(pgdt.TimestampBinaryLoader, datetime.max, datetime.min, _binary_end)),
    "date": (_bounded(pgdt.DateLoader, date.max, date.min, _text_end),
             _bounded(pgdt.DateBinaryLoader, date.max, date.min, _binary_end)),
}


def register_times(conn: psycopg.Connection[Any]) -> None:
    """On one connection (never process-wide: an application that embeds memsync keeps its own)."""
    for name, (text, binary) in LOADERS.items():
        conn.adapters.register_loader(name, text)
        conn.adapters.register_loader(name, binary)
