"""Tests for exporter.stats.ks: the statistic and p-value of scipy.stats.ks_2samp (SPEC 6.1)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import scipy.special
from scipy import stats as sps

from exporter.stats import ks
from exporter.stats.ecdf import FloatArray, sorted_sample
from exporter.stats.ks import _kstwo_sf, _pelz_good_cdf, _smirnov, ks_pvalue, ks_statistic

STATISTIC_TOLERANCE = 1e-9  # SPEC 6.1
PVALUE_TOLERANCE = 1e-6  # SPEC 6.1

Draw = Callable[[np.random.Generator, int], FloatArray]
SHAPES: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(10.0, 2.0, n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.5, n),
    "student-t": lambda rng, n: rng.standard_t(2.0, n),
    "integers-with-ties": lambda rng, n: rng.integers(0, 6, n).astype(np.float64),
    "one-repeated-value": lambda rng, n: np.full(n, 3.25),
}
SIZES = [
    (1, 1),
    (1, 2),
    (2, 1),
    (2, 2),
    (100_000, 50),
    (50, 100_000),
    (3000, 700),
    (10_000, 10_000),  # largest exact case
    (10_000, 10_001),  # smallest asymptotic case
    (10_001, 10_000),
]


def _samples(shape: str, n1: int, n2: int, shift: float,
             seed: int) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    draw = SHAPES[shape]
    return draw(rng, n1), draw(rng, n2) + shift


def _scipy(reference: FloatArray, window: FloatArray, **kwargs: str) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = sps.ks_2samp(reference, window, **kwargs)
    return float(result.statistic), float(result.pvalue)


def _ours(reference: FloatArray, window: FloatArray) -> tuple[float, float]:
    d = ks_statistic(sorted_sample(reference), np.sort(window))
    return d, ks_pvalue(d, reference.shape[0], window.shape[0])


def _in_smirnov_branch(d: float, n1: int, n2: int) -> bool:
    """Whether scipy's asymptotic p-value for these sizes goes through scipy.special.smirnov."""
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = round(m * n / (m + n))
    t = en * d
    return (max(n1, n2) > 10_000 and en > 140 and 1.0 < t < en - 1
            and (d >= 0.5 or 2.2 <= t * d < 370.0))


class TestKsStatistic:
    @pytest.mark.parametrize(("n1", "n2"), SIZES)
    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("shift", [0.0, 0.5])
    def test_the_statistic_equals_scipy_for_every_shape_and_size(
            self, shape: str, n1: int, n2: int, shift: float) -> None:
        reference, window = _samples(shape, n1, n2, shift, seed=n1 * 7 + n2)
        ours, _ = _ours(reference, window)
        expected, _ = _scipy(reference, window)
        assert ours == pytest.approx(expected, abs=STATISTIC_TOLERANCE)

    def test_the_statistic_equals_scipy_on_tied_discrete_samples(self) -> None:
        rng = np.random.default_rng(3)
        reference = rng.poisson(2.0, 5000).astype(np.float64)
        window = rng.poisson(2.3, 400).astype(np.float64)
        assert _ours(reference, window)[0] == pytest.approx(
            _scipy(reference, window)[0], abs=STATISTIC_TOLERANCE)

    def test_the_statistic_takes_the_larger_of_both_directions(self) -> None:
        reference = np.array([0.0, 1.0, 2.0, 3.0])
        below = np.array([-5.0, -4.0, -3.0, 1.5])  # window ECDF runs ahead of the reference
        above = np.array([1.5, 7.0, 8.0, 9.0])  # window ECDF lags behind it
        assert _ours(reference, below)[0] == pytest.approx(0.75)
        assert _ours(reference, above)[0] == pytest.approx(0.75)

    def test_identical_samples_give_zero(self) -> None:
        values = np.random.default_rng(4).normal(size=300)
        assert _ours(values, values)[0] == 0.0

    def test_disjoint_samples_give_one(self) -> None:
        assert _ours(np.arange(10.0), np.arange(20.0, 25.0))[0] == 1.0
        assert _ours(np.arange(20.0, 25.0), np.arange(10.0))[0] == 1.0

    def test_the_window_need_not_be_deduplicated(self) -> None:
        reference = np.array([1.0, 2.0, 2.0, 3.0])
        window = np.array([2.0, 2.0, 2.0])
        assert ks_statistic(sorted_sample(reference), window) == 0.25
        assert _scipy(reference, window)[0] == 0.25

    def test_an_empty_sample_is_refused(self) -> None:
        with pytest.raises(ValueError, match="non-empty"):
            ks_statistic(sorted_sample(np.array([1.0])), np.empty(0))
        with pytest.raises(ValueError, match="non-empty"):
            ks_statistic(sorted_sample(np.empty(0)), np.array([1.0]))


