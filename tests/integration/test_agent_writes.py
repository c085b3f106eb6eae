"""The agent write API (memsync/write/memory.py) through the application object: facts with
idempotency, forget and supersede over time, reflections, notes, sessions and events as
seed §4.5 prescribes, promotion, provenance, block actions by profile, confinement, and
read-your-writes tokens woken by the worker's ack notification."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from functools import partial

import pytest
from helpers import Explained, at_once

from memsync.app import Memsync
from memsync.embed import HashingEmbedder
from memsync.errors import FieldError, IdempotencyConflict, InvalidInput, NotSynced, RefError, ScopeError, TokenError
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn
from memsync.write.tokens import SyncToken
from memsync.write.worker import Worker

pytestmark = pytest.mark.integration


@pytest.fixture
def people(conn: DictConn) -> dict[str, int]:
    out = {}
    for name in ("Ada", "Grace"):
        row = conn.execute("INSERT INTO erp.people (full_name) VALUES (%s) RETURNING id", (name,)).fetchone()
        assert row is not None
        out[name] = int(row["id"])
    return out


@pytest.fixture
def daemon(dsn: str, settings: Settings) -> Iterator[Worker]:
    """A sync worker running beside the test, as `memsync run` would."""
    w = Worker(settings.model_copy(update={"dsn": dsn}), dsn, HashingEmbedder(), [PgvectorIndex(dsn)])
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), daemon=True)
    t.start()
    yield w
    stop.set()
    t.join(timeout=30)


def test_remember_then_search_sees_it_with_the_token(app: Memsync, people: dict[str, int], daemon: Worker) -> None:
    ada = f"person:{people['Ada']}"
    w = app.remember(ada, "Ada prefers meetings after lunch on Thursdays", fact_type="preference",
                     category="scheduling")
    assert w.created and w.row["global_id"].startswith("fact:")
    hits = app.search("meetings after lunch Thursdays", k=5, after=w.token)
    assert hits and hits[0].source_id == w.row["id"], "a read with the token sees the write, no sleep"
    # the same idempotency key twice with the same payload: the first fact, not a copy
    a = app.remember(ada, "Ada works remotely", fact_type="constraint", idempotency_key="k-1")
    b = app.remember(ada, "Ada  works remotely ", fact_type="constraint", idempotency_key="k-1")
    assert (a.row["id"], a.created, b.created) == (b.row["id"], True, False)
    # with another payload: a conflict that names what differs, nothing written
    with pytest.raises(IdempotencyConflict, match="text, category differ"):
        app.remember(ada, "Ada works from the office", fact_type="constraint", category="place",
                     idempotency_key="k-1")
    # keys belong to a subject: Grace may use the same key for her own fact
    g = app.remember(f"person:{people['Grace']}", "Grace works remotely", fact_type="constraint",
                     idempotency_key="k-1")
    assert g.created and g.row["id"] != a.row["id"]
    # the same statement again (no key): the fact already held, not a second copy
    again = app.remember(ada, "ada works REMOTELY", fact_type="constraint")
    assert (again.created, again.row["id"], again.extra["duplicate_of"]) == (False, a.row["id"], a.row["global_id"])
    other = app.remember(ada, "Ada works remotely", fact_type="preference")
    assert other.created, "another fact type is another fact"


def test_the_fact_already_held_is_found_through_an_index(app: Memsync, conn: DictConn,
                                                         people: dict[str, int]) -> None:
    """remember()'s duplicate check reads the subject's facts of that text only (0029: the
    hash of the normalised text is indexed), for a subject with an id or without one, and a
    long text (past what a btree entry holds) is checked like a short one."""
    from memsync.storage.db import memory as q

    ada = f"person:{people['Ada']}"
    long = "Ada keeps a detailed log of every deployment window and its rollback plan. " * 80
    for subject, text in ((ada, "Ada prefers mornings"), ("personal", "Mornings are for deep work"), (ada, long)):
        first = app.remember(subject, text, fact_type="preference")
        again = app.remember(subject, "  " + text.upper().replace(" ", "  ") + " ", fact_type="preference")
        assert first.created and (again.created, again.row["id"]) == (False, first.row["id"]), subject
    for subject_id in (people["Ada"], None):
        explained = Explained(conn)
        q.same_fact(explained, {"subject_type": "person" if subject_id else "personal",  # type: ignore[arg-type]
                                "subject_id": subject_id, "fact_type": "preference", "category": None,
                                "content": "Ada prefers mornings"})
        assert "facts_same_text" in explained.plans[0], explained.plans


def test_forget_leaves_current_retrieval_at_once_and_stays_in_the_past(
        app: Memsync, conn: DictConn, people: dict[str, int], daemon: Worker) -> None:
    ada = f"person:{people['Ada']}"
    w = app.remember(ada, "Ada uses vim for everything", fact_type="preference")
    assert app.search("vim for everything", k=3, after=w.token)
    before = datetime.now(timezone.utc)
    time.sleep(0.01)
    dry = app.forget(w.row["global_id"], reason="checking", dry_run=True)
    assert dry.extra["dry_run"] and dry.row["valid_to"] is None
    f = app.forget(f"fact:{w.row['id']}", reason="switched to emacs")
    assert f.row["valid_to"] is not None and f.row["metadata"]["ended"]["reason"] == "switched to emacs"
    # immediately, before any sync: gone from search and from the facts section
    assert all(h.source_id != w.row["id"] for h in app.search("vim for everything", k=5, mode="lexical"))
    now_items = [i.id for i in app.retrieve("daily_planning", ada).items if i.table == "agent.facts"]
    assert w.row["id"] not in now_items
    past_items = [i.id for i in app.retrieve("daily_planning", ada, as_of=before).items if i.table == "agent.facts"]
    assert w.row["id"] in past_items
    assert conn.execute("SELECT count(*) AS n FROM agent.facts").fetchone() == {"n": 1}, "never deleted"
    assert not app.wait_synced(f.token), "the sync dropped its block"
    assert conn.execute("SELECT count(*) AS n FROM agent.blocks WHERE source_table = 'agent.facts'"
                        ).fetchone() == {"n": 0}
    with pytest.raises(InvalidInput, match="already ended"):
        app.forget(w.row["global_id"], reason="twice")


def test_supersede_links_both_ways(app: Memsync, people: dict[str, int], daemon: Worker) -> None:
    ada = f"person:{people['Ada']}"
    old = app.remember(ada, "Ada's rate is 100 EUR per hour", fact_type="constraint", category="billing")
    new = app.supersede(old.row["global_id"], "Ada's rate is 120 EUR per hour", reason="new contract")
    assert new.row["metadata"]["supersedes"] == old.row["global_id"]
    assert (new.row["fact_type"], new.row["category"]) == ("constraint", "billing")
    got = app.get(old.row["global_id"])
    assert got["row"]["metadata"]["superseded_by"] == new.row["global_id"] and got["row"]["valid_to"]
    hits = app.search("rate EUR per hour", k=5, after=new.token)
    assert [h.source_id for h in hits if h.source_table == "agent.facts"] == [new.row["id"]]


def test_sessions_events_promotion_and_provenance(app: Memsync, conn: DictConn, people: dict[str, int],
                                                  daemon: Worker) -> None:
    conn.execute("INSERT INTO agent.tools (name) VALUES ('calendar.create_event'), ('mail.send')")
    prof = conn.execute("INSERT INTO agent.profiles (name, default_model, harness_config) VALUES "
                        "('planner', 'gpt-x', '{\"temperature\": 0.2}') RETURNING id").fetchone()
    assert prof is not None
    conn.execute("INSERT INTO agent.profile_tools (profile_id, tool_id) SELECT %s, id FROM agent.tools"
                 " WHERE name = 'calendar.create_event'", (prof["id"],))
    ada = f"person:{people['Ada']}"
    s = app.start_session("planning", subject=ada, client_person=people["Ada"], profile="planner",
                          context_recipe="daily_planning")
    applied = s.row["applied_harness_config"]
    assert applied["profile"]["tools"] == ["calendar.create_event"] and applied["profile"]["default_model"] == "gpt-x"
    assert applied["context_recipe"]["name"] == "daily_planning" and "memsync" in applied
    assert "password" not in str(applied["memsync"]).lower() or "***" in str(applied["memsync"])
    ev = app.log_event(s.row["global_id"], "decision", {"text": "Ship the quarterly report on Friday"},
                       memory_scope="project")
    assert (ev.row["subject_type"], ev.row["subject_id"]) == ("person", people["Ada"]), "the session's subject"
    hits = app.search("quarterly report Friday", k=3, after=ev.token)
    assert hits and hits[0].source_table == "agent.events" and hits[0].block_type == "note"
    call = app.log_event(s.row["id"], "tool_call", {"args": {"x": 1}}, tool="mail.send")
    run_note = app.log_event(s.row["id"], "note", {"text": "scratch for this run"}, memory_scope="run")
    assert call.row["tool_id"] is not None
    queued = conn.execute("SELECT source_id FROM memsync.outbox WHERE source_table = 'agent.events'").fetchall()
    assert {call.row["id"], run_note.row["id"]}.isdisjoint({r["source_id"] for r in queued}), \
        "tool calls and run-scoped notes never cross the queue"
    fact = app.promote_event(ev.row["global_id"], fact_type="result", category="reporting")
    assert fact.row["content"] == "Ship the quarterly report on Friday"
    assert conn.execute("SELECT promoted_fact_id FROM agent.events WHERE id = %s", (ev.row["id"],)
                        ).fetchone() == {"promoted_fact_id": fact.row["id"]}
    again = app.promote_event(ev.row["global_id"], fact_type="result")
    assert again.row["id"] == fact.row["id"] and not again.created
    ended = app.end_session(s.row["global_id"], "completed", "planned the week")
    assert ended.row["status"] == "completed" and ended.row["ended_at"] is not None
    with pytest.raises(InvalidInput, match="has ended"):
        app.log_event(s.row["global_id"], "note", {"text": "late"})
    # provenance both ways: fact -> its block and subject; block -> its fact
    app.wait_synced(fact.token)
    got = app.get(fact.row["global_id"])
    assert got["subject"]["name"] == "Ada" and len(got["blocks"]) == 1
    block = app.get(f"block:{got['blocks'][0]['id']}")
    assert block["source"]["row"]["id"] == fact.row["id"]
    # block actions limited to the profile's tools
    note = app.add_note(ada, "Book the quarterly review", block_type="note", title="Review")
    tools = {r["name"]: r["id"] for r in conn.execute("SELECT id, name FROM agent.tools").fetchall()}
    for name, tool in (("schedule", "calendar.create_event"), ("email", "mail.send")):
        conn.execute("INSERT INTO agent.block_actions (block_id, tool_id, action_name) VALUES (%s, %s, %s)",
                     (note.row["id"], tools[tool], name))
    actions = app.block_actions(note.row["global_id"], profile="planner")
    assert [a["action_name"] for a in actions] == ["schedule"], "a tool the profile lacks is never returned"


def test_reflection_and_note_are_searchable(app: Memsync, people: dict[str, int], daemon: Worker) -> None:
    ada = f"person:{people['Ada']}"
    r = app.log_reflection(ada, "weekly", accomplishments=["migrated the billing service"],
                           blockers=["waiting on the legal review"])
    n = app.add_note(ada, "Always greet Ada in French", title="Greeting")
    tok = r.token.merge(n.token)
    assert {h.source_table or "agent.blocks" for h in app.search("billing service legal French", k=10, after=tok)} \
        >= {"agent.reflections", "agent.blocks"}


def test_bad_input_names_the_field_and_writes_nothing(app: Memsync, conn: DictConn, people: dict[str, int]) -> None:
    ada = f"person:{people['Ada']}"
    cases = [
        (lambda: app.remember(ada, "x", fact_type="opinion"), FieldError, "fact_type"),
        (lambda: app.remember("person:999999", "x", fact_type="preference"), InvalidInput, "no person"),
        (lambda: app.remember("planet:1", "x", fact_type="preference"), InvalidInput, "unknown subject type"),
        (lambda: app.remember(ada, "", fact_type="preference"), FieldError, "text"),
        (lambda: app.remember(ada, "a\x00b", fact_type="preference"), FieldError, "NUL"),
        (lambda: app.remember(ada, "x", fact_type="preference", category="Not Snake"), FieldError, "category"),
        (lambda: app.forget("fact:424242", reason="r"), RefError, "no fact"),
        (lambda: app.forget("session:1", reason="r"), RefError, "expected a fact"),
        (lambda: app.forget("nonsense", reason="r"), RefError, "must look like"),
        (lambda: app.log_reflection(ada, "hourly"), FieldError, "mode"),
        (lambda: app.add_note(ada, "x", block_type="tweet"), FieldError, "block_type"),
        (lambda: app.start_session("Bad Type"), FieldError, "session_type"),
        (lambda: app.start_session("planning", profile="ghost"), InvalidInput, "profile"),
        (lambda: app.start_session("planning", context_recipe="ghost"), InvalidInput, "context_recipe"),
        (lambda: app.log_event("session:99999", "note", {"text": "x"}), RefError, "no session"),
        (lambda: app.log_event("session:1", "shout", {}), FieldError, "event_type"),
        (lambda: app.promote_event("event:1", fact_type="preference"), RefError, "no event"),
        (lambda: app.search("x", after="garbage"), TokenError, "sync token"),
        (lambda: app.log_event("session:1", "note", {"text": "a\x00b"}), FieldError, "payload.*NUL"),
        (lambda: app.log_event("session:1", "note", {"text": "x" * 1_000_001}), FieldError, "payload.*larger"),
        (lambda: app.log_reflection(ada, "daily", metrics={"k\x00": 1}), FieldError, "metrics.*NUL"),
        (lambda: app.log_reflection(ada, "daily", blockers=["ok", "bad\x00"]), FieldError, "blockers"),
        (lambda: app.block_actions("block:1", profile="ghost"), RefError, "no block"),
    ]
    for call, kind, words in cases:
        with pytest.raises(kind, match=words):
            call()
    for table in ("agent.facts", "agent.sessions", "agent.events", "agent.reflections", "agent.blocks"):
        assert conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone() == {"n": 0}, table


def test_token_wait_times_out_naming_what_is_pending(app: Memsync, people: dict[str, int]) -> None:
    w = app.remember(f"person:{people['Ada']}", "no worker runs for this one", fact_type="preference")
    with pytest.raises(NotSynced, match=f"agent.facts#{w.row['id']}") as err:
        app.search("worker", after=w.token, wait_ms=300)
    assert err.value.pending[0]["id"] == w.row["id"]
    bundle = app.retrieve("daily_planning", f"person:{people['Ada']}", after=w.token.encode(), wait_ms=0,
                          stale_ok=True)
    assert bundle.stale and bundle.pending[0]["id"] == w.row["id"]
    assert SyncToken.decode(w.token.encode()) == w.token


def test_confinement_keeps_each_client_in_its_tree(app: Memsync, people: dict[str, int], daemon: Worker) -> None:
    ada, grace = f"person:{people['Ada']}", f"person:{people['Grace']}"
    theirs = app.remember(grace, "Grace's secret launch date is March 3", fact_type="result")
    app.wait_synced(theirs.token)
    mine = app.confinement(ada)
    with pytest.raises(ScopeError):
        app.remember(grace, "x", fact_type="preference", confine=mine)
    with pytest.raises(ScopeError):
        app.get(theirs.row["global_id"], confine=mine)
    with pytest.raises(ScopeError):
        app.forget(theirs.row["global_id"], reason="r", confine=mine)
    with pytest.raises(ScopeError):
        app.retrieve("daily_planning", grace, confine=mine)
    with pytest.raises(ScopeError):
        app.search("launch", filters={"subjects": [("person", people["Grace"])]}, confine=mine)
    assert app.search("secret launch date March", confine=mine) == []
    assert app.search("secret launch date March")  # unconfined, it is there
    ok = app.remember(ada, "Ada likes tea", fact_type="preference", confine=mine)
    assert app.search("likes tea", after=ok.token, confine=mine)


def test_a_token_waiter_wakes_on_the_ack_not_a_poll(app: Memsync, dsn: str, settings: Settings,
                                                    people: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """With re-checks a minute apart and a 20 s wait, only the ack's notification can end the
    wait with nothing pending."""
    from memsync.write import tokens

    monkeypatch.setattr(tokens, "RECHECK_SECONDS", 60.0)
    w = app.remember(f"person:{people['Ada']}", "wake me when indexed", fact_type="preference")
    worker = Worker(settings.model_copy(update={"dsn": dsn}), dsn, HashingEmbedder(), [PgvectorIndex(dsn)])

    def drain_later() -> None:
        time.sleep(0.3)  # let the waiter start listening first
        worker.run_once()

    t = threading.Thread(target=drain_later)
    t.start()
    assert app.wait_synced(w.token, wait_ms=20_000) == []
    t.join()


def test_two_puts_of_one_recipe_at_once_make_two_versions(app: Memsync) -> None:
    """Each put read the same latest version; the second insert of its successor failed with
    the database's unique-key error."""
    from memsync.read.recipes import recipe_file

    files = [recipe_file({"name": "raced", "spec": {"sections": [{"name": f"s{i}", "kind": "facts"}]}}, "test")
             for i in range(3)]
    stored = at_once(*[partial(app.put_recipe, f) for f in files])
    assert sorted(row["version"] for row, _ in stored) == [1, 2, 3], stored


