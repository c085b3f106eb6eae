"""The library API: `from memsync import search, retrieve` works in an agent's own process
with no setup code. The functions use a default application object (memsync.app.Memsync)
opened from MEMSYNC_* on first use and safe to share between threads; a caller that wants
its own settings or a second database holds its own `Memsync(...)` instead."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
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
    """Hybrid (default), dense or lexical search over blocks; see Memsync.search (after=, wait_ms=)."""
    return default().search(query, k=k, mode=mode, filters=filters, **options)


def retrieve(recipe: str | int, subject: SubjectRef, **options: Any) -> ContextBundle:
    """Run a context recipe for a subject; see Memsync.retrieve (query, budget_tokens, as_of, after)."""
    return default().retrieve(recipe, subject, **options)


def _delegate(name: str) -> Callable[..., Any]:
    method = getattr(Memsync, name)

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(default(), name)(*args, **kwargs)

    return call


# The write API and the rest of the agent face: each is the default Memsync's method.
remember = _delegate("remember")
forget = _delegate("forget")
supersede = _delegate("supersede")
log_reflection = _delegate("log_reflection")
add_note = _delegate("add_note")
start_session = _delegate("start_session")
log_event = _delegate("log_event")
end_session = _delegate("end_session")
promote_event = _delegate("promote_event")
get = _delegate("get")
block_actions = _delegate("block_actions")
wait_synced = _delegate("wait_synced")
