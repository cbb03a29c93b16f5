"""FeedbackJoiner: late labels joined to window records by id, or kept (bounded) until their
prediction arrives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pipeline_models import NOW, model, with_feedback

from exporter.config import ModelConfig
from exporter.counters import ModelCounters
from exporter.encoding import Encoder
from exporter.feedback import FeedbackJoiner, feedback_columns
from exporter.parsing import Batch, batch_from_records
from exporter.reference import ReferenceProfile
from exporter.routing import WindowKey
from exporter.window import Records, Window

KEY = WindowKey()


class Parts:
    """An encoder, a window and a joiner of one model with feedback."""

    def __init__(self, config: ModelConfig, profile: ReferenceProfile) -> None:
        self.config = config
        self.encoder = Encoder(config, profile)
        self.counters = ModelCounters([], [], feedback=True)
        self.joiner = FeedbackJoiner(config, self.counters)
        self.window: Window = self.encoder.new_window()

    def predictions(self, ids: list[str], labels: list[float | None] | None = None) -> Records:
        values = labels or [None] * len(ids)
        batch = batch_from_records([{"x": 1.0, "city": "a", "score": 0.5, "id": i, "y": y}
                                    for i, y in zip(ids, values, strict=True)],
                                   self.encoder.columns)
        records = self.encoder.encode(batch, NOW).records
        self.joiner.fill(records)
        self.window.append(records)
        return records

    def feedback(self, pairs: list[tuple[str | None, float | None]]) -> list[tuple[WindowKey, int]]:
        columns = feedback_columns(self.config)
        assert columns is not None
        batch: Batch = batch_from_records([{"id": i, "y": y} for i, y in pairs], columns)
        return self.joiner.join(batch, [(KEY, self.window)])

    def labels(self) -> list[float]:
        return self.window.view(NOW).numbers["y"].tolist()


def parts(tmp_path: Path, **extra: object) -> Parts:
    return Parts(*model(tmp_path, **with_feedback(tmp_path, **extra)))


class TestFeedbackJoiner:
    """The join, the pending buffer and its counters."""

    def test_feedback_after_its_prediction_sets_the_label_in_the_window(
            self, tmp_path: Path) -> None:
        join = parts(tmp_path)
        join.predictions(["a", "b"])
        assert join.feedback([("b", 2.0)]) == [(KEY, 1)]
        assert np.isnan(join.labels()[0])  # no label yet
        assert join.labels()[1] == 2.0
        assert join.counters.values().feedback_matched == 1
        assert join.joiner.pending == 0

    def test_feedback_before_its_prediction_waits_and_fills_the_prediction(
            self, tmp_path: Path) -> None:
        join = parts(tmp_path)
        assert join.feedback([("a", 1.0), ("c", 3.0)]) == []
        assert join.joiner.pending == 2
        join.predictions(["a", "b"])
        assert join.labels()[0] == 1.0
        assert np.isnan(join.labels()[1])
        assert join.joiner.pending == 1  # c still waits
        assert join.counters.values().feedback_matched == 0  # matched counts joins only

    def test_a_waiting_label_does_not_overwrite_a_label_the_record_carries(
            self, tmp_path: Path) -> None:
        join = parts(tmp_path)
        join.feedback([("a", 1.0)])
        join.predictions(["a"], [5.0])
        assert join.labels() == [5.0]
        assert join.joiner.pending == 0  # used up all the same

    def test_the_buffer_is_bounded_by_the_window_and_overflow_is_unmatched(
            self, tmp_path: Path) -> None:
        join = parts(tmp_path, window={"rows": 3})
        join.feedback([(f"id{i}", float(i)) for i in range(5)])
        assert join.joiner.pending == 3
        assert join.counters.values().feedback_unmatched == 2
        join.predictions(["id0", "id4"])  # id0 left the buffer, id4 is still in it
        assert np.isnan(join.labels()[0])
        assert join.labels()[1] == 4.0

    def test_feedback_without_an_id_or_a_label_is_skipped(self, tmp_path: Path) -> None:
        join = parts(tmp_path)
        join.feedback([(None, 1.0), ("a", None)])
        assert join.joiner.pending == 0

    def test_unreadable_feedback_lines_are_counted_apart_from_predictions(
            self, tmp_path: Path) -> None:
        join = parts(tmp_path)
        batch = Batch(0, {"y": np.empty(0)}, {"id": np.empty(0, dtype=object)},
                      rejected={"malformed": 2})
        join.joiner.join(batch, [(KEY, join.window)])
        assert join.counters.values().rows_rejected["feedback_malformed"] == 2