def test_an_event_logged_while_its_session_ends_waits_and_is_refused(app: Memsync, dsn: str, conn: DictConn) -> None:
    """The end's transaction holds the session: an event logged meanwhile waits for it and,
    once the session has ended, is refused (it was written into the ended session)."""
    from memsync.storage.db import connect

    session = app.start_session("chat").row
    outcome: list[str] = []

    def log() -> None:
        try:
            app.log_event(session["global_id"], "note", {"text": "one more thing"})
            outcome.append("logged")
        except InvalidInput as exc:
            outcome.append(str(exc))
    with connect(dsn) as ending:
        ending.execute("UPDATE agent.sessions SET status = 'completed', ended_at = now() WHERE id = %s",
                       (session["id"],))
        writer = threading.Thread(target=log)
        writer.start()
        waiting = False
        for _ in range(6000):  # until the writer waits on the session's lock, or is done
            waiting = bool(conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                                        " AND wait_event_type = 'Lock'").fetchone())
            if waiting or not writer.is_alive():
                break
            time.sleep(0.01)
        assert waiting and writer.is_alive(), outcome
        ending.commit()
    writer.join()
    assert outcome == [f"session {session['global_id']} has ended (completed)"]
    held = conn.execute("SELECT count(*) AS n FROM agent.events WHERE session_id = %s", (session["id"],)).fetchone()
    assert held is not None and held["n"] == 0


