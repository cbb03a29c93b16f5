"""compute(window, reference) equals scipy/numpy on the same values, and the collector renders
exactly the snapshot (checked through a real registry)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from scipy import stats
from scipy.spatial.distance import jensenshannon

from exporter.collector import DriftCollector
from exporter.config import ModelConfig, parse_config
from exporter.counters import ModelCounters
from exporter.pipeline import ModelPipeline
from exporter.reference import NumericalReference, load_reference, profile_numerical
from exporter.snapshot import SortedWindow, compute, sorted_column
from exporter.thresholds import Thresholds
from exporter.window import Records, Window

RNG = np.random.default_rng(42)
REF_N, WIN_N = 3000, 800


def _spec_bins(reference: np.ndarray, window: np.ndarray, bins: int) -> tuple[np.ndarray, ...]:
    """SPEC 6.5 written out independently of exporter.stats."""
    edges = np.unique(np.quantile(reference, [i / bins for i in range(1, bins)]))
    full = np.concatenate(([-np.inf], edges, [np.inf]))

    def share(values: np.ndarray) -> np.ndarray:
        counts = np.array([np.sum((values > lo) & (values <= hi))
                           for lo, hi in itertools.pairwise(full)])
        return counts / counts.sum()

    return share(reference), share(window)


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    p = np.where(p == 0, 1e-4, p)
    q = np.where(q == 0, 1e-4, q)
    return float(np.sum((q - p) * np.log(q / p)))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelConfig, dict[str, np.ndarray],
                                                              dict[str, np.ndarray]]:
    tmp = tmp_path_factory.mktemp("snap")
    ref = pd.DataFrame({
        "x": RNG.normal(size=REF_N),
        "y": RNG.lognormal(size=REF_N),
        "k": RNG.integers(0, 5, REF_N).astype(float),
        "c": RNG.choice(["a", "b", "c", "d"], size=REF_N, p=[0.5, 0.3, 0.15, 0.05]),
        "p": RNG.random(REF_N),
    })
    ref.loc[::50, "x"] = np.nan
    ref.to_parquet(tmp / "ref.parquet", index=False)
    win = {
        "x": RNG.normal(0.2, 1.0, size=WIN_N),
        "y": RNG.lognormal(size=WIN_N),
        "k": RNG.integers(0, 6, WIN_N).astype(float),
        "c": RNG.choice(["a", "b", "c", "e"], size=WIN_N, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
        "p": RNG.random(WIN_N) ** 1.3,
    }
    win["x"][::40] = np.nan
    config = parse_config({"models": [{
        "name": "m", "logs": {"path": str(tmp / "*.jsonl")},
        "reference": {"path": str(tmp / "ref.parquet")},
        "features": [{"name": "x", "type": "numerical"},
                     {"name": "y", "type": "numerical", "statistic": "psi"},
                     {"name": "k", "type": "numerical", "statistic": "wasserstein"},
                     {"name": "c", "type": "categorical"}],
        "prediction": {"column": "p", "type": "numerical"},
        "window": {"rows": WIN_N}, "drift": {"min_rows": 50}}]}, base_dir=tmp)
    return config.models[0], {k: ref[k].to_numpy() for k in ref}, win


def _snapshot(model: ModelConfig, win: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    profile = load_reference(model)
    pipeline = ModelPipeline(model, profile)
    window: Window = pipeline.window
    codes = {"c": profile.columns["c"].encode(win["c"])}  # type: ignore[union-attr]
    numbers = {k: win[k] for k in ("x", "y", "k", "p")}
    window.append(Records(WIN_N, numbers, codes, np.zeros(WIN_N)))
    return profile, compute(window.view(0.0), profile, model, Thresholds("m", profile.rows))


class TestNumericalSnapshot:
    """Every numerical statistic equals scipy on the same usable values."""

    def test_ks_wasserstein_psi_and_js_equal_scipy(self, setup) -> None:  # type: ignore[no-untyped-def]
        model, ref, win = setup
        _, snap = _snapshot(model, win)
        for col in snap.features[:3]:
            r = ref[col.name][~np.isnan(ref[col.name])]
            w = win[col.name][~np.isnan(win[col.name])]
            ks = stats.ks_2samp(r, w)
            assert col.gauges["ks_statistic"] == pytest.approx(ks.statistic, abs=1e-9)
            assert col.scores["ks"] == pytest.approx(ks.pvalue, abs=1e-6)
            expected_w = stats.wasserstein_distance(r, w) / max(np.std(r, ddof=1), 0.001)
            assert col.scores["wasserstein"] == pytest.approx(expected_w, rel=1e-9)
            p, q = _spec_bins(r, w, 10)
            assert col.scores["psi"] == pytest.approx(_psi(p, q), rel=1e-9)
            assert col.scores["jensen_shannon"] == pytest.approx(jensenshannon(p, q, base=2),
                                                                 rel=1e-9)
            assert col.bins == pytest.approx(list(q)), "the window's bins, for the landing page"
            assert col.mean == pytest.approx(np.mean(w))
            assert col.stddev == pytest.approx(np.std(w, ddof=1))
            assert col.missing_ratio == pytest.approx(1 - len(w) / WIN_N)

    def test_the_score_is_the_configured_statistic(self, setup) -> None:  # type: ignore[no-untyped-def]
        model, _, win = setup
        _, snap = _snapshot(model, win)
        x, y, k = snap.features[:3]
        assert x.score == x.scores["ks"]
        assert x.threshold == 0.001
        assert x.detected == (x.score < x.threshold)
        assert y.score == y.scores["psi"]
        assert y.detected == (y.score >= y.threshold)
        assert k.score == k.scores["wasserstein"]

    def test_prediction_quantiles_equal_numpy(self, setup) -> None:  # type: ignore[no-untyped-def]
        model, _, win = setup
        _, snap = _snapshot(model, win)
        assert snap.prediction is not None
        expected = np.quantile(win["p"], [0.05, 0.25, 0.5, 0.75, 0.95])
        assert [v for _, v in snap.prediction.quantiles] == pytest.approx(list(expected))

    def test_drift_gauges_are_absent_below_min_rows(self, setup) -> None:  # type: ignore[no-untyped-def]
        model, _, win = setup
        small = {k: v[:10] for k, v in win.items()}
        profile = load_reference(model)
        window = ModelPipeline(model, profile).window
        codes = {"c": profile.columns["c"].encode(small["c"])}  # type: ignore[union-attr]
        window.append(Records(10, {k: small[k] for k in ("x", "y", "k", "p")}, codes,
                              np.zeros(10)))
        snap = compute(window.view(0.0), profile, model, Thresholds("m", profile.rows))
        x = snap.features[0]
        assert x.mean is not None
        assert not x.scores
        assert not x.gauges
        assert not x.bins
        assert x.detected is None
        assert snap.dataset_drift_share is None


class TestCategoricalSnapshot:
    """Categorical statistics equal scipy over the reference categories plus an unseen bin."""

    def test_chi2_js_psi_and_unseen_ratio_equal_scipy(self, setup) -> None:  # type: ignore[no-untyped-def]
        model, ref, win = setup
        _, snap = _snapshot(model, win)
        c = snap.features[3]
        cats = ["a", "b", "c", "d"]
        ref_counts = np.array([np.sum(ref["c"] == k) for k in cats] + [0])
        win_counts = np.array([np.sum(win["c"] == k) for k in cats]
                              + [np.sum(~np.isin(win["c"], cats))])
        seen = (ref_counts + win_counts) > 0
        expected_p = stats.chi2_contingency([ref_counts[seen], win_counts[seen]]).pvalue
        assert c.scores["chi2"] == pytest.approx(expected_p, rel=1e-9)
        p, q = ref_counts / ref_counts.sum(), win_counts / win_counts.sum()
        assert c.scores["jensen_shannon"] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
        assert c.scores["psi"] == pytest.approx(_psi(p, q), rel=1e-9)
        assert c.bins == pytest.approx(list(q)), "the window's bins, for the landing page"
        assert c.unseen_ratio == pytest.approx(np.mean(win["c"] == "e"))
        assert c.score == c.scores["jensen_shannon"]
        assert dict(c.category_ratios)["a"] == pytest.approx(np.mean(win["c"] == "a"))


class TestCollector:
    """The collector renders the snapshot and counters; values read back via the registry."""

    def test_rendered_gauges_equal_the_snapshot(self, setup) -> None:  # type: ignore[no-untyped-def]
        model, _, win = setup
        profile = load_reference(model)
        pipeline = ModelPipeline(model, profile)
        codes = {"c": profile.columns["c"].encode(win["c"])}  # type: ignore[union-attr]
        pipeline.window.append(Records(WIN_N, {k: win[k] for k in ("x", "y", "k", "p")},
                                       codes, np.zeros(WIN_N)))
        snap = pipeline.recompute(0.0)[0]
        registry = CollectorRegistry()
        registry.register(DriftCollector(lambda: [pipeline.state()]))
        get = registry.get_sample_value
        x = snap.features[0]
        assert get("drift_feature_ks_statistic", {"model": "m", "feature": "x"}) == x.gauges[
            "ks_statistic"]
        assert get("drift_feature_drift_detected", {"model": "m", "feature": "x"}) == float(
            bool(x.detected))
        assert get("drift_window_rows", {"model": "m"}) == WIN_N
        assert get("drift_reference_rows", {"model": "m"}) == REF_N
        assert get("drift_prediction_quantile", {"model": "m", "q": "0.5"}) == pytest.approx(
            np.median(win["p"]))
        assert get("drift_feature_category_ratio",
                   {"model": "m", "feature": "c", "category": "a"}) == pytest.approx(
            np.mean(win["c"] == "a"))
        assert get("drift_detections_total", {"model": "m", "feature": "y"}) == float(
            bool(snap.features[1].detected))
        assert get("drift_exporter_build_info", {"version": "0.1.0"}) == 1.0
        assert get("drift_prediction_chi2_pvalue", {"model": "m"}) is None

    def test_nothing_window_related_is_rendered_before_the_first_snapshot(self, setup) -> None:  # type: ignore[no-untyped-def]
        model, _, _ = setup
        pipeline = ModelPipeline(model, load_reference(model))
        registry = CollectorRegistry()
        registry.register(DriftCollector(lambda: [pipeline.state()]))
        assert registry.get_sample_value("drift_window_rows", {"model": "m"}) is None
        assert registry.get_sample_value("drift_feature_mean",
                                         {"model": "m", "feature": "x"}) is None
        assert registry.get_sample_value("drift_reference_feature_mean",
                                         {"model": "m", "feature": "x"}) is not None
        assert registry.get_sample_value("drift_rows_ingested_total", {"model": "m"}) == 0


class TestDetectionCounter:
    """drift_detections_total counts not-drifted -> drifted transitions only."""

    def test_only_rising_edges_are_counted(self) -> None:
        counters = ModelCounters(["x"], ["x"])
        for state in (None, False, True, True, False, True, None, True):
            counters.observe_detection("x", state)
        assert counters.values().detections[("", "x")] == 2


class TestSortedColumns:
    """compute_sorted updates the previous view's sorted columns only when that is the same
    window's earlier run of rows, unchanged in place; otherwise it sorts anew."""

    @staticmethod
    def _setup() -> tuple[Window, NumericalReference]:
        reference = profile_numerical("x", np.array([0.0, 1.0, 2.0]), 10, 8)
        window = Window(["x"], [], rows=4, duration=None, objects=("id",))
        return window, reference

    @staticmethod
    def _append(window: Window, values: list[float]) -> None:
        ids = np.array([f"r{v}" for v in values], dtype=object)
        window.append(Records(len(values), {"x": np.array(values)}, {},
                              np.zeros(len(values)), {"id": ids}))

    def test_new_rows_are_sorted_into_the_previous_columns(self) -> None:
        window, reference = self._setup()
        self._append(window, [3.0, 1.0, 2.0, 0.5])
        first = window.view(0.0)
        previous = SortedWindow(first.first, first.rows, first.edits, dict(first.numbers),
                                {"x": sorted_column(first, reference, None)})
        self._append(window, [1.5])
        column = sorted_column(window.view(0.0), reference, previous)
        assert column.values.tolist() == [0.5, 1.0, 1.5, 2.0]
        assert column.ranks.tolist() == [1, 2, 2, 3]

    def test_values_changed_in_place_are_sorted_anew(self) -> None:
        window, reference = self._setup()
        self._append(window, [3.0, 1.0, 2.0, 0.5])
        first = window.view(0.0)
        stale = sorted_column(first, reference, None)
        window.assign("id", np.array(["r1.0"], dtype=object), "x", np.array([9.0]))
        view = window.view(0.0)
        previous = SortedWindow(first.first, first.rows, first.edits, dict(first.numbers),
                                {"x": stale})
        assert sorted_column(view, reference, previous).values.tolist() == [0.5, 2.0, 3.0, 9.0]

    def test_a_view_that_is_not_a_later_run_of_the_same_rows_is_sorted_anew(self) -> None:
        window, reference = self._setup()
        self._append(window, [3.0, 1.0])
        first = window.view(0.0)
        previous = SortedWindow(first.first, first.rows, first.edits, dict(first.numbers),
                                {"x": sorted_column(first, reference, None)})
        self._append(window, [0.1, 0.2, 0.3, 0.4, 0.6])  # more than the window: a gap
        view = window.view(0.0)
        assert view.first > previous.first + previous.rows
        assert sorted_column(view, reference, previous).values.tolist() == [0.2, 0.3, 0.4, 0.6]


class TestKeptSortedColumns:
    def test_a_window_keeps_its_sorted_columns_up_to_the_memory_bound_and_not_beyond(
            self) -> None:
        from exporter.snapshot import MAX_SORTED_BYTES, SORTED_BYTES_PER_VALUE, keeps_sorted
        assert keeps_sorted(100_000, 21)  # the benchmark's window: ~34 MB
        assert not keeps_sorted(300_000, 13)  # ~62 MB: recomputed from scratch each time
        values = MAX_SORTED_BYTES // SORTED_BYTES_PER_VALUE
        assert keeps_sorted(values, 1)
        assert not keeps_sorted(values + 1, 1)
