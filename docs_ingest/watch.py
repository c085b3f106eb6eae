"""Watch mode: a full rescan on start, then a debounced rescan after file-system events.
Events are only hints (an editor's save storm is one change); the rescan is the truth,
and it is cheap because unchanged files are skipped on their stat."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from docs_ingest.ingest import Ingestor, Summary

log = logging.getLogger(__name__)


class _Hint(FileSystemEventHandler):
    def __init__(self, wake: threading.Event):
        self.wake = wake
        self.last = 0.0

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = str(event.src_path)
        if "/." in path.replace("\\", "/"):  # .git internals, editor swap files, hidden folders
            return
        if event.event_type in ("opened", "closed_no_write"):
            return
        self.last = time.monotonic()
        self.wake.set()


def watch(ingestor: Ingestor, stop: threading.Event, on_pass: Callable[[Summary], None],
          debounce: float = 0.5) -> None:
    wake = threading.Event()
    hint = _Hint(wake)
    observer = Observer()
    observer.schedule(hint, str(ingestor.repo.root), recursive=True)
    observer.start()
    try:
        on_pass(ingestor.run())  # changes made while nobody watched
        while not stop.is_set():
            if not wake.wait(timeout=0.2):
                continue
            while not stop.is_set() and time.monotonic() - hint.last < debounce:
                time.sleep(min(debounce, 0.05))
            wake.clear()
            if not stop.is_set():
                on_pass(ingestor.run())
    finally:
        observer.stop()
        observer.join(timeout=5)
