"""Following the log files of one glob: discovery, offsets, partial lines, rotation, truncation.

Files are keyed by (device, inode) and kept open, so a file renamed away by rotation is drained
through its descriptor before it is released, and a renamed-in file (``x.parquet.tmp`` ->
``x.parquet``) keeps its identity. A JSONL file is read from its stored offset up to its last
complete line; a last line without ``\\n`` waits. A file whose size drops below the offset, or
whose bytes before the offset changed (fingerprint), was truncated or replaced: it is read again
from 0. A file that left the glob (renamed away, deleted) is drained at every poll, and released
once it stayed unchanged for ``RELEASE_AFTER_SECONDS`` (its writer may not have reopened its log
yet), or at once when it was deleted and nothing is pending in it. Parquet files are read once,
when their footer is complete; their descriptor is released then, so a directory of many small
files does not exhaust descriptors (the file stays known by inode and size).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

READ_CHUNK = 8 << 20  # 16 MiB blocks parse ~5% faster but hold ~50 MiB more at peak
TAIL_STEP = 64 << 10  # backward reads at start-up begin this small and double up to READ_CHUNK
FINGERPRINT = 64  # bytes before the offset that must not change while a file is followed
PARQUET_MAGIC = b"PAR1"
PARQUET_GIVE_UP_SECONDS = 60.0  # a Parquet file without footer, unchanged this long, is corrupt
COUNT_LINES_LIMIT = 256 << 20  # count lines of a skipped prefix only up to this size
RELEASE_AFTER_SECONDS = 30.0  # a file renamed out of the glob is held until unchanged this long
FOOTER_PROBE = 4096  # bytes compared at the end of a Parquet file without a valid footer
MAX_FOOTER = 16 << 20  # a footer is compared up to this size


@dataclass(frozen=True)
class LineChunk:
    """Complete lines read from a JSONL file; ``first_line`` is None when unknown."""

    path: str
    data: bytes
    first_line: int | None
    offset: int
    newlines: int | None = None  # data.count(b"\\n"), when counted already


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
    line_known: bool = True  # False after a start-up skip, until lines are read (counted lazily)
    skipping: int = 0  # bytes of a too-long line skipped so far (0 = not skipping)
    done: bool = False  # Parquet: read or rejected
    fingerprint: bytes = b""  # the bytes just before ``offset`` when it was last advanced
    last_size: int = -1
    stamp: tuple[int, int] = (0, 0)  # Parquet, once done: (mtime_ns, ctime_ns) when last checked
    footer: bytes = b""  # Parquet, once done: digest of its footer (the file's identity)
    last_change: float = field(default_factory=time.monotonic)

    def advance(self, data: bytes) -> None:
        """Move the offset past ``data``, just read, keeping the fingerprint current."""
        self.offset += len(data)
        self.fingerprint = (self.fingerprint + data[-FINGERPRINT:])[-FINGERPRINT:]


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
        return sum(1 for tracked in self._files.values() if tracked.fd >= 0)

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
            self._finish_parquet(tracked, size)
        else:
            self._skip_to(tracked, self._complete_end(tracked, size))

    def _backfill(self, tracked: _Tracked, size: int, remaining: int) -> int:
        if remaining <= 0:
            self._skip_all(tracked, size)
            return 0
        if self.fmt == "parquet":
            try:
                import pyarrow.parquet as pq

                rows = int(pq.ParquetFile(tracked.path).metadata.num_rows)
            except Exception:  # noqa: BLE001 - unreadable now; poll() decides
                return remaining
            return remaining - rows
        end = self._complete_end(tracked, size)
        offset, found = _tail_records(tracked.fd, end, remaining, self.max_line_bytes)
        self._skip_to(tracked, offset)
        return remaining - found

    def _complete_end(self, tracked: _Tracked, size: int) -> int:
        """Offset just past the last complete line."""
        for start, block in _backward_blocks(tracked.fd, size):
            cut = block.rfind(b"\n")
            if cut >= 0:
                return start + cut + 1
        return 0

    def _skip_to(self, tracked: _Tracked, offset: int) -> None:
        # Line numbers are counted when lines are read: an old file that never grows is never
        # read beyond its tail.
        tracked.offset, tracked.line_known = offset, offset == 0
        tracked.line = 1
        start = max(offset - FINGERPRINT, 0)
        tracked.fingerprint = os.pread(tracked.fd, offset - start, start)

    def _finish_parquet(self, tracked: _Tracked, size: int) -> None:
        """A Parquet file is read (or given up): release its descriptor, remember its identity.

        Size, times and a digest of the footer identify it: a file deleted and created again
        may get the same inode (and even the same size), and must then be read as a new file.
        """
        tracked.done, tracked.last_size = True, size
        if tracked.fd >= 0:
            st = os.fstat(tracked.fd)
            tracked.stamp = (st.st_mtime_ns, st.st_ctime_ns)
            tracked.footer = _footer_digest(tracked.fd, size)
            os.close(tracked.fd)
            tracked.fd = -1

    def _replaced(self, existing: _Tracked, path: str, st: os.stat_result) -> bool:
        """Whether a released Parquet file's inode now holds another file.

        Touching or renaming a file changes its times but not its footer; a new file in a
        reused inode has another footer (its row groups, offsets and statistics), and most
        often another size.
        """
        if existing.last_size != st.st_size:
            return True
        stamp = (st.st_mtime_ns, st.st_ctime_ns)
        if stamp == existing.stamp:
            return False
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False  # gone again: the next listing decides
        try:
            digest = _footer_digest(fd, st.st_size)
        finally:
            os.close(fd)
        if digest != existing.footer:
            return True
        existing.stamp = stamp
        return False

    def _track(self, path: str, st: os.stat_result) -> _Tracked | None:
        key = (st.st_dev, st.st_ino)
        existing = self._files.get(key)
        if existing is not None and existing.fd < 0 and self._replaced(existing, path, st):
            del self._files[key]
            existing = None
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
            yield from self._drain(self._files[key])
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
            if tracked.fd >= 0:
                os.close(tracked.fd)
        self._files.clear()

    def _drain(self, tracked: _Tracked) -> Iterator[Event]:
        """Read what is left in a file that left the glob; release it once it is done.

        A renamed-away file is kept until it stayed unchanged for RELEASE_AFTER_SECONDS: its
        writer may not have reopened its log yet. A deleted file is released as soon as nothing
        is pending in it, so that its disk space is freed.
        """
        if tracked.fd < 0 or self.fmt == "parquet":
            self._release(tracked)
            return
        st = os.fstat(tracked.fd)
        now = time.monotonic()
        if st.st_size != tracked.last_size:
            tracked.last_size, tracked.last_change = st.st_size, now
        yield from self._read_jsonl(tracked, st.st_size)
        settled = tracked.offset >= st.st_size and st.st_nlink == 0
        if not settled and now - tracked.last_change < RELEASE_AFTER_SECONDS:
            return
        if tracked.skipping:
            yield LongLine(tracked.path, tracked.line, tracked.skipping)
        self._release(tracked)

    def _release(self, tracked: _Tracked) -> None:
        del self._files[tracked.key]
        if tracked.fd >= 0:
            os.close(tracked.fd)
            tracked.fd = -1

    def _check_truncation(self, tracked: _Tracked, size: int) -> Iterator[Event]:
        if tracked.offset == 0:
            return
        changed = size < tracked.offset
        if not changed:
            start = max(tracked.offset - FINGERPRINT, 0)
            tail = os.pread(tracked.fd, tracked.offset - start, start)
            if not tracked.fingerprint:
                tracked.fingerprint = tail
            changed = tracked.fingerprint != tail
        if changed:
            log.warning("log file truncated or replaced; reading it again from the start",
                        extra={"file": tracked.path, "offset": tracked.offset, "size": size})
            tracked.offset, tracked.line, tracked.skipping, tracked.fingerprint = 0, 1, 0, b""
            tracked.line_known = True
            yield Truncated(tracked.path)

    def _read_jsonl(self, tracked: _Tracked, size: int) -> Iterator[Event]:
        limit = self.max_line_bytes
        # a block must be able to hold a line of max_line_bytes, or such a line would wait forever
        chunk = max(READ_CHUNK, limit + 1)
        if not tracked.line_known and tracked.offset < size:
            tracked.line_known = True
            tracked.line = (_count_lines(tracked.fd, tracked.offset)
                            if tracked.offset <= COUNT_LINES_LIMIT else None)
        while tracked.offset < size:
            block = os.pread(tracked.fd, min(chunk, size - tracked.offset), tracked.offset)
            if not block:
                break
            if tracked.skipping:
                cut = block.find(b"\n")
                if cut < 0:
                    tracked.skipping += len(block)
                    tracked.advance(block)
                    continue
                yield LongLine(tracked.path, tracked.line, tracked.skipping + cut)
                tracked.advance(block[: cut + 1])
                tracked.skipping = 0
                tracked.line = None if tracked.line is None else tracked.line + 1
                continue
            cut = block.rfind(b"\n")
            if cut < 0:
                if len(block) > limit:
                    tracked.skipping = len(block)
                    tracked.advance(block)
                    continue
                break  # a partial last line waits for its newline
            data = block if cut == len(block) - 1 else block[: cut + 1]
            newlines = data.count(b"\n")
            yield LineChunk(tracked.path, data, tracked.line, tracked.offset, newlines)
            tracked.advance(data)
            if tracked.line is not None:
                tracked.line += newlines

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
                self._finish_parquet(tracked, st.st_size)
                yield ParquetReady(tracked.path)
                return
        if now - tracked.last_change >= PARQUET_GIVE_UP_SECONDS:
            self._finish_parquet(tracked, st.st_size)
            yield ParquetCorrupt(tracked.path, "corrupt")


def _footer_digest(fd: int, size: int) -> bytes:
    """A digest of a Parquet file's footer (its metadata), or of its last bytes when it has
    none (a corrupt file)."""
    length = FOOTER_PROBE
    if size >= 12:
        tail = os.pread(fd, 8, size - 8)
        if len(tail) == 8 and tail[4:] == PARQUET_MAGIC:
            length = int.from_bytes(tail[:4], "little") + 8
    start = max(size - min(length, MAX_FOOTER), 0)
    return hashlib.blake2b(os.pread(fd, size - start, start), digest_size=16).digest()


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


def _backward_blocks(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(start, block) before ``end``, newest first; blocks grow from TAIL_STEP to READ_CHUNK."""
    step = TAIL_STEP
    while end > 0:
        start = max(end - step, 0)
        yield start, os.pread(fd, end - start, start)
        end, step = start, min(step * 2, READ_CHUNK)


