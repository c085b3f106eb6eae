"""The vector indexes memsync can keep, declared once: settings validation, `reindex
--index`, the worker pool and the choice of dense index read from here. Adding an index is
adding its module and one entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memsync import settings as names

if TYPE_CHECKING:
    from memsync.index import VectorIndex
    from memsync.settings import Settings


@dataclass(frozen=True)
class IndexKind:
    name: str
    open: Callable[[Settings, str], VectorIndex]  # (settings, dsn) -> a live index
    search_rank: int  # dense search uses the enabled index with the lowest rank
    per_worker: bool  # each worker thread opens its own instance (it holds a connection)


def _pgvector(settings: Settings, dsn: str) -> VectorIndex:
    from memsync.index.pgvector import PgvectorIndex

    return PgvectorIndex(dsn)


def _qdrant(settings: Settings, dsn: str) -> VectorIndex:
    from memsync.index.qdrant import QdrantIndex

    return QdrantIndex.from_settings(settings)


INDEXES: dict[str, IndexKind] = {k.name: k for k in (
    # a dedicated vector server answers kNN over a large corpus faster than Postgres
    IndexKind("qdrant", _qdrant, search_rank=0, per_worker=False),
    IndexKind("pgvector", _pgvector, search_rank=1, per_worker=True),
)}


@dataclass(frozen=True)
class MirrorKind:
    """An external memory store that gets copies of some rows from its own queue (migration
    0013), never a search index: its outage holds back nothing else."""

    name: str
    open: Callable[[Settings], Any]  # settings -> a mirror (probe, apply, verify, pull)


def _zep(settings: Settings) -> Any:
    from memsync.mirror.zep import ZepMirror

    return ZepMirror(settings)


MIRRORS: dict[str, MirrorKind] = {k.name: k for k in (MirrorKind("zep", _zep),)}
# Settings accepts these names without importing this module (it would import the indexes)
assert set(INDEXES) == set(names.VECTOR_INDEXES) and set(MIRRORS) == set(names.MIRRORS)


def open_indexes(settings: Settings, dsn: str) -> list[VectorIndex]:
    # names checked by Settings; mirrors (zep) are not search indexes: memsync/mirror/
    return [INDEXES[name].open(settings, dsn) for name in settings.indexes if name in INDEXES]
