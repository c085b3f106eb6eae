"""Test fixtures. Integration tests get an isolated, migrated database each:

- MEMSYNC_TEST_DSN, when set (any PostgreSQL >= 15 with pgvector);
- else a testcontainers pgvector/pgvector container, when a Docker engine answers;
- else the embedded pgserver (the path CI takes on these machines).

No database means a failure, never a silent skip."""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from memsync.embed import HashingEmbedder, SentenceTransformerEmbedder
from memsync.settings import Settings
from memsync.storage import migrate
from memsync.storage.db import DictConn, connect

if TYPE_CHECKING:
    from memsync.app import Memsync

_counter = itertools.count()


def _docker_dsn() -> Iterator[str] | None:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return None
    from testcontainers.postgres import PostgresContainer

    def gen() -> Iterator[str]:
        with PostgresContainer("pgvector/pgvector:pg16", driver=None) as pg:
            yield pg.get_connection_url()

    return gen()


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("MEMSYNC_TEST_DSN"):
        yield os.environ["MEMSYNC_TEST_DSN"]
        return
    container = _docker_dsn()
    if container is not None:
        yield from container
        return
    from memsync.storage import embedded

    home = tmp_path_factory.mktemp("pg")
    try:
        dsn = embedded.server_uri(home, database="postgres")
    except Exception as exc:  # make the cause visible: integration tests must not skip
        pytest.fail(f"no test database: MEMSYNC_TEST_DSN unset, no Docker, embedded pgserver failed: {exc}")
    yield dsn
    embedded.stop(home)


def _with_db(dsn: str, name: str) -> str:
    return make_conninfo(dsn, dbname=name)


@pytest.fixture(scope="session")
def template_db(pg_admin_dsn: str) -> Iterator[str]:
    name = f"memsync_tpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate.migrate(_with_db(pg_admin_dsn, name))
    yield name
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _create_db(admin: str, template: str | None) -> str:
    name = f"memsync_t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if template:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def _drop_db(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def module_dsn(pg_admin_dsn: str, template_db: str) -> Iterator[str]:
    """A migrated database shared by one test module (for read-mostly tests on costly data)."""
    name = _create_db(pg_admin_dsn, template_db)
    yield _with_db(pg_admin_dsn, name)
    _drop_db(pg_admin_dsn, name)


@pytest.fixture
def empty_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh database with nothing in it (for migration tests)."""
    name = _create_db(pg_admin_dsn, None)
    yield _with_db(pg_admin_dsn, name)
    _drop_db(pg_admin_dsn, name)


@pytest.fixture
def dsn(pg_admin_dsn: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database (a copy of the migrated template)."""
    name = _create_db(pg_admin_dsn, template_db)
    yield _with_db(pg_admin_dsn, name)
    _drop_db(pg_admin_dsn, name)


@pytest.fixture
def other_dsn(pg_admin_dsn: str, template_db: str) -> Iterator[str]:
    """A second fresh, migrated database (for two databases in one process)."""
    name = _create_db(pg_admin_dsn, template_db)
    yield _with_db(pg_admin_dsn, name)
    _drop_db(pg_admin_dsn, name)


@pytest.fixture
def conn(dsn: str) -> Iterator[DictConn]:
    with connect(dsn, autocommit=True, vectors=True) as c:
        yield c


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {}, home=tmp_path / "home", model="hashing-384", backoff_seconds=0.0, poll_seconds=0.2,
        qdrant_path=tmp_path / "qdrant",
    )


@pytest.fixture
def app(dsn: str) -> Iterator[Memsync]:
    """The application object on the test database, with the fast fake embedder."""
    from memsync.app import Memsync

    with Memsync(Settings.from_env({"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384"})) as a:
        yield a


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder(384)


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    emb = SentenceTransformerEmbedder()
    emb.encode(["warm up"])
    return emb


@pytest.fixture
def qdrant_index(tmp_path: Path) -> Iterator[Any]:
    from qdrant_client import QdrantClient

    from memsync.index.qdrant import QdrantIndex

    client = QdrantClient(path=str(tmp_path / "qdrant-local"))
    yield QdrantIndex(client, "memsync_test")
    client.close()
    shutil.rmtree(tmp_path / "qdrant-local", ignore_errors=True)
