"""memsync: keeps a semantic index of Postgres agent memory in sync and serves context."""

__version__ = "0.1.0"
