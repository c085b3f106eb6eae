"""The deployment files and `memsync health`. No Docker engine runs here, so the image and
the compose file are checked, not run: `docker-compose config` (Debian's docker-compose
1.29, which needs no daemon; .ci/run installs it) resolves the file for the default
services and the zep profile with the optional variables unset and set; every MEMSYNC_*
they set is a real setting, the services start in the intended order with their own
health checks and restart policies, and every command they give the CLI resolves to a real
(sub)command with real options. `memsync health` runs against the real database, with a
dead Qdrant among its indexes, and `health --worker` sees a running worker."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from memsync.embed import HashingEmbedder
from memsync.faces.cli import main
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage.db import DictConn
from memsync.write.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
MEMSYNC_SERVICES = {"migrate", "worker", "mcp", "zep-mirror"}
# libpq's own variable: the password travels beside the DSN, never inside it
LIBPQ_ENV = {"PGPASSWORD"}


def parses(argv: list[str]) -> None:
    """The CLI accepts this command line, every nested group resolved down to a command,
    with its options, without running it. Raises click's error otherwise."""
    ctx = main.make_context("memsync", list(argv), resilient_parsing=False)
    cmd: click.Command = main
    rest = ctx.protected_args + ctx.args
    while isinstance(cmd, click.Group):
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None, argv
        ctx = sub.make_context(name or "", rest, parent=ctx, resilient_parsing=False)
        cmd, rest = sub, ctx.protected_args + ctx.args if isinstance(sub, click.Group) else []


def test_the_command_parser_refuses_what_the_cli_refuses() -> None:
    parses(["db", "migrate", "--wait", "60"])
    parses(["health", "--worker"])
    for bad in (["db", "bogus"], ["db"], ["bogus"], ["db", "migrate", "--nope"], ["run", "--workers", "x"]):
        with pytest.raises((click.UsageError, click.BadParameter, AssertionError)):
            parses(bad)


