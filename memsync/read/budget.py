"""Token budgeting, pure: per-section caps, then the lowest-priority sections give up
items until the bundle fits; what was dropped is reported, never silently lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    tokens: int


T = TypeVar("T", bound=Sized)


@dataclass
class SectionItems(Generic[T]):
    name: str
    priority: int  # 1 is kept longest
    min_items: int
    max_items: int
    max_tokens: int | None
    items: list[T] = field(default_factory=list)


@dataclass(frozen=True)
class Dropped(Generic[T]):
    section: str
    item: T
    reason: str


def fit(sections: list[SectionItems[T]], budget: int) -> list[Dropped[T]]:
    """Trim `sections` in place to fit `budget` tokens; return what was dropped."""
    dropped: list[Dropped[T]] = []
    for s in sections:
        for item in s.items[s.max_items:]:
            dropped.append(Dropped(s.name, item, "section max_items"))
        s.items = s.items[: s.max_items]
        if s.max_tokens is not None:
            kept: list[T] = []
            used = 0
            for item in s.items:
                if used + item.tokens <= s.max_tokens or len(kept) < s.min_items:
                    kept.append(item)
                    used += item.tokens
                else:
                    dropped.append(Dropped(s.name, item, "section max_tokens"))
            s.items = kept

    def total() -> int:
        return sum(i.tokens for s in sections for i in s.items)

    # lowest priority first (highest number); among equals, the later section first
    order = sorted(range(len(sections)), key=lambda i: (-sections[i].priority, -i))
    for respect_min in (True, False):
        for idx in order:
            s = sections[idx]
            floor = s.min_items if respect_min else 0
            while total() > budget and len(s.items) > floor:
                item = s.items.pop()
                dropped.append(Dropped(s.name, item, "budget" if respect_min else "budget (below min_items)"))
            if total() <= budget:
                return dropped
    return dropped
