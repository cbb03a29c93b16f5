"""The App's lifecycle in-process: readiness, waiting for a missing log directory, a stop that
leaves no threads or descriptors behind, and which pipeline objects a reload keeps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml

from exporter.app import App
from exporter.config import Config, load_config, parse_config


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
        assert all(m.source.reader.follower.open_files == 0 for m in app.models)

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


def _write_models(path: Path, tmp_path: Path, intervals: dict[str, str]) -> None:
    """A config file of numerical models on the shared reference, one log directory each."""
    models = [{"name": name, "logs": {"path": str(tmp_path / name / "*.jsonl")},
               "reference": {"path": str(tmp_path / "ref.parquet")},
               "features": [{"name": "x", "type": "numerical"}], "update_interval": interval}
              for name, interval in intervals.items()]
    path.write_text(yaml.safe_dump({"models": models}))


class TestReload:
    """App.reload(): which pipeline objects survive, and what a stop does to a pending reload."""

    def test_an_unchanged_model_keeps_its_pipeline_object_and_a_changed_one_is_replaced(
            self, tmp_path: Path, no_leaked_threads: object) -> None:
        _config(tmp_path, tmp_path)  # writes the reference
        for name in ("same", "changed"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "a.jsonl").write_text('{"x": 1}\n' * 20)
        path = tmp_path / "config.yaml"
        _write_models(path, tmp_path, {"same": "100ms", "changed": "100ms"})
        app = App(load_config(path), "127.0.0.1:0", config_file=str(path))
        app.start()
        try:
            _wait(lambda: _status(app, "/-/ready") == 200)
            same, changed = app.models
            _write_models(path, tmp_path, {"same": "100ms", "changed": "200ms", "new": "1s"})
            (tmp_path / "new").mkdir()
            assert app.reload()
            assert app.models[0] is same
            assert (app.models[0].pipeline, app.models[0].source) == (same.pipeline, same.source)
            assert app.models[1] is not changed
            assert app.models[1].config.update_interval == 0.2
            assert [p.config.name for p in app.models] == ["same", "changed", "new"]
            assert changed.source.reader.follower.open_files == 0  # closed by the swap
            assert app.registry.get_sample_value("drift_config_last_reload_successful") == 1
        finally:
            app.stop()

    def test_a_reload_without_a_config_file_is_refused_and_reported(
            self, tmp_path: Path, no_leaked_threads: object) -> None:
        (tmp_path / "logs").mkdir()
        app = App(_config(tmp_path, tmp_path / "logs"), "127.0.0.1:0")
        app.start()
        try:
            assert not app.reload()
            assert app.registry.get_sample_value("drift_config_last_reload_successful") == 0
        finally:
            app.stop()

    def test_a_reload_pending_when_the_app_stops_is_abandoned_not_waited_for(
            self, tmp_path: Path) -> None:
        _config(tmp_path, tmp_path)
        (tmp_path / "m").mkdir()
        path = tmp_path / "config.yaml"
        _write_models(path, tmp_path, {"m": "100ms"})
        app = App(load_config(path), "127.0.0.1:0", config_file=str(path))
        _write_models(path, tmp_path, {"m": "100ms", "n": "100ms"})
        (tmp_path / "n").mkdir()
        # Not started: no ingest thread will ever apply the swap; stopping must release reload().
        outcome: list[bool] = []
        worker = threading.Thread(target=lambda: outcome.append(app.reload()))
        worker.start()
        try:
            _wait(lambda: app._swap is not None)  # the pending swap is the point
            app.stop_event.set()
            worker.join(5)
            assert outcome == [False]
            assert [p.config.name for p in app.models] == ["m"]
            assert app._swap is None  # withdrawn, its pipelines closed
        finally:
            app.web.server.server_close()  # never served: Web.stop() would wait for serve_forever
            for model in app.models:
                model.close()

    def test_a_reference_that_fails_to_load_refuses_the_whole_reload(
            self, tmp_path: Path, no_leaked_threads: object,
            caplog: pytest.LogCaptureFixture) -> None:
        _config(tmp_path, tmp_path)
        for name in ("m", "n"):
            (tmp_path / name).mkdir()
        path = tmp_path / "config.yaml"
        _write_models(path, tmp_path, {"m": "100ms"})
        app = App(load_config(path), "127.0.0.1:0", config_file=str(path))
        app.start()
        try:
            _wait(lambda: _status(app, "/-/ready") == 200)
            running = list(app.models)
            _write_models(path, tmp_path, {"m": "200ms", "n": "100ms"})
            # The config is valid (the reference has the column) but holds no rows.
            pd.DataFrame({"x": pd.Series([], dtype=float)}).to_parquet(tmp_path / "ref.parquet")
            with caplog.at_level("ERROR", logger="exporter.app"):
                assert not app.reload()
            assert app.models == running
            refused = [r for r in caplog.records if "reload refused" in r.getMessage()]
            assert len(refused) == 1
            assert "has no rows" in refused[0].problems  # type: ignore[attr-defined]
            assert app.registry.get_sample_value("drift_config_last_reload_successful") == 0
        finally:
            app.stop()
