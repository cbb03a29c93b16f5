"""Segments in the pipeline (SPEC 6.11): each segment's reference slice is profiled once and
its window, thresholds and alarm are compared with that slice; the whole model's series stay;
fleet counts count each record once. Driven by batches and an explicit clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pipeline_models import NOW, batch, collector_registry

from exporter.alarming import alarm_reference
from exporter.checking import segment_lines
from exporter.config import parse_config
from exporter.landing import landing_page
from exporter.pipeline import ModelPipeline
from exporter.reference import CategoricalReference, NumericalReference, load_reference
from exporter.routing import WindowKey
from exporter.segments import OTHER_SEGMENT

ROWS = 8000


def reference(tmp_path: Path) -> pd.DataFrame:
    """x ~ N(0, 1) in segment a, N(3, 1) in b, N(-3, 1) in the rest (c, missing)."""
    rng = np.random.default_rng(0)
    segment = rng.choice(np.array(["a", "b", "c", None], dtype=object), ROWS,
                         p=[0.45, 0.45, 0.05, 0.05])
    centre = np.select([segment == "a", segment == "b"], [0.0, 3.0], -3.0)
    frame = pd.DataFrame({"x": rng.normal(centre), "city": rng.choice(["p", "q", "r"], ROWS),
                          "score": rng.random(ROWS), "country": segment})
    frame.loc[(frame["country"] == "a") & (frame["city"] == "r"), "city"] = "p"  # a has no r
    frame.to_parquet(tmp_path / "ref.parquet", index=False)
    return frame


def pipeline(tmp_path: Path, **extra: object) -> ModelPipeline:
    entry: dict[str, object] = {
        "name": "m", "logs": {"path": str(tmp_path / "logs" / "*.jsonl")},
        "reference": {"path": str(tmp_path / "ref.parquet")},
        "features": [{"name": "x", "type": "numerical"},
                     {"name": "city", "type": "categorical"}],
        "prediction": {"column": "score", "type": "numerical"},
        "timestamp_column": "ts", "window": {"rows": 2000},
        "segments": {"column": "country", "max_segments": 2}}
    entry.update(extra)
    config = parse_config({"models": [entry]}, base_dir=tmp_path).models[0]
    return ModelPipeline(config, load_reference(config))


CITIES = {"a": [2 / 3, 1 / 3, 0.0], "b": [1 / 3, 1 / 3, 1 / 3]}  # as in the reference


def stream(core: ModelPipeline, n: int, segment: str, centre: float, seed: int) -> None:
    """n records of a segment, x ~ N(centre, 1), city and score drawn like its slice."""
    rng = np.random.default_rng(seed)
    cities = rng.choice(["p", "q", "r"], n, p=CITIES[segment])
    records = [{"x": float(x), "city": str(c), "score": float(s), "country": segment,
                "ts": NOW + i / 10} for i, (x, c, s) in
               enumerate(zip(rng.normal(centre, 1.0, n), cities, rng.random(n), strict=True))]
    for first in range(0, n, 200):
        core.add(batch(core, records[first:first + 200]), NOW)


class TestSegmentProfiles:
    def test_each_segment_is_profiled_on_its_slice_of_the_reference(
            self, tmp_path: Path) -> None:
        frame = reference(tmp_path)
        profile = pipeline(tmp_path).profile
        assert profile.segmentation is not None
        assert profile.segmentation.names == ("a", "b", OTHER_SEGMENT)
        rest = ~frame["country"].isin(["a", "b"])
        for name, rows in (("a", frame["country"] == "a"), ("b", frame["country"] == "b"),
                           (OTHER_SEGMENT, rest)):
            sliced = profile.segments[name]
            assert sliced.rows == int(rows.sum())
            x = sliced.columns["x"]
            assert isinstance(x, NumericalReference)
            np.testing.assert_array_equal(x.sample.values, np.sort(frame.loc[rows, "x"]))
            # SPEC 6.5's bins at the slice's own quantiles
            expected = np.unique(np.quantile(frame.loc[rows, "x"], np.arange(1, 10) / 10))
            np.testing.assert_allclose(x.edges, expected)

    def test_a_segments_categories_keep_the_whole_references_codes(self, tmp_path: Path) -> None:
        reference(tmp_path)
        profile = pipeline(tmp_path).profile
        whole, sliced = profile.columns["city"], profile.segments["a"].columns["city"]
        assert isinstance(whole, CategoricalReference)
        assert isinstance(sliced, CategoricalReference)
        assert sliced.categories == whole.categories
        assert sliced.counts[whole.categories.index("r")] == 0  # a has no r in the reference

    def test_the_alarm_of_a_segment_reads_its_slice(self, tmp_path: Path) -> None:
        reference(tmp_path)
        core = pipeline(tmp_path)
        expected = alarm_reference(core.config, core.profile.segments["b"])
        got = core.alarms.prepared("b")  # the detector of WindowKey("", "b") is built on it
        assert [c.name for c in got.columns] == [c.name for c in expected]
        assert [c.size for c in got.columns] == [c.values.shape[0] for c in expected]
        assert got.rows == core.profile.segments["b"].rows


class TestSegmentWindows:
    def test_records_of_one_segment_drawn_like_its_slice_drift_only_the_whole_model(
            self, tmp_path: Path) -> None:
        reference(tmp_path)
        core = pipeline(tmp_path)
        stream(core, 2000, "a", 0.0, seed=1)  # the mix moved: only a, drawn like a
        core.recompute(NOW)
        reg = collector_registry(core)
        whole = {"model": "m", "feature": "x"}
        assert reg.get_sample_value("drift_feature_drift_detected", whole) == 1
        assert reg.get_sample_value("drift_feature_drift_detected",
                                    {**whole, "segment": "a"}) == 0
        assert reg.get_sample_value("drift_alarm", {"model": "m"}) == 1
        assert reg.get_sample_value("drift_alarm", {"model": "m", "segment": "a"}) == 0
        assert reg.get_sample_value("drift_window_rows", {"model": "m", "segment": "b"}) == 0

    def test_a_drifting_segment_raises_its_own_alarm_and_detection(self, tmp_path: Path) -> None:
        reference(tmp_path)
        core = pipeline(tmp_path)
        stream(core, 1000, "b", 4.0, seed=2)
        core.recompute(NOW)
        reg = collector_registry(core)
        labels = {"model": "m", "segment": "b"}
        assert reg.get_sample_value("drift_alarm", labels) == 1
        assert reg.get_sample_value("drift_detections_total", {**labels, "feature": "x"}) == 1
        assert reg.get_sample_value("drift_detections_total",
                                    {"model": "m", "segment": "a", "feature": "x"}) == 0

    def test_fleet_counts_and_ingested_rows_count_each_record_once(
            self, tmp_path: Path) -> None:
        reference(tmp_path)
        core = pipeline(tmp_path)
        stream(core, 400, "a", 0.0, seed=3)
        reg = collector_registry(core)
        assert reg.get_sample_value("drift_rows_ingested_total", {"model": "m"}) == 400
        assert reg.get_sample_value("drift_feature_values_count",
                                    {"model": "m", "feature": "x"}) == 400
        assert reg.get_sample_value("drift_feature_values_count",
                                    {"model": "m", "feature": "x", "segment": "a"}) is None

    def test_versions_times_segments_keep_each_version_with_its_segment_windows(
            self, tmp_path: Path) -> None:
        frame = reference(tmp_path)
        frame.assign(v="1").to_parquet(tmp_path / "ref.parquet", index=False)
        core = pipeline(tmp_path, version_column="v", max_versions=2)
        for version in ("1", "2", "3"):
            records = [{"x": 0.0, "city": "p", "score": 0.5, "country": "a", "v": version,
                        "ts": NOW}]
            core.add(batch(core, records), NOW)
        keys = {key for key, _ in core.router.windows()}
        assert keys == {WindowKey(v, s) for v in ("2", "3")
                        for s in ("", "a", "b", OTHER_SEGMENT)}

    def test_a_categorical_feature_may_be_the_segment_column(self, tmp_path: Path) -> None:
        reference(tmp_path)
        core = pipeline(tmp_path, segments={"column": "city", "max_segments": 2})
        assert core.profile.segmentation is not None
        assert set(core.profile.segmentation.names) == {"p", "q", OTHER_SEGMENT}
        stream(core, 300, "a", 0.0, seed=4)
        rows = {key.segment: window.view(NOW).rows for key, window in core.router.windows()}
        assert rows[""] == 300
        assert sum(rows[s] for s in ("p", "q", OTHER_SEGMENT)) == 300

    def test_the_landing_page_names_each_segments_alarm(self, tmp_path: Path) -> None:
        reference(tmp_path)
        core = pipeline(tmp_path)
        page = landing_page([core.state()])
        for segment in ("a", "b", "__other__"):
            assert f"<h3>Segment {segment}</h3>" in page
        assert page.count('<span class="alarm ">down</span>') == 4


class TestCheckOutput:
    def test_check_lists_each_segment_with_its_reference_rows(self, tmp_path: Path) -> None:
        frame = reference(tmp_path)
        core = pipeline(tmp_path)
        lines = segment_lines(core.config, core.profile)
        counts = frame["country"].value_counts()
        assert lines == [
            "  segments by column 'country': 3 windows besides the whole model's",
            f"  segment 'a': reference {counts['a']} rows",
            f"  segment 'b': reference {counts['b']} rows",
            f"  segment '__other__': reference {ROWS - counts['a'] - counts['b']} rows"]

    def test_a_model_without_segments_prints_nothing_more(self, tmp_path: Path) -> None:
        reference(tmp_path)
        core = pipeline(tmp_path, segments=None)
        assert segment_lines(core.config, core.profile) == []
