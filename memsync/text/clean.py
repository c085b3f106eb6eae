"""Whether text can be stored and searched at all: PostgreSQL refuses NUL characters, and
lone surrogates (a '\\ud800' JSON escape, or an argument from a terminal that is not UTF-8)
cannot be encoded as UTF-8. Pure."""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def unstorable(text: str) -> bool:
    """True when `text` holds a NUL character or a lone surrogate."""
    return "\x00" in text or has_surrogates(text)
