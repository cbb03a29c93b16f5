"""exporter/collector.py on hand-built states: what is absent, what is escaped, how labels line
up. Independent of the pipeline: states are built from the collector's own input types."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.collector import DriftCollector, OpenMetricsView
from exporter.counters import CounterValues
from exporter.fleet import FleetValues, NumericalCounts
from exporter.reference import ReferenceProfile, profile_categorical, profile_numerical
from exporter.snapshot import ColumnSnapshot, ModelSnapshot
from exporter.state import ModelState, VersionState

QUOTED = 'say "hi"\\ and\nbye'  # a quote, a backslash and a newline
COLOURS = np.array(["red"] * 5 + ["green"] * 3 + ["blue"] * 2 + [QUOTED], dtype=object)


def _profile(name: str = "m") -> ReferenceProfile:
    x = profile_numerical("x", np.array([-2.0, -1.0, 0.0, 1.0, 2.0, np.nan]), bins=2,
                          fleet_buckets=2)
    colour = profile_categorical("colour", COLOURS, max_categories=4)
    return ReferenceProfile(name, 6, {"x": x, "colour": colour})


def _counters(versions: tuple[str, ...] = ("",)) -> CounterValues:
    return CounterValues(rows_ingested=0, rows_rejected={"malformed": 0, "too_long": 0},
                         values_invalid={"x": 0, "colour": 0}, files_rejected={"corrupt": 0},
                         detections={(v, f): 0 for v in versions for f in ("x", "colour")},
                         truncations=0, last_record_timestamp=None)


def _snapshot(*features: ColumnSnapshot, version: str = "") -> ModelSnapshot:
    return ModelSnapshot("m", 40, features, None, None, None, computed_at=1_700_000_000.0,
                         duration_seconds=0.01, version=version)


def _state(snapshot: ModelSnapshot | None, name: str = "m") -> ModelState:
    return ModelState(name, _profile(name), ("x", "colour"), None,
                      (VersionState("", snapshot),), _counters())


def _registry(*states: ModelState) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(DriftCollector(lambda: states))
    return registry


def _series(registry: CollectorRegistry) -> list[tuple[str, dict[str, str]]]:
    text = generate_latest(registry).decode()
    return [(s.name, s.labels) for f in text_string_to_metric_families(text) for s in f.samples]


class TestAbsentWhenUndefined:
    """SPEC 6: a value not defined yet is absent, never 0 or NaN."""

    def test_a_model_not_computed_yet_has_reference_gauges_and_counters_but_no_window_gauges(
            self) -> None:
        registry = _registry(_state(None))
        assert registry.get_sample_value("drift_reference_rows", {"model": "m"}) == 6
        assert registry.get_sample_value("drift_reference_feature_mean",
                                         {"model": "m", "feature": "x"}) == 0.0
        assert registry.get_sample_value("drift_rows_ingested_total", {"model": "m"}) == 0
        assert registry.get_sample_value("drift_detections_total",
                                         {"model": "m", "feature": "x"}) == 0
        for name in ("drift_window_rows", "drift_last_update_timestamp_seconds",
                     "drift_dataset_drift_share", "drift_last_record_timestamp_seconds"):
            assert registry.get_sample_value(name, {"model": "m"}) is None, name
        assert registry.get_sample_value("drift_feature_mean",
                                         {"model": "m", "feature": "x"}) is None

    def test_statistics_left_undefined_in_the_snapshot_are_absent(self) -> None:
        below_min_rows = ColumnSnapshot("x", "numerical", "ks", usable=3, missing_ratio=0.25,
                                        mean=1.5, stddev=None)
        registry = _registry(_state(_snapshot(below_min_rows)))
        labels = {"model": "m", "feature": "x"}
        assert registry.get_sample_value("drift_feature_mean", labels) == 1.5
        assert registry.get_sample_value("drift_feature_missing_ratio", labels) == 0.25
        for name in ("drift_feature_stddev", "drift_feature_ks_statistic",
                     "drift_feature_ks_pvalue", "drift_feature_drift_score",
                     "drift_feature_drift_threshold", "drift_feature_drift_detected"):
            assert registry.get_sample_value(name, labels) is None, name
        assert registry.get_sample_value("drift_window_rows", {"model": "m"}) == 40
        assert registry.get_sample_value("drift_dataset_drift_share", {"model": "m"}) is None

    def test_a_defined_score_renders_its_threshold_and_a_detected_flag(self) -> None:
        scored = ColumnSnapshot("x", "numerical", "ks", usable=40, mean=0.1, stddev=1.0,
                                scores={"ks": 0.001},
                                gauges={"ks_statistic": 0.4, "ks_pvalue": 0.001}, score=0.001,
                                threshold=0.01, detected=True)
        snapshot = replace(_snapshot(scored), dataset_drift_share=1.0,
                           dataset_drift_detected=True)
        registry = _registry(_state(snapshot))
        labels = {"model": "m", "feature": "x"}
        assert registry.get_sample_value("drift_feature_drift_score", labels) == 0.001
        assert registry.get_sample_value("drift_feature_drift_threshold", labels) == 0.01
        assert registry.get_sample_value("drift_feature_drift_detected", labels) == 1.0
        assert registry.get_sample_value("drift_dataset_drift_detected", {"model": "m"}) == 1.0


class TestLabels:
    """Label values as Prometheus reads them back."""

    def test_the_build_info_carries_the_package_version(self) -> None:
        registry = _registry()
        assert registry.get_sample_value("drift_exporter_build_info",
                                         {"version": __version__}) == 1.0

    def test_quotes_backslashes_and_newlines_in_a_category_are_escaped_and_read_back(
            self) -> None:
        column = ColumnSnapshot("colour", "categorical", "jensen_shannon", usable=4,
                                category_ratios=((QUOTED, 0.5), ("", 0.5)))
        registry = _registry(_state(_snapshot(column)))
        text = generate_latest(registry).decode()
        assert r'category="say \"hi\"\\ and\nbye"' in text
        assert registry.get_sample_value("drift_feature_category_ratio", {
            "model": "m", "feature": "colour", "category": QUOTED}) == 0.5
        assert registry.get_sample_value("drift_reference_feature_category_ratio", {
            "model": "m", "feature": "colour", "category": QUOTED}) == pytest.approx(1 / 11)

    def test_an_empty_category_is_exposed_as_empty_not_as_a_missing_label(self) -> None:
        column = ColumnSnapshot("colour", "categorical", "jensen_shannon", usable=2,
                                category_ratios=(("", 1.0),))
        registry = _registry(_state(_snapshot(column)))
        assert registry.get_sample_value("drift_feature_category_ratio", {
            "model": "m", "feature": "colour", "category": "__empty__"}) == 1.0

    def test_reference_categories_beyond_max_categories_are_summed_as_other(self) -> None:
        colour = profile_categorical("colour", COLOURS, max_categories=2)
        profile = _profile()
        profile = replace(profile, columns={**profile.columns, "colour": colour})
        registry = _registry(replace(_state(None), profile=profile))
        ratios = {labels["category"]: value for name, labels in _series(registry)
                  if name == "drift_reference_feature_category_ratio"
                  for value in [registry.get_sample_value(name, labels)]}
        assert ratios == pytest.approx({"red": 5 / 11, "green": 3 / 11, "__other__": 3 / 11})

    def test_every_series_of_a_versioned_model_carries_its_model_version(self) -> None:
        state = ModelState("v", _profile("v"), ("x", "colour"), None,
                           (VersionState("v1", _snapshot(version="v1")),),
                           _counters(("v1",)), versioned=True)
        series = _series(_registry(state))
        per_version = [labels for name, labels in series
                       if name in {"drift_window_rows", "drift_detections_total",
                                   "drift_reference_feature_mean"}]
        assert per_version
        assert all(labels.get("model_version") == "v1" for labels in per_version), per_version

    def test_a_versioned_model_next_to_an_unversioned_one_keeps_its_model_version(
            self) -> None:
        versioned = ModelState("v", _profile("v"), ("x", "colour"), None,
                               (VersionState("v1", _snapshot(version="v1")),
                                VersionState("v2", _snapshot(version="v2"))),
                               _counters(("v1", "v2")), versioned=True)
        series = _series(_registry(_state(_snapshot()), versioned))
        assert len(series) == len({(n, tuple(sorted(lb.items()))) for n, lb in series})
        rows = {labels.get("model_version") for name, labels in series
                if name == "drift_window_rows" and labels["model"] == "v"}
        assert rows == {"v1", "v2"}


class TestOpenMetricsView:
    """A fleet histogram with a negative bucket bound in each format (SPEC 6.8)."""

    def _state(self) -> ModelState:
        counts = NumericalCounts("x", ("-1.0", "1.0", "+Inf"), (2, 5, 6), total=1.5)
        return replace(_state(None), fleet=FleetValues({"x": counts}, {}))

    def test_the_text_format_carries_count_and_sum(self) -> None:
        registry = _registry(self._state())
        labels = {"model": "m", "feature": "x"}
        assert registry.get_sample_value("drift_feature_values_count", labels) == 6
        assert registry.get_sample_value("drift_feature_values_sum", labels) == 1.5

    def test_openmetrics_leaves_out_count_and_sum_but_keeps_the_buckets(self) -> None:
        view = OpenMetricsView(_registry(self._state()))
        text = generate_openmetrics(view).decode()  # type: ignore[no-untyped-call]
        assert 'drift_feature_values_bucket{feature="x",le="-1.0",model="m"} 2' in text
        assert "drift_feature_values_count" not in text
        assert "drift_feature_values_sum" not in text
