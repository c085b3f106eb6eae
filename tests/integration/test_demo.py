"""`make demo` runs `memsync demo`: it must work on the embedded default from nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_end_to_end_on_the_embedded_default(tmp_path: Path) -> None:
    # a bare PATH, but with sbin: as root, pgserver creates its system user with useradd
    env = {"MEMSYNC_HOME": str(tmp_path / "home"), "MEMSYNC_MODEL": "hashing-384", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    cli = [sys.executable, "-m", "memsync.faces.cli", "-q"]
    try:
        first = subprocess.run([*cli, "demo"], env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr
        assert "sample memory written" in first.stdout and "backlog: 0" in first.stdout
        assert "# Context: daily_planning (v1) for Ada Example" in first.stdout
        assert "Chase the client for SSO metadata" in first.stdout and "Kickoff call" not in first.stdout
        again = subprocess.run([*cli, "demo"], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "sample memory already present" in again.stdout
        assert "synced 0 items" in again.stdout
    finally:
        subprocess.run([*cli, "db", "stop"], env=env, capture_output=True, text=True, timeout=60)


def test_the_first_command_in_a_fresh_home_needs_no_migrate_step(tmp_path: Path) -> None:
    """A home's database is memsync's own: created by the first command, it is migrated then,
    so an import (or the daemon, or a search) works without `memsync db migrate` first, which
    then has nothing left to apply."""
    import json

    env = {"MEMSYNC_HOME": str(tmp_path / "home"), "MEMSYNC_MODEL": "hashing-384", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    cli = [sys.executable, "-m", "memsync.faces.cli", "-q"]
    chat = [{"role": "user", "content": "Book the dentist for Tuesday."},
            {"role": "assistant", "content": "Booked: Tuesday 10:00 with Dr. Ames."}]
    try:
        first = subprocess.run([*cli, "import", "conversation", "-", "--json"], input=json.dumps(chat), env=env,
                               capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["added"] == 2
        synced = subprocess.run([*cli, "run", "--once"], env=env, capture_output=True, text=True, timeout=300)
        assert synced.returncode == 0, synced.stderr
        migrated = subprocess.run([*cli, "db", "migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0 and "up to date" in migrated.stdout, migrated.stdout + migrated.stderr
    finally:
        subprocess.run([*cli, "db", "stop"], env=env, capture_output=True, text=True, timeout=60)
