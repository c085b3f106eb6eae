"""The synced sources, assembled from the memory kinds (memsync/kinds/): a source is a
table whose rows memsync turns into agent.blocks. Capture triggers are (re)installed from
this list on every `memsync db migrate`."""

from __future__ import annotations

from memsync.kinds import blocks
from memsync.kinds.base import ChunkParams, Source
from memsync.kinds.registry import KINDS

__all__ = ["BLOCKS_TABLE", "SOURCES", "ChunkParams", "Source", "install_triggers"]

BLOCKS_TABLE = blocks.TABLE

SOURCES: dict[str, Source] = {k.source.table: k.source for k in KINDS if k.source is not None}


def install_triggers(dsn: str) -> None:
    from memsync.storage.db import capture, connect

    with connect(dsn, autocommit=True) as conn, conn.transaction():
        for source in SOURCES.values():
            capture.install_source_triggers(conn, source.table, source.content_columns, "capture_row",
                                            source.capture_only, inserted="capture_inserted")
        capture.install_source_triggers(conn, BLOCKS_TABLE, blocks.CONTENT_COLUMNS, "capture_block")
