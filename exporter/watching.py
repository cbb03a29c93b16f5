"""Filesystem events (watchdog) that only wake the ingest worker; the rescan covers misses."""

from __future__ import annotations

import glob
import logging
import os
import threading

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)


def watch_root(pattern: str) -> tuple[str, bool]:
    """The deepest directory of a glob without wildcards, and whether to watch recursively."""
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            return os.sep.join(fixed) or os.sep, True
        fixed.append(part)
    return os.sep.join(fixed) or os.sep, False


class _Wake(FileSystemEventHandler):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in {"opened", "closed_no_write"}:
            self.event.set()


class Watcher:
    """Watches the directories of the models' globs; falls back to rescans alone on failure."""

    def __init__(self, patterns: list[str], wake: threading.Event) -> None:
        self.wake = wake
        self.roots = sorted({watch_root(p) for p in patterns})
        self.observer: Observer | None = None  # type: ignore[valid-type]
        self.watched: set[str] = set()
        self.failed = False

    def start(self) -> None:
        """Start the observer (never raises: on failure rescans do the work)."""
        try:
            self.observer = Observer()
            self.observer.daemon = True
            self.observer.start()
        except Exception as exc:  # noqa: BLE001 - e.g. inotify instance limit
            self._fail(exc)
            return
        self.refresh()

    def refresh(self) -> None:
        """Watch directories that appeared since the last call."""
        if self.observer is None or self.failed:
            return
        for root, recursive in self.roots:
            if root in self.watched or not os.path.isdir(root):
                continue
            try:
                self.observer.schedule(_Wake(self.wake), root, recursive=recursive)
                self.watched.add(root)
            except Exception as exc:  # noqa: BLE001 - e.g. inotify watch limit
                self._fail(exc)
                return

    def _fail(self, exc: Exception) -> None:
        self.failed = True
        log.warning("filesystem events unavailable; polling every rescan interval only",
                    extra={"error": str(exc)})

    def stop(self) -> None:
        """Stop the observer thread."""
        if self.observer is not None:
            try:
                self.observer.stop()
                self.observer.join(timeout=2)
            except Exception:  # noqa: BLE001 - best effort on shutdown
                pass
