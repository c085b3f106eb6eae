"""One definition of "current" (valid_from <= t < valid_to) on every path that serves
facts: a fact not yet valid is indexed but never served before its time, forgetting it
ends it at once, and forgetting an ended fact is a typed error. Through the library (with
pgvector), the CLI, and the MCP server over stdio (with pgvector and with Qdrant)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import drain

from memsync.app import Memsync
from memsync.errors import FactEnded, FieldError
from memsync.faces.cli import main
from memsync.settings import Settings
from memsync.storage.db import DictConn
from tests.integration.test_mcp import fails, ok, stdio

pytestmark = pytest.mark.integration

LATER = timedelta(days=30)


@pytest.fixture
def ada(conn: DictConn) -> str:
    row = conn.execute("INSERT INTO erp.people (full_name) VALUES ('Ada') RETURNING id").fetchone()
    assert row is not None
    return f"person:{row['id']}"



def fact_ids(hits: list[Any]) -> set[int]:
    return {h.source_id for h in hits if h.source_table == "agent.facts"}


def bundle_fact_ids(bundle: Any) -> set[int]:
    return {i.id for i in bundle.items if i.table == "agent.facts"}


def test_past_current_future_and_ended_facts_in_search_and_retrieval(
        app: Memsync, dsn: str, settings: Settings, ada: str, conn: DictConn) -> None:
    now = datetime.now(timezone.utc)
    past = app.remember(ada, "Ada lived in Lisbon harbour district", fact_type="result",
                        valid_from=now - LATER)
    current = app.remember(ada, "Ada lives in Porto harbour district", fact_type="result")
    future = app.remember(ada, "Ada will live in Madeira harbour district", fact_type="result",
                          valid_from=now + LATER)
    far = app.remember(ada, "Ada retires to a harbour district lighthouse", fact_type="result",
                       valid_from=datetime(9999, 1, 1, tzinfo=timezone.utc))
    # beyond the years a reader can hold (10000 in UTC), or before them: refused, naming the field
    for beyond in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        with pytest.raises(FieldError, match="valid_from: must fall within the years 1 to 9999 in UTC"):
            app.remember(ada, "Ada leaves the calendar", fact_type="result", valid_from=beyond)
    drain(dsn, settings)
    blocks = conn.execute("SELECT count(*) AS n FROM agent.blocks WHERE source_table = 'agent.facts'").fetchone()
    assert blocks == {"n": 4}, "a fact not yet valid is indexed, to be served when its time comes"
    for mode in ("hybrid", "lexical", "dense"):
        got = fact_ids(app.search("harbour district", k=10, mode=mode))
        assert got == {past.row["id"], current.row["id"]}, mode
    assert bundle_fact_ids(app.retrieve("daily_planning", ada, query="harbour district")) == {
        past.row["id"], current.row["id"]}
    # as it will stand in 31 days: the future fact is current then, in every section
    later = app.retrieve("daily_planning", ada, query="harbour district", as_of=now + LATER + timedelta(days=1))
    assert future.row["id"] in bundle_fact_ids(later) and far.row["id"] not in bundle_fact_ids(later)
    # get shows any fact, and says whether it is current
    assert app.get(future.row["global_id"])["current"] is False
    assert app.get(current.row["global_id"])["current"] is True

    # forgetting a fact not yet valid ends it at once: never served, not even at its start
    f = app.forget(future.row["global_id"], reason="plans changed")
    assert f.row["valid_to"] == f.row["valid_from"]
    later = app.retrieve("daily_planning", ada, query="harbour district", as_of=now + LATER + timedelta(days=1))
    assert future.row["id"] not in bundle_fact_ids(later)
    with pytest.raises(FactEnded, match="withdrawn before it became valid"):
        app.forget(future.row["global_id"], reason="twice")
    with pytest.raises(FactEnded, match="withdrawn"):
        app.supersede(future.row["global_id"], "Ada will live in Faial")
    drain(dsn, settings)
    left = conn.execute("SELECT source_id FROM agent.blocks WHERE source_table = 'agent.facts'").fetchall()
    assert {r["source_id"] for r in left} == {past.row["id"], current.row["id"], far.row["id"]}, \
        "the withdrawn fact's block leaves the index at the next sync"
    app.forget(current.row["global_id"], reason="moved")
    with pytest.raises(FactEnded, match="already ended at"):
        app.forget(current.row["global_id"], reason="twice")
    assert fact_ids(app.search("harbour district", k=10)) == {past.row["id"]}


def test_a_few_hits_below_many_facts_not_yet_valid(app: Memsync, dsn: str, settings: Settings, ada: str) -> None:
    """search loads the rows of its best candidates only, more while some are not served:
    hits under a run of facts not yet valid are the ones a search for many hits shows first."""
    now = datetime.now(timezone.utc)
    planned = [app.remember(ada, f"Ada plans a harbour district lighthouse visit number {i}", fact_type="result",
                            valid_from=now + LATER).row["id"] for i in range(7)]
    current = [app.remember(ada, f"Ada walks past the harbour district on day {i}", fact_type="result").row["id"]
               for i in range(3)]
    drain(dsn, settings)
    for mode in ("lexical", "hybrid", "dense"):
        served = [h.source_id for h in app.search("harbour district lighthouse visit", k=10, mode=mode)]
        assert set(served) >= set(current) and not set(served) & set(planned), mode
        for k in (1, 2, 3):
            got = [h.source_id for h in app.search("harbour district lighthouse visit", k=k, mode=mode)]
            assert got == served[:k], (mode, k)
    ranked = [h.source_id for h in app.search("harbour district lighthouse visit", k=10, mode="lexical",
                                              as_of=now + LATER + timedelta(days=1))]
    assert set(ranked[:7]) == set(planned), "once current, the planned facts (every word of the query) lead"


def test_the_cli_serves_only_current_facts(dsn: str, tmp_path: Path, ada: str, app: Memsync) -> None:
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path),
           "MEMSYNC_LOG_LEVEL": "ERROR"}
    now = datetime.now(timezone.utc)
    app.remember(ada, "Ada joins the orchard cooperative", fact_type="result", valid_from=now + LATER)
    cur = app.remember(ada, "Ada tends the orchard", fact_type="result")
    runner = CliRunner()
    assert runner.invoke(main, ["run", "--once"], env=env).exit_code == 0
    out = runner.invoke(main, ["search", "orchard", "--json"], env=env)
    assert out.exit_code == 0, out.output
    hits = json.loads(out.output)["hits"]
    assert [h["source_id"] for h in hits if h["source_table"] == "agent.facts"] == [cur.row["id"]]


@pytest.mark.parametrize("index", ["pgvector", "qdrant"])
def test_mcp_future_fact_is_not_current_and_forget_ends_it(dsn: str, tmp_path: Path, ada: str, index: str) -> None:
    env = {"MEMSYNC_MODEL": "hashing-384", "MEMSYNC_INDEXES": index, "MEMSYNC_QDRANT_PATH": str(tmp_path / "q")}
    soon = (datetime.now(timezone.utc) + LATER).isoformat()

    async def run() -> None:
        async with stdio(dsn, tmp_path, **env) as c:
            fut = await ok(c, "remember", {"subject": ada, "text": "Ada's sabbatical in the glacier station",
                                           "fact_type": "result", "valid_from": soon})
            cur = await ok(c, "remember", {"subject": ada, "text": "Ada works at the glacier station",
                                           "fact_type": "result"})
            hits = (await ok(c, "search", {"query": "glacier station", "k": 10}))["hits"]
            assert [h["source_id"] for h in hits if h["source_table"] == "agent.facts"] == [cur["id"]]
            bundle = await ok(c, "retrieve", {"recipe": "daily_planning", "subject": ada, "query": "glacier station"})
            assert "sabbatical" not in json.dumps(bundle)
            await ok(c, "forget", {"fact": fut["global_id"], "reason": "cancelled"})
            await fails(c, "forget", {"fact": fut["global_id"], "reason": "again"}, "withdrawn")

    asyncio.run(run())


def test_valid_from_is_read_as_times_are_written_and_naive_means_utc(dsn: str, conn: DictConn, ada: str) -> None:
    """valid_from takes what start_session and log_event take ('8 May 2023', ISO 8601), and a
    naive time is UTC as everywhere in memsync, not the server's TimeZone (it was stored as
    the server's local time)."""
    db = conn.execute("SELECT current_database() AS d").fetchone()
    assert db is not None
    conn.execute(f"ALTER DATABASE \"{db['d']}\" SET timezone TO 'Asia/Kolkata'")
    with Memsync(Settings.from_env({"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384"})) as app:
        worded = app.remember(ada, "Ada took up rowing.", fact_type="result", valid_from="8 May 2023")  # type: ignore[arg-type]
        naive = app.remember(ada, "Ada moved to Porto.", fact_type="result", valid_from=datetime(2023, 6, 1, 12))
        ahead = app.remember(ada, "Ada starts at the harbour office.", fact_type="result",
                             valid_from="2099-01-01T09:00")  # type: ignore[arg-type]
        with pytest.raises(Exception, match="valid_from: 'the 25th' is not a time"):
            app.remember(ada, "Ada sails.", fact_type="result", valid_from="the 25th")  # type: ignore[arg-type]
    stored = {r["id"]: r["valid_from"] for r in conn.execute("SELECT id, valid_from FROM agent.facts")}
    utc = timezone.utc
    assert stored[worded.row["id"]] == datetime(2023, 5, 8, tzinfo=utc)
    assert stored[naive.row["id"]] == datetime(2023, 6, 1, 12, tzinfo=utc)
    assert stored[ahead.row["id"]] == datetime(2099, 1, 1, 9, tzinfo=utc), "a fact may become valid later"


