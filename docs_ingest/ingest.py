"""Ingest a markdown repository into agent.artifacts. Content then goes through the sync
pipeline exactly as any other artifact change (capture trigger -> outbox -> worker):
one code path. A re-run over an unchanged tree reads no file and writes nothing."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pathspec

from docs_ingest.parse import SubjectRef, parse
from docs_ingest.scan import Entry, Repo, filters, identify, in_scope, scan
from memsync.errors import MemsyncError, SourceError, SubjectError
from memsync.read import subjects
from memsync.runtime import Runtime
from memsync.storage.db import DictConn, connect
from memsync.storage.db import docs as q
from memsync.storage.db.subjects import subject_types
from memsync.write.worker import Worker

log = logging.getLogger(__name__)
BINARY_SNIFF = 8192


@dataclass
class Summary:
    root: str
    repo: str
    files: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    blocks_written: int = 0
    blocks_removed: int = 0
    embeddings_computed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (f"{self.files} files: {self.added} added, {self.changed} changed, {self.unchanged} unchanged, "
                f"{self.deleted} deleted, {self.skipped} skipped, {self.failed} failed; "
                f"{self.blocks_written} blocks written, {self.blocks_removed} removed, "
                f"{self.embeddings_computed} embeddings computed")


@dataclass
class Ingestor:
    runtime: Runtime
    root: Path
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    progress: Callable[[int], object] | None = None
    on_total: Callable[[int], object] | None = None
    follow_external_links: bool = False  # read symlinks that lead outside the folder

    def __post_init__(self) -> None:
        self.repo: Repo = identify(self.root)
        self._inc, self._exc = filters(self.include, self.exclude)
        self._sops = pathspec.PathSpec.from_lines("gitwildmatch", self.runtime.settings.sop_globs)

    def run(self) -> Summary:
        if not self.root.is_dir():
            raise MemsyncError(f"{self.root}: not a folder")
        summary = Summary(str(self.repo.root), self.repo.identity)
        self._touched: list[int] = []  # artifacts this pass wrote: the items it waits for
        scan_errors: list[tuple[str, str]] = []
        with connect(self.runtime.dsn, autocommit=True) as conn:
            kinds = subject_types(conn)
            known = q.existing(conn, self.repo.identity)
            outside: list[tuple[str, str]] = []
            entries = list(scan(self.repo.root, self._inc, self._exc, scan_errors, outside,
                                follow_external=self.follow_external_links))
            for path, why in outside:
                summary.skipped += 1
                summary.warnings.append({"path": path, "warning": why})
            summary.files = len(entries)
            if self.on_total:
                self.on_total(len(entries))
            for path, message in scan_errors:
                self._fail(summary, path, message)
            for entry in entries:
                try:
                    self._one(conn, entry, known.get(entry.rel_path), kinds, summary)
                except SourceError as exc:
                    self._fail(summary, entry.rel_path, str(exc).removeprefix(f"{entry.rel_path}: "))
                if self.progress:
                    self.progress(1)
            present = {e.rel_path for e in entries} | {p for p, _ in scan_errors}
            gone = [row["id"] for path, row in known.items()
                    if row["deleted_at"] is None and path not in present and in_scope(path, self._inc, self._exc)]
            summary.deleted = q.mark_deleted(conn, gone)
            self._touched.extend(gone)
        self._sync(summary)
        return summary

    def _fail(self, summary: Summary, path: str, message: str) -> None:
        summary.failed += 1
        summary.errors.append({"path": path, "error": message})
        log.warning("%s: %s", path, message)

    def _one(self, conn: DictConn, entry: Entry, known: dict[str, Any] | None, kinds: dict[str, str | None],
             summary: Summary) -> None:
        alive = known is not None and known["deleted_at"] is None
        if alive and known and known["size"] == entry.size and known["mtime_ns"] == entry.mtime_ns:
            summary.unchanged += 1  # the cheap check: no read, no write
            return
        if entry.size > self.runtime.settings.ingest_max_bytes:
            raise SourceError(f"{entry.size} bytes is over the limit of {self.runtime.settings.ingest_max_bytes}"
                              " (MEMSYNC_INGEST_MAX_BYTES)")
        try:
            raw = entry.path.read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read: {exc.strerror}") from None
        if b"\x00" in raw[:BINARY_SNIFF]:
            raise SourceError("binary file (NUL bytes), not markdown")
        digest = hashlib.sha256(raw).hexdigest()
        if alive and known and known["sha256"] == digest:
            q.touch_stat(conn, known["id"], entry.size, entry.mtime_ns)
            summary.unchanged += 1
            return
        if not raw.strip():
            summary.skipped += 1
            summary.warnings.append({"path": entry.rel_path, "warning": "empty file, nothing to ingest"})
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", errors="replace")
            summary.warnings.append({"path": entry.rel_path,
                                     "warning": f"invalid UTF-8 at byte {exc.start}; undecodable bytes replaced"})
        doc = parse(text.lstrip("\ufeff"), entry.rel_path, subject_types=kinds, sop_paths=self._sops)
        subject: tuple[str | None, int | None] = (None, None)
        if doc.subject:
            subject = _resolve(conn, doc.subject, entry.rel_path)
        sha = f"@{self.repo.commit}" if self.repo.commit else ""
        artifact_id = q.upsert(
            conn, repo=self.repo.identity, path=entry.rel_path, system=self.repo.system,
            external_id=f"{self.repo.identity}:{entry.rel_path}{sha}", artifact_type=doc.artifact_type,
            title=doc.title, summary=doc.summary, body=doc.body, subject=subject,
            metadata={"size": entry.size, "mtime_ns": entry.mtime_ns, "sha256": digest,
                      "commit": self.repo.commit, "front_matter": _jsonable(doc.front_matter), "links": doc.links},
        )
        self._touched.append(artifact_id)
        if alive:
            summary.changed += 1
        else:
            summary.added += 1

    def _sync(self, summary: Summary) -> None:
        """Sync the artifacts this pass wrote, and only those: another source's failures
        are the daemon's business, not this ingest's."""
        if not self._touched:
            return
        rt = self.runtime
        # a running daemon may have claimed some of them: wait (bounded) for it to finish them
        stats = Worker(rt.settings, rt.dsn, rt.embedder, rt.indexes,
                       only=[("agent.artifacts", i) for i in self._touched]).run_once(wait_seconds=60.0)
        summary.blocks_written = stats.blocks_written
        summary.blocks_removed = stats.blocks_removed
        summary.embeddings_computed = stats.embedded
        for err in stats.errors:
            self._fail(summary, "(sync)", err)


def _resolve(conn: DictConn, ref: SubjectRef, where: str) -> tuple[str | None, int | None]:
    """A front matter subject (an id or a global_id of that type) -> the row it names."""
    kind, text = ref.subject_type, ref.ref
    key: subjects.SubjectRef = (kind, int(text)) if text.isdigit() else (
        text if text.startswith(f"{kind}:") else f"{kind}:{text}")
    try:
        found = subjects.resolve(conn, key)
    except SubjectError as exc:
        raise SourceError(f"{where}: subject {kind}:{text} does not exist ({exc})") from None
    return found.type, found.id


def _jsonable(value: Any) -> Any:
    """YAML gives dates and other types JSON lacks: keep their text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
