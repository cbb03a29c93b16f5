"""The inotify observer: it wakes the ingest worker on changes, merges a busy writer's events,
watches directories created later under a recursive root, and fails loudly."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter import watching
from exporter.watching import InotifyObserver, Watcher

pytestmark = pytest.mark.skipif(os.uname().sysname != "Linux", reason="inotify is Linux's")


class Counting:
    """A handler that counts its wake-ups."""

    def __init__(self) -> None:
        self.calls = 0
        self.event = threading.Event()

    def wake(self) -> None:
        self.calls += 1
        self.event.set()


def woken(handler: Counting, timeout: float = 2.0) -> bool:
    ok = handler.event.wait(timeout)
    handler.event.clear()
    return ok


@pytest.fixture
def observer() -> Iterator[InotifyObserver]:
    before = set(threading.enumerate())
    obs = InotifyObserver()
    obs.start()
    yield obs
    obs.stop()
    obs.join(2)
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]


class TestInotifyObserver:
    def test_an_append_and_a_new_file_wake_the_worker(self, tmp_path: Path,
                                                      observer: InotifyObserver) -> None:
        handler = Counting()
        observer.schedule(handler, str(tmp_path))  # type: ignore[arg-type]
        (tmp_path / "a.jsonl").write_text('{"x": 1}\n')
        assert woken(handler)
        time.sleep(2 * watching.COALESCE_SECONDS)
        handler.event.clear()
        with (tmp_path / "a.jsonl").open("a") as out:
            out.write('{"x": 2}\n')
        assert woken(handler)

    def test_reading_a_file_wakes_nobody(self, tmp_path: Path, observer: InotifyObserver) -> None:
        (tmp_path / "a.jsonl").write_text('{"x": 1}\n')
        handler = Counting()
        observer.schedule(handler, str(tmp_path))  # type: ignore[arg-type]
        (tmp_path / "a.jsonl").read_bytes()
        assert not woken(handler, 0.3)

    def test_a_busy_writer_wakes_the_worker_far_less_often_than_it_writes(
            self, tmp_path: Path, observer: InotifyObserver) -> None:
        handler = Counting()
        observer.schedule(handler, str(tmp_path))  # type: ignore[arg-type]
        fd = os.open(tmp_path / "a.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        started = time.monotonic()
        try:
            for _ in range(200):  # 200 writes, ~2 ms apart
                os.write(fd, b'{"x": 1}\n')
                time.sleep(0.002)
        finally:
            os.close(fd)
        elapsed = time.monotonic() - started
        time.sleep(3 * watching.COALESCE_SECONDS)
        # at most one wake-up per pause (and the first one), whatever the number of writes
        assert 1 <= handler.calls <= elapsed / watching.COALESCE_SECONDS + 3
        assert handler.calls < 200 / 3

    def test_a_recursive_watch_follows_directories_created_later(
            self, tmp_path: Path, observer: InotifyObserver) -> None:
        handler = Counting()
        observer.schedule(handler, str(tmp_path), recursive=True)  # type: ignore[arg-type]
        (tmp_path / "day1").mkdir()
        assert woken(handler)
        time.sleep(2 * watching.COALESCE_SECONDS)  # the new directory is watched by now
        handler.event.clear()
        (tmp_path / "day1" / "a.jsonl").write_text('{"x": 1}\n')
        assert woken(handler)
        assert observer.error is None

    def test_a_directory_that_cannot_be_watched_raises(self, tmp_path: Path,
                                                       observer: InotifyObserver) -> None:
        with pytest.raises(OSError, match="inotify_add_watch"):
            observer.schedule(Counting(), str(tmp_path / "absent"))  # type: ignore[arg-type]


class TestWatcher:
    def test_the_watcher_uses_inotify_and_wakes_the_ingest_event(self, tmp_path: Path) -> None:
        wake = threading.Event()
        watcher = Watcher([str(tmp_path / "*.jsonl")], wake)
        watcher.start()
        try:
            assert isinstance(watcher.observer, InotifyObserver)
            assert not watcher.failed
            (tmp_path / "a.jsonl").write_text('{"x": 1}\n')
            assert wake.wait(2)
        finally:
            watcher.stop()

    def test_a_later_directory_that_cannot_be_watched_turns_to_polling(
            self, tmp_path: Path) -> None:
        watcher = Watcher([str(tmp_path / "*" / "*.jsonl")], threading.Event())
        watcher.start()
        try:
            assert isinstance(watcher.observer, InotifyObserver)
            watcher.observer.error = OSError(28, "inotify watch limit reached")
            watcher.refresh()
            assert watcher.failed
        finally:
            watcher.stop()
