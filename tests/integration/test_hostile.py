"""Hostile but fair input, as a table: each case must give a typed error of memsync's
hierarchy whose message names the problem, no traceback on the CLI (exit 2 for bad input),
and leave the database exactly as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from memsync.app import Memsync
from memsync.errors import InvalidInput, MemsyncError
from memsync.read.recipes import parse_spec, recipe_file
from memsync.settings import Settings
from memsync.storage.db import DictConn

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "memsync.faces.cli"]
TABLES = ("agent.facts", "agent.blocks", "agent.context_recipes", "agent.sessions", "agent.events",
          "memsync.outbox", "memsync.embeddings", "memsync.pgvector_index")


def snapshot(conn: DictConn) -> dict[str, Any]:
    counts = {t: conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"] for t in TABLES}  # type: ignore[index]
    outbox = conn.execute("SELECT id, version, attempts, dead_at FROM memsync.outbox ORDER BY id").fetchall()
    return {"counts": counts, "outbox": outbox}


@pytest.fixture
def seeded(conn: DictConn, dsn: str) -> dict[str, Any]:
    person = conn.execute("INSERT INTO erp.people (full_name) VALUES ('Ada') RETURNING id").fetchone()
    assert person is not None
    conn.execute("INSERT INTO agent.facts (fact_type, content, subject_type, subject_id)"
                 " VALUES ('preference', 'Ada likes mornings', 'person', %s)", (person["id"],))
    env = {**os.environ, "MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_LOG_RETRIEVALS": "false"}
    assert subprocess.run([*CLI, "run", "--once"], env=env, capture_output=True, timeout=120).returncode == 0
    return {"person": person["id"], "env": env}


def cli_cases(tmp: Path, person: int) -> list[tuple[list[str], str]]:
    bad_utf8 = tmp / "bad.yaml"
    bad_utf8.write_bytes(b"name: x\xff\nspec: {}\n")
    dict_desc = tmp / "desc.yaml"
    dict_desc.write_text("name: x\ndescription: {}\nspec:\n  sections:\n    - {name: f, kind: facts}\n")
    nul_name = tmp / "nul.yaml"
    nul_name.write_text('name: "a\\0b"\nspec:\n  sections:\n    - {name: f, kind: facts}\n')
    empty_name = tmp / "empty.yaml"
    empty_name.write_text('name: ""\nspec:\n  sections:\n    - {name: f, kind: facts}\n')
    authid = tmp / "authid.yaml"
    authid.write_text("name: a\nspec:\n  sections:\n"
                      "    - {name: s, kind: semantic, source_tables: [pg_catalog.pg_authid]}\n")
    forever = tmp / "forever.yaml"
    forever.write_text("name: a\nspec:\n  sections:\n    - {name: f, kind: facts, since_days: 1e308}\n")
    impossible = tmp / "impossible.yaml"  # the YAML reader raises ValueError, not YAMLError, on it
    impossible.write_text("name: a\nreviewed: 2023-02-30\nspec:\n  sections:\n    - {name: f, kind: facts}\n")
    bad_chat = tmp / "chat.json"
    bad_chat.write_bytes(b'[{"role": "user", "content": "caf\xe9"}]')  # Latin-1, not UTF-8
    bad_set = tmp / "set.jsonl"
    bad_set.write_bytes(b'{"query": "caf\xe9", "relevant": ["fact:1"]}\n')
    subject = f"person:{person}"
    return [
        (["import", "conversation", str(bad_chat), "--subject", f"person:{person}"], "not UTF-8 text (byte 33)"),
        (["eval", str(bad_set)], "not UTF-8 text (byte 14)"),
        # a terminal that is not UTF-8: 'café' in Latin-1 arrives as a lone surrogate
        (["search", "caf\udce9"], "is not UTF-8 text"),
        (["search", "x", "--source-table", "agent.facts; drop table x"], "source table"),
        (["search", "x", "--block-type", "bogus"], "unknown block type"),
        (["search", "x", "--subject", "galaxy:1"], "unknown subject type"),
        (["search", "x", "--k", "0"], "k must be"),
        (["retrieve", "--recipe", "daily_planning", "--subject", subject, "--as-of", "yesterday"], "as_of"),
        (["retrieve", "--recipe", "daily_planning", "--subject", subject, "--budget", "0"], "--budget"),
        (["retrieve", "--recipe", "daily_planning", "--subject", subject, "--budget", "-5"], "--budget"),
        (["retrieve", "--recipe", "nope", "--subject", subject], "unknown recipe"),
        (["retrieve", "--recipe", "daily_planning", "--subject", "person:999999"], "no person with id 999999"),
        (["recipes", "validate", str(bad_utf8)], "not UTF-8"),
        (["recipes", "put", str(dict_desc)], "description must be text"),
        (["recipes", "put", str(nul_name)], "name"),
        (["recipes", "put", str(empty_name)], "name ''"),
        (["recipes", "validate", str(authid)], "pg_catalog.pg_authid"),
        (["recipes", "validate", str(forever)], "since_days"),
        (["recipes", "validate", str(impossible)], "cannot read recipe: a value the YAML reader cannot take"),
        (["reindex", "--index", "nowhere"], "--index"),
        (["rechunk", "--source", "erp.secrets"], "not a synced source"),
    ]


def test_cli_hostile_inputs(conn: DictConn, seeded: dict[str, Any], tmp_path: Path) -> None:
    before = snapshot(conn)
    for args, needle in cli_cases(tmp_path, seeded["person"]):
        out = subprocess.run([*CLI, *args], env=seeded["env"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, (args, out.returncode, out.stderr)
        assert "Traceback" not in out.stderr and needle in out.stderr, (args, out.stderr)
        errors = [line for line in out.stderr.splitlines() if line.lower().startswith("error")]
        assert len(errors) == 1, (args, out.stderr)  # one error line (click's usage errors add a usage hint)
    assert snapshot(conn) == before
    # a byte order mark, as Windows tools write it, is not part of the text
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfname: bom\nspec:\n  sections:\n    - {name: f, kind: facts}\n")
    ok = subprocess.run([*CLI, "recipes", "validate", str(bom)], env=seeded["env"], capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    # as-of: any ISO 8601 offset is fine, and so is a date in the first century
    for when in ("2026-01-01T00:00:00+02:00", "2026-01-01T00:00:00Z", "0001-01-01"):
        ok = subprocess.run([*CLI, "retrieve", "--recipe", "daily_planning", "--subject", f"person:{seeded['person']}",
                             "--as-of", when], env=seeded["env"], capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0, (when, ok.stderr)


def test_library_hostile_inputs(conn: DictConn, seeded: dict[str, Any]) -> None:
    before = snapshot(conn)
    subject = ("person", seeded["person"])
    cases: list[tuple[str, Any]] = [
        ("query", lambda app: app.search("a\x00b")),
        ("k must be", lambda app: app.search("x", k="5")),
        ("k must be", lambda app: app.search("x", k=True)),
        ("rrf_k", lambda app: app.search("x", rrf_k=-1)),
        ("weights", lambda app: app.search("x", weights={"bogus": 1})),
        ("mmr_lambda", lambda app: app.search("x", mmr_lambda=5)),
        ("unknown search mode", lambda app: app.search("x", mode="fuzzy")),
        ("unknown search option", lambda app: app.search("x", colour="red")),
        ("invalid filter", lambda app: app.search("x", filters={"colour": "red"})),
        ("unknown block type", lambda app: app.search("x", filters={"block_types": ["bogus"]})),
        ("unknown subject type", lambda app: app.search("x", filters={"subjects": [["galaxy", 1]]})),
        ("must be an integer", lambda app: app.retrieve("daily_planning", ("person", True))),
        ("as_of", lambda app: app.retrieve("daily_planning", subject, as_of="not a date")),
        ("as_of: 20260101 is a date without separators", lambda app: app.retrieve("daily_planning", subject,
                                                                            as_of=20260101)),
        ("budget_tokens", lambda app: app.retrieve("daily_planning", subject, budget_tokens=0)),
        ("budget_tokens", lambda app: app.retrieve("daily_planning", subject, budget_tokens="5")),
        ("query must be text", lambda app: app.retrieve("daily_planning", subject, query="a\x00b")),
        ("lone surrogates", lambda app: app.retrieve("daily_planning", subject, query="caf\udce9")),
        ("lone surrogates", lambda app: app.search("caf\udce9")),
        # what reached the database (or the SDK) before: NUL in a reference, a recipe, a profile
        ("NUL", lambda app: app.get("fact:1\x00")),
        ("NUL", lambda app: app.retrieve("daily\x00planning", subject)),
        ("NUL", lambda app: app.retrieve("daily_planning", "person:1\x00")),
        ("NUL", lambda app: app.block_actions("block:1", profile="p\x00")),
        ("NaN or infinite", lambda app: app.log_reflection(f"person:{seeded['person']}", "daily",
                                                           metrics={"focus": float("nan")})),
        ("NaN or infinite", lambda app: app.log_reflection(f"person:{seeded['person']}", "daily",
                                                           metrics={"x": [1.0, float("inf")]})),
        # ids in ASCII digits only: '²' failed inside, '٣' and '１' resolved to 3 and 1
        ("ASCII digits", lambda app: app.get("fact:²")),
        ("ASCII digits", lambda app: app.get("fact:٣")),
        ("ASCII digits", lambda app: app.get("fact:１")),
        ("ASCII digits", lambda app: app.remember("person:-1", "x", fact_type="result")),
        ("positive whole number", lambda app: app.get("fact:-4")),
        # blank text is not a fact; true is not a number
        ("must not be blank", lambda app: app.remember(f"person:{seeded['person']}", "   ", fact_type="result")),
        ("not a boolean", lambda app: app.remember(f"person:{seeded['person']}", "x", fact_type="result",
                                                   confidence=True)),
    ]
    with Memsync(Settings.from_env({"MEMSYNC_DSN": seeded["env"]["MEMSYNC_DSN"], "MEMSYNC_MODEL": "hashing-384",
                                    "MEMSYNC_LOG_RETRIEVALS": "false"})) as app:
        for needle, call in cases:
            with pytest.raises(InvalidInput) as exc:
                call(app)
            assert needle in str(exc.value), (needle, str(exc.value))
        # a string as_of is accepted as ISO 8601
        assert app.retrieve("daily_planning", subject, as_of="2026-01-01").as_of == "2026-01-01T00:00:00+00:00"
    assert snapshot(conn) == before


@pytest.mark.parametrize(("data", "needle"), [
    ({"name": "", "spec": {"sections": [{"kind": "facts", "name": "f"}]}}, "name ''"),
    ({"name": "x", "description": {}, "spec": {"sections": [{"kind": "facts", "name": "f"}]}}, "description"),
    ({"name": "x", "spec": {"sections": [{"kind": "semantic", "name": "s", "query": "a\x00"}]}}, "NUL"),
    ({"name": "x", "spec": {"sections": [{"kind": "semantic", "name": "s", "rrf_k": -1}]}}, "rrf_k"),
    ({"name": "x", "spec": {"sections": [{"kind": "runs", "name": "r", "statuses": ["exploded"]}]}}, "statuses"),
    ({"name": "x", "spec": [], "extra": 1}, "unknown field"),
])
def test_recipe_validator_hostile_inputs(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(MemsyncError) as exc:
        recipe_file(data, "r.yaml")
    assert needle in str(exc.value) and isinstance(exc.value, InvalidInput)


def test_validation_catches_what_retrieve_would_reject() -> None:
    with pytest.raises(InvalidInput, match="pg_catalog"):
        parse_spec({"sections": [{"kind": "semantic", "name": "s", "source_tables": ["pg_catalog.pg_authid"]}]})
