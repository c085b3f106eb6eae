"""Qdrant via qdrant-client: a server by URL, or local mode (one process, for tests).
One collection per model; point id = uuid5(block global_id); payload indexes on the
fields that filters use."""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from memsync.errors import ConfigError, FilterError, IndexUnavailable
from memsync.index import PointLoader, point_id
from memsync.settings import Settings
from memsync.storage.filters import TIMED_SOURCES, Filters

T = TypeVar("T")
KEYWORD_FIELDS = ("global_id", "block_type", "source_table", "subject_type", "content_hash", "entity_type")
INTEGER_FIELDS = ("block_id", "source_id", "artifact_id", "subject_id")
VECTOR = "dense"


def qdrant_filter(f: Filters) -> Any:
    """Filters -> a Qdrant Filter over the payload; every field of Filters is mapped."""
    from qdrant_client import models as m

    must: list[Any] = []
    for key, words in (("block_type", f.block_types), ("source_table", f.source_tables)):
        if words:
            must.append(m.FieldCondition(key=key, match=m.MatchAny(any=list(words))))
    if f.artifact_ids:
        must.append(m.FieldCondition(key="artifact_id", match=m.MatchAny(any=list(f.artifact_ids))))
    if f.subjects:
        must.append(m.Filter(should=[
            m.Filter(must=[m.FieldCondition(key="subject_type", match=m.MatchValue(value=t)),
                           m.FieldCondition(key="subject_id", match=m.MatchValue(value=i)) if i is not None
                           else m.IsNullCondition(is_null=m.PayloadField(key="subject_id"))])
            for t, i in f.subjects
        ]))
    if f.created_after or f.created_before:
        must.append(m.FieldCondition(key="created_at_ts", range=m.Range(
            gte=f.created_after.timestamp() if f.created_after else None,
            lte=f.created_before.timestamp() if f.created_before else None)))
    if f.memory_after or f.memory_before:  # turns and facts are timed after ranking (hit_rows)
        must.append(m.Filter(should=[
            m.FieldCondition(key="source_table", match=m.MatchAny(any=list(TIMED_SOURCES))),
            m.FieldCondition(key="created_at_ts", range=m.Range(
                gte=f.memory_after.timestamp() if f.memory_after else None,
                lte=f.memory_before.timestamp() if f.memory_before else None))]))
    handled = {"block_types", "source_tables", "artifact_ids", "subjects", "scoped", "created_after", "created_before",
               "memory_after", "memory_before"}
    unknown = set(Filters.model_fields) - handled
    if unknown:  # a new filter field must be mapped here before Qdrant can serve it
        raise FilterError(f"qdrant cannot apply filter fields {sorted(unknown)}")
    return m.Filter(must=must) if must else None


