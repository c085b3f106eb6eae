"""The deployment files and `memsync health`. No Docker engine runs here, so the image and
the compose file are checked, not run: every MEMSYNC_* they set is a real setting, the
services start in the intended order, and every command they give the CLI parses. `memsync
health` runs against the real database, with a dead Qdrant among its indexes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from memsync.faces.cli import main
from memsync.settings import Settings
from memsync.storage.db import DictConn

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data["services"]  # type: ignore[no-any-return]


def parses(argv: list[str]) -> None:
    """The CLI accepts this command line (subcommand and its options), without running it."""
    ctx = main.make_context("memsync", list(argv), resilient_parsing=False)
    name, cmd, rest = main.resolve_command(ctx, ctx.protected_args + ctx.args)
    assert cmd is not None, argv
    cmd.make_context(name or "", rest, parent=ctx, resilient_parsing=False)


def test_compose_sets_only_real_settings_in_the_intended_order() -> None:
    services = compose()
    fields = set(Settings.model_fields)
    memsync = {n: s for n, s in services.items() if s.get("image", "").startswith("memsync")}
    assert set(memsync) == {"migrate", "worker", "mcp", "zep-mirror"}
    assert services["zep-mirror"]["profiles"] == ["zep"], "the Zep mirror is opt-in"
    assert "zep" in services["zep-mirror"]["environment"]["MEMSYNC_INDEXES"].split(",")
    for name, svc in memsync.items():
        for key in svc.get("environment", {}):
            assert key.startswith("MEMSYNC_") and key[len("MEMSYNC_"):].lower() in fields, (name, key)
        parses(svc["command"])
        assert not any("password" in str(v).lower() and "${" not in str(v) for v in svc["environment"].values()
                       if "DSN" not in str(v)), "no secret literal"
    deps = {n: s.get("depends_on", {}) for n, s in services.items()}
    assert deps["migrate"] == {"postgres": {"condition": "service_healthy"},
                               "qdrant": {"condition": "service_healthy"}}
    for svc in ("worker", "mcp", "zep-mirror"):
        assert deps[svc] == {"migrate": {"condition": "service_completed_successfully"}}, svc
    assert services["migrate"]["command"] == ["db", "migrate"] and services["migrate"]["restart"] == "no"
    assert services["worker"]["restart"] == "unless-stopped"
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "memsync", "health"]
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["qdrant"]
    # the MCP port is published, so its token is required (compose refuses to start without it)
    assert ":?" in services["mcp"]["environment"]["MEMSYNC_MCP_TOKEN"]
    assert "0.0.0.0" in services["mcp"]["command"][services["mcp"]["command"].index("--http") + 1]


def test_the_dockerfile_runs_the_cli_as_a_non_root_user_with_cpu_torch() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["memsync"\]$', text, re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    parses(cmd)
    health = json.loads(re.search(r"HEALTHCHECK .* CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert health[0] == "memsync"
    parses(health[1:])
    assert re.search(r"^USER memsync$", text, re.M) and "useradd" in text
    assert '"torch==2.13.0"' in text and "whl/cpu" in text
    env_keys = re.findall(r"\b(MEMSYNC_[A-Z_]+)=", text)
    assert env_keys == ["MEMSYNC_HOME"], "no setting, let alone a secret, baked into the image"
    for path in ("memsync", "migrations", "docs_ingest", "pyproject.toml"):
        assert f"COPY {path}" in text, path


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
