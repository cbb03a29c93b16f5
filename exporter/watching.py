"""Filesystem events that only wake the ingest worker; the rescan covers misses.

On Linux the events come from inotify directly (``InotifyObserver``): one thread blocks on the
inotify descriptor, wakes the ingest worker when anything changed in a watched directory, and
then sleeps COALESCE_SECONDS before reading again, so that the kernel merges the identical
events of a writer appending many times a second (inotify coalesces an event with the unread
one before it) into one. watchdog's observer, used elsewhere, turns every write into an event
object handed over between two threads: at 100 appends a second that cost ~2-2.5% of a
core, against ~0.5-0.8% here (measured side by side; ~0.2% less with a 50 ms pause), for a
wake-up the ingest worker coalesces anyway (INGEST_COALESCE_SECONDS, 0.1 s); the pause adds at
most 20 ms to the wake-up of a write that follows another one within it.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import logging
import os
import select
import struct
import sys
import threading
from typing import Any, Protocol

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.02  # after a wake-up, let the kernel merge events this long
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
# Changes that can mean new records or files (not opens, reads or closes without a write).
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
_IN_ONLYDIR, _IN_ISDIR = 0x01000000, 0x40000000
MASK = (_IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE
        | _IN_DELETE | _IN_DELETE_SELF | _IN_MOVE_SELF)


def watch_root(pattern: str) -> tuple[str, bool]:
    """The deepest directory of a glob without wildcards, and whether to watch recursively."""
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            return os.sep.join(fixed) or os.sep, True
        fixed.append(part)
    return os.sep.join(fixed) or os.sep, False


class _Wake:
    """What an observer calls when something changed: it sets the ingest worker's event."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def wake(self) -> None:
        """Something changed in a watched directory."""
        self.event.set()

    def dispatch(self, event: Any) -> None:
        """watchdog's entry point (its observer, off Linux): opens and reads change nothing."""
        if event.event_type not in {"opened", "closed_no_write"}:
            self.event.set()


class _Observer(Protocol):
    daemon: bool

    def start(self) -> None: ...
    def schedule(self, handler: _Wake, path: str, *, recursive: bool = False) -> object: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


class InotifyObserver:
    """Watches directories with inotify and calls their handler's ``wake`` (Linux).

    The interface is the part of watchdog's ``Observer`` the ``Watcher`` uses: ``start``,
    ``schedule``, ``stop``, ``join``. A failing ``inotify_init1`` or ``inotify_add_watch``
    (instance or watch limit) raises ``OSError``; a recursive watch adds the directories created
    or moved in later, and one it cannot add is noted in ``error`` (the rescans still cover
    it)."""

    daemon = True

    def __init__(self) -> None:
        self._fd = -1
        self._stop_r, self._stop_w = -1, -1
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._dirs: dict[int, tuple[str, _Wake, bool]] = {}  # wd -> (path, handler, recursive)
        self.error: OSError | None = None

    def start(self) -> None:
        """Make the inotify instance and start the reading thread."""
        libc = ctypes.CDLL(None, use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._add.restype = ctypes.c_int
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self._fd = fd
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="inotify", daemon=True)
        self._thread.start()

    def schedule(self, handler: _Wake, path: str, *, recursive: bool = False) -> None:
        """Watch ``path`` (and, ``recursive``, every directory below it) for ``handler``."""
        self._watch(path, handler, recursive)
        if recursive:
            for below, _, _ in os.walk(path):
                if below != path:
                    self._watch(below, handler, recursive)

    def _watch(self, path: str, handler: _Wake, recursive: bool) -> None:
        wd = self._add(self._fd, os.fsencode(path), MASK | _IN_ONLYDIR)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_add_watch {path}: {os.strerror(code)}")
        with self._lock:
            self._dirs[wd] = (path, handler, recursive)

    def _run(self) -> None:
        poller = select.poll()  # not select(): descriptors above 1023 are allowed
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while not self._stopping.is_set():
            ready = {fd for fd, _ in poller.poll()}
            if self._stop_r in ready:
                return
            woken = self._read()
            for handler in woken:
                handler.wake()
            # Let the kernel merge what a busy writer appends meanwhile into one event.
            self._stopping.wait(COALESCE_SECONDS)

    def _read(self) -> list[_Wake]:
        """Read every pending event; the handlers to wake, new directories watched."""
        data = b""
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        woken: dict[int, _Wake] = {}
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size: offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            with self._lock:
                watched = self._dirs.get(wd)
            if watched is None:
                continue  # IN_Q_OVERFLOW (wd -1) or a removed watch: the rescan covers it
            path, handler, recursive = watched
            woken[id(handler)] = handler
            if recursive and mask & _IN_ISDIR and mask & (_IN_CREATE | _IN_MOVED_TO):
                self._watch_new(os.path.join(path, os.fsdecode(name)), handler)
        return list(woken.values())

    def _watch_new(self, path: str, handler: _Wake) -> None:
        try:
            self.schedule(handler, path, recursive=True)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # gone again: nothing to watch
                self.error = exc

    def stop(self) -> None:
        """Stop the reading thread (``join`` waits for it) and release the descriptors."""
        self._stopping.set()
        if self._stop_w >= 0:
            os.write(self._stop_w, b"x")

    def join(self, timeout: float | None = None) -> None:
        """Wait for the reading thread, then close the descriptors."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return
        for fd in (self._fd, self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._fd = self._stop_r = self._stop_w = -1


def _default_observer() -> type[_Observer] | Any:
    if sys.platform.startswith("linux"):
        return InotifyObserver
    from watchdog.observers import Observer as WatchdogObserver  # only off Linux

    return WatchdogObserver


Observer = _default_observer()


class Watcher:
    """Watches the directories of the models' globs; falls back to rescans alone on failure."""

    def __init__(self, patterns: list[str], wake: threading.Event) -> None:
        self.wake = wake
        self.roots = sorted({watch_root(p) for p in patterns})
        self.observer: _Observer | None = None
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
        error = getattr(self.observer, "error", None)
        if error is not None:  # a directory created later could not be watched
            self._fail(error)
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
