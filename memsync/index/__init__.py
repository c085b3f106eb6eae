"""Vector indexes behind one small interface. Both are projections of Postgres: every
point carries block_id, global_id, entity_type and the subject fields, and can be rebuilt
from memsync.embeddings without running the model."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from memsync.storage.filters import Filters

# Point ids are uuid5(block global_id): a redo overwrites, it never duplicates.
POINT_NAMESPACE = uuid.UUID("6f1d3c52-8a4e-5b7a-9c1e-2d4f6a8b0c13")
PAYLOAD_FIELDS = (
    "block_id", "global_id", "block_type", "source_table", "source_id", "artifact_id",
    "subject_type", "subject_id", "content_hash", "created_at_ts",
)


def point_id(global_id: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, global_id))


@dataclass(frozen=True)
class Point:
    block_id: int
    content_hash: str
    vector: np.ndarray
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any], model: str) -> Point:
        payload = {k: row.get(k) for k in PAYLOAD_FIELDS}
        payload["entity_type"] = "block"
        payload["model"] = model
        return cls(int(row["block_id"]), str(row["content_hash"]), as_array(row["embedding"]), payload)


def as_array(value: Any) -> np.ndarray:
    """A stored vector as float32 (pgvector's psycopg adapter returns a Vector object)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


PointLoader = Callable[[], Sequence[Point]]


class VectorIndex(Protocol):
    name: str

    def probe(self) -> None:
        """Raise IndexUnavailable unless the index answers: after a failed write this tells
        an outage (retry later, the rows are not at fault) from a row the index refused."""

    def ensure(self, model: str, dim: int) -> None:
        """Create what the model's vectors need (collection, HNSW index); idempotent."""

    def upsert(self, model: str, block_ids: Sequence[int], points: PointLoader) -> None:
        """Write the points of these blocks; returns only once the index confirmed the
        write. `points` loads payloads and vectors, for indexes that live outside Postgres."""

    def delete_blocks(self, model: str, block_ids: Sequence[int]) -> None: ...

    def delete_source(self, model: str, source_table: str, source_id: int) -> None:
        """Remove every point derived from one source row."""

    def hashes(self, model: str) -> dict[int, str]:
        """block_id -> content_hash of every point (for verify and orphan sweeps)."""

    def count(self, model: str) -> int: ...

    def search(self, model: str, vector: np.ndarray, k: int, filters: Filters | None = None, *,
               depth: int | None = None) -> list[tuple[int, float]]:
        """Nearest blocks by cosine similarity: (block_id, score), best first. Every filter
        field is applied; one the index cannot apply raises FilterError. `depth`: up to that
        many where the index reads them anyway (hybrid fusion's background), never at the
        cost of a wider search; the first k are what a search for k returns."""

