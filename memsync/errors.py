"""One error root. Every error memsync raises on purpose is a MemsyncError, so callers
(and the CLI) can tell an expected failure with a clear message from a bug."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class MemsyncError(Exception):
    """Root of every error memsync raises deliberately."""

    exit_code = 1  # what the CLI exits with


class InvalidInput(MemsyncError):
    """The caller's input is wrong (a setting, a filter, a recipe, a subject): nothing was
    written; the message names the field."""

    exit_code = 2


class ConfigError(InvalidInput):
    """A setting is missing or invalid."""


class FactEnded(InvalidInput):
    """A fact that has already ended (or was withdrawn before it became valid) cannot be
    forgotten or superseded again; the message says when it ended."""


class IdempotencyConflict(InvalidInput):
    """An idempotency key was used before with a different payload; the message names the
    fields that differ. Nothing was written."""


class DatabaseError(MemsyncError):
    """The database could not be reached or refused an operation."""


class MigrationError(MemsyncError):
    """A migration file is missing, changed after it was applied, or failed."""


class EmbeddingError(MemsyncError):
    """The embedding model could not be loaded or failed to encode."""


class IndexUnavailable(MemsyncError):
    """A vector index could not confirm a write or answer a query."""


class SourceError(MemsyncError):
    """A source row could not be turned into blocks."""


class RowError(MemsyncError):
    """One input (a source row, a text) failed on its own: only its item fails."""



class FieldError(InvalidInput):
    """An argument failed validation; the message names the field."""


class RefError(InvalidInput):
    """A row reference is malformed or names no row."""


class SubjectError(InvalidInput):
    """The subject reference is malformed or names no row."""


class ScopeError(InvalidInput):
    """A read or write reaches outside the subject tree a server is confined to."""


class FilterError(InvalidInput):
    """A filter names something that does not exist or cannot be applied."""


class SearchError(InvalidInput):
    """A search query or option is not usable; the message names it."""


class RecipeError(InvalidInput):
    """A recipe is unknown or its spec is malformed."""


class TokenError(InvalidInput):
    """A sync token that memsync did not issue (or that was cut short)."""


class EvalSetError(InvalidInput):
    """A labelled set is malformed; the message names the line and field."""


class NotSynced(MemsyncError):
    """A read waited for writes that are not searchable yet (timed out, or dead-lettered)."""

    def __init__(self, message: str, pending: list[dict[str, Any]]):
        super().__init__(message)
        self.pending = pending


class ServerError(MemsyncError):
    """The server cannot start as asked (an unknown profile, a scope that names no row)."""


def field_problems(exc: Any, *, whole: str = "", limit: int | None = None,
                   name: Callable[[str], str] = str) -> str:
    """A pydantic ValidationError as one line, 'field.path: why; ...': the one wording of
    every input check (arguments, settings, filters, recipes, the CLI). A model-wide check
    has no field (`whole` names it, else its message names its own); pydantic's
    "Value error, " prefix is dropped."""
    out = []
    for e in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in e["loc"])
        where = name(loc) if loc else whole
        msg = str(e["msg"]).removeprefix("Value error, ")
        out.append(f"{where}: {msg}" if where else msg)
    return "; ".join(out)


def connection_failed(exc: BaseException) -> bool:
    """True when `exc` means the database connection is gone (or the server is shutting
    down), so the work in hand is not at fault and must be redone after a reconnect.

    Classified by SQLSTATE, not by Python class: psycopg raises a row's data errors such
    as ProgramLimitExceeded ("string is too long for tsvector", 54000) as OperationalError
    subclasses too, and treating those as a lost connection retried one bad row forever."""
    import psycopg

    if isinstance(exc, DatabaseError):  # raised by connect(): the server could not be reached
        return True
    if isinstance(exc, psycopg.InterfaceError):  # the connection object is closed
        return True
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:  # raised by the client: the socket broke, the server went away
        return isinstance(exc, psycopg.OperationalError)
    # 08: connection exception; 57P01-57P05: shutdown, crash, cannot connect now, idle timeout;
    # 53300: too many connections (the server's state, not the row's)
    return state.startswith(("08", "57P")) or state == "53300"


def transient(exc: BaseException) -> bool:
    """True for a conflict between concurrent transactions (serialization failure,
    deadlock, lock not available): nobody's fault; the work is redone, no attempt counted."""
    import psycopg

    return isinstance(exc, psycopg.Error) and exc.sqlstate in ("40001", "40P01", "55P03")


def misconfigured(exc: BaseException) -> bool:
    """The deployment is wrong, not the data: a setting, a model that cannot load, a schema not
    migrated (undefined table, column or function). Starting a loop again cannot help until
    someone acts, so it is reported and the loop ends."""
    import psycopg

    if isinstance(exc, (ConfigError, MigrationError, EmbeddingError)):
        return True
    return isinstance(exc, psycopg.Error) and exc.sqlstate in ("42P01", "42703", "42883")


def redo(exc: BaseException) -> bool:
    """The work in hand is not at fault: the worker backs off and redoes it."""
    return connection_failed(exc) or transient(exc)
