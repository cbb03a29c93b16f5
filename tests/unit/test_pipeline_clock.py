"""The pipeline reads records by the clock it is given (issue 13, item 12): a record timestamp
more than ``MAX_FUTURE_SECONDS`` ahead of it is an invalid value, and the record is timed when
it was read. Here from real files, through the model's source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exporter.config import ModelConfig, parse_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.sources import ModelSource, feed
from exporter.window import MAX_FUTURE_SECONDS

NOW = 1_000_000.0  # a replayed clock, far from the wall clock


def model(tmp_path: Path, **extra: object) -> ModelConfig:
    """One model with a numerical feature x and a timestamp column ts."""
    pd.DataFrame({"x": np.random.default_rng(0).normal(size=200)}).to_parquet(
        tmp_path / "ref.parquet", index=False)
    entry = {"name": "m", "logs": {"path": str(tmp_path / "*.jsonl")},
             "reference": {"path": str(tmp_path / "ref.parquet")},
             "features": [{"name": "x", "type": "numerical"}],
             "timestamp_column": "ts", "window": {"duration": "1h"}}
    entry.update(extra)
    return parse_config({"models": [entry]}, base_dir=tmp_path).models[0]


def write(path: Path, stamps: list[float]) -> None:
    path.write_text("".join(json.dumps({"x": 1.0, "ts": t}) + "\n" for t in stamps))


def test_timestamps_ahead_of_the_given_clock_are_invalid_and_timed_when_read(
        tmp_path: Path) -> None:
    config = model(tmp_path)
    pipeline = ModelPipeline(config, load_reference(config))
    source = ModelSource.of(pipeline)
    source.start(NOW)
    write(tmp_path / "a.jsonl", [NOW - 10, NOW + MAX_FUTURE_SECONDS + 1, 1e300, NOW + 5])
    assert feed(source, pipeline, lambda: NOW) == 4
    source.close()
    counters = pipeline.counters.values()
    assert counters.values_invalid["ts"] == 2
    assert counters.last_record_timestamp == NOW + 5
    assert pipeline.window.view(NOW).times.tolist() == [NOW - 10, NOW, NOW, NOW + 5]
    assert pipeline.window.view(NOW + 3600 + 1).rows == 1  # only the one of NOW + 5 is left


def test_timestamps_of_the_past_are_kept_whatever_the_clock(tmp_path: Path) -> None:
    config = model(tmp_path, window={"rows": 10})
    pipeline = ModelPipeline(config, load_reference(config))
    source = ModelSource.of(pipeline)
    write(tmp_path / "a.jsonl", [-1e300, 0.0, NOW - 3600])
    assert feed(source, pipeline, lambda: NOW) == 3
    source.close()
    assert pipeline.counters.values().values_invalid["ts"] == 0
    assert pipeline.counters.values().last_record_timestamp == NOW - 3600
    assert pipeline.window.view(NOW).times.tolist() == [-1e300, 0.0, NOW - 3600]


def test_a_reference_smaller_than_min_rows_is_logged_when_the_pipeline_starts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = model(tmp_path, drift={"min_rows": 500})
    ModelPipeline(config, load_reference(config))
    details = [getattr(r, "detail", "") for r in caplog.records
               if r.getMessage() == "reference too small"]
    assert len(details) == 2
    assert "200 rows, fewer than drift.min_rows (500)" in details[0]
    assert "the drift alarm needs at least 200" not in details[1]  # 200 rows: one block of 20
    assert "false-alarm rate with this one reference" in details[1]
