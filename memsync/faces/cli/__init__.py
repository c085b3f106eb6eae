"""The `memsync` command line: the group lives in `base`, each command family in its own
module, imported here so that its commands register on the group."""

from memsync.faces.cli import (  # noqa: F401  (registers)
    admin,
    conversations,
    daemon,
    evaluation,
    ingest,
    maintenance,
    mcp,
    read,
    recipes,
    zep,
)
from memsync.faces.cli.base import main

__all__ = ["main"]
