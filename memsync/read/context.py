"""retrieve(recipe, subject): a context recipe turned into a budgeted, cited bundle of
structured rows and semantically matched blocks, mapped back to the rows they came from."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg

from memsync.errors import DatabaseError, RecipeError
from memsync.kinds.base import Gather, Item
from memsync.read import budget, subjects
from memsync.read.hybrid import SearchOptions, search, search_events
from memsync.read.recipes import RecipeSpec, SemanticSection, parse_spec, render_query
from memsync.read.subjects import Confinement, Subject, SubjectRef
from memsync.runtime import Runtime
from memsync.storage.db import DictConn, audit
from memsync.storage.db import context as q
from memsync.storage.filters import Filters
from memsync.text.clean import unstorable
from memsync.text.dates import aware, read_time


@dataclass
class ContextBundle:
    recipe: str
    recipe_version: int
    subject: str
    subject_name: str
    query: str | None
    as_of: str | None
    budget_tokens: int
    tokens: int
    sections: list[dict[str, Any]]
    items: list[Item]
    dropped: list[dict[str, Any]]
    candidates: int
    latency_ms: float
    # read-your-writes: with after= and stale_ok, the changes that were not searchable yet
    stale: bool = False
    pending: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["items"] = [asdict(i) | {"citation": i.citation} for i in self.items]
        return d

    def to_markdown(self) -> str:
        lines = [f"# Context: {self.recipe} (v{self.recipe_version}) for {self.subject_name} [{self.subject}]", ""]
        if self.query:
            lines += [f"Query: {self.query}", ""]
        cites: list[str] = []
        for sec in self.sections:
            items = [i for i in self.items if i.section == sec["name"]]
            if not items:
                continue
            lines += [f"## {sec['title']}", ""]
            for item in items:
                cites.append(item.citation)
                body = item.text.strip().replace("\n", "\n  ")
                lines.append(f"- {body} [{len(cites)}]")
            lines.append("")
        if cites:
            lines += ["## Sources", ""] + [f"[{n}] {c}" for n, c in enumerate(cites, start=1)] + [""]
        if self.dropped:
            lines.append(f"_{len(self.dropped)} item(s) left out to fit {self.budget_tokens} tokens._")
        return "\n".join(lines).rstrip() + "\n"


class RetrievalLog:
    """The 'retrieval' session whose events record each retrieve() (recipe version,
    candidates, chosen items, tokens, latency): one per process or application object,
    shared by its threads."""

    def __init__(self) -> None:
        self.session: int | None = None
        self.lock = threading.Lock()

    def end(self, conn: DictConn) -> None:
        with self.lock:
            if self.session is not None:
                with contextlib.suppress(psycopg.Error):
                    audit.end_session(conn, self.session, "completed", "retrieval calls logged as events")
                self.session = None


class Retriever:
    """Runs recipes on one connection; with logging on, each call becomes an event of the
    RetrievalLog's session."""

    def __init__(self, rt: Runtime, conn: DictConn, *, log: bool = True, session: RetrievalLog | None = None):
        self.rt = rt
        self.conn = conn
        self.log = log
        self.session = session or RetrievalLog()

    def load_recipe(self, recipe: str | int) -> tuple[dict[str, Any], RecipeSpec]:
        """By id (an int) or by name (the latest version); a digit string falls back to an id."""
        row = q.recipe(self.conn, id=recipe) if isinstance(recipe, int) else q.recipe(self.conn, name=recipe)
        if row is None and isinstance(recipe, str) and recipe.isdigit():
            row = q.recipe(self.conn, id=int(recipe))
        if row is None:
            known = ", ".join(r["name"] for r in q.recipes(self.conn)) or "none"
            raise RecipeError(f"unknown recipe {recipe!r}; known: {known}")
        return row, parse_spec(row["retrieval_spec"], f"recipe {row['name']} v{row['version']}")

    def retrieve(self, recipe: str | int, subject: SubjectRef, *, query: str | None = None,
                 budget_tokens: int | None = None, as_of: datetime | str | None = None,
                 confine: Confinement | None = None) -> ContextBundle:
        """`confine` (a scoped face): the subject must lie in it, and every section reads
        only the part of the subject's scope that does."""
        started = time.perf_counter()
        as_of = parse_when(as_of, "as_of")
        if budget_tokens is not None and (isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int)
                                          or budget_tokens < 1):
            raise RecipeError(f"budget_tokens must be a positive whole number of tokens, got {budget_tokens!r}")
        if query is not None and (not isinstance(query, str) or unstorable(query)):
            raise RecipeError("query must be text without NUL characters or lone surrogates")
        if isinstance(recipe, str) and "\x00" in recipe:
            raise RecipeError("recipe must be a name without NUL characters")
        try:
            row, spec = self.load_recipe(recipe)
            subj = subjects.resolve(self.conn, subject)
            if confine is not None:
                confine.check(subj.type, subj.id, f"subject {subj.key}")
            if spec.subject_types and subj.type not in spec.subject_types:
                raise RecipeError(f"recipe {row['name']} is for {', '.join(spec.subject_types)} subjects, "
                                  f"not {subj.type}")
            limit = spec.budget_tokens if budget_tokens is None else budget_tokens
            groups, candidates = self._gather(spec, subj, query, as_of, confine)
            dropped = budget.fit(groups, limit)
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"retrieve failed: database unavailable: {exc}".strip()) from exc
        items = [i for g in groups for i in g.items]
        bundle = ContextBundle(
            recipe=row["name"], recipe_version=row["version"], subject=subj.key, subject_name=subj.name,
            query=query, as_of=as_of.isoformat() if as_of else None, budget_tokens=limit,
            tokens=sum(i.tokens for i in items),
            sections=[{"name": s.name, "title": s.title or s.name.replace("_", " ").capitalize(), "kind": s.kind,
                       "priority": s.priority} for s in spec.sections],
            items=items,
            dropped=[{"section": d.section, "reason": d.reason, "citation": d.item.citation, "tokens": d.item.tokens}
                     for d in dropped],
            candidates=candidates, latency_ms=1000 * (time.perf_counter() - started),
        )
        if self.log:
            self._log(row, bundle)
        return bundle

    # ------------------------------------------------------------ sections

    def _gather(self, spec: RecipeSpec, subj: Subject, query: str | None, as_of: datetime | None,
                confine: Confinement | None = None) -> tuple[list[budget.SectionItems[Item]], int]:
        now = as_of or datetime.now(timezone.utc)
        seen: set[tuple[str, int | None]] = set()
        groups: list[budget.SectionItems[Item]] = []
        candidates = 0
        scopes: dict[str, tuple[tuple[str, int | None], ...]] = {}

        def semantic(sec: SemanticSection, g: Gather) -> list[Item]:
            return self._semantic(sec, g, subj, query, seen)

        def events(sec: SemanticSection, g: Gather) -> list[tuple[int, float]]:
            text, filters, opts = self._query(sec, g, subj, query, sec.top_k)
            return search_events(self.rt, self.conn, text, opts, filters, since=g.since) if text else []

        for sec in spec.sections:
            mode = sec.scope or spec.scope
            if mode not in scopes:
                scopes[mode] = subjects.scope(self.conn, subj, mode)
                if confine is not None:
                    scopes[mode] = confine.narrow(scopes[mode])
            pairs = scopes[mode]
            since = _days_before(now, sec.since_days) if sec.since_days else None
            # fetch more than max_items: dedup and budgets may drop some
            g = Gather(self.conn, sec.name, pairs, as_of, since, sec.max_items * 2, self.rt.embedder.count_tokens,
                       semantic, events, confined=confine is not None)
            rows = sec.gather(g)
            candidates += len(rows)
            kept = [item for item in rows if _fresh(item, seen)]
            groups.append(budget.SectionItems(sec.name, sec.priority, sec.min_items, sec.max_items, sec.max_tokens,
                                              kept))
        return groups, candidates

    def _semantic(self, sec: SemanticSection, g: Gather, subj: Subject, query: str | None,
                  seen: set[tuple[str, int | None]]) -> list[Item]:
        """top_k hits that are not already in the bundle (rows found by earlier sections
        would otherwise use up the section)."""
        text, filters, opts = self._query(sec, g, subj, query, sec.top_k + len(seen))
        if not text:
            return []
        items = []
        for h in search(self.rt, self.conn, text, opts, filters, since=g.since):
            body = f"{h.heading_path}\n{h.text}" if h.heading_path else h.text
            items.append(Item(
                section=sec.name, kind="semantic", text=body,
                # counted with the model's tokenizer when the block was synced
                tokens=h.token_count if h.token_count is not None else self.rt.embedder.count_tokens(body),
                table=h.source_table or "agent.blocks", id=h.source_id if h.source_table else h.block_id,
                global_id=h.global_id, score=h.score,
                score_breakdown={sec.fusion: h.score, "dense_rank": h.dense_rank, "dense_score": h.dense_score,
                                 "lexical_rank": h.lexical_rank, "lexical_score": h.lexical_score,
                                 **({"covers": h.covers} if h.covers else {})},
                block_id=h.block_id, artifact_external_id=h.artifact_external_id,
            ))
        probe = set(seen)  # the caller records what it keeps
        return [i for i in items if _fresh(i, probe)][: sec.top_k]

    def _query(self, sec: SemanticSection, g: Gather, subj: Subject, query: str | None, k: int
               ) -> tuple[str, Filters, SearchOptions]:
        """A section's search: its query rendered for the subject, its filters and options."""
        text = render_query(sec.query, {
            "query": query or "", "subject.name": subj.name, "subject.type": subj.type,
            "subject.id": str(subj.id or ""), "subject.description": str(subj.row.get("description") or ""),
        })
        # as_of and since_days bound each hit by the time of what it holds (a turn's when it was
        # said, a fact's validity, else when it was written), as search does: not by when its
        # block was synced, so history imported today is history as of its own dates
        filters = Filters(block_types=tuple(sec.block_types), source_tables=tuple(sec.source_tables),
                          subjects=g.pairs, scoped=True)
        opts = SearchOptions(k=k, mode=sec.mode, fusion=sec.fusion, rrf_k=sec.rrf_k, weights=dict(sec.weights),
                             mmr_lambda=sec.mmr_lambda, recency_half_life_days=sec.recency_half_life_days,
                             as_of=g.as_of)
        return text, filters, opts

    # ------------------------------------------------------------ audit

    def _log(self, recipe: dict[str, Any], b: ContextBundle) -> None:
        try:
            with self.session.lock:
                if self.session.session is None:
                    self.session.session = audit.start_session(
                        self.conn, "retrieval", {"model": self.rt.embedder.model_id,
                                                 "indexes": [i.name for i in self.rt.indexes]})
                session = self.session.session
            audit.add_event(self.conn, session, "note", {
                "kind": "retrieval", "recipe": b.recipe, "recipe_id": recipe["id"], "recipe_version": b.recipe_version,
                "subject": b.subject, "query": b.query, "as_of": b.as_of, "candidates": b.candidates,
                "chosen": [i.citation for i in b.items], "dropped": len(b.dropped), "tokens": b.tokens,
                "budget_tokens": b.budget_tokens, "latency_ms": round(b.latency_ms, 2),
            })
        except psycopg.Error:
            pass  # auditing must never break retrieval; the bundle is already built

    def close(self) -> None:
        self.session.end(self.conn)


def _fresh(item: Item, seen: set[tuple[str, int | None]]) -> bool:
    """Record the item's keys; False when the bundle already has it (a block whose whole
    source row is already in counts as present)."""
    keys = {(item.table, item.id)} if item.block_id is None else {("agent.blocks", item.block_id)}
    if (item.block_id is not None and (item.table, item.id) in seen) or keys & seen:
        return False
    seen |= keys
    return True



def _days_before(when: datetime, days: float) -> datetime:
    """`when` minus `days`, clamped at the earliest time a datetime holds (an as_of in the
    first centuries minus a window would overflow)."""
    try:
        return when - timedelta(days=days)
    except OverflowError:
        return datetime.min.replace(tzinfo=timezone.utc)


def parse_when(value: datetime | str | int | None, field: str) -> datetime | None:
    """A point in time as every caller of memsync writes one (memsync.text.dates: ISO 8601, a
    Unix time, or the month in words such as '8 May 2023'); a naive one is taken as UTC. The
    result is timezone-aware."""
    if value is None:
        return None
    try:
        return aware(read_time(value))
    except ValueError as exc:
        raise RecipeError(f"{field}: {exc}") from None
