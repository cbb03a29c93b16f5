"""The drift alarm wired into the pipeline (SPEC 6.9): one detector per window key, fed the
encoded records of its key with their times, published in the state and rendered by the
collector. Driven by batches and an explicit clock (no wall clock, no files)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from pipeline_models import NOW, batch, collector_registry, write_model

from exporter.alarming import FLUSH_RECORDS, PREDICTION, alarm_reference, alarm_seed
from exporter.config import parse_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.routing import WindowKey

REFERENCE_ROWS = 20_000
RATE = 10.0  # records per second of the simulated clock


def pipeline(tmp_path: Path, **extra: object) -> ModelPipeline:
    """A model with a numerical x, a categorical city (a 80%, b 20%) and a numerical score."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=REFERENCE_ROWS),
                              "city": rng.choice(["a", "b"], REFERENCE_ROWS, p=[0.8, 0.2]),
                              "score": rng.random(REFERENCE_ROWS), "v": "1"})
    config = write_model(tmp_path, reference, **{"timestamp_column": "ts",
                                                 "window": {"rows": 1000}, **extra})
    return ModelPipeline(config, load_reference(config))


def stream(core: ModelPipeline, n: int, start: float, seed: int, *, x_shift: float = 0.0,
           b_share: float = 0.2, score_shift: float = 0.0, batch_rows: int = 200,
           **fields: object) -> float:
    """Add ``n`` fresh records of the reference's population (shifted as asked) at RATE per
    second from ``start``; returns the time after the last one."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=n) + x_shift
    cities = rng.choice(["a", "b"], n, p=[1 - b_share, b_share])
    scores = rng.random(n) + score_shift
    records = [{"x": float(x), "city": str(c), "score": float(s), "ts": start + i / RATE,
                **fields} for i, (x, c, s) in enumerate(zip(xs, cities, scores, strict=True))]
    for first in range(0, n, batch_rows):
        core.add(batch(core, records[first:first + batch_rows]), NOW)
    core.alarms.flush()  # what a snapshot does first: the alarm tests the queued records
    return start + n / RATE


class TestAlarmInThePipeline:
    def test_the_alarm_is_down_and_its_counter_at_zero_from_the_start(
            self, tmp_path: Path) -> None:
        reg = collector_registry(pipeline(tmp_path))
        assert reg.get_sample_value("drift_alarm", {"model": "m"}) == 0
        assert reg.get_sample_value("drift_alarm_raised_total", {"model": "m"}) == 0
        assert reg.get_sample_value("drift_alarm_false_alarm_every_seconds",
                                    {"model": "m"}) == 30 * 86400
        for feature in ("x", "city", PREDICTION):
            assert reg.get_sample_value("drift_feature_alarm",
                                        {"model": "m", "feature": feature}) == 0

    def test_records_drawn_like_the_reference_do_not_raise_it(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path)
        stream(core, 6400, NOW, seed=1)
        state = core.state().versions[0].alarm
        assert state is not None
        assert state.blocks_tested > 60  # every scale was tested, several times
        assert (state.raised, state.raised_total) == (False, 0)

    def test_a_strong_shift_of_one_feature_raises_it_with_that_column(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path)
        t = stream(core, 1600, NOW, seed=1)
        stream(core, 400, t, seed=2, x_shift=1.0)
        reg = collector_registry(core)
        assert reg.get_sample_value("drift_alarm", {"model": "m"}) == 1
        assert reg.get_sample_value("drift_alarm_raised_total", {"model": "m"}) == 1
        assert reg.get_sample_value("drift_feature_alarm", {"model": "m", "feature": "x"}) == 1
        assert reg.get_sample_value("drift_feature_alarm",
                                    {"model": "m", "feature": "city"}) == 0

    def test_a_category_share_change_raises_it_with_the_categorical_column(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path)
        stream(core, 1600, NOW, seed=3, b_share=0.6)
        state = core.state().versions[0].alarm
        assert state is not None
        assert state.raised
        assert "city" in state.columns

    def test_a_shifted_prediction_takes_part_as_the_prediction_column(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path)
        stream(core, 800, NOW, seed=4, score_shift=0.5)
        state = core.state().versions[0].alarm
        assert state is not None
        assert state.raised
        assert PREDICTION in state.columns

    def test_min_effect_above_the_shift_keeps_it_down(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, alarm={"min_effect": 0.9})
        stream(core, 1600, NOW, seed=2, x_shift=1.0)
        state = core.state().versions[0].alarm
        assert state is not None
        assert not state.raised

    def test_the_same_records_give_the_same_alarm_in_any_batching(self, tmp_path: Path) -> None:
        one, other = pipeline(tmp_path), pipeline(tmp_path)
        stream(one, 1600, NOW, seed=5, x_shift=0.3, batch_rows=1600)
        stream(other, 1600, NOW, seed=5, x_shift=0.3, batch_rows=37)
        assert one.state().versions[0].alarm == other.state().versions[0].alarm


class TestAlarmCadence:
    def test_queued_records_are_tested_at_the_next_snapshot(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path)
        rng = np.random.default_rng(3)
        records = [{"x": float(x) + 3.0, "city": "a", "score": 0.5, "ts": NOW + i / RATE}
                   for i, x in enumerate(rng.normal(size=400))]
        core.add(batch(core, records), NOW)
        state = core.state().versions[0].alarm
        assert state is not None
        assert state.blocks_tested == 0  # queued, not yet tested
        core.recompute(NOW)
        state = core.state().versions[0].alarm
        assert state is not None
        assert state.raised
        assert state.blocks_tested > 0

    def test_at_most_flush_records_wait_for_a_snapshot(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path)
        rng = np.random.default_rng(4)
        records = [{"x": float(x), "city": "a", "score": 0.5, "ts": NOW + i / RATE}
                   for i, x in enumerate(rng.normal(size=FLUSH_RECORDS))]
        for first in range(0, FLUSH_RECORDS - 100, 100):
            core.add(batch(core, records[first:first + 100]), NOW)
        state = core.state().versions[0].alarm
        assert state is not None
        assert state.blocks_tested == 0
        core.add(batch(core, records[FLUSH_RECORDS - 100:]), NOW)
        state = core.state().versions[0].alarm
        assert state is not None
        assert state.blocks_tested > 0  # the full queue was tested without a snapshot


class TestAlarmPerWindowKey:
    def test_each_model_version_has_its_own_alarm(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, version_column="v")
        stream(core, 1600, NOW, seed=1, v="old")
        stream(core, 400, NOW, seed=2, x_shift=1.0, v="new")
        reg = collector_registry(core)
        labels = {"model": "m", "model_version": "old"}
        assert reg.get_sample_value("drift_alarm", labels) == 0
        assert reg.get_sample_value("drift_alarm", {**labels, "model_version": "new"}) == 1
        assert reg.get_sample_value("drift_alarm_raised_total", labels) == 0
        assert reg.get_sample_value("drift_feature_alarm", {
            "model": "m", "model_version": "new", "feature": "x"}) == 1

    def test_an_evicted_version_takes_its_alarm_with_it(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, version_column="v", max_versions=1)
        stream(core, 100, NOW, seed=1, v="old")
        stream(core, 100, NOW, seed=1, v="new")
        assert [v.name for v in core.state().versions] == ["new"]
        assert core.alarms.state(WindowKey("old")) is None
        assert core.alarms.state(WindowKey("new")) is not None

    def test_the_versions_share_one_prepared_reference_and_differ_in_their_draws(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, version_column="v")
        stream(core, 400, NOW, seed=1, v="old")
        stream(core, 400, NOW, seed=1, v="new")
        old, new = core.alarms.detector(WindowKey("old")), core.alarms.detector(WindowKey("new"))
        assert old is not None
        assert new is not None
        assert old.reference is new.reference
        for a, b in zip(old.reference.columns, new.reference.columns, strict=True):
            assert a.keys.values is b.keys.values
            assert a.slot_rows is b.slot_rows
        # Same records, their own tie-breaks (per-key seeds): the windows differ in the draws.
        assert old._below[:, :400].tolist() != new._below[:, :400].tolist()

    def test_a_further_version_costs_its_buffers_not_a_copy_of_the_reference(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, version_column="v")
        stream(core, 100, NOW, seed=1, v="1")
        tracemalloc.start()
        try:
            stream(core, 100, NOW, seed=1, v="2")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # A copy of the reference: 3 columns x 20,000 rows x 3 arrays x 8 bytes = 1.4 MB.
        assert peak < 700_000

    def test_the_seed_depends_on_the_model_and_the_key_only(self) -> None:
        assert alarm_seed("m", WindowKey("1")) == alarm_seed("m", WindowKey("1"))
        assert alarm_seed("m", WindowKey("1")) != alarm_seed("m", WindowKey("2"))
        assert alarm_seed("m", WindowKey()) != alarm_seed("n", WindowKey())


class TestAlarmReference:
    def test_the_reference_is_rebuilt_with_its_missing_values_and_category_codes(
            self, tmp_path: Path) -> None:
        pd.DataFrame({"x": [1.0, None, 3.0, 2.0], "c": ["b", "a", None, "b"],
                      "p": [0.5, 0.5, 0.5, 0.5]}).to_parquet(
            tmp_path / "ref.parquet", index=False)
        config = parse_config({"models": [{
            "name": "m", "logs": {"path": str(tmp_path / "*.jsonl")},
            "reference": {"path": str(tmp_path / "ref.parquet")},
            "features": [{"name": "x", "type": "numerical"},
                         {"name": "c", "type": "categorical"}],
            "prediction": {"column": "p", "type": "numerical"}}]}).models[0]
        columns = alarm_reference(config, load_reference(config))
        assert [(c.name, c.kind) for c in columns] == [
            ("x", "numerical"), ("c", "categorical"), (PREDICTION, "numerical")]
        assert np.array_equal(columns[0].values, [1.0, 2.0, 3.0, np.nan], equal_nan=True)
        assert columns[1].values.tolist() == [0, 0, 1, -1]  # b (most frequent), a, missing
