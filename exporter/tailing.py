"""Following the log files of one glob: discovery, offsets, partial records, rotation,
truncation, copies, and a bounded number of open descriptors, whatever the format.

Formats. What depends on the format is behind a small interface, one module per format: an
``Appended`` format (``tail_jsonl``) is followed as its files grow, read up to the last complete
record; a ``ReadOnce`` format (``tail_parquet``) is read once per file, when the file is complete.
The follower knows no parser: the caller (``reader.py``) builds the format, giving JSONL the
parser's rule for which lines hold a record, used to read back the last N records at start-up.
Time comes from injected clocks (a monotonic one for durations, a wall one for file times).

Identity. Files are keyed by (device, inode); a renamed file (``x.parquet.tmp`` ->
``x.parquet``, ``app.jsonl`` -> ``app-1.jsonl``) keeps its identity and offset. Before an appended
file is read on from its offset, its content is checked to be the one read before: its *head*
(a digest of its first line, or of its first HEAD_BYTES when that line is longer) and the
FINGERPRINT bytes just before the offset must be unchanged, and its size must not be below the
offset. Otherwise it was truncated or replaced: it is read again from 0 under its current path
(``Truncated``).

Descriptors. At most ``max_open`` files of a glob are open at once (MAX_OPEN_FILES, or a
sixteenth of the soft RLIMIT_NOFILE when that is lower, at least MIN_OPEN_FILES): opening one
more closes the least recently changed, and a file unchanged for IDLE_CLOSE_SECONDS is closed.
A closed file costs a ``stat`` per poll; when its size or times change it is reopened by path
and read on only when it is the same file (same device and inode, head and fingerprint).

Rotation. A file that left the glob (renamed away, deleted) is drained at every poll, and
released once it stayed unchanged for RELEASE_AFTER_SECONDS (its writer may not have reopened
its log yet), or at once when it was deleted and nothing is pending in it. A closed file that
left the glob is looked for by inode in its directory (rename rotation stays there) and drained
the same way. A file that left the glob and was then overwritten is not read any further.

Copies. A new file whose head is that of a file already read, and which holds the bytes read
there just before that file's offset, is a copy (logrotate's copytruncate into a name the glob
matches, ``cp``): it is not read while the original still holds those bytes (the original is
read instead), and once the original is truncated or gone it is read on from the original's
offset. Where truncated or released files stopped is remembered for COPY_MEMORY_SECONDS, so a
copy found after the truncation is recognised too.

Order. Files are read oldest first: by modification time, then name. A modification time more
than FUTURE_SLACK_SECONDS ahead of the clock is not trusted (``touch -d tomorrow``, an archive
unpacked with skewed times): such a file is ordered by its status-change time, which only the
kernel sets, and a warning names it once.

A read-once file is read when complete (Parquet: its footer is written; gzip: its trailer);
its descriptor is released then (the file stays known by inode, size, times and the format's
digest of it). One still incomplete that was not modified for ``give_up_seconds`` (seen
unchanged that long, or so its modification time says) is given up: corrupt.

Mixed globs. A glob may hold files of several formats (``*.jsonl*``: JSONL and gzip JSONL):
``by_suffix`` names a file's format by the end of its name, fixed when it is found. A
compressed read-once file whose decompressed head is that of an appended file still followed
is a rotated copy of it (logrotate's ``compress``): it waits until that file is released, and
is then read from where that file stopped (nothing, when it is no longer): the memory of
*Copies* above, so a copy compressed more than COPY_MEMORY_SECONDS after its original left
the glob is read whole.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import logging
import os
import resource
import stat
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

FINGERPRINT = 64  # bytes before the offset that must not change while a file is followed
HEAD_BYTES = 1024  # a file's head: its first line, or its first HEAD_BYTES when that is longer
GIVE_UP_SECONDS = 60.0  # a read-once file still incomplete, unchanged this long, is corrupt
RELEASE_AFTER_SECONDS = 30.0  # a file renamed out of the glob is held until unchanged this long
MAX_OPEN_FILES = 64  # descriptors held per glob at most (fewer under a low RLIMIT_NOFILE)
MIN_OPEN_FILES = 4
IDLE_CLOSE_SECONDS = 10.0  # a file unchanged this long is closed, and reopened when it changes
COPY_MEMORY_SECONDS = 300.0  # where a truncated or released file stopped is kept this long ...
COPY_MEMORY_FILES = 1024  # ... for this many files at most
FUTURE_SLACK_SECONDS = 60.0  # modification times up to this far ahead are trusted (clock skew)

Key = tuple[int, int]  # (device, inode)
Stamp = tuple[int, int, int]  # (size, mtime_ns, ctime_ns)


def reading_order(st: os.stat_result, now_ns: int) -> int:
    """A file's place in the reading order (SPEC 2: mtime, then name): its mtime, or its ctime
    when the mtime is more than FUTURE_SLACK_SECONDS ahead of the clock (not trusted)."""
    if st.st_mtime_ns > now_ns + int(FUTURE_SLACK_SECONDS * 1e9):
        return min(st.st_ctime_ns, now_ns)
    return st.st_mtime_ns


def default_max_open() -> int:
    """MAX_OPEN_FILES, or a sixteenth of the soft descriptor limit when that is lower."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_OPEN_FILES
    return max(MIN_OPEN_FILES, min(MAX_OPEN_FILES, soft // 16))


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
class FileReady:
    """A complete read-once file to read; a compressed copy of a file read before is read from
    ``offset`` of its decompressed text (at line ``line``, None when unknown)."""

    path: str
    offset: int = 0
    line: int | None = 1


@dataclass(frozen=True)
class FileCorrupt:
    """A read-once file that never became complete."""

    path: str
    reason: str


@dataclass(frozen=True)
class Truncated:
    """A followed file that was truncated or replaced in place."""

    path: str


@dataclass(frozen=True)
class Unreadable:
    """A file of the glob that cannot be opened or read (reported once until it is readable)."""

    path: str
    error: str


@dataclass(frozen=True)
class Readable:
    """A file reported unreadable that was read again."""

    path: str


class CorruptFile(Exception):  # noqa: N818 - a verdict on a file, not a programming error
    """Raised by a read-once format for a file that can never be read (``reason`` counts it)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


Event = LineChunk | LongLine | FileReady | FileCorrupt | Truncated | Unreadable | Readable


@dataclass(frozen=True)
class _Position:
    """Where reading stopped in a file, kept to read a copy of it on from there."""

    offset: int
    fingerprint: bytes
    line: int | None
    line_known: bool
    skipping: int
    when: float


@dataclass(frozen=True)
class _Listed:
    """A file of the glob as listed: its path, its stat and its place in the reading order."""

    path: str
    st: os.stat_result
    order: int  # ns: the modification time (the status-change time when that is in the future)
    key: Key  # (device, inode)


@dataclass
class Tracked:
    """A file being followed: where reading stands, its identity and its descriptor."""

    path: str
    key: Key
    fd: int  # -1 while closed
    last_change: float  # clock time of the last size change (or of tracking)
    fmt: FileFormat  # fixed when found: a renamed file keeps the format it is read with
    offset: int = 0
    line: int | None = 1
    line_known: bool = True  # False after a start-up skip, until lines are read (counted lazily)
    skipping: int = 0  # bytes of a too-long line skipped so far (0 = not skipping)
    done: bool = False  # read-once: read or rejected
    fingerprint: bytes = b""  # the bytes just before ``offset`` when it was last advanced
    head: bytes = b""  # digest of the head, once read past it ("" before)
    last_size: int = -1
    stamp: tuple[int, int] = (0, 0)  # read-once, when done: (mtime_ns, ctime_ns) last checked
    identity: bytes = b""  # read-once, when done: the format's digest (Parquet: its footer)
    seen: Stamp | None = None  # when last read to its end: a closed file unchanged since waits
    listed: bool = True  # matched the glob at the last poll (else: drained, not reopened)
    new: bool = False  # found after start-up, not yet checked for being a copy
    copy_of: Key | None = None  # the original this file is a copy of, while that one is read
    handover: _Position | None = None  # where its original stopped: read on from there
    ready: bool = False  # read-once: found complete at the last check (``seen``)

    def advance(self, data: bytes) -> None:
        """Move the offset past ``data``, just read, keeping the fingerprint current."""
        self.offset += len(data)
        self.fingerprint = (self.fingerprint + data[-FINGERPRINT:])[-FINGERPRINT:]

    def position(self, now: float) -> _Position:
        """Where reading stands now."""
        return _Position(self.offset, self.fingerprint, self.line, self.line_known,
                         self.skipping, now)

    def place(self, where: _Position) -> None:
        """Read on from where a file this one is a copy of stopped."""
        self.offset, self.fingerprint, self.line = where.offset, where.fingerprint, where.line
        self.line_known, self.skipping = where.line_known, where.skipping


class Appended(ABC):
    """A format whose files grow by appends and are followed: read up to their last complete
    record (JSONL: ``exporter.tail_jsonl``)."""

    @abstractmethod
    def complete_end(self, fd: int, size: int) -> int:
        """Offset just past the last complete record before ``size``."""

    @abstractmethod
    def tail_start(self, fd: int, end: int, records: int) -> tuple[int, int]:
        """Offset where the last ``records`` records before ``end`` start, and how many exist
        (start-up reads back only what the window needs)."""

    @abstractmethod
    def read(self, tracked: Tracked, size: int) -> Iterator[Event]:
        """Complete records from ``tracked.offset`` up to ``size``, advancing ``tracked``."""

    @abstractmethod
    def pending(self, tracked: Tracked) -> Iterator[Event]:
        """What to report of a file released with a record unfinished."""


class ReadOnce(ABC):
    """A format whose files are written whole and read once, when complete (Parquet:
    ``exporter.tail_parquet``); their descriptor is released then."""

    give_up_seconds = GIVE_UP_SECONDS  # still incomplete and unchanged this long: corrupt

    @abstractmethod
    def is_complete(self, fd: int, size: int) -> bool:
        """Whether the file is written whole (and can be read); raises ``CorruptFile`` when it
        never will be."""

    @abstractmethod
    def identity(self, fd: int, size: int) -> bytes:
        """A digest telling this file from another one given the same inode later."""

    @abstractmethod
    def records(self, path: str) -> int | None:
        """How many records the file holds, cheaply (None when that cannot be told now)."""

    def content(self, fd: int, size: int, start: int, length: int) -> bytes:
        """Bytes ``start`` to ``start + length`` of the text of a compressed copy of an appended
        log (fewer past its end), to know the file it was compressed from (b"": not such a
        format, or unreadable)."""
        del fd, size, start, length
        return b""


FileFormat = Appended | ReadOnce


def ignored(path: str) -> bool:
    """Names a writer uses while writing (``.x``, ``_x``, ``x.tmp``) are never read."""
    name = os.path.basename(path)
    return name.startswith((".", "_")) or name.endswith(".tmp")


class Follower:
    """Follows every file matching one glob; ``poll`` yields what is new since the last poll."""

    def __init__(self, pattern: str, fmt: FileFormat, *,
                 by_suffix: Sequence[tuple[str, FileFormat]] = (),
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], int] = time.time_ns, max_open: int | None = None,
                 idle_seconds: float = IDLE_CLOSE_SECONDS) -> None:
        self.pattern = pattern
        self.fmt = fmt
        self.by_suffix = tuple(by_suffix)  # (name ending, format) read instead of ``fmt``
        self.max_open = max(max_open or default_max_open(), MIN_OPEN_FILES)
        self.idle_seconds = idle_seconds
        self._clock = clock  # monotonic seconds: idle, release, give-up and copy-memory times
        self._wall_clock = wall_clock  # ns since the epoch: to tell modification times ahead
        self._files: dict[Key, Tracked] = {}
        self._open: OrderedDict[Key, None] = OrderedDict()  # least recently changed first
        self._heads: dict[bytes, Key] = {}  # the file read under each head
        self._former: OrderedDict[bytes, _Position] = OrderedDict()  # where retired heads stopped
        self._unreadable: dict[str, str] = {}  # path -> error, reported once
        self._future: set[Key] = set()  # files warned about for a modification time ahead
        self._notices: list[Event] = []
        self._exhausted = False  # the process ran out of descriptors (warned once)
        self._started = False

    def format_for(self, path: str) -> FileFormat:
        """The format a file of the glob is read with, from the end of its name."""
        for suffix, fmt in self.by_suffix:
            if path.endswith(suffix):
                return fmt
        return self.fmt

    @property
    def open_files(self) -> int:
        """Descriptors currently held."""
        return len(self._open)

    # -- listing and start-up -----------------------------------------------------------------

    def _list(self) -> list[_Listed]:
        now = self._wall_clock()
        slack = int(FUTURE_SLACK_SECONDS * 1e9)
        found = []
        for path in glob.glob(self.pattern, recursive=True):
            if ignored(path):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            order = reading_order(st, now)
            if st.st_mtime_ns > now + slack:
                self._warn_future(path, st)
            found.append(_Listed(path, st, order, (st.st_dev, st.st_ino)))
        found.sort(key=lambda item: (item.order, item.path))
        self._future &= {item.key for item in found}
        return found

    def _warn_future(self, path: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if key not in self._future:
            self._future.add(key)
            log.warning("log file modified in the future; ordered by its status-change time",
                        extra={"file": path, "mtime": time.strftime(
                            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))})

    def start(self, rows_needed: int | None, newer_than: float | None) -> None:
        """Track existing files so that only what the window needs is read at start-up."""
        self._started = True
        remaining = rows_needed
        for item in reversed(self._list()):
            tracked = self._track(item, new=False)
            if tracked is None:
                continue
            size = item.st.st_size
            try:
                if newer_than is not None and item.order < newer_than * 1e9:
                    self._skip_all(tracked, size)
                elif remaining is not None:
                    remaining = self._backfill(tracked, size, remaining)
                self._learn_head(tracked)
            except OSError as exc:
                self._failed(tracked, exc)

    def _skip_all(self, tracked: Tracked, size: int) -> None:
        if isinstance(tracked.fmt, ReadOnce):
            self._finish(tracked, size)
        else:
            self._skip_to(tracked, tracked.fmt.complete_end(tracked.fd, size))

    def _backfill(self, tracked: Tracked, size: int, remaining: int) -> int:
        if remaining <= 0:
            self._skip_all(tracked, size)
            return 0
        if isinstance(tracked.fmt, ReadOnce):
            rows = tracked.fmt.records(tracked.path)
            return remaining if rows is None else remaining - rows
        end = tracked.fmt.complete_end(tracked.fd, size)
        offset, found = tracked.fmt.tail_start(tracked.fd, end, remaining)
        self._skip_to(tracked, offset)
        return remaining - found

    def _skip_to(self, tracked: Tracked, offset: int) -> None:
        # Line numbers are counted when lines are read: an old file that never grows is never
        # read beyond its tail.
        tracked.offset, tracked.line_known = offset, offset == 0
        tracked.line, tracked.skipping = 1, 0
        start = max(offset - FINGERPRINT, 0)
        tracked.fingerprint = os.pread(tracked.fd, offset - start, start)

    def _learn_head(self, tracked: Tracked) -> None:
        """Remember the head of a file read past it, so a copy of it is recognised."""
        if tracked.head or tracked.offset == 0 or tracked.fd < 0:  # read-once: offset 0
            return
        tracked.head = _head_digest(os.pread(tracked.fd, HEAD_BYTES, 0)) or b""
        if tracked.head:
            self._heads.setdefault(tracked.head, tracked.key)

    # -- descriptors ----------------------------------------------------------------------------

    def _track(self, item: _Listed, *, new: bool) -> Tracked | None:
        key = item.key
        existing = self._files.get(key)
        if existing is not None and existing.done and self._replaced(existing, item.path,
                                                                     item.st):
            self._release(existing)
            existing = None
        if existing is not None:
            existing.path, existing.listed = item.path, True
            return existing
        fd = self._open_fd(item.path, key)
        if fd is None:
            return None
        tracked = Tracked(item.path, key, fd, self._clock(), self.format_for(item.path), new=new)
        self._files[key] = tracked
        self._open[key] = None
        return tracked

    def _reopen(self, tracked: Tracked, path: str | None = None,
                keep: Tracked | None = None) -> bool:
        """Open a closed file again, if ``path`` (its own by default) still names it."""
        fd = self._open_fd(path or tracked.path, tracked.key, keep=keep,
                           report=tracked.listed)
        if fd is None:
            return False
        tracked.fd = fd
        if path is not None:
            tracked.path = path
        self._open[tracked.key] = None
        return True

    def _open_fd(self, path: str, key: Key, *, keep: Tracked | None = None,
                 report: bool = True) -> int | None:
        """A descriptor on ``path`` if it still is the file ``key`` (None otherwise)."""
        self._make_room(keep)
        for attempt in range(2):
            try:
                fd = os.open(path, os.O_RDONLY)
                break
            except FileNotFoundError:
                return None  # gone since it was listed
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    if report:
                        self._unreadable_now(path, exc)
                    return None
                if attempt or not self._out_of_descriptors(exc, keep):
                    return None
        if self._exhausted:
            self._exhausted = False
            log.info("log files can be opened again", extra={"file": path})
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != key:
            os.close(fd)  # the path names another file since it was listed: the next poll sees it
            return None
        return fd

    def _out_of_descriptors(self, exc: OSError, keep: Tracked | None) -> bool:
        """The process ran out of descriptors: close this glob's files that can be opened again
        (warned once); whether any was closed."""
        closable = [self._files[k] for k in self._open
                    if self._files[k].listed and self._files[k] is not keep]
        for tracked in closable:
            self._close(tracked)
        if not self._exhausted:
            self._exhausted = True
            log.warning("cannot open log files: out of file descriptors; retrying every poll",
                        extra={"pattern": self.pattern, "error": str(exc)})
        return bool(closable)

    def _make_room(self, keep: Tracked | None) -> None:
        """Close the least recently changed file while ``max_open`` are open."""
        while len(self._open) >= self.max_open:
            candidates = [self._files[k] for k in self._open
                          if keep is None or k != keep.key]
            if not candidates:
                return
            victim = next((t for t in candidates if t.listed), None)
            if victim is not None:
                self._close(victim)
                continue
            # Only files that left the glob are open: they cannot be opened again by path.
            victim = candidates[0]
            log.warning("too many rotated log files pending; the oldest is not read further",
                        extra={"file": victim.path, "offset": victim.offset})
            self._release(victim)

    def _close(self, tracked: Tracked) -> None:
        if tracked.fd >= 0:
            os.close(tracked.fd)
            tracked.fd = -1
        self._open.pop(tracked.key, None)

    def _close_idle(self) -> None:
        now = self._clock()
        for key in list(self._open):
            tracked = self._files[key]
            if tracked.listed and now - tracked.last_change >= self.idle_seconds:
                self._close(tracked)

    def _release(self, tracked: Tracked) -> None:
        self._retire(tracked)
        self._close(tracked)
        self._files.pop(tracked.key, None)

    def close(self) -> None:
        """Release every descriptor."""
        for tracked in self._files.values():
            self._close(tracked)
        self._files.clear()
        self._heads.clear()
        self._former.clear()

    # -- unreadable files -----------------------------------------------------------------------

    def _unreadable_now(self, path: str, exc: OSError) -> None:
        if path not in self._unreadable:
            self._unreadable[path] = str(exc)
            self._notices.append(Unreadable(path, exc.strerror or str(exc)))

    def _readable_now(self, path: str) -> None:
        if self._unreadable.pop(path, None) is not None:
            self._notices.append(Readable(path))

    def _failed(self, tracked: Tracked, exc: OSError) -> None:
        """A read failed (EIO, a permission taken away): close; retried at every poll."""
        self._unreadable_now(tracked.path, exc)
        tracked.seen = None
        self._close(tracked)

    def _guarded(self, tracked: Tracked, events: Iterator[Event]) -> Iterator[Event]:
        try:
            yield from events
        except OSError as exc:
            self._failed(tracked, exc)
            return
        if tracked.fd >= 0 or tracked.done:  # opened and read (not: closed, or failed to open)
            self._readable_now(tracked.path)

    # -- polling --------------------------------------------------------------------------------

    def poll(self) -> Iterator[Event]:
        """Yield new complete records, complete read-once files and faults, oldest file
        first."""
        if not self._started:
            self.start(None, None)
        listing = self._list()
        live = {item.key for item in listing}
        moved: dict[str, dict[int, str]] = {}  # directory -> inode -> path, scanned once a poll
        for gone in [t for k, t in self._files.items() if k not in live]:
            if gone.key in self._files:  # not released meanwhile to make room
                gone.listed = False
                yield from self._guarded(gone, self._drain(gone, moved))
        for item in listing:
            tracked = self._track(item, new=True)
            if tracked is not None:
                yield from self._guarded(tracked, self._follow(tracked, item.st))
        self._close_idle()
        self._forget_old_positions()
        if self._unreadable:  # forget files that went away while unreadable
            known = {item.path for item in listing} | {t.path for t in self._files.values()}
            for path in [p for p in self._unreadable if p not in known]:
                del self._unreadable[path]
        notices, self._notices = self._notices, []
        yield from notices

    def _follow(self, tracked: Tracked, st: os.stat_result) -> Iterator[Event]:
        """Read what is new in a listed file."""
        fmt = tracked.fmt
        if isinstance(fmt, ReadOnce):
            yield from self._check_complete(tracked, st, fmt)
            return
        stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if tracked.fd < 0 and ((tracked.seen == stamp and tracked.handover is None)
                               or not self._reopen(tracked)):
            return
        if st.st_size != tracked.last_size:
            tracked.last_size, tracked.last_change = st.st_size, self._clock()
            self._open.move_to_end(tracked.key)
        if tracked.new:
            tracked.new = not self._find_original(tracked)
        if tracked.copy_of is not None and self._still_copy(tracked):
            tracked.seen = stamp
            return
        if tracked.handover is not None:
            self._take_over(tracked)
        yield from self._check_identity(tracked, st.st_size)
        yield from fmt.read(tracked, st.st_size)
        self._learn_head(tracked)
        tracked.seen = stamp

    def _drain(self, tracked: Tracked, moved: dict[str, dict[int, str]]) -> Iterator[Event]:
        """Read what is left in a file that left the glob; release it once it is done.

        A renamed-away file is kept until it stayed unchanged for RELEASE_AFTER_SECONDS: its
        writer may not have reopened its log yet. A deleted file is released as soon as nothing
        is pending in it, so that its disk space is freed. A file that was overwritten after it
        left the glob holds nothing of this log any more: it is released at once.
        """
        fmt = tracked.fmt
        if isinstance(fmt, ReadOnce) or (tracked.fd < 0 and not self._find_moved(tracked, moved)):
            self._release(tracked)
            return
        st = os.fstat(tracked.fd)
        now = self._clock()
        if st.st_size != tracked.last_size:
            tracked.last_size, tracked.last_change = st.st_size, now
        if tracked.handover is not None:
            self._take_over(tracked)
        if tracked.copy_of is not None or not self._same_content(tracked, st.st_size):
            if tracked.copy_of is None:
                log.warning("log file overwritten after it left the glob; not read further",
                            extra={"file": tracked.path, "offset": tracked.offset})
                yield Truncated(tracked.path)
            self._release(tracked)
            return
        yield from fmt.read(tracked, st.st_size)
        settled = tracked.offset >= st.st_size and st.st_nlink == 0
        if not settled and now - tracked.last_change < RELEASE_AFTER_SECONDS:
            return
        yield from fmt.pending(tracked)
        self._release(tracked)

    def _find_moved(self, tracked: Tracked, moved: dict[str, dict[int, str]]) -> bool:
        """Open a closed file that left the glob, if it is still in its directory."""
        directory = os.path.dirname(tracked.path) or os.curdir
        if directory not in moved:
            try:
                with os.scandir(directory) as entries:
                    moved[directory] = {e.inode(): e.path for e in entries}
            except OSError:
                moved[directory] = {}
        path = moved[directory].get(tracked.key[1])
        return path is not None and self._reopen(tracked, path)

    def _forget_old_positions(self) -> None:
        now = self._clock()
        while self._former:
            head, where = next(iter(self._former.items()))
            if now - where.when < COPY_MEMORY_SECONDS:
                break
            del self._former[head]

    # -- identity -------------------------------------------------------------------------------

    def _same_content(self, tracked: Tracked, size: int) -> bool:
        """Whether the bytes read so far are still in the file: size, head and fingerprint."""
        if tracked.offset == 0:
            return True
        if size < tracked.offset:
            return False
        if tracked.head and _head_digest(os.pread(tracked.fd, HEAD_BYTES, 0)) != tracked.head:
            return False
        start = max(tracked.offset - FINGERPRINT, 0)
        tail = os.pread(tracked.fd, tracked.offset - start, start)
        if not tracked.fingerprint:
            tracked.fingerprint = tail
        return tracked.fingerprint == tail

    def _check_identity(self, tracked: Tracked, size: int) -> Iterator[Event]:
        if self._same_content(tracked, size):
            return
        log.warning("log file truncated or replaced; reading it again from the start",
                    extra={"file": tracked.path, "offset": tracked.offset, "size": size})
        self._retire(tracked)
        tracked.offset, tracked.line, tracked.skipping, tracked.fingerprint = 0, 1, 0, b""
        tracked.line_known = True
        yield Truncated(tracked.path)

    def _retire(self, tracked: Tracked) -> None:
        """A file no longer holds what was read (truncated, replaced, released): remember where
        reading stopped under its head, for a copy of it, and hand that over to its copies."""
        if not tracked.head:
            return
        where = tracked.position(self._clock())
        if self._heads.get(tracked.head) == tracked.key:
            del self._heads[tracked.head]
        self._former[tracked.head] = where
        self._former.move_to_end(tracked.head)
        while len(self._former) > COPY_MEMORY_FILES:
            self._former.popitem(last=False)
        for other in self._files.values():
            if other.copy_of == tracked.key:
                other.copy_of, other.handover = None, where
        tracked.head = b""

    def _find_original(self, tracked: Tracked) -> bool:
        """Whether a file found after start-up is a copy of one read before (see module doc);
        False while that cannot be told yet (no complete first line: nothing to read either)."""
        head = _head_digest(os.pread(tracked.fd, HEAD_BYTES, 0))
        if head is None:
            return False
        original = self._files.get(self._heads.get(head, (-1, -1)))
        if original is not None and original is not tracked and self._copies(tracked, original):
            tracked.copy_of = original.key
            log.info("log file is a copy of one being read; read once that one is truncated",
                     extra={"file": tracked.path, "original": original.path})
            return True
        where = self._former.get(head)
        size = os.fstat(tracked.fd).st_size
        if where is not None and size >= where.offset and _ends_with(tracked.fd, where):
            tracked.place(where)
            log.info("log file is a copy of one read before; read on from where that stopped",
                     extra={"file": tracked.path, "offset": where.offset})
        return True

    def _copies(self, tracked: Tracked, original: Tracked) -> bool:
        """Whether ``tracked`` holds what was read of ``original`` (or, while it is being
        written, a beginning of it)."""
        size = os.fstat(tracked.fd).st_size  # fresh: a copy may be growing
        if size >= original.offset:
            return _ends_with(tracked.fd, original.position(0.0))
        self._open.move_to_end(tracked.key)
        if original.fd < 0 and not self._reopen(original, keep=tracked):
            return False
        count = min(size, FINGERPRINT)
        return count > 0 and (os.pread(tracked.fd, count, size - count)
                              == os.pread(original.fd, count, size - count))

    def _still_copy(self, tracked: Tracked) -> bool:
        """Whether a copy is still one while its original is read; if not, from where to read."""
        assert tracked.copy_of is not None
        original = self._files.get(tracked.copy_of)
        if original is not None and self._copies(tracked, original):
            return True
        tracked.copy_of = None
        if original is not None and not self._intact(original, tracked):
            # Its original was truncated since: this copy holds what was read there.
            tracked.handover = original.position(self._clock())
        else:
            log.info("log file is not a copy after all; reading it from the start",
                     extra={"file": tracked.path})
        return False

    def _intact(self, tracked: Tracked, keep: Tracked) -> bool:
        if tracked.fd < 0 and not self._reopen(tracked, keep=keep):
            return False
        return self._same_content(tracked, os.fstat(tracked.fd).st_size)

    def _take_over(self, tracked: Tracked) -> None:
        """Read a copy on from where its original stopped (nothing of it, if it is shorter)."""
        where, tracked.handover = tracked.handover, None
        assert where is not None
        size = os.fstat(tracked.fd).st_size
        if size < where.offset:
            self._skip_to(tracked, size)
        elif _ends_with(tracked.fd, where):
            tracked.place(where)
        else:
            return  # not a copy: read from the start
        log.info("log file is a copy of one read before; read on from where that stopped",
                 extra={"file": tracked.path, "offset": tracked.offset})

    # -- read-once files ------------------------------------------------------------------------

    def _check_complete(self, tracked: Tracked, st: os.stat_result,
                        fmt: ReadOnce) -> Iterator[Event]:
        if tracked.done:
            return
        now = self._clock()
        stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if st.st_size != tracked.last_size:
            tracked.last_size, tracked.last_change = st.st_size, now
        # A file that did not change since it was checked is not checked again (a gzip file is
        # checked by decompressing it whole): only the give-up time runs.
        if tracked.seen != stamp:
            if tracked.fd < 0 and not self._reopen(tracked):
                return
            tracked.seen = stamp
            try:
                tracked.ready = fmt.is_complete(tracked.fd, st.st_size)
            except CorruptFile as exc:
                log.warning("log file cannot be read; skipped",
                            extra={"file": tracked.path, "error": str(exc)[:200]})
                self._finish(tracked, st.st_size)
                yield FileCorrupt(tracked.path, exc.reason)
                return
        if tracked.ready:
            yield from self._ready(tracked, st.st_size, fmt)
        # unchanged since it was found, or (its modification time says) since before that
        elif max(now - tracked.last_change,
                 (self._wall_clock() - st.st_mtime_ns) / 1e9) >= fmt.give_up_seconds:
            self._finish(tracked, st.st_size)
            yield FileCorrupt(tracked.path, "corrupt")

    def _ready(self, tracked: Tracked, size: int, fmt: ReadOnce) -> Iterator[Event]:
        """A complete read-once file: read it, unless it is the compressed copy of an appended
        file still followed (read from that one; this one is read on from where that one stops
        once it is released)."""
        if tracked.copy_of in self._files:
            return  # its original is still followed (released: ``_retire`` clears copy_of)
        if tracked.fd < 0 and not self._reopen(tracked):
            return
        head = _head_digest(fmt.content(tracked.fd, size, 0, HEAD_BYTES))
        offset: int = 0
        line: int | None = 1
        if head is not None:
            original = self._files.get(self._heads.get(head, (-1, -1)))
            if original is not None and original is not tracked:
                if tracked.copy_of != original.key:
                    log.info("compressed log file is a copy of one being read; read once that "
                             "one is released", extra={"file": tracked.path,
                                                       "original": original.path})
                tracked.copy_of = original.key
                return
            where = tracked.handover or self._former.get(head)
            if where is not None and self._holds(tracked, size, fmt, where):
                offset, line = where.offset, where.line if where.line_known else None
                log.info("compressed log file is a copy of one read before; read beyond where "
                         "that stopped", extra={"file": tracked.path, "offset": offset})
        tracked.copy_of = tracked.handover = None
        self._finish(tracked, size)
        yield FileReady(tracked.path, offset, line)

    def _holds(self, tracked: Tracked, size: int, fmt: ReadOnce, where: _Position) -> bool:
        """Whether a compressed file holds what was read of the file it starts like: the bytes
        read just before ``where.offset`` (or, shorter, a beginning of it: counted already)."""
        start = max(where.offset - FINGERPRINT, 0)
        tail = fmt.content(tracked.fd, size, start, where.offset - start)
        if tail == where.fingerprint or len(tail) < where.offset - start:
            return True
        log.info("compressed log file starts like one read before but is no copy of it; read "
                 "whole", extra={"file": tracked.path})
        return False

    def _finish(self, tracked: Tracked, size: int) -> None:
        """A read-once file is read (or given up): release its descriptor, remember its identity.

        Size, times and the format's digest (a Parquet footer, a gzip trailer) identify it: a
        file deleted and created again may get the same inode (and even the same size), and must
        then be read as a new file.
        """
        fmt = tracked.fmt
        assert isinstance(fmt, ReadOnce)
        tracked.done, tracked.last_size = True, size
        if tracked.fd >= 0 or self._reopen(tracked):
            st = os.fstat(tracked.fd)
            tracked.stamp = (st.st_mtime_ns, st.st_ctime_ns)
            tracked.identity = fmt.identity(tracked.fd, size)
            self._close(tracked)

    def _replaced(self, existing: Tracked, path: str, st: os.stat_result) -> bool:
        """Whether a released read-once file's inode now holds another file.

        Touching or renaming a file changes its times but not its digest; a new file in a
        reused inode has another one (a Parquet footer: its row groups, offsets and
        statistics), and most often another size.
        """
        fmt = existing.fmt
        assert isinstance(fmt, ReadOnce)
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
            digest = fmt.identity(fd, st.st_size)
        finally:
            os.close(fd)
        if digest != existing.identity:
            return True
        existing.stamp = stamp
        return False


def _head_digest(start: bytes) -> bytes | None:
    """The digest of a file's head, from its first HEAD_BYTES (None while its first line is
    shorter than that and incomplete)."""
    cut = start.find(b"\n")
    if cut >= 0:
        start = start[: cut + 1]
    elif len(start) < HEAD_BYTES:
        return None
    return hashlib.blake2b(start, digest_size=16).digest()


def _ends_with(fd: int, where: _Position) -> bool:
    """Whether a file holds, just before ``where.offset``, the bytes read there."""
    start = max(where.offset - FINGERPRINT, 0)
    return bool(where.fingerprint) and os.pread(fd, where.offset - start, start) == \
        where.fingerprint
