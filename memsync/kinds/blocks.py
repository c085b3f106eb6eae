"""Blocks written directly to agent.blocks (notes, prompt snippets): each is its own
source; the worker hashes, embeds and indexes it as it is (see sync.Pipeline)."""

from __future__ import annotations

from memsync.kinds.base import Kind

TABLE = "agent.blocks"

# The columns that change what is embedded or a point's payload.
CONTENT_COLUMNS = (
    "block_type", "title", "body_md", "heading_path", "source_table", "source_id",
    "artifact_id", "subject_type", "subject_id",
)

KIND = Kind("blocks")
