"""The library API: `from memsync import search, retrieve` works in an agent's own process
with no setup code. The functions use a default application object (memsync.app.Memsync)
opened from MEMSYNC_* on first use and safe to share between threads; a caller that wants
its own settings or a second database holds its own `Memsync(...)` instead."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from memsync.app import Memsync
from memsync.read.context import ContextBundle
from memsync.read.hybrid import Hit, Mode
from memsync.read.subjects import SubjectRef
from memsync.storage.filters import Filters

_lock = threading.Lock()
_default: Memsync | None = None


def default() -> Memsync:
    """The process's default Memsync, opened from MEMSYNC_* on first use."""
    global _default
    with _lock:
        if _default is None:
            _default = Memsync()
        return _default


def close() -> None:
    """Close the default Memsync (its pool and indexes); the next call opens a new one,
    reading MEMSYNC_* again."""
    global _default
    with _lock:
        app, _default = _default, None
    if app is not None:
        app.close()


def search(query: str, *, k: int = 10, mode: Mode = "hybrid", filters: Filters | dict[str, Any] | None = None,
           **options: Any) -> list[Hit]:
    """Hybrid (default), dense or lexical search over blocks; see SearchOptions for options."""
    return default().search(query, k=k, mode=mode, filters=filters, **options)


def retrieve(recipe: str | int, subject: SubjectRef, *, query: str | None = None, budget_tokens: int | None = None,
             as_of: datetime | str | None = None) -> ContextBundle:
    """Run a context recipe for a subject ((type, id), 'type:id' or a global_id)."""
    return default().retrieve(recipe, subject, query=query, budget_tokens=budget_tokens, as_of=as_of)
