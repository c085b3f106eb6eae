"""The words several layers check, written once: the seed schema's enumerations that the
write API, recipes, the CLI and the MCP tools all accept, the search modes, and the chunk
size a kind uses when none is configured (Settings.chunk_tokens / chunk_overlap)."""

from __future__ import annotations

from typing import Literal, get_args

EventType = Literal["tool_call", "tool_result", "note", "error", "decision"]  # agent.events.event_type
MemoryScope = Literal["run", "session", "user", "project", "global"]  # agent.events.memory_scope
ReflectionMode = Literal["daily", "weekly", "monthly"]  # agent.reflections.mode
SearchMode = Literal["hybrid", "dense", "lexical"]

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
MEMORY_SCOPES: tuple[str, ...] = get_args(MemoryScope)
REFLECTION_MODES: tuple[str, ...] = get_args(ReflectionMode)
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)

MAX_HITS = 1000  # the most hits one search returns (library, CLI, MCP alike)
MAX_TEXT = 100_000  # characters of one fact, note, message or payload text
CHUNK_TOKENS = 256  # the model's window (less [CLS]/[SEP] where the tokenizer says so)
CHUNK_OVERLAP = 32