def test_open_ended_times_written_by_sql_read_as_the_ends_of_time(
        app: Memsync, dsn: str, settings: Settings, ada: str, conn: DictConn) -> None:
    """'infinity' is how many schemas write "open-ended" (a fact's valid_to, a task without a
    deadline), and an ERP or any SQL client may write it, or a year past 9999. Such a row loads
    as the latest (or earliest) time Python holds: it syncs, the row beside it in the batch
    syncs, it is current, and the subject's bundle is served. It once failed the whole sync
    batch and every bundle of the subject with 'timestamp too large'."""
    forever = app.remember(ada, "Ada keeps the harbour lighthouse key", fact_type="result")
    beside = app.remember(ada, "Ada sails the harbour on Sundays", fact_type="result")
    app.import_conversations({"messages": [{"speaker": "Ada", "text": "the harbour lighthouse is mine now"}]},
                             subject=ada)
    conn.execute("UPDATE agent.facts SET valid_to = 'infinity', valid_from = '-infinity' WHERE id = %s",
                 (forever.row["id"],))
    conn.execute("UPDATE agent.sessions SET ended_at = 'infinity' WHERE subject_id = %s", (int(ada.split(":")[1]),))
    project = conn.execute("INSERT INTO erp.projects (name) VALUES ('Harbour') RETURNING id").fetchone()
    assert project is not None
    conn.execute("INSERT INTO erp.tasks (title, project_id, due_at) VALUES ('Oil the harbour lighthouse', %s, "
                 "'20000-01-01')", (project["id"],))
    totals = drain(dsn, settings)
    assert totals.failed == 0, totals.errors
    assert fact_ids(app.search("harbour", k=10)) == {forever.row["id"], beside.row["id"]}
    got = app.get(forever.row["global_id"])
    assert got["current"] is True and got["row"]["valid_to"].year == 9999, got
    bundle = app.retrieve("conversation_recall", ada, query="harbour lighthouse")
    assert forever.row["id"] in bundle_fact_ids(bundle)
    tasks = [i for i in app.retrieve("project_context", f"project:{project['id']}").items if i.table == "erp.tasks"]
    assert [t.text for t in tasks] and "Oil the harbour lighthouse" in tasks[0].text, tasks
    ended = app.forget(forever.row["global_id"], reason="handed the key back")
    assert ended.row["valid_to"].year == datetime.now(timezone.utc).year
    assert fact_ids(app.search("harbour", k=10)) == {beside.row["id"]}
