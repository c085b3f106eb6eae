"""Wiring from Settings to live parts: DSN, embedder, indexes. One place, so the CLI,
the daemon and the library API assemble memsync the same way."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from memsync import embed
from memsync.embed import Embedder
from memsync.errors import MemsyncError
from memsync.index import VectorIndex
from memsync.index.registry import open_indexes
from memsync.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    dsn: str
    embedder: Embedder
    indexes: list[VectorIndex] = field(default_factory=list)
    _search_index: VectorIndex | None = field(default=None, init=False, repr=False)
    _lexical: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def search_index(self) -> VectorIndex:
        """The enabled index that ranks first for search (Qdrant when configured), else
        pgvector in the same database (the embedded default), opened once and closed with
        the runtime."""
        from memsync.index.registry import INDEXES

        known = [i for i in self.indexes if i.name in INDEXES]
        if known:
            return min(known, key=lambda i: INDEXES[i.name].search_rank)
        with self._lock:
            if self._search_index is None:
                self._search_index = INDEXES["pgvector"].open(self.settings, self.dsn)
            return self._search_index

    def lexical_pool(self) -> ThreadPoolExecutor:
        """Threads for the BM25 query that runs beside the kNN: one per pooled connection, so
        a caller holding a connection never waits for a slot."""
        with self._lock:
            if self._lexical is None:
                self._lexical = ThreadPoolExecutor(max_workers=self.settings.pool_size,
                                                   thread_name_prefix="memsync-lexical")
            return self._lexical

    def close(self) -> None:
        with self._lock:
            extra, self._search_index = self._search_index, None
            lexical, self._lexical = self._lexical, None
        if lexical is not None:
            lexical.shutdown(wait=True)
        for idx in [*self.indexes, *([extra] if extra is not None else [])]:
            close = getattr(idx, "close", None)
            if close:
                close()


def resolve_dsn(settings: Settings, *, migrate_new: bool = True) -> str:
    """The DSN to use: MEMSYNC_DSN, or the embedded server under MEMSYNC_HOME (started, or
    attached to, here). A home's database is migrated when this creates it, so the first
    command in a fresh home (an import, the daemon, a search) works without `memsync db
    migrate`; a database given by DSN is never migrated behind its owner's back."""
    if settings.dsn:
        return settings.dsn
    from memsync.storage import embedded

    return embedded.server_uri(settings.home, migrate_new=migrate_new)


def _with_active_model(settings: Settings, dsn: str) -> Settings:
    """`memsync reembed` records the model it switched to; an unset MEMSYNC_MODEL follows it."""
    import psycopg

    from memsync.storage.db import connect
    from memsync.write.ops import active_model

    try:
        with connect(dsn, autocommit=True) as conn:
            model = active_model(conn)
    except (psycopg.Error, MemsyncError):
        return settings  # not migrated yet: the default model
    return settings.model_copy(update={"model": model}) if model else settings


def follows_active_model(settings: Settings) -> bool:
    """True unless MEMSYNC_MODEL (or --model) pins the model."""
    return "model" not in settings.model_fields_set


def model_loader(settings: Settings) -> Callable[[str], Embedder]:
    """Embedders by model name, one per model, shared by the daemon's workers."""
    loaded: dict[str, Embedder] = {}
    lock = threading.Lock()

    def load(model: str) -> Embedder:
        with lock:
            if model not in loaded:
                loaded[model] = embed.from_settings(settings.model_copy(update={"model": model}))
            return loaded[model]

    return load


def build(settings: Settings, *, embedder: Embedder | None = None,
          indexes: list[VectorIndex] | None = None) -> Runtime:
    dsn = resolve_dsn(settings)
    if embedder is None and follows_active_model(settings):
        settings = _with_active_model(settings, dsn)
    return Runtime(
        settings, dsn, embedder or embed.from_settings(settings),
        indexes if indexes is not None else open_indexes(settings, dsn),
    )
