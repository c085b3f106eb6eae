"""How a recalled exchange shows its turns: whole, or cut past TURN_CHARS with a marker that
names the event holding the turn whole."""

from __future__ import annotations


def test_an_exchange_shows_a_long_turn_cut_and_names_where_it_is_whole() -> None:
    from datetime import datetime, timezone

    from memsync.kinds.conversation import TURN_CHARS, Exchange, render

    at = datetime(2023, 5, 8, 14, tzinfo=timezone.utc)
    page = "<tr><td>row</td></tr>" * 5000
    turns = [{"id": 1, "global_id": "event:a", "event_type": "note", "occurred_at": at,
              "payload": {"role": "user", "text": "Pull the launch checklist."}},
             {"id": 2, "global_id": "event:b", "event_type": "note", "occurred_at": at,
              "payload": {"role": "tool", "text": page}},
             {"id": 3, "global_id": "event:c", "event_type": "note", "occurred_at": at,
              "payload": {"role": "assistant", "text": "The launch moved to June 3."}}]
    ex = Exchange(7, "conversation", "session:x", turns, hits=[3], score=1.0)
    text = render(ex)
    assert len(text) < TURN_CHARS + 300 and text.endswith("assistant: The launch moved to June 3.")
    assert f"[… {len(page) - TURN_CHARS:,} more characters: event:b]" in text
    d = ex.to_dict()
    assert d["turns"][1]["chars"] == len(page) and len(d["turns"][1]["text"]) < TURN_CHARS + 100
    assert d["turns"][0]["text"] == "Pull the launch checklist." and d["turns"][0]["chars"] == 26


def test_an_exchange_is_headed_by_its_sessions_summary() -> None:
    """An imported chat's title (a session's summary) tells sessions apart in recalled
    context: its first line heads the exchange, a long one cut at a word."""
    from datetime import datetime, timezone

    from memsync.kinds.conversation import LABEL_CHARS, Exchange, render

    turn = {"id": 1, "global_id": "event:a", "event_type": "note", "payload": {"role": "user", "text": "Why?"},
            "occurred_at": datetime(2025, 3, 2, 10, tzinfo=timezone.utc)}
    titled = Exchange(7, "conversation", "session:x", [turn], [1], 1.0, "Fix the flaky upload test")
    assert render(titled).splitlines()[0] == "2 March 2025 (conversation: Fix the flaky upload test):"
    assert titled.to_dict()["session"]["summary"] == "Fix the flaky upload test"
    long = "We traced the flaky upload test to a fixed sleep that races the upload, " * 3 + "\nthen more."
    head = render(Exchange(7, "conversation", "session:x", [turn], [1], 1.0, long)).splitlines()[0]
    assert head.startswith("2 March 2025 (conversation: We traced the flaky upload test") and head.endswith(" …):")
    assert len(head) <= len("2 March 2025 (conversation: ") + LABEL_CHARS + 4
    assert render(Exchange(7, "conversation", "session:x", [turn], [1], 1.0)).splitlines()[0] == \
        "2 March 2025 (conversation):"