def compose_config(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as `docker-compose config` resolves it, with only `env` set (no
    .env file, none of the caller's variables)."""
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: .ci/run installs Debian's package")
        pytest.skip("docker-compose not installed (apt-get install docker-compose); CI installs it")
    empty = ROOT / ".pytest-empty.env"
    empty.write_text("")
    try:
        out = subprocess.run([exe, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(empty), *args, "config"],
                             env={"PATH": os.environ["PATH"], **(env or {})}, capture_output=True, text=True,
                             timeout=120)
    finally:
        empty.unlink()
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = yaml.safe_load(out.stdout)
    return data


OPTIONAL_SET = {"POSTGRES_PASSWORD": "p@ss:w/rd#%", "MEMSYNC_MCP_TOKEN": "t" * 32,
                "MEMSYNC_ZEP_URL": "https://zep.example", "MEMSYNC_ZEP_API_KEY": "zk", "MEMSYNC_MCP_PUBLISH": "0.0.0.0:9"}


@pytest.mark.parametrize("profile", [(), ("--profile", "zep")], ids=["default", "zep"])
@pytest.mark.parametrize("variables", ["unset", "set"])
def test_compose_resolves_with_the_intended_services(profile: tuple[str, ...], variables: str) -> None:
    cfg = compose_config(*profile, env=OPTIONAL_SET if variables == "set" else {})
    services: dict[str, Any] = cfg["services"]
    fields = set(Settings.model_fields)
    memsync = {n: s for n, s in services.items() if s.get("image", "").startswith("memsync")}
    assert set(memsync) == MEMSYNC_SERVICES
    assert services["zep-mirror"]["profiles"] == ["zep"], "the Zep mirror is opt-in"
    assert not any("profiles" in s for n, s in services.items() if n != "zep-mirror")
    for name, svc in memsync.items():
        for key, value in svc["environment"].items():
            assert key in LIBPQ_ENV or (key.startswith("MEMSYNC_") and key[len("MEMSYNC_"):].lower() in fields), \
                (name, key)
            if key == "MEMSYNC_DSN":
                assert "@postgres:" in value and ":" not in value.split("://")[1].split("@")[0], "no password in the DSN"
        parses(svc["command"])
        assert svc["init"] is True, name
        assert svc["stop_grace_period"] == "60s", name
    password = OPTIONAL_SET["POSTGRES_PASSWORD"] if variables == "set" else "memsync"
    assert services["worker"]["environment"]["PGPASSWORD"] == password
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    # order: databases healthy -> migrate completes -> the rest
    deps = {n: s.get("depends_on", {}) for n, s in services.items()}
    assert deps["migrate"] == {"postgres": {"condition": "service_healthy"},
                               "qdrant": {"condition": "service_healthy"}}
    for svc in ("worker", "mcp", "zep-mirror"):
        assert deps[svc] == {"migrate": {"condition": "service_completed_successfully"}}, svc
    # restart policies: everything long-running comes back after a reboot; migrate runs once
    assert services["migrate"]["restart"] == "no"
    for svc in ("postgres", "qdrant", "worker", "mcp", "zep-mirror"):
        assert services[svc]["restart"] == "unless-stopped", svc
    assert services["migrate"]["command"][:2] == ["db", "migrate"] and "--wait" in services["migrate"]["command"]
    # health checks: each container its own
    health = {n: s.get("healthcheck", {}).get("test") for n, s in services.items()}
    assert health["migrate"] == ["NONE"], "a one-shot has no health check"
    assert health["worker"] == health["zep-mirror"] == ["CMD", "memsync", "health", "--worker"]
    assert health["mcp"][:3] == ["CMD", "memsync", "health"] and "--http" in health["mcp"]
    assert "127.0.0.1:8765/mcp" in health["mcp"][-1]
    for n in ("worker", "mcp", "zep-mirror"):
        parses(health[n][2:])
    assert "-h 127.0.0.1" in health["postgres"][1], "pg_isready over TCP, not the init-time socket"
    assert "6333" in health["qdrant"][1]
    # ports: the databases are not published; MCP on this host only unless asked
    assert "ports" not in services["postgres"] and "ports" not in services["qdrant"]
    (port,) = services["mcp"]["ports"]
    host_ip = port["host_ip"] if isinstance(port, dict) else str(port).rsplit(":", 2)[0]
    assert host_ip == ("0.0.0.0" if variables == "set" else "127.0.0.1"), port
    assert "0.0.0.0" in services["mcp"]["command"][services["mcp"]["command"].index("--http") + 1]
    env_mcp = services["mcp"]["environment"]
    assert env_mcp["MEMSYNC_MCP_TOKEN"] == (OPTIONAL_SET["MEMSYNC_MCP_TOKEN"] if variables == "set" else "")
    assert services["zep-mirror"]["environment"]["MEMSYNC_ZEP_URL"] == (
        OPTIONAL_SET["MEMSYNC_ZEP_URL"] if variables == "set" else "")
    assert "zep" in services["zep-mirror"]["environment"]["MEMSYNC_INDEXES"].split(",")
    # the Qdrant server and the client the image installs share a minor version
    image_minor = re.fullmatch(r"qdrant/qdrant:v(\d+\.\d+)\.\d+", services["qdrant"]["image"])
    client = re.search(r"^qdrant-client==(\d+\.\d+)\.", (ROOT / "constraints.txt").read_text(), re.M)
    assert image_minor and client and image_minor.group(1) == client.group(1)


def test_an_empty_zep_url_or_weak_token_is_refused_with_one_line(tmp_path: Path) -> None:
    """What the unset optional variables lead to at start: one clear line, no traceback."""
    env = {"MEMSYNC_HOME": str(tmp_path), "MEMSYNC_DSN": "postgresql://nobody@127.0.0.1:9/none",
           "MEMSYNC_MODEL": "hashing-384"}
    from memsync.errors import ConfigError
    from memsync.mirror.zep import ZepMirror

    with pytest.raises(ConfigError, match="MEMSYNC_ZEP_URL is not set"):
        ZepMirror(Settings.from_env({**env, "MEMSYNC_INDEXES": "pgvector,zep", "MEMSYNC_ZEP_URL": ""}))


def test_the_dockerfile_runs_the_cli_as_a_non_root_user_with_cpu_torch() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["memsync"\]$', text, re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    parses(cmd)
    health = json.loads(re.search(r"HEALTHCHECK .* CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert health == ["memsync", "health", "--worker"], "the default command's own liveness"
    parses(health[1:])
    assert re.search(r"^USER memsync$", text, re.M) and "useradd" in text
    assert '"torch==2.13.0"' in text and "whl/cpu" in text
    env_keys = re.findall(r"\b(MEMSYNC_[A-Z_]+)=", text)
    assert env_keys == ["MEMSYNC_HOME"], "no setting, let alone a secret, baked into the image"
    # dependencies in a layer before the source, held to constraints.txt; the zep extra; git
    deps = text.index("COPY pyproject.toml constraints.txt ./")
    assert deps < text.index("COPY memsync") and deps < text.index("COPY README.md")
    assert "-c constraints.txt" in text and '".[zep]"' in text and "install -y --no-install-recommends git" in text
    for path in ("memsync", "migrations", "docs_ingest", "pyproject.toml"):
        assert f"COPY {path}" in text, path
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignored)
    constraints = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", constraints, re.M)
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["zep"]:
        name = re.split(r"[<>=!\[ ]", req, maxsplit=1)[0].lower().replace("_", "-")
        assert re.search(rf"^{re.escape(name)}==", constraints.lower().replace("_", "-"), re.M), name
    example = (ROOT / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=" in example and "MEMSYNC_MCP_TOKEN=" in example
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def health(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["health", "--json"], env=env)
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.output)


@pytest.mark.integration
def test_health_on_the_real_database(dsn: str, conn: DictConn, tmp_path: Path) -> None:
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path)}
    code, out = health(env)
    assert code == 0 and out["healthy"], out
    # a dead Qdrant: that check fails, the rest still say what they found
    code, out = health({**env, "MEMSYNC_INDEXES": "pgvector,qdrant", "MEMSYNC_QDRANT_URL": "http://127.0.0.1:9"})
    checks = {c["name"]: c for c in out["checks"]}
    assert code == 1 and not checks["index:qdrant"]["ok"] and checks["index:pgvector"]["ok"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"]
    # a backlog over the limit, then a dead letter
    conn.execute("INSERT INTO agent.facts (fact_type, content) VALUES ('result', 'queued')")
    code, out = health({**env, "MEMSYNC_HEALTH_MAX_BACKLOG": "0"})
    assert code == 1 and [c["name"] for c in out["checks"] if not c["ok"]] == ["backlog"]
    conn.execute("UPDATE memsync.outbox SET dead_at = now(), last_error = 'x'")
    code, out = health(env)
    assert code == 1 and [c["name"] for c in out["checks"] if not c["ok"]] == ["dead_letters"]
    assert health({**env, "MEMSYNC_HEALTH_MAX_DEAD": "1"})[0] == 0


def test_health_with_no_database_is_a_clean_failure(tmp_path: Path) -> None:
    code, out = health({"MEMSYNC_DSN": "postgresql://nobody@127.0.0.1:9/none", "MEMSYNC_HOME": str(tmp_path)})
    assert code == 1 and out["checks"][0]["name"] == "database" and not out["checks"][0]["ok"]


@pytest.mark.integration
def test_health_worker_sees_this_hosts_live_worker(dsn: str, settings: Settings, tmp_path: Path) -> None:
    env = {"MEMSYNC_DSN": dsn, "MEMSYNC_MODEL": "hashing-384", "MEMSYNC_HOME": str(tmp_path)}
    r = CliRunner().invoke(main, ["health", "--worker", "--json"], env=env)
    assert r.exit_code == 1 and "no live, heartbeating worker" in r.output, r.output
    w = Worker(settings.model_copy(update={"dsn": dsn}), dsn, HashingEmbedder(), [PgvectorIndex(dsn)])
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), daemon=True)
    t.start()
    try:
        for _ in range(100):
            r = CliRunner().invoke(main, ["health", "--worker", "--json"], env=env)
            if r.exit_code == 0:
                break
            stop.wait(0.1)
        assert r.exit_code == 0 and w.worker_id in r.output, r.output
    finally:
        stop.set()
        t.join(timeout=30)
    r = CliRunner().invoke(main, ["health", "--worker"], env=env)
    assert r.exit_code == 1, "a stopped worker is not alive"


def test_migrate_waits_for_a_server_that_is_not_up_then_fails_clearly(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    env = {"MEMSYNC_DSN": "postgresql://nobody@127.0.0.1:9/none", "MEMSYNC_HOME": str(tmp_path)}
    r = CliRunner().invoke(main, ["db", "migrate", "--wait", "1.5"], env=env)
    assert r.exit_code != 0 and "Traceback" not in r.output and "cannot connect" in r.output, r.output
    waits = [m for m in caplog.messages if m.startswith("waiting up to 2s for the database")]
    assert len(waits) == 1, caplog.messages
