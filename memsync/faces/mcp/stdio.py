"""A guard in front of the SDK's stdio transport. The SDK drops a line it cannot parse as
JSON-RPC (invalid JSON, a lone surrogate escape, nesting too deep, an integer of thousands
of digits) without a word, and the client waits for its timeout. Here every line from the
client is checked with the SDK's own parser first: a line that fails gets a JSON-RPC error
response (parse error, or invalid request where its id can be read) and a log line, and
never reaches the SDK; the others pass through unchanged.

The SDK keeps its own transport: fd 0 and fd 1 become pipes that two relay threads serve,
one reading the client and one writing the SDK's output, each line whole, so an error line
never lands inside a message. When the client closes stdin the SDK sees end of file at once."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST = -32700, -32600
DRAIN_SECONDS = 0.1


def check(line: bytes) -> bytes | None:
    """None when the SDK will take the line; else the JSON-RPC error response to send."""
    import mcp_types as types

    if not line.strip():
        return None  # blank lines: the SDK skips them too
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        return None
    except Exception as exc:
        errors = exc.errors() if callable(getattr(exc, "errors", None)) else []  # type: ignore[attr-defined]
        # pydantic says what was wrong; the union it was checked against says nothing
        reason = ("; ".join(sorted({str(e.get("msg", "")) for e in errors[:20]})) or str(exc) or type(exc).__name__)
        reason = reason.strip().splitlines()[0][:200]
        unreadable = not errors or any(e.get("type") == "json_invalid" for e in errors)
    code, message = (PARSE_ERROR, "Parse error") if unreadable else (INVALID_REQUEST, "Invalid Request")
    rid: Any = None
    try:  # a request whose id can still be read gets its answer under that id: its caller is waiting
        data = json.loads(line)
        if isinstance(data, dict) and isinstance(data.get("id"), (str, int)) and not isinstance(data["id"], bool):
            rid = data["id"]
    except (ValueError, RecursionError):  # not JSON Python reads either (depth, digits, encoding)
        pass
    log.warning("refused a message from the client (%s): %s", message.lower(), reason)
    body = {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": f"{message}: {reason}"}}
    return (json.dumps(body) + "\n").encode()


@contextmanager
def guarded() -> Iterator[None]:
    """While inside: fd 0 and fd 1 are pipes relayed to and from the real ones, with every
    client line checked on the way in."""
    real_in, real_out = os.dup(0), os.dup(1)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    os.dup2(in_r, 0)
    os.dup2(out_w, 1)
    os.close(in_r)
    os.close(out_w)
    lock = threading.Lock()
    client_out = os.fdopen(real_out, "wb", buffering=0)

    def send(data: bytes) -> None:
        with lock:
            client_out.write(data)

    def from_client() -> None:
        with os.fdopen(real_in, "rb") as src, os.fdopen(in_w, "wb", buffering=0) as sdk:
            for line in _lines(src):
                refusal = check(line)
                try:
                    if refusal is None:
                        sdk.write(line if line.endswith(b"\n") else line + b"\n")
                    else:
                        send(refusal)
                except (BrokenPipeError, OSError):
                    return

    def to_client() -> None:
        with os.fdopen(out_r, "rb") as src:
            for line in _lines(src):
                try:
                    send(line)
                except (BrokenPipeError, OSError):
                    return

    threads = [threading.Thread(target=from_client, name="memsync-stdio-in", daemon=True),
               threading.Thread(target=to_client, name="memsync-stdio-out", daemon=True)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        # the SDK flushed every message it wrote; the relay passes them on within moments (the
        # SDK keeps a duplicate of the pipe open, so no end of file comes to wait for)
        threads[1].join(timeout=DRAIN_SECONDS)


def _lines(src: BinaryIO) -> Iterator[bytes]:
    while True:
        line = src.readline()
        if not line:
            return
        yield line
