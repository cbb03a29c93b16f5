"""JSONL prediction logs: one line per ``write``, rolled over by size or age."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from exporter_client.naming import LogFileNamer, check_rollover
from exporter_client.records import encode_record

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_AGE = 3600.0


class JsonlLogWriter:
    """Thread-safe JSONL writer: ``write(record)`` appends one complete line.

    Each line goes to the file in a single ``write(2)`` on an ``O_APPEND`` descriptor, so the
    exporter never sees a record from this writer cut in two, and a record is visible to it as
    soon as ``write`` returns (no buffering in the app). A new file is started before a record
    that would take the current one past ``max_bytes`` (a record larger than that gets a file
    of its own) and before the first record written ``max_age`` seconds or more after the
    current file was opened. Files are named ``{prefix}-{UTC time}-{sequence}.jsonl``; with
    ``keep_files`` the oldest beyond that count are deleted at each roll-over.
    """

    suffix = ".jsonl"

    def __init__(self, directory: str | os.PathLike[str], *, prefix: str = "predictions",
                 max_bytes: int = DEFAULT_MAX_BYTES, max_age: float = DEFAULT_MAX_AGE,
                 keep_files: int | None = None, clock: Callable[[], float] = time.time) -> None:
        if max_bytes < 1:
            msg = f"max_bytes: expected a positive number of bytes, got {max_bytes!r}"
            raise ValueError(msg)
        check_rollover(max_age, keep_files)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.keep_files = keep_files
        self._clock = clock
        self._namer = LogFileNamer(directory, prefix, self.suffix, clock)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._opened_at = 0.0
        self._closed = False
        self.records_written = 0
        self.files_opened = 0

    @property
    def current_path(self) -> Path | None:
        """The file being appended to (None before the first record and after ``close``)."""
        with self._lock:
            return self._path

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record as one JSON line (TypeError for a value JSON cannot hold)."""
        line = encode_record(record)  # outside the lock: encoding is the slow part
        with self._lock:
            if self._closed:
                msg = "write() on a closed JsonlLogWriter"
                raise ValueError(msg)
            now = self._clock()
            if self._fd is None or self._due(len(line), now):
                self._roll(now)
            assert self._fd is not None
            view = memoryview(line)
            while view:  # a regular file takes it all at once; loop for the odd short write
                written = os.write(self._fd, view)
                view = view[written:]
            self._size += len(line)
            self.records_written += 1

    def _due(self, incoming: int, now: float) -> bool:
        too_big = self._size > 0 and self._size + incoming > self.max_bytes
        return too_big or now - self._opened_at >= self.max_age

    def _roll(self, now: float) -> None:
        self._close_file()
        path = self._namer.next_path()
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(path, flags, 0o644)
        self._path = path
        self._size = os.fstat(self._fd).st_size
        self._opened_at = now
        self.files_opened += 1
        if self.keep_files is not None:
            self._namer.prune(self.keep_files)

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self._path = None

    def close(self) -> None:
        """Close the current file; later writes raise ValueError. Idempotent."""
        with self._lock:
            self._close_file()
            self._closed = True

    def __enter__(self) -> JsonlLogWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
