"""Following the log files of one glob: discovery, offsets, partial lines, rotation, truncation.

Files are keyed by (device, inode) and kept open, so a file renamed away by rotation is drained
through its descriptor before it is released, and a renamed-in file (``x.parquet.tmp`` ->
``x.parquet``) keeps its identity. A JSONL file is read from its stored offset up to its last
complete line; a last line without ``\\n`` waits. A file whose size drops below the offset, or
whose bytes before the offset changed (fingerprint), was truncated or replaced: it is read again
from 0. Parquet files are read once, when their footer is complete.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

READ_CHUNK = 16 << 20
FINGERPRINT = 64  # bytes before the offset that must not change while a file is followed
PARQUET_MAGIC = b"PAR1"
PARQUET_GIVE_UP_SECONDS = 60.0  # a Parquet file without footer, unchanged this long, is corrupt
COUNT_LINES_LIMIT = 256 << 20  # count lines of a skipped prefix only up to this size


@dataclass(frozen=True)
class LineChunk:
    """Complete lines read from a JSONL file; ``first_line`` is None when unknown."""

    path: str
    data: bytes
    first_line: int | None
    offset: int


@dataclass(frozen=True)
class LongLine:
    """A line longer than max_line_bytes, skipped without buffering it."""

    path: str
    line: int | None
    length: int


@dataclass(frozen=True)
class ParquetReady:
    """A complete Parquet file to read once."""

    path: str


@dataclass(frozen=True)
class ParquetCorrupt:
    """A Parquet file that never became readable."""

    path: str
    reason: str


@dataclass(frozen=True)
class Truncated:
    """A followed file that was truncated or replaced in place."""

    path: str


Event = LineChunk | LongLine | ParquetReady | ParquetCorrupt | Truncated


@dataclass
class _Tracked:
    path: str
    key: tuple[int, int]
    fd: int
    offset: int = 0
    line: int | None = 1
    skipping: int = 0  # bytes of a too-long line skipped so far (0 = not skipping)
    done: bool = False  # Parquet: read or rejected
    fingerprint: bytes = b""  # the bytes just before ``offset`` when it was last advanced
    last_size: int = -1
    last_change: float = field(default_factory=time.monotonic)


def ignored(path: str) -> bool:
    """Names a writer uses while writing (``.x``, ``_x``, ``x.tmp``) are never read."""
    name = os.path.basename(path)
    return name.startswith((".", "_")) or name.endswith(".tmp")


class Follower:
    """Follows every file matching one glob; ``poll`` yields what is new since the last poll."""

    def __init__(self, pattern: str, fmt: str, max_line_bytes: int) -> None:
        self.pattern = pattern
        self.fmt = fmt
        self.max_line_bytes = max_line_bytes
        self._files: dict[tuple[int, int], _Tracked] = {}
        self._started = False

    @property
    def open_files(self) -> int:
        """Descriptors currently held."""
        return len(self._files)

    def _list(self) -> list[tuple[str, os.stat_result]]:
        found = []
        for path in glob.glob(self.pattern, recursive=True):
            if ignored(path):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if os.path.isfile(path):
                found.append((path, st))
        found.sort(key=lambda item: (item[1].st_mtime_ns, item[0]))
        return found

    def start(self, rows_needed: int | None, newer_than: float | None) -> None:
        """Track existing files so that only what the window needs is read at start-up."""
        self._started = True
        listing = self._list()
        remaining = rows_needed
        for path, st in reversed(listing):
            tracked = self._track(path, st)
            if tracked is None:
                continue
            if newer_than is not None and st.st_mtime < newer_than:
                self._skip_all(tracked, st.st_size)
            elif remaining is not None:
                remaining = self._backfill(tracked, st.st_size, remaining)

    def _skip_all(self, tracked: _Tracked, size: int) -> None:
        if self.fmt == "parquet":
            tracked.done = True
        else:
            self._skip_to(tracked, self._complete_end(tracked, size))

    def _backfill(self, tracked: _Tracked, size: int, remaining: int) -> int:
        if remaining <= 0:
            self._skip_all(tracked, size)
            return 0
        if self.fmt == "parquet":
            try:
                import pyarrow.parquet as pq

                rows = pq.ParquetFile(tracked.path).metadata.num_rows
            except Exception:  # noqa: BLE001 - unreadable now; poll() decides
                return remaining
            return remaining - rows
        offset, found = _tail_offset(tracked.fd, self._complete_end(tracked, size), remaining)
        self._skip_to(tracked, offset)
        return remaining - found

    def _complete_end(self, tracked: _Tracked, size: int) -> int:
        """Offset just past the last complete line."""
        start = max(size - READ_CHUNK, 0)
        while True:
            block = os.pread(tracked.fd, size - start, start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                return start + cut + 1
            if start == 0:
                return 0
            size, start = start, max(start - READ_CHUNK, 0)

    def _skip_to(self, tracked: _Tracked, offset: int) -> None:
        tracked.offset = offset
        tracked.line = _count_lines(tracked.fd, offset) if offset <= COUNT_LINES_LIMIT else None

    def _track(self, path: str, st: os.stat_result) -> _Tracked | None:
        key = (st.st_dev, st.st_ino)
        existing = self._files.get(key)
        if existing is not None:
            existing.path = path
            return existing
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            log.warning("cannot open log file", extra={"file": path, "error": str(exc)})
            return None
        tracked = _Tracked(path, key, fd)
        self._files[key] = tracked
        return tracked

    def poll(self) -> Iterator[Event]:
        """Yield new complete lines, ready Parquet files and faults, oldest file first."""
        if not self._started:
            self.start(None, None)
        listing = self._list()
        live = {(st.st_dev, st.st_ino) for _, st in listing}
        for key in [k for k in self._files if k not in live]:
            tracked = self._files.pop(key)
            if self.fmt == "jsonl":
                yield from self._read_jsonl(tracked, os.fstat(tracked.fd).st_size)
            os.close(tracked.fd)
        for path, st in listing:
            tracked = self._track(path, st)
            if tracked is None:
                continue
            if self.fmt == "parquet":
                yield from self._check_parquet(tracked, st)
            else:
                yield from self._check_truncation(tracked, st.st_size)
                yield from self._read_jsonl(tracked, st.st_size)

    def close(self) -> None:
        """Release every descriptor."""
        for tracked in self._files.values():
            os.close(tracked.fd)
        self._files.clear()

    def _check_truncation(self, tracked: _Tracked, size: int) -> Iterator[Event]:
        if tracked.offset == 0:
            return
        changed = size < tracked.offset
        if not changed:
            start = max(tracked.offset - FINGERPRINT, 0)
            tail = os.pread(tracked.fd, tracked.offset - start, start)
            if not tracked.fingerprint:
                tracked.fingerprint = tail
            changed = not tail.endswith(b"\n") or tracked.fingerprint != tail
        if changed:
            log.warning("log file truncated or replaced; reading it again from the start",
                        extra={"file": tracked.path, "offset": tracked.offset, "size": size})
            tracked.offset, tracked.line, tracked.skipping, tracked.fingerprint = 0, 1, 0, b""
            yield Truncated(tracked.path)

    def _read_jsonl(self, tracked: _Tracked, size: int) -> Iterator[Event]:
        limit = self.max_line_bytes
        while tracked.offset < size:
            block = os.pread(tracked.fd, min(READ_CHUNK, size - tracked.offset), tracked.offset)
            if not block:
                break
            if tracked.skipping:
                cut = block.find(b"\n")
                if cut < 0:
                    tracked.skipping += len(block)
                    tracked.offset += len(block)
                    continue
                yield LongLine(tracked.path, tracked.line, tracked.skipping + cut)
                tracked.offset += cut + 1
                tracked.skipping = 0
                tracked.line = None if tracked.line is None else tracked.line + 1
                continue
            cut = block.rfind(b"\n")
            if cut < 0:
                if len(block) > limit:
                    tracked.skipping = len(block)
                    tracked.offset += len(block)
                    continue
                break  # a partial last line waits for its newline
            data = block[: cut + 1]
            yield LineChunk(tracked.path, data, tracked.line, tracked.offset)
            tracked.offset += cut + 1
            if tracked.line is not None:
                tracked.line += data.count(b"\n")
            tracked.fingerprint = data[-FINGERPRINT:] if len(data) >= FINGERPRINT else b""

    def _check_parquet(self, tracked: _Tracked, st: os.stat_result) -> Iterator[Event]:
        if tracked.done:
            return
        now = time.monotonic()
        if st.st_size != tracked.last_size:
            tracked.last_size, tracked.last_change = st.st_size, now
        if st.st_size >= 12:
            head = os.pread(tracked.fd, 4, 0)
            foot = os.pread(tracked.fd, 4, st.st_size - 4)
            if head == PARQUET_MAGIC and foot == PARQUET_MAGIC:
                tracked.done = True
                yield ParquetReady(tracked.path)
                return
        if now - tracked.last_change >= PARQUET_GIVE_UP_SECONDS:
            tracked.done = True
            yield ParquetCorrupt(tracked.path, "corrupt")


def _count_lines(fd: int, end: int) -> int:
    """1 + the number of newlines before ``end``."""
    count, pos = 1, 0
    while pos < end:
        block = os.pread(fd, min(READ_CHUNK, end - pos), pos)
        if not block:
            break
        count += block.count(b"\n")
        pos += len(block)
    return count


def _tail_offset(fd: int, end: int, lines: int) -> tuple[int, int]:
    """Offset where the last ``lines`` complete lines before ``end`` start, and how many exist."""
    pos, found = end, 0
    # The byte at end-1 is the newline of the last complete line; skip it.
    search_end = end - 1
    while search_end > 0:
        start = max(search_end - READ_CHUNK, 0)
        block = os.pread(fd, search_end - start, start)
        cut = len(block)
        while True:
            cut = block.rfind(b"\n", 0, cut)
            if cut < 0:
                break
            found += 1
            if found == lines:
                return start + cut + 1, found
        search_end = start
    return 0, found + (1 if end > 0 else 0)
