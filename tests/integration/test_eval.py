"""`memsync eval`: a labelled set run through search or a recipe, scored, and recorded in
the seed's own tables (agent.execution_runs + agent.step_evaluations), against the real
database; a malformed line is named by its number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsync.app import Memsync
from memsync.embed import HashingEmbedder
from memsync.faces.cli import main
from memsync.index.pgvector import PgvectorIndex
from memsync.read import evaluate
from memsync.settings import Settings
from memsync.storage.db import DictConn
from memsync.write.worker import Worker
from tests.integration.test_conversations import HISTORY

pytestmark = pytest.mark.integration


def test_eval_records_a_run_with_one_step_per_metric(dsn: str, settings: Settings, tmp_path: Path,
                                                     conn: DictConn) -> None:
    tom = conn.execute("INSERT INTO erp.people (full_name) VALUES ('Tom') RETURNING id").fetchone()
    assert tom is not None
    with Memsync(Settings.from_env({"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384"})) as app:
        app.import_conversations(HISTORY, subject=f"person:{tom['id']}")
    Worker(settings.model_copy(update={"dsn": dsn}), dsn, HashingEmbedder(), [PgvectorIndex(dsn)]).drain()
    ev = {r["mid"]: r for r in conn.execute("SELECT id, global_id, payload->>'id' AS mid FROM agent.events")}
    lines = [
        {"query": "climbing gym", "relevant": [f"agent.events:{ev['m2']['id']}"], "subject": f"person:{tom['id']}"},
        {"query": "pottery class", "relevant": [ev[next(k for k in ev if k.startswith("m0-"))]["global_id"]]},
    ]
    path = tmp_path / "convo.jsonl"
    path.write_text("# a comment\n" + "\n".join(json.dumps(x) for x in lines) + "\n")
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path),
           "MEMSYNC_LOG_LEVEL": "ERROR"}
    r = CliRunner().invoke(main, ["eval", str(path), "--mode", "lexical", "--k", "1,5", "--json"], env=env)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["queries"] == 2 and out["metrics"]["recall@1"] == 1.0 and out["metrics"]["mrr"] == 1.0
    run = conn.execute("SELECT * FROM agent.execution_runs WHERE id = %s", (out["run"]["id"],)).fetchone()
    assert run is not None and run["workflow"] == "retrieval_eval" and run["status"] == "completed"
    meta = run["metadata"]
    assert (meta["set"], meta["mode"], meta["queries"], meta["k"]) == ("convo", "lexical", 2, [1, 5])
    assert meta["set_sha256"] == evaluate.set_hash(path.read_text()) and meta["chunker_version"]
    steps = conn.execute("SELECT step_name, status, score, evaluator FROM agent.step_evaluations"
                         " WHERE run_id = %s ORDER BY step_ordinal", (run["id"],)).fetchall()
    assert [s["step_name"] for s in steps] == ["recall@1", "recall@5", "ndcg@10", "mrr", "p50_ms", "p95_ms"]
    assert {s["status"] for s in steps} == {"pass"} and steps[0]["score"] == 1
    # a threshold not met: a failed step, exit 1
    r = CliRunner().invoke(main, ["eval", str(path), "--mode", "dense", "--min", "recall@5=1.01"], env=env)
    assert r.exit_code == 1 and "FAIL" in r.output, r.output
    r = CliRunner().invoke(main, ["eval", str(path), "--min", "recall@7=0.5"], env=env)
    assert r.exit_code == 2 and "unknown metric(s) recall@7" in r.output
    r = CliRunner().invoke(main, ["eval", "--history", "--json"], env=env)
    runs = json.loads(r.output)
    assert [x["metadata"]["mode"] for x in runs] == ["dense", "lexical"] and runs[0]["failed"]
    r = CliRunner().invoke(main, ["eval", str(path), "--history"], env=env)
    assert r.exit_code == 0 and "recall@5" in r.output and "convo" in r.output


@pytest.mark.parametrize(("line", "words"), [
    ("{not json", "line 2: not JSON"),
    ('{"query": "x"}', "line 2: relevant"),
    ('{"query": " ", "relevant": ["fact:1"]}', "line 2: query"),
    ('{"query": "x", "relevant": ["fact:1"], "extra": 1}', "line 2: unknown field(s) extra"),
])
def test_a_malformed_line_is_named(line: str, words: str) -> None:
    with pytest.raises(evaluate.EvalSetError, match=words.replace("(", r"\(").replace(")", r"\)")):
        evaluate.parse_set('{"query": "fine", "relevant": ["fact:1"]}\n' + line)


def test_unknown_gold_rows_are_named(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"query": "x", "relevant": ["fact:999999"]}) + "\n")
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path)}
    r = CliRunner().invoke(main, ["eval", str(path)], env=env)
    assert r.exit_code == 2 and "line 1: relevant: no fact" in r.output and "Traceback" not in r.output
    # a row named by table and id is looked up too: one not there would only ever count as missed
    for ref, words in (("agent.events:999999", "no agent.events row 999999"), ("agent.nothing:1", "no table agent.nothing")):
        path.write_text(json.dumps({"query": "x", "relevant": [ref]}) + "\n")
        r = CliRunner().invoke(main, ["eval", str(path)], env=env)
        assert r.exit_code == 2 and f"line 1: relevant: {words}" in r.output, r.output


def test_eval_through_a_recipe(dsn: str, settings: Settings, conn: DictConn, app: Memsync) -> None:
    tom = conn.execute("INSERT INTO erp.people (full_name) VALUES ('Tom') RETURNING id").fetchone()
    assert tom is not None
    app.import_conversations(HISTORY, subject=f"person:{tom['id']}")
    Worker(settings.model_copy(update={"dsn": dsn}), dsn, HashingEmbedder(), [PgvectorIndex(dsn)]).drain()
    ev = {r["mid"]: r["id"] for r in conn.execute("SELECT id, payload->>'id' AS mid FROM agent.events")}
    subject = f"person:{tom['id']}"
    text = json.dumps({"query": "climbing gym", "relevant": [f"agent.events:{ev['m2']}"], "subject": subject})
    out = app.evaluate(text, name="recipe-set", recipe="conversation_recall", ks=(1, 5))
    assert out["queries"] == 1 and out["run"] is not None
    assert out["metrics"]["recall@5"] == 1.0  # an exchange counts every turn it delivers
    with pytest.raises(evaluate.EvalSetError, match="line 1: subject: a recipe run needs one"):
        app.evaluate(json.dumps({"query": "x", "relevant": ["agent.events:1"]}), name="x",
                     recipe="conversation_recall")


def test_eval_loads_the_model_before_it_times_a_query(dsn: str, settings: Settings, conn: DictConn, app: Memsync,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tom = conn.execute("INSERT INTO erp.people (full_name) VALUES ('Tom') RETURNING id").fetchone()
    assert tom is not None
    app.import_conversations(HISTORY, subject=f"person:{tom['id']}")
    Worker(settings.model_copy(update={"dsn": dsn}), dsn, HashingEmbedder(), [PgvectorIndex(dsn)]).drain()
    ev = {r["mid"]: r["id"] for r in conn.execute("SELECT id, payload->>'id' AS mid FROM agent.events")}
    embedder = app.runtime.embedder
    seen: list[str] = []
    real = embedder.encode_query
    monkeypatch.setattr(embedder, "encode_query", lambda text: (seen.append(text), real(text))[1])
    line = json.dumps({"query": "climbing gym", "relevant": [f"agent.events:{ev['m2']}"]})
    app.evaluate(line, name="warm", mode="dense", record=False)
    assert len(seen) == 2 and seen[0] != "climbing gym" and seen[1] == "climbing gym"  # loaded, then timed
    seen.clear()
    app.evaluate(line, name="warm", mode="lexical", record=False)
    assert seen == []  # BM25 alone never needs the model
