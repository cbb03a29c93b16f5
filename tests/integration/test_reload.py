"""Reloading the configuration (SPEC 4): SIGHUP, and POST /-/reload with --web.enable-lifecycle.

Unchanged models keep their windows and counters, new and changed ones start as at start-up,
removed ones disappear; a broken config is refused with every problem on one log line while the
running one stays in force; the reload gauges say which happened."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import numpy as np
import polars as pl
import pytest
import requests
from conftest import ExporterFactory
from harness import (
    Exporter,
    Samples,
    append_lines,
    jsonl_line,
    model_config,
    parse_metrics,
    value,
    wait_until,
    write_config,
)

FEATURES = [{"name": "x", "type": "numerical"}]
SUCCESS = "drift_config_last_reload_successful"
STAMP = "drift_config_last_reload_success_timestamp_seconds"


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    """A small numerical reference shared by every model."""
    path = tmp_path / "ref.parquet"
    pl.DataFrame({"x": np.random.default_rng(0).normal(size=500)}).write_parquet(path)
    return path


def _logs(tmp_path: Path, name: str, rows: int, file: str = "a.jsonl") -> Path:
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    # Each line names its file: a new file whose bytes are a prefix of an older one would be
    # taken for a copy of it still being written (tailing's copy detection).
    append_lines(directory / file, (jsonl_line({"x": float(i % 7), "file": file, "i": i})
                                    for i in range(rows)))
    return directory / file


def _model(tmp_path: Path, reference: Path, name: str, **extra: Any) -> dict[str, Any]:
    return model_config(name, tmp_path / name / "*.jsonl", reference, FEATURES, **extra)


def _rewrite(process: Exporter, models: list[dict[str, Any]] | str) -> None:
    """Replace the running exporter's config file (a dict, or raw text for broken YAML)."""
    if isinstance(models, str):
        process.config_path.write_text(models)
    else:
        write_config(process.config_path.parent, {"models": models}, process.config_path.name)


def _models(samples: Samples) -> set[str]:
    return {v for (_, labels), _ in samples.items() for k, v in labels if k == "model"}


def _after_reload(process: Exporter, before: float, successful: float) -> Samples:
    """Poll until a reload attempt has been recorded with the given outcome."""
    def settled() -> Samples | None:
        samples = process.scrape()
        if successful:
            return samples if (value(samples, STAMP) or 0) > before else None
        return samples if value(samples, SUCCESS) == 0 else None

    return wait_until(settled, 20, what=f"a reload with outcome {successful}")


