"""One error root. Every error memsync raises on purpose is a MemsyncError, so callers
(and the CLI) can tell an expected failure with a clear message from a bug."""

from __future__ import annotations


class MemsyncError(Exception):
    """Root of every error memsync raises deliberately."""


class ConfigError(MemsyncError):
    """A setting is missing or invalid."""


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