def test_the_same_statement_remembered_at_once_is_held_once(app: Memsync, people: dict[str, int],
                                                             conn: DictConn) -> None:
    """Agents writing one fact at once (or a retried call beside the first) each found no such
    fact and each wrote one: two current copies that recall served side by side. Once they
    waited for each other, the later one still missed the first: that fact is valid from the
    first one's start, after the later one's, so it was not yet current at the later start."""
    ada = f"person:{people['Ada']}"
    for n in range(10):
        texts = (f"Ada drinks tea no. {n}", f"ada drinks TEA no. {n}", f"Ada drinks  tea no. {n} ",
                 f"Ada drinks tea no. {n}")
        written = at_once(*[partial(app.remember, ada, text, fact_type="preference") for text in texts])
        held = conn.execute("SELECT id FROM agent.facts WHERE subject_id = %s AND content ILIKE %s",
                            (people["Ada"], f"%no. {n}%")).fetchall()
        assert len(held) == 1, (n, held, written)
        assert sorted(w.created for w in written) == [False, False, False, True]
        assert {w.row["id"] for w in written} == {held[0]["id"]}
        # each caller's token names the fact it was given, so its next read waits for that fact
        # (no worker runs here: the wait reports it pending, where an empty token read past it)
        for w in written:
            with pytest.raises(NotSynced, match=f"agent.facts#{held[0]['id']}"):
                app.search("tea", k=3, after=w.token, wait_ms=0)


def test_a_fact_superseded_or_forgotten_twice_at_once_ends_once(app: Memsync, people: dict[str, int],
                                                                 conn: DictConn) -> None:
    """The second writer waited for the first's lock, then judged the fact by its own start,
    before the first's end, and went on: two current successors of one fact."""
    ada = f"person:{people['Ada']}"
    for n in range(10):
        fact = app.remember(ada, f"Ada lives in city no. {n}", fact_type="preference").row["global_id"]
        outcome = at_once(partial(app.supersede, fact, f"Ada lives in town no. {n} (a)"),
                          partial(app.supersede, fact, f"Ada lives in town no. {n} (b)"),
                          partial(app.forget, fact, reason="moved"))
        assert sorted(type(x).__name__ for x in outcome) == ["FactEnded", "FactEnded", "Written"], (n, outcome)
        current = conn.execute("SELECT count(*) AS n FROM agent.facts WHERE subject_id = %s AND content LIKE %s"
                               " AND memsync.is_current(valid_from, valid_to, now())",
                               (people["Ada"], f"Ada lives in % no. {n}%")).fetchone()
        assert current is not None and current["n"] <= 1, n
