"""Wiring from Settings to live parts: DSN, embedder, indexes. One place, so the CLI,
the daemon and the library API assemble memsync the same way."""

from __future__ import annotations

from dataclasses import dataclass, field

from memsync import embed
from memsync.db import resolve_dsn
from memsync.embed import Embedder
from memsync.index import VectorIndex, open_indexes
from memsync.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    dsn: str
    embedder: Embedder
    indexes: list[VectorIndex] = field(default_factory=list)

    def close(self) -> None:
        for idx in self.indexes:
            close = getattr(idx, "close", None)
            if close:
                close()


def build(settings: Settings, *, embedder: Embedder | None = None,
          indexes: list[VectorIndex] | None = None) -> Runtime:
    dsn = resolve_dsn(settings)
    return Runtime(
        settings, dsn, embedder or embed.from_settings(settings),
        indexes if indexes is not None else open_indexes(settings, dsn),
    )
