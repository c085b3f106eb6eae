"""Pure parts of the agent face: sync tokens and row references."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from memsync.errors import RefError, TokenError
from memsync.write.memory import parse_ref
from memsync.write.tokens import SyncToken

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_a_token_round_trips_and_merges_keeping_the_latest_write_per_row() -> None:
    a = SyncToken.of(T0, [("agent.facts", 1), ("agent.blocks", 7)])
    b = SyncToken.of(T0 + timedelta(seconds=5), [("agent.facts", 1), ("agent.events", 2)])
    assert SyncToken.decode(a.encode()) == a
    m = a.merge(b)
    later = T0 + timedelta(seconds=5)
    assert dict(((t, i), at) for t, i, at in m.changes) == {
        ("agent.facts", 1): later, ("agent.blocks", 7): T0, ("agent.events", 2): later}
    assert a.merge(None) == a and SyncToken.decode(None) == SyncToken()


@pytest.mark.parametrize("bad", ["", "garbage", "mst1.", "mst1.!!!!", "mst1.eyJ4IjoxfQ=="])
def test_a_damaged_token_is_a_clear_error(bad: str) -> None:
    with pytest.raises(TokenError):
        SyncToken.decode(bad)


def test_references() -> None:
    assert parse_ref("fact:12") == ("agent.facts", 12, None)
    assert parse_ref("fact:6f1c-aa", "agent.facts") == ("agent.facts", None, "fact:6f1c-aa")
    assert parse_ref("12", "agent.facts") == ("agent.facts", 12, None)
    assert parse_ref(12, "agent.sessions") == ("agent.sessions", 12, None)
    assert parse_ref("project:3") == ("erp.projects", 3, None)
    for bad, words in (("fact", "must look like"), ("planet:1", "must look like"), (12, "needs a type"),
                       ("fact:99999999999999999999", "out of range")):
        with pytest.raises(RefError, match=words):
            parse_ref(bad)
    with pytest.raises(RefError, match="expected a session"):
        parse_ref("fact:1", "agent.sessions")


def test_the_session_audit_redacts_secrets_not_token_counts() -> None:
    from memsync.faces.mcp.server import _redact

    out = _redact({"budget_tokens": 800, "token": "t", "api_key": "k", "MEMSYNC_MCP_TOKEN": "m",
                   "nested": [{"x-auth-token": "a", "password": "p", "max_tokens": 5, "authorization": "b"}]})
    assert out == {"budget_tokens": 800, "token": "***", "api_key": "***", "MEMSYNC_MCP_TOKEN": "***",
                   "nested": [{"x-auth-token": "***", "password": "***", "max_tokens": 5, "authorization": "***"}]}
