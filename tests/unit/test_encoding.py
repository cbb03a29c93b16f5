"""Encoder: a parsed batch becomes window records (codes, numbers, labels, record times)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pipeline_models import NOW, model

from exporter.encoding import Encoder
from exporter.parsing import batch_from_records
from exporter.window import MAX_FUTURE_SECONDS


class TestEncoder:
    """One encoder per model, driven with batches and an explicit clock."""

    def test_categories_become_codes_of_the_reference_and_numbers_stay(
            self, tmp_path: Path) -> None:
        config, profile = model(tmp_path)
        encoder = Encoder(config, profile)
        batch = batch_from_records([{"x": 1.5, "city": "b", "score": 0.2},
                                    {"x": None, "city": "zzz", "score": 0.3}], encoder.columns)
        records = encoder.encode(batch, NOW).records
        assert records.rows == 2
        assert records.numbers["x"][0] == 1.5
        assert np.isnan(records.numbers["x"][1])
        categories = profile.columns["city"].categories  # type: ignore[union-attr]
        assert categories[records.codes["city"][0]] == "b"
        assert records.codes["city"][1] == len(categories)  # the unseen slot
        assert records.times.tolist() == [NOW, NOW]  # no timestamp column: the time read

    def test_the_label_and_a_categorical_predictions_text_ride_along(
            self, tmp_path: Path) -> None:
        config, profile = model(tmp_path, prediction={"column": "city", "type": "categorical"},
                                features=[{"name": "x", "type": "numerical"}],
                                label={"column": "truth", "task": "classification"})
        encoder = Encoder(config, profile)
        batch = batch_from_records([{"x": 1.0, "city": "a", "truth": "b"}], encoder.columns)
        records = encoder.encode(batch, NOW).records
        assert records.objects["truth"].tolist() == ["b"]
        assert records.objects["city"].tolist() == ["a"]
        assert set(encoder.new_window().view(NOW).objects) == {"truth", "city"}

    def test_the_label_column_is_a_copy_the_feedback_may_fill(self, tmp_path: Path) -> None:
        config, profile = model(tmp_path, label={"column": "y", "task": "regression"})
        encoder = Encoder(config, profile)
        batch = batch_from_records([{"x": 1.0, "city": "a", "y": None}], encoder.columns)
        records = encoder.encode(batch, NOW).records
        assert records.numbers["y"] is not batch.numbers["y"]

    def test_timestamps_far_ahead_of_the_clock_are_invalid_and_timed_when_read(
            self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        config, profile = model(tmp_path, timestamp_column="ts")
        encoder = Encoder(config, profile)
        stamps = [NOW - 10, NOW + 2 * MAX_FUTURE_SECONDS, None]
        batch = batch_from_records([{"x": 1.0, "city": "a", "ts": t} for t in stamps],
                                   encoder.columns)
        encoded = encoder.encode(batch, NOW)
        assert encoded.records.times.tolist() == [NOW - 10, NOW, NOW]
        assert encoded.invalid["ts"] == 1  # a missing timestamp is not invalid
        assert encoded.newest == NOW
        encoder.encode(batch, NOW + 1)  # warned at most once a minute of the given clock
        encoder.encode(batch, NOW + 61)
        warnings = [r for r in caplog.records
                    if r.getMessage().startswith("record timestamps in the future")]
        assert len(warnings) == 2

    def test_ids_are_read_only_when_feedback_joins_by_them(self, tmp_path: Path) -> None:
        config, profile = model(tmp_path, id_column="id")
        assert "id" not in {c.name for c in Encoder(config, profile).columns}
        config, profile = model(tmp_path, id_column="id", label={
            "column": "y", "task": "regression", "feedback": {"path": str(tmp_path / "f.jsonl")}})
        assert "id" in {c.name for c in Encoder(config, profile).columns}
