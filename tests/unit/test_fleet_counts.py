"""Fleet counts (SPEC 6.8): bounds from the reference, buckets and categories equal numpy's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from exporter.collector import DriftCollector, OpenMetricsView
from exporter.counters import ModelCounters
from exporter.fleet import FleetCounts, fleet_reference, le_label
from exporter.reference import OTHER, ReferenceProfile, profile_categorical, profile_numerical
from exporter.state import ModelState


def _bounds(reference: np.ndarray, buckets: int) -> np.ndarray:
    return np.unique(np.quantile(reference, np.arange(1, buckets) / buckets))


class TestFleetReference:
    def test_bounds_are_the_reference_quantiles_without_duplicates(self) -> None:
        ref = np.sort(np.random.default_rng(1).poisson(3.0, 5000).astype(np.float64))
        fleet = fleet_reference(ref, 20)
        np.testing.assert_array_equal(fleet.bounds, _bounds(ref, 20))
        assert len(fleet.bounds) < 19  # many ties: duplicates dropped
        assert fleet.labels[-1] == "+Inf"

    def test_the_cdf_is_the_share_of_reference_values_at_or_below_each_bound(self) -> None:
        ref = np.sort(np.random.default_rng(2).lognormal(0.0, 1.0, 3001))
        fleet = fleet_reference(ref, 50)
        expected = [(ref <= b).mean() for b in fleet.bounds]
        np.testing.assert_allclose(fleet.cdf, expected, rtol=0, atol=1e-15)
        assert fleet.bucket_ratios.sum() == pytest.approx(1.0)
        assert (fleet.bucket_ratios >= 0).all()

    def test_labels_read_back_as_the_exact_bounds(self) -> None:
        ref = np.sort(np.random.default_rng(3).normal(1e7, 3e6, 2000))
        fleet = fleet_reference(ref, 20)
        assert [float(le) for le in fleet.labels[:-1]] == list(fleet.bounds)
        assert le_label(0.1) == "0.1"

    def test_an_empty_reference_has_no_bounds(self) -> None:
        fleet = fleet_reference(np.empty(0), 20)
        assert fleet.bounds.size == 0
        assert fleet.labels == ("+Inf",)


class TestFleetCounts:
    def test_cumulative_buckets_count_usable_values_at_or_below_each_bound(self) -> None:
        rng = np.random.default_rng(4)
        ref = np.sort(rng.normal(0.0, 1.0, 4000))
        fleet = fleet_reference(ref, 20)
        counts = FleetCounts({"x": fleet}, {})
        batches = [rng.normal(0.3, 1.0, n) for n in (10, 500, 1)]
        batches[1][::7] = np.nan  # missing values are not observed
        for batch in batches:
            counts.add({"x": batch}, {})
        values = np.concatenate(batches)
        values = values[~np.isnan(values)]
        got = counts.values().numerical["x"]
        expected = [int((values <= b).sum()) for b in fleet.bounds] + [values.size]
        assert list(got.cumulative) == expected
        assert got.total == pytest.approx(values.sum())
        assert got.labels == fleet.labels

    def test_a_value_equal_to_a_bound_is_counted_in_that_bound(self) -> None:
        ref = np.sort(np.arange(1.0, 101.0))
        fleet = fleet_reference(ref, 4)
        counts = FleetCounts({"x": fleet}, {})
        counts.add({"x": fleet.bounds.copy()}, {})
        assert list(counts.values().numerical["x"].cumulative) == [1, 2, 3, 3]

    def test_categories_beyond_the_cap_and_unseen_values_count_as_other(self) -> None:
        values = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20 + [None] * 5, dtype=object)
        ref = profile_categorical("plan", values, max_categories=2)
        counts = FleetCounts({}, {"plan": ref.fleet_slots()})
        window = np.array(["a", "c", "zzz", None, "b", "a"], dtype=object)
        counts.add({}, {"plan": ref.encode(window)})
        got = counts.values().categorical["plan"]
        assert dict(zip(got.labels, got.counts, strict=True)) == {"a": 2, "b": 1, OTHER: 2}

    def test_other_is_present_even_when_every_category_is_exposed(self) -> None:
        ref = profile_categorical("plan", np.array(["a", "b"], dtype=object), 20)
        assert ref.fleet_slots().labels == ("a", "b", OTHER)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
           st.lists(st.floats(-1e6, 1e6) | st.just(float("nan")), max_size=200),
           st.integers(2, 60))
    def test_counts_equal_numpy_for_any_reference_and_window(
            self, reference: list[float], window: list[float], buckets: int) -> None:
        ref = np.sort(np.array(reference))
        fleet = fleet_reference(ref, buckets)
        counts = FleetCounts({"x": fleet}, {})
        data = np.array(window, dtype=np.float64)
        half = len(data) // 2
        counts.add({"x": data[:half]}, {})
        counts.add({"x": data[half:]}, {})
        usable = data[~np.isnan(data)]
        got = counts.values().numerical["x"].cumulative
        assert list(got) == [int((usable <= b).sum()) for b in fleet.bounds] + [usable.size]
        assert np.all(np.diff(fleet.cdf) >= 0)


class TestFleetRendering:
    def test_histogram_cdf_and_category_counters_are_rendered_per_model(self) -> None:
        rng = np.random.default_rng(5)
        num = profile_numerical("x", rng.normal(0.0, 1.0, 1000), bins=10, fleet_buckets=5)
        cat = profile_categorical("plan", np.array(["a", "b", "b", ""], dtype=object), 20)
        profile = ReferenceProfile("m", 1000, {"x": num, "plan": cat})
        counts = FleetCounts({"x": num.fleet}, {"plan": cat.fleet_slots()})
        counts.add({"x": np.array([-5.0, 0.0, 5.0])},
                   {"plan": cat.encode(np.array(["b", "", "q"], dtype=object))})
        state = ModelState("m", profile, ("x", "plan"), None, (),
                           ModelCounters(["x", "plan"], ["x", "plan"]).values(),
                           fleet=counts.values())
        registry = CollectorRegistry()
        registry.register(DriftCollector(lambda: [state]))
        assert registry.get_sample_value("drift_feature_values_count",
                                          {"model": "m", "feature": "x"}) == 3
        assert registry.get_sample_value("drift_feature_values_bucket",
                                          {"model": "m", "feature": "x", "le": "+Inf"}) == 3
        assert registry.get_sample_value("drift_feature_values_sum",
                                          {"model": "m", "feature": "x"}) == 0.0
        first = num.fleet.labels[0]
        assert registry.get_sample_value("drift_feature_values_bucket",
                                          {"model": "m", "feature": "x", "le": first}) == 1
        assert registry.get_sample_value("drift_reference_feature_cdf",
                                          {"model": "m", "feature": "x", "le": first}) == 0.2
        assert registry.get_sample_value(
            "drift_reference_feature_bucket_ratio",
            {"model": "m", "feature": "x", "le": first, "lower": "-Inf"}) == 0.2
        assert registry.get_sample_value(
            "drift_feature_category_values_total",
            {"model": "m", "feature": "plan", "category": "__empty__"}) == 1
        assert registry.get_sample_value(
            "drift_feature_category_values_total",
            {"model": "m", "feature": "plan", "category": OTHER}) == 1
        text = generate_latest(registry).decode()
        assert "# TYPE drift_feature_values histogram" in text
        assert "# TYPE drift_reference_feature_cdf untyped" in text


class TestOpenMetrics:
    def _registry(self) -> CollectorRegistry:
        ref = profile_numerical("x", np.random.default_rng(6).normal(0.0, 1.0, 500), bins=10)
        counts = FleetCounts({"x": ref.fleet}, {})
        counts.add({"x": np.array([-1.0, 2.0])}, {})
        state = ModelState("m", ReferenceProfile("m", 500, {"x": ref}), ("x",), None, (),
                           ModelCounters(["x"], ["x"]).values(), fleet=counts.values())
        registry = CollectorRegistry()
        registry.register(DriftCollector(lambda: [state]))
        return registry

    def test_the_text_format_has_count_and_sum_even_with_negative_bounds(self) -> None:
        registry = self._registry()
        labels = {"model": "m", "feature": "x"}
        assert registry.get_sample_value("drift_feature_values_count", labels) == 2
        assert registry.get_sample_value("drift_feature_values_sum", labels) == 1.0

    def test_openmetrics_leaves_them_out_where_its_parser_requires(self) -> None:
        text = openmetrics_latest(OpenMetricsView(self._registry())).decode()
        families = {f.name: f for f in openmetrics_families(text)}  # strict: raises if invalid
        names = {s.name for s in families["drift_feature_values"].samples}
        assert names == {"drift_feature_values_bucket"}
        with pytest.raises(ValueError, match="negative buckets"):
            list(openmetrics_families(openmetrics_latest(self._registry()).decode()))


class TestSmallAndLargeBatches:
    @settings(max_examples=60, deadline=None)
    @given(st.integers(1, 3000), st.integers(0, 2**31 - 1))
    def test_a_batch_is_binned_alike_whatever_its_size(self, rows: int, seed: int) -> None:
        # below SMALL_BATCH_ROWS one comparison matrix, above it a search per column
        rng = np.random.default_rng(seed)
        poisson = fleet_reference(np.sort(rng.poisson(2.0, 2000).astype(np.float64)), 20)
        normal = fleet_reference(np.sort(rng.normal(size=2000)), 7)
        counts = FleetCounts({"p": poisson, "n": normal}, {})
        batch = {"p": rng.poisson(2.0, rows).astype(np.float64), "n": rng.normal(size=rows)}
        batch["p"][rng.random(rows) < 0.1] = np.nan
        batch["n"][: rows // 3] = normal.bounds[rng.integers(0, len(normal.bounds), rows // 3)]
        small, large = counts._bin_small(batch), counts._bin_large(batch)
        for name in batch:
            np.testing.assert_array_equal(small[name][0], large[name][0])
            assert small[name][1] == pytest.approx(large[name][1], rel=1e-12, abs=1e-9)