class TestSighup:
    """SIGHUP re-reads the config file."""

    def test_unchanged_models_keep_their_state_changed_and_new_start_afresh_removed_vanish(
            self, tmp_path: Path, reference: Path, exporter: ExporterFactory) -> None:
        keep_log = _logs(tmp_path, "keep", 150)
        _logs(tmp_path, "change", 150)
        _logs(tmp_path, "gone", 150)
        keep, change, gone = (_model(tmp_path, reference, n) for n in ("keep", "change", "gone"))
        process = exporter({"models": [keep, change, gone]})
        for name in ("keep", "change", "gone"):
            process.wait_for_window(name, 150, 150)
        before = process.scrape()
        assert value(before, SUCCESS) == 1  # the start-up counts as a successful load
        assert (value(before, STAMP) or 0) > 0
        kept_updates = process.update_count(before, "keep")
        # A re-created pipeline for "keep" would find no file and count 0 records: the kept one
        # still holds its 150 records and its counter.
        keep_log.rename(keep_log.with_suffix(".old"))
        _logs(tmp_path, "new", 120)
        changed = {**change, "window": {"rows": 100}}
        _rewrite(process, [keep, changed, _model(tmp_path, reference, "new")])

        process.proc.send_signal(signal.SIGHUP)
        _after_reload(process, value(before, STAMP) or 0, 1)
        samples = process.wait_for_window("new", 120, 120)
        assert value(samples, "drift_rows_ingested_total", model="keep") == 150
        assert value(samples, "drift_window_rows", model="keep") == 150
        assert process.update_count(samples, "keep") >= kept_updates
        assert value(samples, "drift_window_rows", model="change") == 100
        assert "gone" not in _models(samples), sorted(k for k in samples if "gone" in str(k))
        assert value(samples, SUCCESS) == 1
        assert "configuration reloaded" in process.stderr()
        # The kept pipeline still follows its logs.
        _logs(tmp_path, "keep", 10, "b.jsonl")
        process.wait_for_window("keep", 160, 160)

    def test_a_raised_alarm_survives_a_reload_of_its_unchanged_model_and_a_changed_alarm_applies(
            self, tmp_path: Path, reference: Path, exporter: ExporterFactory) -> None:
        for name in ("keep", "change"):
            directory = tmp_path / name
            directory.mkdir()
            # Shifted by 5 reference standard deviations, one record a second (record times).
            append_lines(directory / "a.jsonl", (jsonl_line({"x": 5.0 + (i % 7) / 7,
                                                             "ts": 1e9 + i})
                                                 for i in range(100)))
        keep, change = (_model(tmp_path, reference, n, timestamp_column="ts")
                        for n in ("keep", "change"))
        process = exporter({"models": [keep, change]})
        def raised() -> Samples | None:
            samples = process.scrape()
            return samples if all(value(samples, "drift_alarm", model=m) == 1
                                  for m in ("keep", "change")) else None

        before = wait_until(raised, 20, what="both alarms raised")
        assert value(before, "drift_alarm_raised_total", model="keep") == 1
        # A re-created "keep" would find no file: its alarm would be down, its counter 0.
        (tmp_path / "keep" / "a.jsonl").rename(tmp_path / "keep" / "a.old")
        _rewrite(process, [keep, {**change, "alarm": {"false_alarm_every": "1d"}}])
        process.proc.send_signal(signal.SIGHUP)
        samples = _after_reload(process, value(before, STAMP) or 0, 1)
        assert value(samples, "drift_alarm", model="keep") == 1
        assert value(samples, "drift_alarm_raised_total", model="keep") == 1
        assert value(samples, "drift_feature_alarm", model="keep", feature="x") == 1
        assert value(samples, "drift_alarm_false_alarm_every_seconds", model="change") == 86400

    def test_a_broken_config_is_refused_listing_every_problem_and_the_old_one_runs_on(
            self, tmp_path: Path, reference: Path, exporter: ExporterFactory) -> None:
        _logs(tmp_path, "a", 150)
        a = _model(tmp_path, reference, "a")
        process = exporter({"models": [a]})
        process.wait_for_window("a", 150, 150)
        stamp = value(process.scrape(), STAMP)
        broken = {**_model(tmp_path, reference, "b"), "window": {"rows": -5}, "bogus": 1,
                  "reference": {"path": str(tmp_path / "missing.parquet")}}
        _rewrite(process, [a, broken])

        process.proc.send_signal(signal.SIGHUP)
        samples = _after_reload(process, 0, 0)
        assert value(samples, STAMP) == stamp
        assert _models(samples) == {"a"}
        assert value(samples, "drift_rows_ingested_total", model="a") == 150
        refused = [line for line in process.stderr().splitlines()
                   if "configuration reload refused" in line]
        assert len(refused) == 1, process.stderr()
        for problem in ("models[1].bogus", "models[1].window.rows", "models[1].reference.path"):
            assert problem in refused[0]
        assert "level=error" in refused[0]
        assert "count=3" in refused[0]
        # Still following its logs under the old config.
        _logs(tmp_path, "a", 20, "b.jsonl")
        process.wait_for_window("a", 170, 170)

        _rewrite(process, "models: [\n")  # not even YAML
        process.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: process.stderr().count("configuration reload refused") == 2, 20,
                   what="the second refusal")
        assert value(process.scrape(), SUCCESS) == 0

        _rewrite(process, [a])
        process.proc.send_signal(signal.SIGHUP)
        samples = _after_reload(process, stamp or 0, 1)
        assert value(samples, SUCCESS) == 1
        assert value(samples, "drift_rows_ingested_total", model="a") == 170

    def test_reloads_while_records_stream_in_lose_and_duplicate_nothing(
            self, tmp_path: Path, reference: Path, exporter: ExporterFactory) -> None:
        log = _logs(tmp_path, "steady", 0)
        _logs(tmp_path, "extra", 50)
        # A re-created pipeline would read only the newest 200 records back: the counter would
        # fall short of everything written.
        steady = _model(tmp_path, reference, "steady", window={"rows": 200})
        extra = _model(tmp_path, reference, "extra")
        process = exporter({"models": [steady]})
        stop = threading.Event()
        written = [0]

        def write() -> None:
            while not stop.wait(0.01):
                append_lines(log, (jsonl_line({"x": 1.0}) for _ in range(20)))
                written[0] += 20

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for round_ in range(6):
                stamp = value(process.scrape(), STAMP) or 0
                _rewrite(process, [steady, extra] if round_ % 2 == 0 else [steady])
                process.proc.send_signal(signal.SIGHUP)
                _after_reload(process, stamp, 1)
        finally:
            stop.set()
            writer.join()
        total = written[0]
        wait_until(lambda: value(process.scrape(), "drift_rows_ingested_total",
                                 model="steady") == total, 20, what=f"{total} records")
        assert "Traceback" not in process.stderr()
        assert " failed" not in process.stderr()


