"""memsync: keeps a semantic index of Postgres agent memory in sync and serves context.

`from memsync import search, retrieve, remember, ...` gives the library API (configured from
MEMSYNC_*),
`from memsync import Memsync` an application object of your own, `from memsync import
NotSynced, MemsyncError, ...` the errors to catch;
imports are lazy so that `import memsync` stays cheap."""

from __future__ import annotations

from typing import Any

from memsync.version import __version__ as __version__

__all__ = ["Memsync", "add_note", "block_actions", "end_session", "forget", "get", "log_event", "log_reflection",
           "promote_event", "remember", "retrieve", "search", "start_session", "supersede", "wait_synced"]


# the errors a caller may catch, from memsync.errors (their root is MemsyncError)
ERRORS = ("MemsyncError", "InvalidInput", "ConfigError", "FieldError", "RefError", "SubjectError", "ScopeError",
          "FilterError", "SearchError", "RecipeError", "TokenError", "FactEnded", "IdempotencyConflict", "NotSynced",
          "DatabaseError", "EmbeddingError", "IndexUnavailable")


def __getattr__(name: str) -> Any:
    if name in ERRORS:
        from memsync import errors

        return getattr(errors, name)
    if name == "Memsync":
        from memsync.app import Memsync

        return Memsync
    if name in __all__:
        from memsync.faces import api

        return getattr(api, name)
    raise AttributeError(f"module 'memsync' has no attribute {name!r}")
