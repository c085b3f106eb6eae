"""The application object. `Memsync(settings)` owns what a process needs to use memsync:
the DSN, a connection pool, the embedder and the indexes. The CLI, the library API and any
face built on them go through it; several can live in one process (two databases), and
one is safe to share between threads (each call takes its own pooled connection).

    with Memsync() as app:                        # settings from MEMSYNC_*
        hits = app.search("rollback plan", k=5)
        bundle = app.retrieve("project_context", "project:42")

From async code, call it in a worker thread: `await asyncio.to_thread(app.search, ...)`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from pydantic import BaseModel

from memsync import runtime
from memsync.embed import Embedder
from memsync.errors import DatabaseError, EvalSetError, InvalidInput, NotSynced, RecipeError, SearchError
from memsync.index import VectorIndex
from memsync.kinds import conversation
from memsync.kinds.conversation import Exchange
from memsync.read import evaluate as evaluation
from memsync.read.context import ContextBundle, RetrievalLog, Retriever, parse_when
from memsync.read.hybrid import Hit, Mode, SearchOptions, Timing, search_events
from memsync.read.hybrid import search as hybrid_search
from memsync.read.recipes import RecipeFile
from memsync.read.subjects import Confinement, SubjectRef
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage.db import DictConn, configure_pooled, connect, evals, queue
from memsync.storage.db import context as ctxq
from memsync.storage.db.subjects import subject_types
from memsync.storage.dsn import redact_dsn
from memsync.storage.filters import Filters
from memsync.text.chunk import CHUNKER_VERSION
from memsync.version import __version__
from memsync.write import conversations, memory, ops, tokens
from memsync.write.tokens import SyncToken

POOL_TIMEOUT = 10.0  # seconds a call waits for a connection before it fails
MAX_WAIT_MS = 120_000  # the longest a read may wait for writes to become searchable


class Memsync:
    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None,
                 indexes: list[VectorIndex] | None = None):
        self.settings = settings if settings is not None else Settings.from_env()
        self._indexes = indexes  # given indexes are kept across a model switch
        # with no MEMSYNC_MODEL (and no embedder given), follow the model `memsync reembed` made active
        self._follow = embedder is None and runtime.follows_active_model(self.settings)
        self._rt = runtime.build(self.settings, embedder=embedder, indexes=indexes)
        self._pool: Any = None
        self._lock = threading.Lock()
        self._log = RetrievalLog()
        self._retired: list[Runtime] = []  # runtimes of models switched away from (closed with the app)

    # ------------------------------------------------------------ lifecycle

    @property
    def runtime(self) -> Runtime:
        return self._rt

    @property
    def dsn(self) -> str:
        return self._rt.dsn

    def __enter__(self) -> Memsync:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            try:
                with pool.connection(timeout=1.0) as conn:
                    self._log.end(conn)
            except Exception:  # closing must not fail on a server that is gone
                pass
            pool.close()
        for rt in [*self._retired, self._rt]:
            rt.close()
        self._retired.clear()

    def _open_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg.rows import dict_row
                from psycopg_pool import ConnectionPool

                connect(self._rt.dsn, vectors=True).close()  # a clear error now: unreachable, not migrated
                self._pool = ConnectionPool(
                    self._rt.dsn, min_size=1, max_size=self.settings.pool_size, open=True, name="memsync",
                    kwargs={"autocommit": True, "row_factory": dict_row}, configure=configure_pooled,
                    check=ConnectionPool.check_connection,  # a connection the server dropped is replaced
                )
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[DictConn]:
        """A pooled connection (autocommit, dict rows, pgvector types) for one call."""
        from psycopg_pool import PoolTimeout

        pool = self._open_pool()
        try:
            with pool.connection(timeout=POOL_TIMEOUT) as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseError(f"no database connection within {POOL_TIMEOUT:.0f}s to "
                                f"{redact_dsn(self._rt.dsn)}: {exc}") from exc

    def _runtime_for(self, conn: DictConn) -> Runtime:
        """After `memsync reembed` switched models, query the index the daemon keeps current."""
        if self._follow and (model := ops.active_model(conn)) and model != self._rt.embedder.model_id:
            with self._lock:
                if model != self._rt.embedder.model_id:
                    # calls on other threads may still be using the old runtime: it is closed
                    # with the app, not now
                    self._retired.append(self._rt)
                    self._rt = runtime.build(self.settings.model_copy(update={"model": model}),
                                             indexes=self._indexes)
        return self._rt

    # ------------------------------------------------------------ read

    def search(self, query: str, *, k: int = 10, mode: Mode = "hybrid",
               filters: Filters | dict[str, Any] | None = None, after: SyncToken | str | None = None,
               wait_ms: int = tokens.DEFAULT_WAIT_MS, stale_ok: bool = False, confine: Confinement | None = None,
               timing: Timing | None = None, **options: Any) -> list[Hit]:
        """Hybrid (default), dense or lexical search over blocks; see SearchOptions for options.
        `after`: a sync token from a write; waits (up to wait_ms) until its changes are
        searchable, else raises NotSynced (or, with stale_ok, searches anyway). `timing`, when
        given, is filled with where the time went (pool checkout, embedding, each signal, …)."""
        hits: list[Hit] = self._searched(hybrid_search, query, k, mode, filters, after, wait_ms, stale_ok, confine,
                                         timing, options)
        return hits

    def _searched(self, run: Callable[..., Any], query: str, k: int, mode: Mode,
                  filters: Filters | dict[str, Any] | None, after: SyncToken | str | None, wait_ms: int,
                  stale_ok: bool, confine: Confinement | None, timing: Timing | None, options: dict[str, Any]) -> Any:
        """A search (`run`: blocks or events) with its options, confinement and token checked."""
        f = filters if isinstance(filters, Filters) else Filters.parse(filters)
        unknown = set(options) - {"fusion", "rrf_k", "weights", "candidates", "mmr_lambda", "recency_half_life_days",
                                  "time_window", "as_of"}
        if unknown:
            raise SearchError(f"unknown search option(s): {', '.join(sorted(unknown))}")
        if options.get("as_of") is not None:  # facts current then; "last week" counted from then
            try:
                options = {**options, "as_of": parse_when(options["as_of"], "as_of")}
            except RecipeError as exc:
                raise SearchError(str(exc)) from None
        if confine is not None:
            for t, i in f.subjects:
                confine.check(t, i, f"filters.subjects {t}:{'' if i is None else i}")
            if not f.subjects:
                f = f.model_copy(update={"subjects": tuple(sorted(confine.pairs, key=str)), "scoped": True})
        t0 = time.perf_counter()
        with self.connection() as conn:
            if timing is not None:
                timing.pool_ms = 1000 * (time.perf_counter() - t0)  # the checkout and its health check
            self._await(conn, after, wait_ms, stale_ok)
            if f.subjects:  # a subject type outside the vocabulary would silently match nothing
                known = subject_types(conn)
                strange = sorted({t for t, _ in f.subjects if t not in known})
                if strange:
                    raise SearchError(f"unknown subject type(s) in filters: {', '.join(strange)}; "
                                      f"known: {', '.join(sorted(known))}")
            return run(self._runtime_for(conn), conn, query, SearchOptions(k=k, mode=mode, **options), f, timing)

    def recall(self, query: str, *, k: int = 5, neighbours: int = 1, mode: Mode = "hybrid",
               filters: Filters | dict[str, Any] | None = None, after: SyncToken | str | None = None,
               wait_ms: int = tokens.DEFAULT_WAIT_MS, stale_ok: bool = False, confine: Confinement | None = None,
               timing: Timing | None = None, **options: Any) -> list[Exchange]:
        """Search conversation turns and return exchanges: each of the `k` best-matching
        events (memsync.read.hybrid.search_events) with `neighbours` turns before and after
        it in its session, merged where they overlap (see memsync.kinds.conversation).
        `filters` and `options` as in search."""
        if not isinstance(neighbours, int) or isinstance(neighbours, bool) or not 0 <= neighbours <= 20:
            raise SearchError(f"neighbours must be a whole number from 0 to 20, got {neighbours!r}")

        def exchanges(rt: Runtime, conn: DictConn, query: str, opts: SearchOptions, *args: Any
                      ) -> list[Exchange]:  # one connection for both
            return conversation.recall(conn, search_events(rt, conn, query, opts, *args), neighbours, opts.as_of)

        found: list[Exchange] = self._searched(exchanges, query, k, mode, filters, after, wait_ms, stale_ok, confine,
                                               timing, options)
        return found

    def retrieve(self, recipe: str | int, subject: SubjectRef, *, query: str | None = None,
                 budget_tokens: int | None = None, as_of: datetime | str | None = None,
                 after: SyncToken | str | None = None, wait_ms: int = tokens.DEFAULT_WAIT_MS,
                 stale_ok: bool = False, confine: Confinement | None = None) -> ContextBundle:
        """Run a context recipe for a subject ((type, id), 'type:id' or a global_id);
        `after`/`wait_ms`/`stale_ok` as in search (a stale bundle says so: stale, pending)."""
        with self.connection() as conn:
            pending = self._await(conn, after, wait_ms, stale_ok)
            retriever = Retriever(self._runtime_for(conn), conn, log=self.settings.log_retrievals, session=self._log)
            bundle = retriever.retrieve(recipe, subject, query=query, budget_tokens=budget_tokens, as_of=as_of,
                                        confine=confine)
        bundle.stale, bundle.pending = bool(pending), pending
        return bundle

    def wait_synced(self, token: SyncToken | str, wait_ms: int = tokens.DEFAULT_WAIT_MS) -> list[dict[str, Any]]:
        """Wait until the token's changes are searchable; returns what is still pending at
        the deadline (empty: all synced), without raising."""
        tok = SyncToken.decode(token)
        if not tok.changes:
            return []
        with self.connection() as conn:
            return tokens.wait(conn, tok, wait_ms)

    def _await(self, conn: DictConn, after: SyncToken | str | None, wait_ms: int, stale_ok: bool
               ) -> list[dict[str, Any]]:
        tok = SyncToken.decode(after)
        if not tok.changes:
            return []
        if isinstance(wait_ms, bool) or not isinstance(wait_ms, int) or not 0 <= wait_ms <= MAX_WAIT_MS:
            raise InvalidInput(f"wait_ms must be a whole number of milliseconds from 0 to {MAX_WAIT_MS}")
        pending = tokens.wait(conn, tok, wait_ms)
        if pending and not stale_ok:
            dead = any(p["dead"] for p in pending)
            raise NotSynced(("a write this read waits for was dead-lettered and will not be searchable until "
                             "`memsync retry`: " if dead else
                             f"writes not searchable after {wait_ms} ms (is `memsync run` running?): ")
                            + tokens.describe(pending), pending)
        return pending

    def status(self) -> dict[str, Any]:
        with self.connection() as conn:
            rt = self._runtime_for(conn)
            return ops.status(conn, rt.embedder.model_id, rt.indexes)

    # ------------------------------------------------------------ recipes and the queue

    def recipes(self) -> list[dict[str, Any]]:
        """Every recipe, latest version of each."""
        with self.connection() as conn:
            return ctxq.recipes(conn)

    def recipe(self, name: str) -> dict[str, Any]:
        """A recipe's latest version by name; RecipeError when there is none."""
        with self.connection() as conn:
            row = ctxq.recipe(conn, name=name)
        if row is None:
            raise RecipeError(f"unknown recipe {name!r}")
        return row

    def put_recipe(self, recipe: RecipeFile) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Store a validated recipe; a changed spec becomes a new version (the old one stays
        readable by id). Returns the stored row and the version it replaced, if any."""
        with self.connection() as conn, conn.transaction():
            before = ctxq.recipe(conn, name=recipe.name)
            row = ctxq.put_recipe(conn, recipe.name, recipe.description, recipe.raw_spec)
        return row, before

    def verify(self, repair: bool = False) -> list[dict[str, Any]]:
        """Compare blocks with each index (missing, orphaned, stale points) and what Postgres
        says each mirror should hold with what it has; `repair` fixes indexes and requeues
        the rows a mirror lacks."""
        from memsync.index.registry import MIRRORS
        from memsync.storage.db import mirror as mirror_q

        with self.connection() as conn:
            rt = self._runtime_for(conn)
            reports = [ops.verify(conn, rt.embedder.model_id, idx, repair) for idx in rt.indexes]
            for name in rt.settings.mirrors:
                m = MIRRORS[name].open(rt.settings).verify(conn)
                repaired = bool(repair and m["missing"])
                if repaired:
                    mirror_q.requeue(conn, name, [tuple(ref.split("#", 1)) for ref in m["missing"]])
                reports.append({"index": name, "mirror": True, **m, "repaired": repaired})
        return reports

    def retry(self, ids: Sequence[int] | None = None, mirror: str | None = None) -> int:
        """Requeue dead-lettered items of the outbox, or of a mirror's queue (all, or these
        ids); returns how many."""
        with self.connection() as conn:
            return queue.retry_dead(conn, queue.mirror(mirror) if mirror else queue.OUTBOX, ids)


    # ------------------------------------------------------------ agent writes (memsync/write/memory.py)

    def _write(self, fn: Any, model: type[BaseModel], confine: Confinement | None, /, **fields: Any
               ) -> memory.Written:
        data = memory.parse(model, fields)
        with self.connection() as conn:
            return fn(conn, data, confine)  # type: ignore[no-any-return]

    def remember(self, subject: str, text: str, *, fact_type: str, category: str | None = None,
                 valid_from: datetime | None = None, confidence: float | None = None, source: str | None = None,
                 idempotency_key: str | None = None, confine: Confinement | None = None) -> memory.Written:
        """Store a fact about a subject; returns it with a sync token."""
        return self._write(memory.remember, memory.Remember, confine, subject=subject, text=text,
                           fact_type=fact_type, category=category, valid_from=valid_from, confidence=confidence,
                           source=source, idempotency_key=idempotency_key)

    def forget(self, fact: str | int, *, reason: str, dry_run: bool = False,
               confine: Confinement | None = None) -> memory.Written:
        """End a fact's validity now (never deletes): it leaves current retrieval at once and
        stays visible to as_of before now."""
        return self._write(memory.forget, memory.Forget, confine, fact=str(fact), reason=reason, dry_run=dry_run)

    def supersede(self, fact: str | int, text: str, *, fact_type: str | None = None, category: str | None = None,
                  reason: str | None = None, confidence: float | None = None, source: str | None = None,
                  confine: Confinement | None = None) -> memory.Written:
        """End a fact and write its successor in one transaction, linked both ways."""
        return self._write(memory.supersede, memory.Supersede, confine, fact=str(fact), text=text,
                           fact_type=fact_type, category=category, reason=reason, confidence=confidence,
                           source=source)

    def log_reflection(self, subject: str, mode: str, *, confine: Confinement | None = None,
                       **fields: Any) -> memory.Written:
        """A reflection (goals, accomplishments, blockers, decisions, next_actions, metrics, raw_text)."""
        return self._write(memory.log_reflection, memory.LogReflection, confine, subject=subject, mode=mode,
                           **fields)

    def add_note(self, subject: str, body_md: str, *, block_type: str = "prompt_snippet", title: str | None = None,
                 confine: Confinement | None = None) -> memory.Written:
        """A block written directly (a prompt snippet, a note), searchable once synced."""
        return self._write(memory.add_note, memory.AddNote, confine, subject=subject, body_md=body_md,
                           block_type=block_type, title=title)

    def start_session(self, session_type: str, *, subject: str | None = None, client_person: int | None = None,
                      profile: str | None = None, context_recipe: str | None = None, trace_id: str | None = None,
                      started_at: datetime | str | None = None, ended_at: datetime | str | None = None,
                      confine: Confinement | None = None) -> memory.Written:
        """Open a session (seed §4.5), snapshotting the profile, recipe and settings it runs with.
        History brings its own times: started_at, and ended_at for a session already over."""
        data = memory.parse(memory.StartSession, {
            "session_type": session_type, "subject": subject, "client_person": client_person, "profile": profile,
            "context_recipe": context_recipe, "trace_id": trace_id, "started_at": started_at, "ended_at": ended_at})
        with self.connection() as conn:
            return memory.start_session(conn, data, self.settings.redacted(), confine)

    def log_event(self, session: str | int, event_type: str, payload: dict[str, Any], *, memory_scope: str = "session",
                  subject: str | None = None, tool: str | None = None, occurred_at: datetime | str | None = None,
                  confine: Confinement | None = None) -> memory.Written:
        """An event of a running session; notes and decisions become searchable memory."""
        return self._write(memory.log_event, memory.LogEvent, confine, session=str(session), event_type=event_type,
                           payload=payload, memory_scope=memory_scope, subject=subject, tool=tool,
                           occurred_at=occurred_at)

    def log_messages(self, session: str | int, messages: Sequence[Mapping[str, Any]], *,
                     memory_scope: str = "session", confine: Confinement | None = None) -> memory.Written:
        """Messages ({text, speaker | role, at?, id?}) into a running session, in order, in one
        transaction; one whose id the session holds is skipped. extra: added, skipped, events."""
        return self._write(conversations.log_messages, conversations.LogMessages, confine, session=str(session),
                           messages=list(messages), memory_scope=memory_scope)

    def import_conversations(self, data: Any, *, subject: str | None = None, memory_scope: str = "session",
                             confine: Confinement | None = None,
                             progress: Callable[[conversations.Imported], None] | None = None
                             ) -> list[conversations.Imported]:
        """Conversation sessions with their real times (see conversations.sessions_of for the
        shapes), one transaction each: a bad session fails alone, a re-import adds nothing."""
        sessions = conversations.sessions_of(data)
        scope = conversations.memory_scope(memory_scope)
        out = []
        with self.connection() as conn:
            # resolved once: one that is not there fails the import, before any session
            subj = conversations.import_subject(conn, subject, confine)
            for i, raw in enumerate(sessions):
                done = conversations.import_session(conn, i, raw, subj, confine, scope)
                out.append(done)
                if progress is not None:
                    progress(done)
        return out

    def end_session(self, session: str | int, status: str = "completed", summary: str | None = None, *,
                    confine: Confinement | None = None) -> memory.Written:
        return self._write(memory.end_session, memory.EndSession, confine, session=str(session), status=status,
                           summary=summary)

    def promote_event(self, event: str | int, *, fact_type: str, category: str | None = None,
                      text: str | None = None, confine: Confinement | None = None) -> memory.Written:
        """Turn an event into a fact and link them (events.promoted_fact_id)."""
        return self._write(memory.promote_event, memory.PromoteEvent, confine, event=str(event),
                           fact_type=fact_type, category=category, text=text)

    def get(self, ref: str, *, confine: Confinement | None = None) -> dict[str, Any]:
        """A row by global_id or 'type:id', with its blocks, artifact and subject."""
        with self.connection() as conn:
            return memory.get(conn, ref, confine)

    def block_actions(self, block: str | int, *, profile: str, confine: Confinement | None = None
                      ) -> list[dict[str, Any]]:
        """The block's actions whose tools the profile may use."""
        with self.connection() as conn:
            return memory.block_actions(conn, block, profile, confine)

    # ------------------------------------------------------------ evaluation (memsync/read/evaluate.py)

    def evaluate(self, text: str, *, name: str, mode: Mode = "hybrid", recipe: str | None = None,
                 ks: Sequence[int] = evaluation.DEFAULT_KS, minimum: Mapping[str, float] | None = None,
                 record: bool = True) -> dict[str, Any]:
        """Run a labelled set (JSON Lines, see memsync.read.evaluate) through search (`mode`)
        or a recipe, and record it: an agent.execution_runs row (workflow retrieval_eval)
        with one agent.step_evaluations row per metric. A metric under its `minimum` is a
        failed step (and `failed` in the result)."""
        labelled = evaluation.parse_set(text)
        ks = tuple(sorted(set(ks)))
        evaluation.check_thresholds(dict(minimum or {}), ks)
        with self.connection() as conn:
            gold = [self._gold(conn, item) for item in labelled]
        confinements: dict[str, Confinement] = {}
        scored: list[evaluation.Scored] = []
        if recipe is not None or mode != "lexical":
            # the model loads on its first use (seconds): untimed here, or the first query's
            # latency carries it into p50/p95 (a two-query set read p50 6 s)
            self._rt.embedder.encode_query("warm up")
        started = datetime.now(timezone.utc)
        depth = max(max(ks), 10)
        for item, want in zip(labelled, gold, strict=True):
            confine = None
            if item.subject is not None:
                if item.subject not in confinements:
                    try:
                        confinements[item.subject] = self.confinement(item.subject)
                    except InvalidInput as exc:
                        raise EvalSetError(f"line {item.line}: subject: {exc}") from None
                confine = confinements[item.subject]
            t0 = time.perf_counter()
            if recipe is not None:
                if item.subject is None:
                    raise EvalSetError(f"line {item.line}: subject: a recipe run needs one")
                bundle = self.retrieve(recipe, item.subject, query=item.query)
                keys: list[str] = []
                for i in bundle.items:
                    if i.kind == "conversation":  # an exchange delivers every turn it holds
                        keys.extend(evaluation.key("agent.events", e) for e in i.score_breakdown.get("events", ()))
                    elif i.id is not None:
                        keys.append(evaluation.key(i.table, i.id))
            else:
                hits = self.search(item.query, k=3 * depth, mode=mode, confine=confine)
                keys = [k for h in hits for k in _row_keys(h)]
            ms = 1000 * (time.perf_counter() - t0)
            scored.append(evaluation.Scored(item, list(dict.fromkeys(keys)), want, ms))
        ended = datetime.now(timezone.utc)
        summary = evaluation.summarize(scored, ks)
        failed = evaluation.failing(summary, dict(minimum or {}))
        emb = self._rt.embedder
        meta = {"set": name, "set_sha256": evaluation.set_hash(text), "queries": summary.queries,
                "mode": None if recipe else mode, "recipe": recipe, "k": list(ks), "model": emb.model_id,
                "precision": getattr(emb, "active_precision", None), "device": getattr(emb, "active_device", None),
                "chunker_version": CHUNKER_VERSION, "memsync_version": __version__,
                "settings": {"indexes": list(self.settings.indexes), "chunk_tokens": self.settings.chunk_tokens,
                             "chunk_overlap": self.settings.chunk_overlap}}
        out: dict[str, Any] = {"set": name, "queries": summary.queries, "metrics": summary.metrics,
                               "failed": failed, "run": None}
        if record:
            with self.connection() as conn:
                run = evals.record(conn, started, ended, meta, summary.metrics, failed)
            out["run"] = {"id": run["id"], "global_id": run["global_id"]}
        return out

    def _gold(self, conn: DictConn, item: evaluation.Labelled) -> set[str]:
        keys = set()
        for ref in item.relevant:
            direct = evaluation.table_ref(ref)
            if direct is not None:  # a row that is not there would only ever count as missed
                there = evals.row_exists(conn, *direct)
                if not there:
                    what = f"no table {direct[0]}" if there is None else f"no {direct[0]} row {direct[1]}"
                    raise EvalSetError(f"line {item.line}: relevant: {what} ({ref!r})")
                keys.add(evaluation.key(*direct))
                continue
            try:
                table, row = memory.load(conn, ref)
            except InvalidInput as exc:
                raise EvalSetError(f"line {item.line}: relevant: {exc}") from None
            keys.add(evaluation.key(table, int(row["id"])))
        return keys

    def evaluation_history(self, *, name: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """The last recorded evaluation runs (newest first), each with its metrics."""
        with self.connection() as conn:
            return evals.history(conn, limit, name)

    def confinement(self, subject: SubjectRef) -> Confinement:
        """The subject and its tree, for a face confined to it (memsync mcp --scope)."""
        with self.connection() as conn:
            return Confinement.of(conn, subject)


def _row_keys(h: Hit) -> list[str]:
    """The rows a hit stands for, as labelled sets name them: an exchange block its turns."""
    if h.covers:
        return [evaluation.key("agent.events", int(e)) for e in h.covers]
    if h.source_table and h.source_id is not None:
        return [evaluation.key(h.source_table, h.source_id)]
    return [evaluation.key("agent.blocks", h.block_id)]