def _tail_records(fd: int, end: int, records: int, limit: int) -> tuple[int, int]:
    """Offset where the last ``records`` records before ``end`` start, and how many exist.

    Blank, malformed and too long lines are no records: counting lines instead would leave a
    window rebuilt at start-up short of the records a following exporter holds. The file is
    read backwards once, each block's whole lines classified by the parser; a line longer than
    ``limit`` is not kept in memory.
    """
    found = 0
    tail = b""  # the end of a line that starts before the bytes classified so far
    tail_long = False  # that line is longer than ``limit`` (its bytes were dropped)
    for start, block in _backward_blocks(fd, end):
        cut = -1 if start == 0 else block.find(b"\n")  # block[:cut + 1] ends an older line
        if cut < 0 and start > 0:  # the whole block lies inside one line
            tail, tail_long = _grow_tail(block, tail, tail_long, limit)
            continue
        whole, base = block[cut + 1:], start + cut + 1
        if tail_long:  # the last line of ``whole`` goes on into the dropped bytes: no record
            whole = whole[: whole.rfind(b"\n") + 1]
        else:
            whole += tail
        starts = _record_starts(whole, base, limit)
        need = records - found
        if starts.shape[0] >= need:
            return int(starts[-need]), records
        found += starts.shape[0]
        tail, tail_long = _grow_tail(block[: cut + 1], b"", False, limit)
    return 0, found


def _grow_tail(older: bytes, tail: bytes, long: bool, limit: int) -> tuple[bytes, bool]:
    """Prepend ``older`` to a partial line; drop its bytes once it is longer than ``limit``."""
    if long or len(older) + len(tail) > limit + 1:
        return b"", True
    return older + tail, False


def _record_starts(whole: bytes, base: int, limit: int) -> NDArray[np.int64]:
    """Offsets of the lines of ``whole`` (whole lines, starting at ``base``) holding a record."""
    if not whole:
        return np.empty(0, dtype=np.int64)
    from exporter.parsing import record_lines

    newlines = np.flatnonzero(np.frombuffer(whole, dtype=np.uint8) == 10)
    starts = base + np.concatenate(([0], newlines[:-1] + 1)).astype(np.int64)
    result: NDArray[np.int64] = starts[record_lines(whole, max_line_bytes=limit)]
    return result