class QdrantIndex:
    name = "qdrant"

    def __init__(self, client: Any, collection_prefix: str):
        self._client = client
        self._prefix = collection_prefix
        self._ready: set[str] = set()  # created (or checked) by ensure
        self._seen: set[str] = set()  # found to exist by a reader
        # local mode is an in-process store with no locking of its own: the daemon's worker
        # threads share one client, so their calls take turns (a server client needs no lock)
        local = type(getattr(client, "_client", None)).__name__ == "QdrantLocal"
        self._local = local
        self._turns: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if local else contextlib.nullcontext())

    @classmethod
    def from_settings(cls, settings: Settings) -> QdrantIndex:
        from qdrant_client import QdrantClient

        if settings.qdrant_url:
            client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=10)
        elif settings.qdrant_path:
            client = QdrantClient(path=str(settings.qdrant_path))
        else:
            raise ConfigError("the qdrant index needs MEMSYNC_QDRANT_URL or MEMSYNC_QDRANT_PATH")
        return cls(client, settings.qdrant_collection)

    def collection(self, model: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", model.rsplit("/", 1)[-1]).strip("_").lower()
        return f"{self._prefix}__{slug}"

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            with self._turns:
                return fn()
        except (ConfigError, IndexUnavailable):
            raise
        except Exception as exc:  # transport and server errors of every kind
            raise IndexUnavailable(f"qdrant {what}: {type(exc).__name__}: {exc}".strip()) from exc

    def _exists(self, name: str) -> bool:
        """Whether the collection is there; asked until it is (the worker creates it with the
        first vectors), then known."""
        if name not in self._ready and name not in self._seen:
            if not self._call("exists", lambda: self._client.collection_exists(name)):
                return False
            self._seen.add(name)
        return True

    def probe(self) -> None:
        self._call("probe", self._client.get_collections)

    def ensure(self, model: str, dim: int) -> None:
        from qdrant_client import models as m

        name = self.collection(model)
        if name in self._ready:
            return

        def create() -> None:
            if self._client.collection_exists(name):
                info = self._client.get_collection(name)
                size = info.config.params.vectors[VECTOR].size
                if size != dim:
                    raise ConfigError(f"qdrant collection {name} has dimension {size}, model {model} has {dim}")
                return
            try:
                self._client.create_collection(
                    name, vectors_config={VECTOR: m.VectorParams(size=dim, distance=m.Distance.COSINE)}
                )
            except Exception:
                # another worker created it between the check and the create: use theirs
                if not self._client.collection_exists(name):
                    raise
            for field in KEYWORD_FIELDS:
                self._client.create_payload_index(name, field, field_schema=m.PayloadSchemaType.KEYWORD)
            for field in INTEGER_FIELDS:
                self._client.create_payload_index(name, field, field_schema=m.PayloadSchemaType.INTEGER)
            self._client.create_payload_index(name, "created_at_ts", field_schema=m.PayloadSchemaType.FLOAT)

        self._call("create collection", create)
        self._ready.add(name)

    def upsert(self, model: str, block_ids: Sequence[int], points: PointLoader) -> None:
        from qdrant_client import models as m

        if not block_ids:
            return
        structs = [
            m.PointStruct(
                id=point_id(str(p.payload["global_id"])),
                vector={VECTOR: p.vector.tolist()},
                payload=p.payload,
            )
            for p in points()
        ]
        self._call("upsert", lambda: self._client.upsert(self.collection(model), points=structs, wait=True))

    def delete_blocks(self, model: str, block_ids: Sequence[int]) -> None:
        from qdrant_client import models as m

        if not block_ids:
            return
        selector = m.FilterSelector(
            filter=m.Filter(must=[m.FieldCondition(key="block_id", match=m.MatchAny(any=list(block_ids)))])
        )
        self._call("delete", lambda: self._client.delete(self.collection(model), points_selector=selector, wait=True))

    def delete_source(self, model: str, source_table: str, source_id: int) -> None:
        from qdrant_client import models as m

        selector = m.FilterSelector(
            filter=m.Filter(must=[
                m.FieldCondition(key="source_table", match=m.MatchValue(value=source_table)),
                m.FieldCondition(key="source_id", match=m.MatchValue(value=source_id)),
            ])
        )
        self._call("delete", lambda: self._client.delete(self.collection(model), points_selector=selector, wait=True))

    def hashes(self, model: str) -> dict[int, str]:
        out: dict[int, str] = {}
        offset: Any = None
        name = self.collection(model)
        if not self._exists(name):
            return out

        def page(start: Any) -> Any:
            return self._client.scroll(name, limit=1000, offset=start,
                                       with_payload=["block_id", "content_hash"], with_vectors=False)

        while True:
            batch, offset = self._call("scroll", functools.partial(page, offset))
            for rec in batch:
                out[int(rec.payload["block_id"])] = str(rec.payload["content_hash"])
            if offset is None:
                return out

    def count(self, model: str) -> int:
        name = self.collection(model)
        if not self._exists(name):
            return 0
        return int(self._call("count", lambda: self._client.count(name, exact=True)).count)

    def search(self, model: str, vector: np.ndarray, k: int, filters: Filters | None = None, *,
               depth: int | None = None) -> list[tuple[int, float]]:
        f = filters or Filters()
        # a server's HNSW search widens with its limit (ef follows it): asked for k there; local
        # mode compares every point anyway, so it gives the deeper list
        limit = max(k, depth or k) if self._local else k
        if f.scoped and not f.subjects:
            return []
        name = self.collection(model)
        if not self._exists(name):  # nothing synced with this model yet: no hits, not an error
            return []
        flt = qdrant_filter(f)
        res = self._call("query", lambda: self._client.query_points(
            name, query=vector.tolist(), using=VECTOR, limit=limit, query_filter=flt, with_payload=["block_id"]))
        return [(int(p.payload["block_id"]), float(p.score)) for p in res.points]

    def close(self) -> None:
        self._client.close()
