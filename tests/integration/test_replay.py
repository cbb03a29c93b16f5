"""Replay (SPEC 7) against the real thing: the same logs through a live ``run`` and through
``replay`` give the same values; the history imports with ``promtool`` into a real Prometheus;
bad timestamps are counted and nothing is lost."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import (
    Exporter,
    free_port,
    model_config,
    run_cli,
    start_prometheus,
    wait_until,
    write_config,
)
from logdata import FEATURES, PREDICTION, live_columns, reference_frame, write_reference
from prometheus_client.parser import text_string_to_metric_families

ExporterFactory = Callable[..., Exporter]
MODEL = "scoring"
WINDOW = 200
# Timestamps and durations are of the run, not of the records (and absent from a replay:
# drift_update_duration_seconds is timing, the reload gauges belong to a running process).
NOT_COMPARED = ("timestamp", "duration")

pytestmark = pytest.mark.slow

_LABEL = re.compile(r'(\w+)="((?:[^"\\\\]|\\\\.)*)"')
Series = tuple[str, frozenset[tuple[str, str]]]
History = dict[float, dict[Series, float]]


def _config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    reference = write_reference(reference_frame(), tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    features = [{"name": f, "type": "numerical"} for f in FEATURES]
    settings: dict[str, Any] = {"prediction": {"column": PREDICTION},
                                "window": {"rows": WINDOW}, "timestamp_column": "ts"}
    settings.update(extra)
    return {"models": [model_config(MODEL, logs / "*.jsonl", reference, features, **settings)]}


def _lines(rng: np.random.Generator, n: int, first_time: float, spacing: float,
           gauss_mean: float = 58.0) -> list[str]:
    columns = live_columns(rng, n, gauss_mean=gauss_mean)
    return [json.dumps({**{k: float(v[i]) for k, v in columns.items()},
                        "ts": first_time + i * spacing}) + "\n" for i in range(n)]


def _replay(tmp_path: Path, config: dict[str, Any], *flags: str,
            name: str = "history.om") -> tuple[Path, subprocess.CompletedProcess[str]]:
    config_path = write_config(tmp_path, config, "replay.yaml")
    output = tmp_path / name
    done = run_cli("replay", f"--config.file={config_path}", f"--output={output}", *flags,
                   timeout=120)
    assert done.returncode == 0, done.stderr
    return output, done


def _history(path: Path) -> tuple[History, dict[str, str]]:
    """The replayed samples by step time, and each family's type.

    Read line by line: prometheus_client's OpenMetrics parser wants each series' samples
    contiguous, which the history (family by family, then step by step) is not; promtool,
    which imports it, does not ask for that."""
    steps: History = {}
    types = {}
    text = path.read_text()
    assert text.endswith("# EOF\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line and not line.startswith("#"):
            series, value, at = line.rsplit(" ", 2)
            name, _, labels = series.partition("{")
            steps.setdefault(float(at), {})[(name, frozenset(_LABEL.findall(labels)))] = float(
                value)
    return steps, types


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12


class TestParityWithRun:
    def test_replay_gives_the_gauges_run_published_at_the_same_window_contents(
            self, tmp_path: Path, exporter: ExporterFactory) -> None:
        config = _config(tmp_path)
        log = tmp_path / "logs" / "app.jsonl"
        log.touch()
        live = exporter(config)
        rng = np.random.default_rng(15)
        published = []
        ingested = 0
        for gauss_mean, n in ((58.0, 150), (61.0, 150), (66.0, 120)):
            with log.open("a") as out:  # stamped with the wall clock, as a live model writes
                out.writelines(_lines(rng, n, time.time(), 1e-4, gauss_mean))
            ingested += n
            samples = live.wait_for_window(MODEL, ingested, min(ingested, WINDOW))
            published.append((ingested, live.scrape_text(), samples))
        last_time = json.loads(log.read_text().splitlines()[-1])["ts"]
        live.stop()

        output, _ = _replay(tmp_path, config, "--step=100ms", f"--to={last_time + 1:.6f}")
        steps, types = _history(output)
        gauges = {name for name, kind in types.items() if kind == "gauge"
                  and not any(word in name for word in NOT_COMPARED)}
        compared = 0
        for ingested, text, samples in published:
            matching = [at for at, values in steps.items()
                        if values[("drift_rows_ingested_total",
                                   frozenset({("model", MODEL)}))] == ingested]
            assert matching, f"no replayed step with {ingested} records ingested"
            replayed = steps[max(matching)]  # statistics settled, as the live scrape was
            served = {(family.name, frozenset(s.labels.items())): float(s.value)
                      for family in text_string_to_metric_families(text)
                      for s in family.samples if family.name in gauges}
            mine = {series: v for series, v in replayed.items() if series[0] in gauges}
            assert served.keys() == mine.keys()
            wrong = {series: (served[series], mine[series]) for series in served
                     if not _same(served[series], mine[series])}
            assert not wrong, f"at {ingested} records: {wrong}"
            assert samples[("drift_window_rows", frozenset({("model", MODEL)}))] == min(
                ingested, WINDOW)
            compared += len(served)
        assert compared > 100


class TestPrometheusImport:
    def test_a_query_at_a_past_time_returns_the_replayed_value(self, tmp_path: Path) -> None:
        config = _config(tmp_path, update_interval="1m")
        start = math.floor(time.time()) - 4 * 3600  # a few hours ago
        rng = np.random.default_rng(7)
        (tmp_path / "logs" / "app.jsonl").write_text("".join(
            _lines(rng, 1200, start, 1.0) + _lines(rng, 1200, start + 1200, 1.0, 70.0)))
        output, _ = _replay(tmp_path, config)
        steps, _ = _history(output)
        assert min(steps) == start
        probe = start + 30 * 60  # drift has begun: the window holds drifted records
        expected = steps[probe][("drift_feature_drift_score",
                                 frozenset({("model", MODEL), ("feature", "gauss")}))]
        ingested = steps[probe][("drift_rows_ingested_total", frozenset({("model", MODEL)}))]
        assert ingested == 30 * 60 + 1

        promtool = shutil.which("promtool")
        assert promtool is not None
        tsdb = tmp_path / "tsdb"
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(output),
                        str(tsdb)], check=True, capture_output=True, timeout=120)
        server = start_prometheus(tmp_path / "prometheus", {}, free_port(), tsdb=tsdb)
        try:
            def value_at(expr: str) -> float | None:
                result = server.query(expr, at=probe)
                return float(result[0]["value"][1]) if result else None

            score = f'drift_feature_drift_score{{model="{MODEL}",feature="gauss"}}'
            assert wait_until(lambda: value_at(score), 30.0,
                              what="the imported history queryable") == expected
            assert value_at(f'drift_rows_ingested_total{{model="{MODEL}"}}') == ingested
            assert value_at(f'drift_feature_drift_detected{{model="{MODEL}",'
                            'feature="gauss"}') == 1.0
        finally:
            server.stop()




class TestBadInput:
    def test_unparseable_and_backward_timestamps_are_counted_and_no_record_is_lost(
            self, tmp_path: Path) -> None:
        config = _config(tmp_path, update_interval="10s")
        start = 1_750_000_000.0
        rng = np.random.default_rng(3)
        lines = _lines(rng, 100, start, 1.0)
        records = [json.loads(line) for line in lines]
        for index in (10, 11, 50):
            records[index]["ts"] = "half past nine"
        for index in range(60, 70):  # going backwards within the file
            records[index]["ts"] = start + 5.0
        (tmp_path / "logs" / "app.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records))
        output, _ = _replay(tmp_path, config)
        steps, _ = _history(output)
        last = steps[max(steps)]
        model = frozenset({("model", MODEL)})
        assert max(steps) == start + 90  # the last record is at +99 s: steps every 10 s
        assert last[("drift_rows_ingested_total", model)] == 91  # every record up to +90 s
        assert last[("drift_values_invalid_total", model | {("feature", "ts")})] == 3
        assert last[("drift_window_rows", model)] == 91
        ingested = [values[("drift_rows_ingested_total", model)]
                    for _, values in sorted(steps.items())]
        assert ingested == sorted(ingested)

    def test_from_after_to_is_a_usage_error_and_writes_nothing(self, tmp_path: Path) -> None:
        config_path = write_config(tmp_path, _config(tmp_path), "replay.yaml")
        done = run_cli("replay", f"--config.file={config_path}",
                       f"--output={tmp_path / 'h.om'}", "--from=2026-01-02T00:00:00Z",
                       "--to=2026-01-01T00:00:00Z")
        assert done.returncode == 2
        assert "after --to" in done.stderr
        assert not (tmp_path / "h.om").exists()

    def test_an_empty_range_is_refused_with_its_reason(self, tmp_path: Path) -> None:
        config = _config(tmp_path)
        (tmp_path / "logs" / "app.jsonl").write_text('{"ts": "never"}\n')
        config_path = write_config(tmp_path, config, "replay.yaml")
        done = run_cli("replay", f"--config.file={config_path}",
                       f"--output={tmp_path / 'h.om'}")
        assert done.returncode == 2
        assert "nothing to replay" in done.stderr

    def test_a_stop_signal_leaves_a_valid_partial_history(self, tmp_path: Path) -> None:
        config = _config(tmp_path, update_interval="1s")
        start = 1_750_000_000.0
        (tmp_path / "logs" / "app.jsonl").write_text(
            "".join(_lines(np.random.default_rng(5), 2000, start, 0.5)))
        config_path = write_config(tmp_path, config, "replay.yaml")
        output = tmp_path / "h.om"
        proc = subprocess.Popen(
            [shutil.which("drift-exporter") or "drift-exporter", "replay",
             f"--config.file={config_path}", f"--output={output}", "--step=1ms"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: any(p.name.startswith(".replay-") for p in tmp_path.iterdir()),
                       60.0, what="the replay writing steps")
            proc.send_signal(2)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert "partial" in err
        assert output.read_text().endswith("# EOF\n")
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
        steps, _ = _history(output)
        assert 0 < len(steps) < 999_001
