"""memsync's own work in an import and sync of conversations, without the model: the part of
issue 19's "import + sync ÷ raw encode" that is not the encode, measured where the model's
noise (a raw encode moves 15-20 % within the hour on these machines) does not hide it.

A set of episodic_bench.py (default synthetic-6k: 6,052 turns, 300 sessions) is imported into
a fresh database through `Memsync.import_conversations` and drained by a worker, each round
in its own database on one embedded server. The embedder hashes words instead of running the
model, but counts tokens with the packaged model's tokenizer and reads its window, so the
chunks, blocks and texts are the ones a user's drain makes (the hashing costs a little; its
time is reported and taken out of `own_s`). Prints per round and the medians: import, sync,
the hashing encode inside the sync, and own = import + sync - encode.

Usage: python bench/plumbing_bench.py [--set synthetic-6k] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import episodic_bench

from memsync.app import Memsync
from memsync.embed import HashingEmbedder, SentenceTransformerEmbedder, Vectors
from memsync.index.pgvector import PgvectorIndex
from memsync.settings import DEFAULT_MODEL, Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.write.worker import Worker


class Tokenized(HashingEmbedder):
    """Hashing vectors; the real model's token counts and window (its tokenizer only)."""

    def __init__(self) -> None:
        super().__init__(384)
        self._real = SentenceTransformerEmbedder(DEFAULT_MODEL)
        self.text_window = self._real.text_window
        self.encode_s = 0.0

    def count_tokens(self, text: str) -> int:
        return self._real.count_tokens(text)

    def encode(self, texts: list[str]) -> Vectors:
        t0 = time.perf_counter()
        try:
            return super().encode(texts)
        finally:
            self.encode_s += time.perf_counter() - t0


def one_round(home: Path, name: str, by_subject: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    dsn = embedded.server_uri(home, database=name)
    migrate.migrate(dsn)
    settings = Settings.from_env({}, home=home, dsn=dsn)
    embedder = Tokenized()
    with Memsync(settings, embedder=embedder, indexes=[PgvectorIndex(dsn)]) as app, \
            connect(dsn, autocommit=True) as conn:
        _, imported = episodic_bench.import_set(app, conn, by_subject)
        embedder.encode_s = 0.0
        t0 = time.perf_counter()
        Worker(settings, dsn, embedder, [PgvectorIndex(dsn)]).drain()
        synced = time.perf_counter() - t0
        row = conn.execute("SELECT count(*) AS n FROM agent.blocks").fetchone()
        assert row is not None
    return {"import_s": imported, "sync_s": synced, "encode_s": embedder.encode_s,
            "own_s": imported + synced - embedder.encode_s, "blocks": row["n"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="synthetic-6k")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    by_subject, _ = episodic_bench.load_set(args.set)
    home = Path(tempfile.mkdtemp(prefix="memsync-plumbing-"))
    try:
        rounds = [one_round(home, f"plumbing{i}", by_subject) for i in range(args.rounds)]
    finally:
        embedded.stop(home)
    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    if args.json:
        print(json.dumps({"set": args.set, "median": medians, "rounds": rounds}, indent=2))
        return
    for i, r in enumerate(rounds, 1):
        print(f"round {i}: " + ", ".join(f"{k} {v:.3f}" if k != "blocks" else f"{k} {v}" for k, v in r.items()))
    print("median:  " + ", ".join(f"{k} {v:.3f}" if k != "blocks" else f"{k} {v:.0f}" for k, v in medians.items()))


if __name__ == "__main__":
    main()
