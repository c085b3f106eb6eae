from pathlib import Path

import pytest

from memsync.errors import ConfigError
from memsync.settings import Settings, redact_dsn


def test_reads_memsync_env_vars() -> None:
    s = Settings.from_env({"MEMSYNC_DSN": "postgresql://u:secret@h/db", "MEMSYNC_INDEXES": "pgvector, qdrant",
                           "MEMSYNC_CLAIM_BATCH": "7", "MEMSYNC_HOME": "/tmp/x"})
    assert s.indexes == ("pgvector", "qdrant")
    assert s.claim_batch == 7
    assert s.home == Path("/tmp/x")


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="MEMSYNC_CLAIM_BATCH"):
        Settings.from_env({"MEMSYNC_CLAIM_BATCH": "lots"})
    with pytest.raises(ConfigError, match="MEMSYNC_INDEXES"):
        Settings.from_env({"MEMSYNC_INDEXES": "pinecone"})


def test_secrets_never_in_redacted_view() -> None:
    s = Settings.from_env({"MEMSYNC_DSN": "postgresql://u:secret@h/db", "MEMSYNC_QDRANT_API_KEY": "k3y"})
    text = str(s.redacted())
    assert "secret" not in text and "k3y" not in text
    assert redact_dsn("host=h password=pw dbname=d") == "host=h password=*** dbname=d"


def test_help_lists_every_setting() -> None:
    text = Settings.help_text()
    for name in Settings.model_fields:
        assert f"MEMSYNC_{name.upper()}" in text
