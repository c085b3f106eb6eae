"""Which erp.people row a conversation's speaker names (pure)."""

from __future__ import annotations

from memsync.write.conversations import linked

PEOPLE = [{"full_name": "Priya Raman", "global_id": "person:p"}, {"full_name": "Tom Hill", "global_id": "person:h"},
          {"full_name": "Tom Baker", "global_id": "person:b"}, {"full_name": "Tom", "global_id": "person:t"},
          {"full_name": "Lee  Ann  Wu", "global_id": "person:l"}, {"full_name": "Sam Ode", "global_id": "person:s1"},
          {"full_name": "Sam Ode", "global_id": "person:s2"}]


def test_full_name_then_a_unique_first_name_and_nothing_ambiguous() -> None:
    got = linked(["priya", "priya raman", "tom", "tom baker", "lee ann wu", "sam ode", "sam", "raman", "priya r"],
                 PEOPLE)
    assert got == {"priya": "person:p", "priya raman": "person:p", "tom": "person:t", "tom baker": "person:b",
                   "lee ann wu": "person:l"}


def test_no_people_no_links() -> None:
    assert linked(["priya"], []) == {}
