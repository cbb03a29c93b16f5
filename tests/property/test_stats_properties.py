"""Property tests for exporter.stats: scipy equality and invariants on arbitrary finite samples.

The statistics take usable values only: callers drop NaN first (the snapshot and reference
layers do ``values[~np.isnan(values)]``), so the samples here are finite, and one test shows
what NaN would do.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from exporter.stats.binning import bin_counts, proportions, quantile_edges, sorted_bin_counts
from exporter.stats.chi2 import chi2_pvalue
from exporter.stats.divergence import jensen_shannon, psi
from exporter.stats.ecdf import FloatArray, sorted_sample
from exporter.stats.ks import ks_pvalue, ks_statistic
from exporter.stats.merged import ks_and_wasserstein
from exporter.stats.moments import mean, quantiles, stddev
from exporter.stats.wasserstein import wasserstein

PROPERTY = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Ties come from small integers; magnitudes from 1e-9 to 1e12, which covers feature values
# and predictions in practice while keeping scipy's own sums finite.
small_integers = st.integers(-3, 3).map(float)
moderate = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, allow_subnormal=False)
huge = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False, allow_subnormal=False)
tiny = st.floats(-1e-9, 1e-9, allow_nan=False, allow_infinity=False, allow_subnormal=False)
value = st.one_of(small_integers, moderate, huge, tiny)


def samples(max_size: int = 60) -> st.SearchStrategy[FloatArray]:
    """Non-empty finite samples: tied integers, mixed magnitudes, or both."""
    lists = st.one_of(
        st.lists(small_integers, min_size=1, max_size=max_size),
        st.lists(value, min_size=1, max_size=max_size),
        st.lists(st.one_of(small_integers, moderate), min_size=1, max_size=max_size),
    )
    return lists.map(lambda xs: np.array(xs, dtype=np.float64))


counts = st.lists(st.integers(0, 50), min_size=2, max_size=8).map(
    lambda xs: np.array(xs, dtype=np.int64))


def _scipy_ks(a: FloatArray, b: FloatArray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = sps.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


class TestSortedSampleProperties:
    @PROPERTY
    @given(samples())
    def test_the_values_are_numpys_sort_of_a_sample_without_nan(self, a: FloatArray) -> None:
        sample = sorted_sample(a)
        assert np.array_equal(sample.values, np.sort(a))
        assert np.array_equal(sample.unique, np.unique(a))
        assert int(sample.cum_counts[-1]) == a.shape[0]

    def test_nan_must_be_removed_before_a_sample_is_prepared(self) -> None:
        # NaN sorts last and becomes a distinct value, so every ECDF statistic would change;
        # callers (snapshot.py, reference.py) pass values[~np.isnan(values)].
        raw = np.array([2.0, np.nan, 1.0, 3.0])
        assert np.isnan(sorted_sample(raw).unique[-1])
        usable = sorted_sample(raw[~np.isnan(raw)])
        assert usable.values.tolist() == [1.0, 2.0, 3.0]
        window = np.array([1.5, 2.5])
        assert ks_statistic(usable, window) == pytest.approx(_scipy_ks(usable.values, window)[0])


class TestKsProperties:
    @PROPERTY
    @given(samples(), samples())
    def test_the_statistic_and_pvalue_equal_scipy(self, a: FloatArray, b: FloatArray) -> None:
        d = ks_statistic(sorted_sample(a), np.sort(b))
        p = ks_pvalue(d, a.shape[0], b.shape[0])
        expected_d, expected_p = _scipy_ks(a, b)
        assert d == pytest.approx(expected_d, abs=1e-9)
        assert p == pytest.approx(expected_p, abs=1e-6)
        assert 0.0 <= d <= 1.0
        assert 0.0 <= p <= 1.0

    @PROPERTY
    @given(samples())
    def test_identical_samples_give_zero_and_pvalue_one(self, a: FloatArray) -> None:
        d = ks_statistic(sorted_sample(a), np.sort(a))
        assert d == 0.0
        assert ks_pvalue(d, a.shape[0], a.shape[0]) == 1.0

    @FEW
    @given(st.integers(10_001, 60_000), st.integers(1, 5_000), st.floats(0.0, 1.0))
    def test_the_asymptotic_pvalue_equals_scipy_for_any_statistic(
            self, n1: int, n2: int, d: float) -> None:
        m, n = sorted([float(n1), float(n2)], reverse=True)
        expected = float(np.clip(sps.kstwo.sf(d, np.round(m * n / (m + n))), 0.0, 1.0))
        assert ks_pvalue(d, n1, n2) == pytest.approx(expected, abs=1e-6)


class TestWassersteinProperties:
    @PROPERTY
    @given(samples(), samples())
    def test_the_distance_equals_scipy_both_ways_and_is_not_negative(
            self, a: FloatArray, b: FloatArray) -> None:
        forward = wasserstein(sorted_sample(a), np.sort(b))
        backward = wasserstein(sorted_sample(b), np.sort(a))
        expected = sps.wasserstein_distance(a, b)
        assert forward >= 0.0
        assert forward == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert backward == pytest.approx(expected, rel=1e-9, abs=1e-12)

    @PROPERTY
    @given(samples())
    def test_identical_samples_give_zero(self, a: FloatArray) -> None:
        assert wasserstein(sorted_sample(a), np.sort(a)) == 0.0


class TestMergedKsAndWassersteinProperties:
    """The one-merge path the snapshot uses, against scipy (SPEC 6.1 tolerances)."""

    @PROPERTY
    @given(samples(), samples())
    def test_both_equal_scipy_both_ways(self, a: FloatArray, b: FloatArray) -> None:
        expected_w = sps.wasserstein_distance(a, b)
        for ref, win in ((a, b), (b, a)):
            d, w = ks_and_wasserstein(sorted_sample(ref), np.sort(win))
            expected_d, expected_p = _scipy_ks(ref, win)
            assert d == pytest.approx(expected_d, abs=1e-9)
            assert ks_pvalue(d, ref.shape[0], win.shape[0]) == pytest.approx(expected_p, abs=1e-6)
            assert w >= 0.0
            assert w == pytest.approx(expected_w, rel=1e-9, abs=1e-12)

    @PROPERTY
    @given(samples())
    def test_identical_samples_give_zero_for_both(self, a: FloatArray) -> None:
        assert ks_and_wasserstein(sorted_sample(a), np.sort(a)) == (0.0, 0.0)

    @FEW
    @given(st.integers(0, 2**32 - 1), st.integers(1, 3000), st.integers(1, 3000),
           st.sampled_from(["normal", "rounded", "integers"]))
    def test_large_samples_equal_scipy(self, seed: int, n1: int, n2: int, shape: str) -> None:
        rng = np.random.default_rng(seed)
        a, b = rng.normal(0.0, 1.0, n1), rng.normal(0.1, 1.2, n2)
        if shape == "rounded":
            a, b = np.round(a, 1), np.round(b, 1)
        elif shape == "integers":
            a, b = np.round(a * 2), np.round(b * 2)
        d, w = ks_and_wasserstein(sorted_sample(a), np.sort(b))
        expected_d, expected_p = _scipy_ks(a, b)
        assert d == pytest.approx(expected_d, abs=1e-9)
        assert ks_pvalue(d, n1, n2) == pytest.approx(expected_p, abs=1e-6)
        assert w == pytest.approx(sps.wasserstein_distance(a, b), rel=1e-9, abs=1e-12)


class TestBinningProperties:
    @PROPERTY
    @given(samples(), samples(), st.integers(1, 12))
    def test_sorted_bin_counts_equal_bin_counts(
            self, reference: FloatArray, values: FloatArray, bins: int) -> None:
        edges = quantile_edges(reference, bins)
        assert (sorted_bin_counts(edges, np.sort(values)).tolist()
                == bin_counts(edges, values).tolist())

    @PROPERTY
    @given(samples(), st.integers(1, 20))
    def test_quantile_edges_are_numpys_and_strictly_increasing(
            self, reference: FloatArray, bins: int) -> None:
        edges = quantile_edges(reference, bins)
        assert np.all(np.diff(edges) > 0)
        assert np.array_equal(edges, np.unique(np.quantile(reference, np.arange(1, bins) / bins)))

    @PROPERTY
    @given(samples(), samples(), st.integers(1, 12))
    def test_bin_counts_match_a_naive_assignment_and_sum_to_n(
            self, reference: FloatArray, values: FloatArray, bins: int) -> None:
        edges = quantile_edges(reference, bins)
        result = bin_counts(edges, values)
        naive = np.zeros(edges.shape[0] + 1, dtype=np.int64)
        for v in values:
            naive[int(np.sum(v > edges))] += 1  # bins are (e_i, e_i+1]
        assert result.tolist() == naive.tolist()
        assert int(result.sum()) == values.shape[0]


class TestDivergenceProperties:
    @PROPERTY
    @given(counts, counts)
    def test_psi_is_not_negative_and_js_is_within_zero_and_one(
            self, ref_counts: np.ndarray, win_counts: np.ndarray) -> None:
        size = min(ref_counts.shape[0], win_counts.shape[0])
        ref_counts, win_counts = ref_counts[:size], win_counts[:size]
        if ref_counts.sum() == 0 or win_counts.sum() == 0:
            return
        p_ref, p_win = proportions(ref_counts), proportions(win_counts)
        assert psi(p_ref, p_win) >= 0.0
        js = jensen_shannon(p_ref, p_win)
        assert 0.0 <= js <= 1.0
        assert js == pytest.approx(jensenshannon(p_ref, p_win, base=2), abs=1e-12)

    @PROPERTY
    @given(samples(), st.integers(1, 12))
    def test_identical_binned_samples_give_zero_psi_and_js(
            self, reference: FloatArray, bins: int) -> None:
        edges = quantile_edges(reference, bins)
        p = proportions(bin_counts(edges, reference))
        assert psi(p, p) == 0.0
        assert jensen_shannon(p, p) == 0.0

    @PROPERTY
    @given(samples(), samples(), st.integers(2, 12))
    def test_binned_samples_give_psi_at_least_zero_and_js_within_zero_and_one(
            self, reference: FloatArray, window: FloatArray, bins: int) -> None:
        edges = quantile_edges(reference, bins)
        p_ref = proportions(bin_counts(edges, reference))
        p_win = proportions(bin_counts(edges, window))
        assert psi(p_ref, p_win) >= 0.0
        assert 0.0 <= jensen_shannon(p_ref, p_win) <= 1.0


class TestChi2Properties:
    @PROPERTY
    @given(counts, counts)
    def test_the_pvalue_is_within_zero_and_one_and_equals_scipy(
            self, ref_counts: np.ndarray, win_counts: np.ndarray) -> None:
        size = min(ref_counts.shape[0], win_counts.shape[0])
        ref_counts, win_counts = ref_counts[:size], win_counts[:size]
        p = chi2_pvalue(ref_counts, win_counts)
        assert 0.0 <= p <= 1.0
        seen = (ref_counts + win_counts) > 0
        if seen.sum() >= 2 and ref_counts.sum() > 0 and win_counts.sum() > 0:
            expected = chi2_contingency([ref_counts[seen], win_counts[seen]]).pvalue
            assert p == pytest.approx(expected, rel=1e-9, abs=1e-12)


class TestMomentProperties:
    @PROPERTY
    @given(samples())
    def test_mean_stddev_and_quantiles_equal_numpy(self, a: FloatArray) -> None:
        assert mean(a) == pytest.approx(float(np.mean(a)), rel=1e-12, abs=1e-300)
        # numpy's squares underflow below ~1e-154 and overflow above ~1e154; the exporter
        # rescales there (tests/property/test_float_limits.py checks it against exact math).
        nonzero = np.abs(a[a != 0])
        squares_fit = nonzero.size == 0 or (nonzero.min() > 1e-150 and nonzero.max() < 1e150)
        if a.shape[0] >= 2 and squares_fit:
            assert stddev(a) == pytest.approx(float(np.std(a, ddof=1)), rel=1e-12, abs=1e-300)
        probs = (0.05, 0.25, 0.5, 0.75, 0.95)
        ordered = np.sort(a)
        assert quantiles(ordered, probs) == tuple(float(q) for q in np.quantile(ordered, probs))
