"""Faces: how people and agents reach memsync. Each builds on memsync.app.Memsync, which
owns the lifecycle; FACES lists them (what `memsync --help` and the README describe)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Face:
    name: str
    entry: str  # module:callable, or the module to import
    summary: str


FACES: tuple[Face, ...] = (
    Face("cli", "memsync.faces.cli:main", "the `memsync` command line"),
    Face("library", "memsync.faces.api", "`from memsync import search, retrieve, Memsync` in an agent's own process"),
)
