"""What an agent's everyday calls cost once the ERP and the memory have grown: one database
with thousands of people and tens of thousands of facts and turns, then the p50 of each call
an agent makes all day. A call whose statement reads a whole table instead of its subject's
rows shows here as a cost that grows with the table (tests check the plans; this prints the
time).

Data (deterministic): --people people, --facts facts spread over them (a tenth of them on
person 1, the user), --events conversation turns in sessions of 20, each session on one
person. Calls, on person 1 unless said: remember (a new fact: the duplicate check), log_messages
(one turn with a speaker: the speaker lookup), retrieve daily_planning (structured sections),
recall (a person's turns, lexical: no model), recent memory (the MCP resource), get (a fact).

Usage: python bench/scale_bench.py [--people 5000] [--facts 50000] [--events 100000] [--calls 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memsync.app import Memsync
from memsync.embed import HashingEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.storage.db import memory as q


def populate(conn: Any, people: int, facts: int, events: int) -> None:
    conn.execute("INSERT INTO erp.people (full_name) SELECT 'Person ' || g || ' Surname' || g"
                 " FROM generate_series(1, %s::int) g", (people,))
    conn.execute("""INSERT INTO agent.facts (fact_type, content, subject_type, subject_id)
                    SELECT 'preference', 'Prefers option number ' || g, 'person',
                           CASE WHEN g %% 10 = 0 THEN 1 ELSE 1 + g %% %s END
                      FROM generate_series(1, %s::int) g""", (people, facts))
    sessions = max(1, events // 20)
    conn.execute("""INSERT INTO agent.sessions (session_type, subject_type, subject_id, started_at, ended_at, status)
                    SELECT 'conversation', 'person', 1 + g %% %s, now() - interval '30 days', now(), 'completed'
                      FROM generate_series(1, %s::int) g""", (people, sessions))
    conn.execute("""INSERT INTO agent.events (session_id, event_type, payload, memory_scope, subject_type, subject_id,
                                              occurred_at)
                    SELECT s.id, 'note', jsonb_build_object('text', 'we talked about option ' || g, 'speaker', 'Person 1'),
                           'session', s.subject_type, s.subject_id, now() - (g || ' seconds')::interval
                      FROM generate_series(1, %s::int) g
                      JOIN agent.sessions s ON s.id = 1 + g %% %s""", (events, sessions))
    conn.execute("DELETE FROM memsync.outbox")  # the bulk rows need no sync for these calls
    conn.execute("ANALYZE")


def p50(call: Callable[[int], Any], n: int) -> float:
    call(-1)  # warm: connections, prepared statements, caches
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--facts", type=int, default=50000)
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="memsync-scale-"))
    dsn = embedded.server_uri(home, database="scale")
    try:
        migrate.migrate(dsn)
        settings = Settings.from_env({}, home=home, dsn=dsn)
        with Memsync(settings, embedder=HashingEmbedder(), indexes=[PgvectorIndex(dsn)]) as app, \
                connect(dsn, autocommit=True) as conn:
            populate(conn, args.people, args.facts, args.events)
            me = "person:1"
            session = app.start_session("conversation", subject=me).row["global_id"]
            calls: dict[str, Callable[[int], Any]] = {
                "remember": lambda i: app.remember(me, f"Likes the colour number {i}", fact_type="preference"),
                "log_messages": lambda i: app.log_messages(session, [{"speaker": "Person 1", "text": f"turn {i}"}]),
                "retrieve_daily_planning": lambda i: app.retrieve("daily_planning", me),
                "recall_lexical": lambda i: app.recall("option 17", k=5, mode="lexical",
                                                       filters={"subjects": [["person", 1]]}),
                "recent_memory": lambda i: q.recent_memory(conn, "person", 1, 10),
                "get_fact": lambda i: app.get(f"fact:{10 * (i + 2)}"),
            }
            result: dict[str, Any] = {"people": args.people, "facts": args.facts, "events": args.events,
                                      "p50_ms": {name: p50(call, args.calls) for name, call in calls.items()}}
    finally:
        embedded.stop(home)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.people} people, {args.facts} facts, {args.events} turns; p50 of {args.calls} calls each")
    for name, ms in result["p50_ms"].items():
        print(f"  {name:26} {ms:8.2f} ms")


if __name__ == "__main__":
    main()