class TestHttpReload:
    """POST /-/reload, only with --web.enable-lifecycle (Prometheus' flag)."""

    def test_without_the_flag_post_reload_is_forbidden_and_changes_nothing(
            self, tmp_path: Path, reference: Path, exporter: ExporterFactory) -> None:
        _logs(tmp_path, "a", 10)
        process = exporter({"models": [_model(tmp_path, reference, "a")]})
        stamp = value(process.scrape(), STAMP)
        _logs(tmp_path, "b", 10)
        _rewrite(process, [_model(tmp_path, reference, "a"), _model(tmp_path, reference, "b")])
        response = requests.post(process.url("/-/reload"), timeout=10)
        assert response.status_code == 403
        assert response.text.strip() == "Lifecycle API is not enabled."
        samples = process.scrape()
        assert value(samples, STAMP) == stamp
        assert _models(samples) == {"a"}

    def test_with_the_flag_post_reload_answers_200_when_applied_and_500_when_refused(
            self, tmp_path: Path, reference: Path, exporter: ExporterFactory) -> None:
        _logs(tmp_path, "a", 10)
        _logs(tmp_path, "b", 30)
        a = _model(tmp_path, reference, "a")
        process = exporter({"models": [a]}, extra=["--web.enable-lifecycle"])
        stamp = value(process.scrape(), STAMP) or 0
        _rewrite(process, [a, _model(tmp_path, reference, "b")])
        response = requests.post(process.url("/-/reload"), timeout=30)
        assert response.status_code == 200, response.text
        samples = process.scrape()  # the new config is in force when the answer comes
        assert "b" in _models(samples)
        assert value(samples, SUCCESS) == 1
        assert (value(samples, STAMP) or 0) > stamp
        process.wait_for_window("b", 30, 30)

        _rewrite(process, [a, {**a, "window": {"rows": 0}}])
        response = requests.post(process.url("/-/reload"), timeout=30)
        assert response.status_code == 500
        samples = process.scrape()
        assert value(samples, SUCCESS) == 0
        assert _models(samples) == {"a", "b"}
        assert requests.get(process.url("/-/reload"), timeout=5).status_code == 405  # POST, PUT


def _hash(password: bytes) -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(4)).decode()


class TestWebConfigReload:
    """--web.config.file is re-read with the config; an invalid one refuses the whole reload."""

    def test_changed_users_apply_and_an_invalid_web_config_refuses_the_reload(
            self, tmp_path: Path, reference: Path, exporter: ExporterFactory) -> None:
        _logs(tmp_path, "a", 10)
        web = tmp_path / "web.yml"
        web.write_text(f"basic_auth_users:\n  alice: '{_hash(b'one')}'\n")
        a = _model(tmp_path, reference, "a")
        process = exporter({"models": [a]}, wait=False, extra=[f"--web.config.file={web}"])

        def scrape_as(user: str, password: str) -> Callable[[], Samples | None]:
            def attempt() -> Samples | None:
                assert process.proc.poll() is None, process.stderr()
                try:
                    response = process.get("/metrics", auth=(user, password))
                except requests.ConnectionError:
                    return None
                return parse_metrics(response.text) if response.status_code == 200 else None
            return attempt

        samples = wait_until(scrape_as("alice", "one"), 20, what="metrics as alice")
        stamp = value(samples, STAMP) or 0
        web.write_text(f"basic_auth_users:\n  bob: '{_hash(b'two')}'\n")
        _logs(tmp_path, "b", 10)
        _rewrite(process, [a, _model(tmp_path, reference, "b")])
        process.proc.send_signal(signal.SIGHUP)
        samples = wait_until(scrape_as("bob", "two"), 20, what="metrics as bob")
        assert process.get("/metrics", auth=("alice", "one")).status_code == 401
        wait_until(lambda: (value(scrape_as("bob", "two")() or {}, STAMP) or 0) > stamp, 20,
                   what="the reload timestamp")

        web.write_text(f"basic_auth_users:\n  carol: '{_hash(b'three')}'\nunknown_key: 1\n")
        _rewrite(process, [a])  # would remove "b", but the reload is refused as a whole
        process.proc.send_signal(signal.SIGHUP)
        samples = wait_until(lambda: (s := scrape_as("bob", "two")()) is not None
                             and value(s, SUCCESS) == 0 and s, 20, what="the refusal")
        assert _models(samples) == {"a", "b"}
        assert process.get("/metrics", auth=("carol", "three")).status_code == 401
        refused = [line for line in process.stderr().splitlines()
                   if "configuration reload refused" in line]
        assert len(refused) == 1
        assert "unknown_key" in refused[0]