class TestKsPvalue:
    @pytest.mark.parametrize(("n1", "n2"), SIZES)
    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
    def test_the_pvalue_equals_scipy_for_every_shape_and_size(
            self, shape: str, n1: int, n2: int, shift: float) -> None:
        reference, window = _samples(shape, n1, n2, shift, seed=n1 * 11 + n2)
        _, ours = _ours(reference, window)
        _, expected = _scipy(reference, window)
        assert ours == pytest.approx(expected, abs=PVALUE_TOLERANCE)

    def test_up_to_10000_values_the_pvalue_is_the_exact_one(self) -> None:
        reference, window = _samples("normal", 10_000, 9_999, 0.05, seed=1)
        _, ours = _ours(reference, window)
        _, exact = _scipy(reference, window, method="exact")
        _, asymptotic = _scipy(reference, window, method="asymp")
        assert ours == pytest.approx(exact, abs=1e-12)
        assert abs(exact - asymptotic) > 1e-6  # the two branches really differ here

    def test_above_10000_values_the_pvalue_is_the_asymptotic_one(self) -> None:
        reference, window = _samples("normal", 10_001, 9_999, 0.05, seed=1)
        _, ours = _ours(reference, window)
        _, asymptotic = _scipy(reference, window, method="asymp")
        assert ours == pytest.approx(asymptotic, abs=1e-12)

    @pytest.mark.parametrize(
        ("shape", "shift"),
        [("normal", 0.4), ("normal", 0.8), ("normal", 0.2), ("normal", 1.6), ("normal", 2.0),
         ("lognormal", 0.3), ("integers-with-ties", 0.5), ("student-t", 1.0)],
    )
    def test_the_pvalue_equals_scipy_where_scipy_uses_the_exact_smirnov_sum(
            self, shape: str, shift: float) -> None:
        reference, window = _samples(shape, 20_000, 2_000, shift, seed=5)
        d, ours = _ours(reference, window)
        expected_d, expected = _scipy(reference, window)
        assert _in_smirnov_branch(d, 20_000, 2_000), d
        assert d == pytest.approx(expected_d, abs=STATISTIC_TOLERANCE)
        assert ours == pytest.approx(expected, abs=PVALUE_TOLERANCE)
        assert ours == pytest.approx(expected, rel=1e-6)

    def test_the_pvalue_equals_scipy_when_the_statistic_is_at_least_one_half(self) -> None:
        reference, window = _samples("normal", 30_000, 400, 3.0, seed=6)
        d, ours = _ours(reference, window)
        assert d >= 0.5
        assert _in_smirnov_branch(d, 30_000, 400)
        expected = _scipy(reference, window)[1]
        assert ours == pytest.approx(expected, abs=PVALUE_TOLERANCE)
        assert ours == pytest.approx(expected, rel=1e-6)

    def test_the_pvalue_equals_scipy_for_large_unequal_samples(self) -> None:
        reference, window = _samples("lognormal", 200_000, 20_000, 0.02, seed=7)
        _, ours = _ours(reference, window)
        assert ours == pytest.approx(_scipy(reference, window)[1], abs=PVALUE_TOLERANCE)

    def test_a_zero_statistic_has_pvalue_one(self) -> None:
        assert ks_pvalue(0.0, 100, 50) == 1.0
        assert ks_pvalue(0.0, 50_000, 20_000) == 1.0

    def test_the_pvalue_stays_within_zero_and_one(self) -> None:
        for n1, n2 in [(1, 1), (3, 5), (20_000, 3_000)]:
            for d in (0.0, 0.01, 0.3, 0.5, 0.99, 1.0):
                assert 0.0 <= ks_pvalue(d, n1, n2) <= 1.0

    def test_a_failed_exact_computation_falls_back_like_scipy(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        # scipy keeps the statistic rounded to a multiple of 1/lcm(n1, n2) for the fallback.
        def failing(n1: int, n2: int, g: int, d: float,
                    alternative: str) -> tuple[bool, float, float]:
            lcm = (n1 // g) * n2
            return False, round(d * lcm) / lcm, float("nan")

        monkeypatch.setattr(ks._scipy_stats()._stats_py, "_attempt_exact_2kssamp", failing)
        d = 0.1 + 1e-12
        expected = float(sps.kstwo.sf(round(d * 600) / 600, round(200 * 300 / 500)))
        assert ks_pvalue(d, 200, 300) == pytest.approx(expected, abs=1e-15)


class TestKolmogorovDistribution:
    @pytest.mark.parametrize("n", [141, 500, 1_818, 10_000, 100_000])
    @pytest.mark.parametrize("nx2", [2.2, 3.0, 10.0, 50.0, 200.0, 369.0])
    def test_kstwo_sf_equals_scipy_in_the_smirnov_region(self, n: int, nx2: float) -> None:
        x = math.sqrt(nx2 / n)
        expected = float(sps.kstwo.sf(x, n))
        assert _kstwo_sf(x, n) == pytest.approx(expected, rel=1e-7, abs=1e-300)

    @pytest.mark.parametrize("n", [2, 50, 140, 141, 1_000, 100_000])
    @pytest.mark.parametrize("x", [0.001, 0.004, 0.02, 0.1, 0.5, 0.7, 0.999, 1.0])
    def test_kstwo_sf_equals_scipy_everywhere_else(self, n: int, x: float) -> None:
        assert _kstwo_sf(x, n) == pytest.approx(float(sps.kstwo.sf(x, n)), rel=1e-9, abs=1e-15)

    @pytest.mark.parametrize(("n", "x"), [(141, 0.2), (1_000, 0.05), (5_000, 0.5), (50_000, 0.01)])
    def test_the_log_space_smirnov_sum_equals_scipy_special(self, n: int, x: float) -> None:
        assert _smirnov(n, x) == pytest.approx(float(scipy.special.smirnov(n, x)), rel=1e-8)

    @pytest.mark.parametrize("n", [141, 300, 2_000, 50_000, 120_000])
    def test_kstwo_sf_equals_scipy_on_a_fine_grid_of_every_branch(self, n: int) -> None:
        # from below 1/(2n) (Ruben-Gambino) through Pelz-Good and the Durbin matrix region to
        # Smirnov's sum and x >= 0.5; scipy's own Durbin matrix overflows for n ~ 1e5 and
        # x ~ 2e-5 (it returns sf 0 for identical samples), so the grid starts above that
        grid = np.concatenate((np.geomspace(3.0 / n, 0.999, 60), [0.4 / n, 0.7 / n, 1.0 / n]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            worst = max(abs(_kstwo_sf(float(x), n) - float(sps.kstwo.sf(x, n))) for x in grid)
        assert worst < 1e-10  # SPEC 6.1 asks for 1e-6

    @pytest.mark.parametrize("n", [141, 1_000, 50_000])
    def test_the_pelz_good_series_equals_scipys(self, n: int) -> None:
        from scipy.stats import _ksstats

        for x in np.geomspace(2e-3, 0.3, 50):
            expected = float(_ksstats._kolmogn_PelzGood(n, float(x)))
            assert _pelz_good_cdf(n, float(x)) == pytest.approx(expected, rel=1e-12, abs=1e-300)
