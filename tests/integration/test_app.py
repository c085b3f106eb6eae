"""The application object: safe from many threads and from asyncio, several per process
(two databases), and a server restart under it costs no failed call."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import drain

from memsync.app import Memsync
from memsync.embed import HashingEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn, connect

pytestmark = pytest.mark.integration


def seed(dsn: str, settings: Settings, words: str) -> None:
    with connect(dsn, autocommit=True) as c:
        person = c.execute("INSERT INTO erp.people (full_name) VALUES ('Ada') RETURNING id").fetchone()
        assert person is not None
        for i in range(20):
            c.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id)"
                      " VALUES ('preference', %s, 'person', %s)", (f"{words} number {i}", person["id"]))
    drain(dsn, settings, HashingEmbedder(), [PgvectorIndex(dsn)])


def app_for(dsn: str) -> Memsync:
    return Memsync(Settings.from_env({"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384"}))


def test_many_threads_share_one_app(conn: DictConn, dsn: str, settings: Settings) -> None:
    seed(dsn, settings, "deep work before noon")
    person = conn.execute("SELECT id FROM erp.people").fetchone()
    assert person is not None
    with app_for(dsn) as app:
        want = [h.block_id for h in app.search("deep work", k=5)]
        want_bundle = [i.citation for i in app.retrieve("daily_planning", f"person:{person['id']}").items]
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def calls() -> None:
            start.wait()
            try:
                for _ in range(10):
                    assert [h.block_id for h in app.search("deep work", k=5)] == want
                    assert [i.citation for i in app.retrieve("daily_planning", f"person:{person['id']}").items] \
                        == want_bundle
            except BaseException as exc:  # collected: an assert in a thread would be lost
                errors.append(exc)

        with ThreadPoolExecutor(8) as pool:
            for f in [pool.submit(calls) for _ in range(8)]:
                f.result()
        assert errors == []
    # every retrieve went into one retrieval session, one event each
    row = conn.execute("SELECT count(DISTINCT s.id) AS sessions, count(*) AS events FROM agent.events e"
                       " JOIN agent.sessions s ON s.id = e.session_id WHERE s.session_type = 'retrieval'").fetchone()
    assert row is not None and (row["sessions"], row["events"]) == (1, 81)


def test_an_asyncio_caller(dsn: str, settings: Settings) -> None:
    seed(dsn, settings, "invoices go out on Fridays")

    async def main(app: Memsync) -> list[list[int]]:
        results = await asyncio.gather(*(asyncio.to_thread(app.search, "invoices Fridays", k=3) for _ in range(20)))
        return [[h.block_id for h in r] for r in results]

    with app_for(dsn) as app:
        results = asyncio.run(main(app))
    assert len(results) == 20 and all(r == results[0] and r for r in results)


def test_two_apps_on_two_databases(dsn: str, other_dsn: str, settings: Settings) -> None:
    seed(dsn, settings, "alpha project kickoff")
    seed(other_dsn, settings, "omega project retrospective")
    with app_for(dsn) as a, app_for(other_dsn) as b:
        hits_a, hits_b = a.search("project", k=10), b.search("project", k=10)
        assert hits_a and all("alpha" in h.text for h in hits_a)
        assert hits_b and all("omega" in h.text for h in hits_b)


def test_a_server_restart_under_the_app_fails_no_call(tmp_path: Path) -> None:
    from memsync.storage import embedded, migrate

    home = tmp_path / "pg"
    dsn = embedded.server_uri(home)
    try:
        migrate.migrate(dsn)
        settings = Settings.from_env({}, model="hashing-384")
        seed(dsn, settings, "the server restarts tonight")
        with app_for(dsn) as app:
            before = [h.block_id for h in app.search("server restarts", k=3)]
            embedded.restart(home)
            for mode in ("hybrid", "dense", "lexical"):
                assert app.search("server restarts", k=3, mode=mode), mode  # type: ignore[arg-type]
            assert [h.block_id for h in app.search("server restarts", k=3)] == before
    finally:
        embedded.stop(home)
