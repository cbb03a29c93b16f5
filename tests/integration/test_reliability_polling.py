"""No filesystem events (issue 4, scenario 8), in-process with ``exporter.app.App``.

A log on a network volume written from another host produces no inotify events; an exhausted
inotify instance or watch limit makes watchdog fail. Either way the periodic rescan alone must
find appended records and new files within 2 s; when watchdog fails, the exporter says so in
its log and in ``drift_exporter_polling_fallback``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from harness import parse_metrics, value

from exporter import watching
from exporter.app import App
from exporter.config import Config, parse_config

MODEL = "m"
RESCAN_DEADLINE = 2.0  # SPEC/issue: picked up by the rescan within 2 s


class _BaseFakeObserver:
    """Just enough of watchdog's Observer for exporter.watching."""

    daemon = True
    instances: list[_BaseFakeObserver] = []  # noqa: RUF012 - shared on purpose, per test reset

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.scheduled: list[str] = []
        self.stopped = False
        type(self).instances.append(self)

    def start(self) -> None:
        """Start the (absent) thread."""

    def schedule(self, handler: object, path: str, *, recursive: bool = False) -> None:
        """Watch a directory (and never report anything)."""
        self.scheduled.append(path)

    def stop(self) -> None:
        """Stop."""
        self.stopped = True

    def join(self, timeout: float | None = None) -> None:
        """Nothing to join."""


class SilentObserver(_BaseFakeObserver):
    """inotify works but never fires: writes from another host on a network volume."""


class NoInotifyInstance(_BaseFakeObserver):
    """inotify_init fails: the per-user instance limit is reached."""

    def start(self) -> None:
        """Fail as inotify_init does."""
        raise OSError(24, "inotify instance limit reached")


class WatchLimitReached(_BaseFakeObserver):
    """inotify_add_watch fails: fs.inotify.max_user_watches is exhausted."""

    def schedule(self, handler: object, path: str, *, recursive: bool = False) -> None:
        """Fail as inotify_add_watch does."""
        raise OSError(28, "inotify watch limit reached")


def _config(tmp_path: Path, logs: Path) -> Config:
    pd.DataFrame({"x": [float(i) for i in range(200)]}).to_parquet(tmp_path / "ref.parquet")
    return parse_config({"models": [{
        "name": MODEL, "logs": {"path": str(logs / "*.jsonl")},
        "reference": {"path": str(tmp_path / "ref.parquet")},
        "features": [{"name": "x", "type": "numerical"}],
        "window": {"rows": 300}, "update_interval": "100ms"}]}, base_dir=tmp_path)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until true; return how long it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            msg = f"not within {timeout:g}s: {what}"
            raise AssertionError(msg)
        time.sleep(0.02)
    return time.monotonic() - started


def _append(path: Path, start: int, count: int) -> None:
    with path.open("ab") as handle:
        handle.write("".join(f'{{"x": {i}}}\n' for i in range(start, start + count)).encode())


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield None
    _wait(lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
          5.0, "the exporter's threads to end")


@pytest.fixture
def running(tmp_path: Path, no_leaked_threads: None) -> Iterator[Callable[[], App]]:
    """Factory: start an App on tmp_path/logs (created, with one record) and stop it after."""
    apps: list[App] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    _append(logs / "a.jsonl", 0, 1)

    def start() -> App:
        app = App(_config(tmp_path, logs), "127.0.0.1:0")
        apps.append(app)
        app.start()
        _wait(app.ready.is_set, 10.0, "ready")
        return app

    yield start
    for app in apps:
        app.stop()


def ingested(app: App) -> float | None:
    """drift_rows_ingested_total of the model, from the registry."""
    return app.registry.get_sample_value("drift_rows_ingested_total", {"model": MODEL})


def scrape(app: App) -> dict[Any, float]:
    """/metrics over HTTP, parsed."""
    response = requests.get(f"http://127.0.0.1:{app.web.port}/metrics", timeout=5)
    assert response.status_code == 200
    return parse_metrics(response.text)


def rescans_find_everything(app: App, logs: Path) -> None:
    """Appends to a followed file, and a new file, are read by rescans alone within 2 s."""
    total = 1
    for round_ in range(3):
        _append(logs / "a.jsonl", total, 40)
        total += 40
        took = _wait(lambda n=total: ingested(app) == n, RESCAN_DEADLINE + 1.0,  # type: ignore[misc]
                     f"{total} records ingested (round {round_})")
        assert took < RESCAN_DEADLINE, f"appended records read after {took:.2f}s"
    _append(logs / "b.jsonl", total, 25)
    total += 25
    took = _wait(lambda: ingested(app) == total, RESCAN_DEADLINE + 1.0, "the new file's records")
    assert took < RESCAN_DEADLINE, f"a new file's records read after {took:.2f}s"


@pytest.mark.parametrize("observer", [NoInotifyInstance, WatchLimitReached],
                         ids=["inotify_instance_limit", "inotify_watch_limit"])
def test_without_inotify_the_exporter_polls_and_says_so(
        tmp_path: Path, running: Callable[[], App], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, observer: type[_BaseFakeObserver]) -> None:
    monkeypatch.setattr(observer, "instances", [])
    monkeypatch.setattr(watching, "Observer", observer)
    caplog.set_level(logging.INFO)
    app = running()
    assert observer.instances, "the fake observer was not used"

    rescans_find_everything(app, tmp_path / "logs")
    assert app.registry.get_sample_value("drift_exporter_polling_fallback") == 1
    assert value(scrape(app), "drift_exporter_polling_fallback") == 1
    said = [r for r in caplog.records if r.name == "exporter.watching"
            and r.levelno == logging.WARNING and "unavailable" in r.getMessage()]
    assert said, "no log line says that filesystem events are unavailable"
    assert "inotify" in str(getattr(said[0], "error", "")), vars(said[0])
    assert len(said) == 1, "the fallback is logged once, not at every rescan"


def test_a_volume_that_never_sends_events_is_followed_by_rescans(
        tmp_path: Path, running: Callable[[], App], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SilentObserver, "instances", [])
    monkeypatch.setattr(watching, "Observer", SilentObserver)
    app = running()
    assert SilentObserver.instances[0].scheduled == [str(tmp_path / "logs")]
    rescans_find_everything(app, tmp_path / "logs")
    # inotify itself works here, so this is no fallback: nothing to report.
    assert app.registry.get_sample_value("drift_exporter_polling_fallback") == 0


def test_with_real_inotify_the_fallback_gauge_is_0(
        tmp_path: Path, running: Callable[[], App]) -> None:
    app = running()
    assert app.registry.get_sample_value("drift_exporter_polling_fallback") == 0
    _append(tmp_path / "logs" / "a.jsonl", 1, 10)
    _wait(lambda: ingested(app) == 11, RESCAN_DEADLINE, "records read with events")
