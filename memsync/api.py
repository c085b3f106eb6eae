"""The library API: `from memsync import search, retrieve` works in an agent's own process
with no setup code; everything comes from MEMSYNC_* settings. One runtime and one
connection per process, created on first use and reopened if the connection dropped."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from memsync import ops, runtime
from memsync.context import ContextBundle, Retriever
from memsync.db import DictConn, connect
from memsync.filters import Filters
from memsync.hybrid import Hit, Mode, SearchOptions
from memsync.hybrid import search as _search
from memsync.settings import Settings
from memsync.subjects import SubjectRef

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _get() -> tuple[runtime.Runtime, DictConn, Retriever]:
    with _lock:
        rt = _state.get("rt")
        if rt is None:
            settings = Settings.from_env()
            rt = _state["rt"] = runtime.build(settings)
            _state["follow"] = runtime.follows_active_model(settings)
        conn: DictConn | None = _state.get("conn")
        if conn is None or conn.closed or conn.broken:
            conn = _state["conn"] = connect(rt.dsn, autocommit=True, vectors=True)
            _state["retriever"] = Retriever(rt, conn, log=rt.settings.log_retrievals)
        elif _state.get("follow") and (model := ops.active_model(conn)) and model != rt.embedder.model_id:
            # `memsync reembed` switched models: query the index the daemon now keeps current
            rt.close()
            rt = _state["rt"] = runtime.build(Settings.from_env())
            _state["retriever"] = Retriever(rt, conn, log=rt.settings.log_retrievals)
        return rt, conn, _state["retriever"]


def search(query: str, *, k: int = 10, mode: Mode = "hybrid", filters: Filters | dict[str, Any] | None = None,
           **options: Any) -> list[Hit]:
    """Hybrid (default), dense or lexical search over blocks; see SearchOptions for options."""
    rt, conn, _ = _get()
    f = filters if isinstance(filters, Filters) else Filters.parse(filters)
    return _search(rt, conn, query, SearchOptions(k=k, mode=mode, **options), f)


def retrieve(recipe: str | int, subject: SubjectRef, *, query: str | None = None, budget_tokens: int | None = None,
             as_of: datetime | None = None) -> ContextBundle:
    """Run a context recipe for a subject ((type, id), 'type:id' or a global_id)."""
    _, _, retriever = _get()
    return retriever.retrieve(recipe, subject, query=query, budget_tokens=budget_tokens, as_of=as_of)
