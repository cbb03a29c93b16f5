"""Tests for exporter.stats.wasserstein and the prepared reference of exporter.stats.ecdf."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from exporter.stats.ecdf import FloatArray, sorted_sample
from exporter.stats.wasserstein import wasserstein, wasserstein_rows

RELATIVE = 1e-9
ABSOLUTE = 1e-12

Draw = Callable[[np.random.Generator, int], FloatArray]
SHAPES: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(10.0, 2.0, n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.5, n),
    "student-t": lambda rng, n: rng.standard_t(1.5, n),
    "integers-with-ties": lambda rng, n: rng.integers(0, 6, n).astype(np.float64),
    "one-repeated-value": lambda rng, n: np.full(n, 3.25),
}
SIZES = [(1, 1), (1, 2), (2, 1), (2, 2), (100_000, 50), (50, 100_000), (3000, 700),
         (10_000, 10_001)]


def _ours(reference: FloatArray, window: FloatArray) -> float:
    return wasserstein(sorted_sample(reference), np.sort(window))


def _exact(u: FloatArray, v: FloatArray) -> float:
    """The integral of |U - V| in exact rational arithmetic (small samples only)."""
    points = np.sort(np.concatenate((u, v)))
    su, sv = np.sort(u), np.sort(v)
    total = Fraction(0)
    for left, right in itertools.pairwise(points):
        fu = Fraction(int(np.searchsorted(su, left, side="right")), u.shape[0])
        fv = Fraction(int(np.searchsorted(sv, left, side="right")), v.shape[0])
        total += abs(fu - fv) * (Fraction(float(right)) - Fraction(float(left)))
    return float(total)


class TestSortedSample:
    def test_it_holds_the_sorted_values_their_distinct_values_and_cumulative_counts(self) -> None:
        sample = sorted_sample(np.array([3.0, 1.0, 2.0, 1.0, 3.0, 3.0]))
        assert sample.values.tolist() == [1.0, 1.0, 2.0, 3.0, 3.0, 3.0]
        assert sample.unique.tolist() == [1.0, 2.0, 3.0]
        assert sample.cum_counts.tolist() == [2, 3, 6]
        assert sample.size == 6

    def test_the_integral_is_the_area_under_the_ecdf_from_the_smallest_value(self) -> None:
        sample = sorted_sample(np.array([0.0, 0.0, 1.0, 3.0]))
        # ECDF 0.5 on [0, 1), 0.75 on [1, 3)
        total = sample.integral + sample.integral_error
        assert total.tolist() == pytest.approx([0.0, 0.5, 2.0])

    def test_the_integral_keeps_the_digits_its_rounded_prefix_sums_lose(self) -> None:
        values = np.concatenate(([-1e12], np.random.default_rng(1).normal(size=1000)))
        sample = sorted_sample(values)
        steps = [Fraction(int(c), sample.size) * (Fraction(float(b)) - Fraction(float(a)))
                 for c, a, b in zip(sample.cum_counts[:-1], sample.unique[:-1],
                                    sample.unique[1:], strict=True)]
        exact_last_minus_second = float(sum(steps[1:], Fraction(0)))
        compensated = ((sample.integral[-1] - sample.integral[1])
                       + (sample.integral_error[-1] - sample.integral_error[1]))
        assert compensated == pytest.approx(exact_last_minus_second, rel=1e-13)

    def test_an_empty_sample_has_no_values(self) -> None:
        sample = sorted_sample(np.empty(0))
        assert sample.size == 0
        assert sample.unique.shape == (0,)


class TestWasserstein:
    @pytest.mark.parametrize(("n1", "n2"), SIZES)
    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("shift", [0.0, 0.3])
    def test_the_distance_equals_scipy_for_every_shape_and_size(
            self, shape: str, n1: int, n2: int, shift: float) -> None:
        rng = np.random.default_rng(n1 * 13 + n2)
        reference = SHAPES[shape](rng, n1)
        window = SHAPES[shape](rng, n2) + shift
        expected = sps.wasserstein_distance(reference, window)
        assert _ours(reference, window) == pytest.approx(expected, rel=RELATIVE, abs=ABSOLUTE)

    def test_the_distance_equals_scipy_on_tied_discrete_samples(self) -> None:
        rng = np.random.default_rng(2)
        reference = rng.poisson(2.0, 5000).astype(np.float64)
        window = rng.poisson(2.2, 300).astype(np.float64)
        assert _ours(reference, window) == pytest.approx(
            sps.wasserstein_distance(reference, window), rel=RELATIVE, abs=ABSOLUTE)

    def test_identical_samples_give_exactly_zero_even_across_magnitudes(self) -> None:
        values = np.array([-1.2e11, -3.5e6, -7.0, 0.0, 0.0, 1e-3, 2.03, 9.6e3, 2.7e9, 1e10])
        assert _ours(values, values) == 0.0
        assert sps.wasserstein_distance(values, values) == 0.0

    def test_a_far_away_sentinel_mass_costs_no_precision(self) -> None:
        # Half of both samples sit at -1e9; the distance comes from the data near 0 only.
        rng = np.random.default_rng(3)
        reference = np.concatenate((np.full(500, -1e9), rng.normal(size=500)))
        window = np.concatenate((np.full(5, -1e9), rng.normal(size=5)))
        expected = _exact(reference, window)
        assert _ours(reference, window) == pytest.approx(expected, rel=1e-13)
        assert sps.wasserstein_distance(reference, window) == pytest.approx(expected, rel=1e-13)

    @pytest.mark.parametrize("seed", range(5))
    def test_the_distance_equals_the_exact_rational_integral(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        reference = rng.standard_cauchy(300) * 10.0 ** rng.integers(-3, 6, 300)
        window = rng.standard_cauchy(40) * 10.0 ** rng.integers(-3, 6, 40)
        assert _ours(reference, window) == pytest.approx(_exact(reference, window), rel=1e-12)

    def test_shifting_the_window_by_c_gives_c(self) -> None:
        values = np.random.default_rng(4).normal(size=200)
        assert _ours(values, values + 0.75) == pytest.approx(0.75, rel=1e-12)
        assert _ours(values + 0.75, values) == pytest.approx(0.75, rel=1e-12)

    def test_the_distance_is_symmetric_in_its_samples(self) -> None:
        rng = np.random.default_rng(5)
        a, b = rng.lognormal(size=700), rng.normal(size=90)
        assert _ours(a, b) == pytest.approx(_ours(b, a), rel=1e-12)

    def test_a_window_outside_the_reference_range_is_handled(self) -> None:
        reference = np.array([0.0, 1.0, 2.0])
        assert _ours(reference, np.array([10.0, 11.0])) == pytest.approx(
            sps.wasserstein_distance(reference, [10.0, 11.0]))
        assert _ours(reference, np.array([-10.0])) == pytest.approx(
            sps.wasserstein_distance(reference, [-10.0]))

    def test_a_window_summed_in_several_blocks_equals_scipy(self) -> None:
        rng = np.random.default_rng(7)
        reference, window = rng.normal(size=1000), rng.normal(0.01, 1.0, 300_000)
        assert _ours(reference, window) == pytest.approx(
            sps.wasserstein_distance(reference, window), rel=RELATIVE)

    def test_an_empty_sample_is_refused(self) -> None:
        with pytest.raises(ValueError, match="non-empty"):
            wasserstein(sorted_sample(np.array([1.0])), np.empty(0))
        with pytest.raises(ValueError, match="non-empty"):
            wasserstein(sorted_sample(np.empty(0)), np.array([1.0]))


class TestWassersteinRows:
    def test_each_row_gets_the_distance_of_that_window(self) -> None:
        rng = np.random.default_rng(6)
        reference = sorted_sample(rng.normal(size=2000))
        windows = np.sort(rng.normal(0.1, 1.2, size=(7, 150)), axis=1)
        windows[3] = np.round(windows[3])  # ties inside a row
        rows = wasserstein_rows(reference, windows)
        assert rows.shape == (7,)
        for row, window in zip(rows, windows, strict=True):
            assert row == pytest.approx(wasserstein(reference, window), rel=1e-12)
            assert row == pytest.approx(sps.wasserstein_distance(reference.values, window),
                                        rel=RELATIVE)

    def test_many_rows_summed_in_several_blocks_match_one_row_at_a_time(self) -> None:
        rng = np.random.default_rng(8)
        reference = sorted_sample(rng.lognormal(size=500))
        windows = np.sort(rng.lognormal(size=(300, 1000)), axis=1)
        rows = wasserstein_rows(reference, windows)
        expected = [wasserstein(reference, window) for window in windows]
        assert rows.tolist() == pytest.approx(expected, rel=1e-12)
