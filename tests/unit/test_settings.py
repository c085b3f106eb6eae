from pathlib import Path

import pytest

from memsync.errors import ConfigError
from memsync.settings import Settings
from memsync.storage.dsn import redact_dsn


def test_reads_memsync_env_vars() -> None:
    s = Settings.from_env({"MEMSYNC_DSN": "postgresql://u:secret@h/db", "MEMSYNC_INDEXES": "pgvector, qdrant",
                           "MEMSYNC_CLAIM_BATCH": "7", "MEMSYNC_HOME": "/tmp/x"})
    assert s.indexes == ("pgvector", "qdrant")
    assert s.claim_batch == 7
    assert s.home == Path("/tmp/x")


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="MEMSYNC_CLAIM_BATCH"):
        Settings.from_env({"MEMSYNC_CLAIM_BATCH": "lots"})
    with pytest.raises(ConfigError, match=r"MEMSYNC_INDEXES.*unknown index pinecone; known: pgvector, qdrant, zep"):
        Settings.from_env({"MEMSYNC_INDEXES": "pinecone"})
    with pytest.raises(ConfigError, match="at least one vector index"):
        Settings.from_env({"MEMSYNC_INDEXES": " , "})
    with pytest.raises(ConfigError, match="at least one vector index"):
        Settings.from_env({"MEMSYNC_INDEXES": "zep"})  # a mirror alone cannot serve search
    assert Settings.from_env({"MEMSYNC_INDEXES": "pgvector,zep"}).mirrors == ("zep",)


def test_secrets_never_in_redacted_view() -> None:
    s = Settings.from_env({"MEMSYNC_DSN": "postgresql://u:secret@h/db", "MEMSYNC_QDRANT_API_KEY": "k3y",
                           "MEMSYNC_ZEP_API_KEY": "z3p", "MEMSYNC_MCP_TOKEN": "t0k"})
    text = str(s.redacted())
    assert "secret" not in text and "k3y" not in text and "z3p" not in text and "t0k" not in text
    assert redact_dsn("host=h password=pw dbname=d") == "host=h password=*** dbname=d"


def test_help_lists_every_setting() -> None:
    text = Settings.help_text()
    for name in Settings.model_fields:
        assert f"MEMSYNC_{name.upper()}" in text


def test_embedded_server_memory_follows_the_machine_within_bounds() -> None:
    from memsync.storage.embedded import memory_settings

    gib = 2**30
    assert memory_settings(24 * gib) == {"shared_buffers": "2048MB", "maintenance_work_mem": "1024MB",
                                         "effective_cache_size": "12288MB"}
    assert memory_settings(4 * gib) == {"shared_buffers": "512MB", "maintenance_work_mem": "256MB",
                                        "effective_cache_size": "2048MB"}
    # never below initdb's own defaults
    assert memory_settings(512 * 2**20) == {"shared_buffers": "128MB", "maintenance_work_mem": "64MB",
                                            "effective_cache_size": "512MB"}


def test_device_and_precision_resolve_to_what_the_machine_has() -> None:
    import torch

    from memsync.embed import cpu_has_native_bf16, resolve_device, resolve_precision
    from memsync.errors import EmbeddingError

    s = Settings.from_env({"MEMSYNC_DEVICE": "cuda", "MEMSYNC_PRECISION": "fp16"})
    assert (s.device, s.precision) == ("cuda", "fp16")
    with pytest.raises(ConfigError, match="MEMSYNC_DEVICE"):
        Settings.from_env({"MEMSYNC_DEVICE": "tpu"})
    assert resolve_device("cpu") == "cpu"
    if torch.cuda.is_available():
        assert resolve_device("auto") == "cuda"
    else:
        assert resolve_device("auto") in ("cpu", "mps")
        with pytest.raises(EmbeddingError, match="MEMSYNC_DEVICE=cuda, but torch sees no cuda device"):
            resolve_device("cuda")
    assert resolve_precision("auto", "cuda") == "fp16"
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_precision("fp32", "cuda") == "fp32"
    with pytest.raises(EmbeddingError, match="needs a GPU"):
        resolve_precision("fp16", "cpu")
