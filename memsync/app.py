"""The application object. `Memsync(settings)` owns what a process needs to use memsync:
the DSN, a connection pool, the embedder and the indexes. The CLI, the library API and any
face built on them go through it; several can live in one process (two databases), and
one is safe to share between threads (each call takes its own pooled connection).

    with Memsync() as app:                        # settings from MEMSYNC_*
        hits = app.search("rollback plan", k=5)
        bundle = app.retrieve("project_context", "project:42")

From async code, call it in a worker thread: `await asyncio.to_thread(app.search, ...)`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any

from memsync import runtime
from memsync.embed import Embedder
from memsync.errors import DatabaseError
from memsync.index import VectorIndex
from memsync.read.context import ContextBundle, RetrievalLog, Retriever
from memsync.read.hybrid import Hit, Mode, SearchError, SearchOptions
from memsync.read.hybrid import search as hybrid_search
from memsync.read.recipes import RecipeError, RecipeFile
from memsync.read.subjects import SubjectRef
from memsync.runtime import Runtime
from memsync.settings import Settings, redact_dsn
from memsync.storage.db import DictConn, capture, connect
from memsync.storage.db import context as ctxq
from memsync.storage.db.subjects import subject_types
from memsync.storage.filters import Filters
from memsync.write import ops

POOL_TIMEOUT = 10.0  # seconds a call waits for a connection before it fails


class Memsync:
    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None,
                 indexes: list[VectorIndex] | None = None):
        self.settings = settings if settings is not None else Settings.from_env()
        self._indexes = indexes  # given indexes are kept across a model switch
        # with no MEMSYNC_MODEL (and no embedder given), follow the model `memsync reembed` made active
        self._follow = embedder is None and runtime.follows_active_model(self.settings)
        self._rt = runtime.build(self.settings, embedder=embedder, indexes=indexes)
        self._pool: Any = None
        self._lock = threading.Lock()
        self._log = RetrievalLog()

    # ------------------------------------------------------------ lifecycle

    @property
    def runtime(self) -> Runtime:
        return self._rt

    @property
    def dsn(self) -> str:
        return self._rt.dsn

    def __enter__(self) -> Memsync:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            try:
                with pool.connection(timeout=1.0) as conn:
                    self._log.end(conn)
            except Exception:  # closing must not fail on a server that is gone
                pass
            pool.close()
        self._rt.close()

    def _open_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from pgvector.psycopg import register_vector
                from psycopg.rows import dict_row
                from psycopg_pool import ConnectionPool

                connect(self._rt.dsn, vectors=True).close()  # a clear error now: unreachable, not migrated
                self._pool = ConnectionPool(
                    self._rt.dsn, min_size=1, max_size=self.settings.pool_size, open=True, name="memsync",
                    kwargs={"autocommit": True, "row_factory": dict_row}, configure=register_vector,
                    check=ConnectionPool.check_connection,  # a connection the server dropped is replaced
                )
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[DictConn]:
        """A pooled connection (autocommit, dict rows, pgvector types) for one call."""
        from psycopg_pool import PoolTimeout

        pool = self._open_pool()
        try:
            with pool.connection(timeout=POOL_TIMEOUT) as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseError(f"no database connection within {POOL_TIMEOUT:.0f}s to "
                                f"{redact_dsn(self._rt.dsn)}: {exc}") from exc

    def _runtime_for(self, conn: DictConn) -> Runtime:
        """After `memsync reembed` switched models, query the index the daemon keeps current."""
        if self._follow and (model := ops.active_model(conn)) and model != self._rt.embedder.model_id:
            with self._lock:
                if model != self._rt.embedder.model_id:
                    old = self._rt
                    self._rt = runtime.build(self.settings.model_copy(update={"model": model}),
                                             indexes=self._indexes)
                    old.close()
        return self._rt

    # ------------------------------------------------------------ read

    def search(self, query: str, *, k: int = 10, mode: Mode = "hybrid",
               filters: Filters | dict[str, Any] | None = None, **options: Any) -> list[Hit]:
        """Hybrid (default), dense or lexical search over blocks; see SearchOptions for options."""
        f = filters if isinstance(filters, Filters) else Filters.parse(filters)
        unknown = set(options) - {"rrf_k", "weights", "candidates", "mmr_lambda", "recency_half_life_days"}
        if unknown:
            raise SearchError(f"unknown search option(s): {', '.join(sorted(unknown))}")
        with self.connection() as conn:
            if f.subjects:  # a subject type outside the vocabulary would silently match nothing
                known = subject_types(conn)
                strange = sorted({t for t, _ in f.subjects if t not in known})
                if strange:
                    raise SearchError(f"unknown subject type(s) in filters: {', '.join(strange)}; "
                                      f"known: {', '.join(sorted(known))}")
            return hybrid_search(self._runtime_for(conn), conn, query, SearchOptions(k=k, mode=mode, **options), f)

    def retrieve(self, recipe: str | int, subject: SubjectRef, *, query: str | None = None,
                 budget_tokens: int | None = None, as_of: datetime | str | None = None) -> ContextBundle:
        """Run a context recipe for a subject ((type, id), 'type:id' or a global_id)."""
        with self.connection() as conn:
            retriever = Retriever(self._runtime_for(conn), conn, log=self.settings.log_retrievals, session=self._log)
            return retriever.retrieve(recipe, subject, query=query, budget_tokens=budget_tokens, as_of=as_of)

    def status(self) -> dict[str, Any]:
        with self.connection() as conn:
            rt = self._runtime_for(conn)
            return ops.status(conn, rt.embedder.model_id, rt.indexes)

    # ------------------------------------------------------------ recipes and the queue

    def recipes(self) -> list[dict[str, Any]]:
        """Every recipe, latest version of each."""
        with self.connection() as conn:
            return ctxq.recipes(conn)

    def recipe(self, name: str) -> dict[str, Any]:
        """A recipe's latest version by name; RecipeError when there is none."""
        with self.connection() as conn:
            row = ctxq.recipe(conn, name=name)
        if row is None:
            raise RecipeError(f"unknown recipe {name!r}")
        return row

    def put_recipe(self, recipe: RecipeFile) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Store a validated recipe; a changed spec becomes a new version (the old one stays
        readable by id). Returns the stored row and the version it replaced, if any."""
        with self.connection() as conn, conn.transaction():
            before = ctxq.recipe(conn, name=recipe.name)
            row = ctxq.put_recipe(conn, recipe.name, recipe.description, recipe.raw_spec)
        return row, before

    def retry(self, ids: Sequence[int] | None = None) -> int:
        """Requeue dead-lettered outbox items (all, or these ids); returns how many."""
        with self.connection() as conn:
            return capture.retry_dead(conn, list(ids) if ids else None)

