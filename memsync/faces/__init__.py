"""Faces: how people and agents reach memsync. Each builds on memsync.app.Memsync, which
owns the lifecycle; FACES lists them (what `memsync --help` and the README describe)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Face:
    name: str
    entry: str  # module:callable, or the module to import
    summary: str


FACES: tuple[Face, ...] = (
    Face("cli", "memsync.faces.cli:main", "the `memsync` command line"),
    Face("library", "memsync.faces.api", "`from memsync import search, retrieve, remember, ...` in an agent's own process"),
    Face("mcp", "memsync.faces.mcp.server:serve", "`memsync mcp`: a Model Context Protocol server for agents"),
)


def json_default(value: Any) -> Any:
    """JSON for what database rows hold: timestamps, numerics, paths."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)
