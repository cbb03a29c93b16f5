"""The App's lifecycle in-process: readiness, waiting for a missing log directory, and a stop
that leaves no threads or descriptors behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import requests

from exporter.app import App
from exporter.config import Config, parse_config


def _config(tmp_path: Path, log_dir: Path) -> Config:
    pd.DataFrame({"x": [float(i) for i in range(200)]}).to_parquet(tmp_path / "ref.parquet")
    return parse_config({"models": [{
        "name": "m", "logs": {"path": str(log_dir / "*.jsonl")},
        "reference": {"path": str(tmp_path / "ref.parquet")},
        "features": [{"name": "x", "type": "numerical"}],
        "update_interval": "100ms"}]}, base_dir=tmp_path)


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met before the deadline")


def _status(app: App, path: str) -> int:
    return requests.get(f"http://127.0.0.1:{app.web.port}{path}", timeout=5).status_code


@pytest.fixture
def no_leaked_threads() -> object:
    before = set(threading.enumerate())
    yield None
    _wait(lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
          timeout=5)


class TestLifecycle:
    """Start, serve, stop."""

    def test_a_stopped_app_leaves_no_threads_and_turns_unready(
            self, tmp_path: Path, no_leaked_threads: object) -> None:
        (tmp_path / "logs").mkdir()
        app = App(_config(tmp_path, tmp_path / "logs"), "127.0.0.1:0")
        app.start()
        try:
            _wait(lambda: _status(app, "/-/ready") == 200)
            assert _status(app, "/-/healthy") == 200
        finally:
            app.stop()
        assert not app.ready.is_set()
        assert all(p.reader.follower.open_files == 0 for p in app.pipelines)

    def test_a_missing_log_directory_is_waited_for_and_readiness_follows_it(
            self, tmp_path: Path, no_leaked_threads: object) -> None:
        log_dir = tmp_path / "not-yet"
        app = App(_config(tmp_path, log_dir), "127.0.0.1:0")
        app.start()
        try:
            time.sleep(1.5)  # longer than one rescan: readiness must stay off meanwhile
            assert _status(app, "/-/ready") == 503
            log_dir.mkdir()
            (log_dir / "a.jsonl").write_text("".join(f'{{"x": {i}}}\n' for i in range(150)))
            _wait(lambda: _status(app, "/-/ready") == 200)
            _wait(lambda: app.registry.get_sample_value(
                "drift_rows_ingested_total", {"model": "m"}) == 150)
        finally:
            app.stop()
