"""Mean, stddev and normed Wasserstein near the float limits (issue 13, item 17): finite
whenever the true value is finite, and equal to exact rational arithmetic on every sample.

numpy overflows on its way to finite answers (two values of 1e308 have a sum of +Inf, the
squared deviations of +-1e200 are +Inf); the exporter rescales such samples by a power of two.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporter.stats.ecdf import FloatArray, sorted_sample
from exporter.stats.merged import ks_and_wasserstein
from exporter.stats.moments import mean, mean_and_stddev, stddev
from exporter.stats.scaling import rescaled, restored, sample_exponent

LIMITS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX = float(np.finfo(np.float64).max)

anywhere = st.floats(allow_nan=False, allow_infinity=False)
near_the_limit = st.floats(1e300, MAX).flatmap(lambda x: st.sampled_from([x, -x]))
ordinary = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
value = st.one_of(anywhere, near_the_limit, ordinary)
finite_samples = st.lists(value, min_size=1, max_size=30).map(
    lambda xs: np.array(xs, dtype=np.float64))


def _as_float(exact: Fraction) -> float:
    """The exact value rounded to a float, or +-inf beyond the float range."""
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def _exact_mean(xs: FloatArray) -> Fraction:
    return sum((Fraction(float(x)) for x in xs), Fraction(0)) / len(xs)


def _exact_sqrt(x: Fraction) -> float:
    """sqrt of a non-negative rational, to float precision, or inf beyond the float range."""
    if x == 0:
        return 0.0
    half = (x.numerator.bit_length() - x.denominator.bit_length()) // 2
    scaled = x / Fraction(4) ** half if half >= 0 else x * Fraction(4) ** -half
    try:
        return math.ldexp(math.sqrt(float(scaled)), half)
    except OverflowError:
        return math.inf


def _exact_stddev(xs: FloatArray) -> float:
    m = _exact_mean(xs)
    return _exact_sqrt(sum(((Fraction(float(x)) - m) ** 2 for x in xs), Fraction(0))
                       / (len(xs) - 1))


def _exact_wasserstein(ref: FloatArray, win: FloatArray) -> Fraction:
    """Integral of |F_ref - F_win| over the pooled values, in rationals."""
    pooled = sorted({float(x) for x in np.concatenate((ref, win))})
    total = Fraction(0)
    for lo, hi in itertools.pairwise(pooled):
        f_ref = Fraction(int(np.sum(ref <= lo)), len(ref))
        f_win = Fraction(int(np.sum(win <= lo)), len(win))
        total += abs(f_ref - f_win) * (Fraction(hi) - Fraction(lo))
    return total


def _scale(xs: FloatArray) -> float:
    return float(np.max(np.abs(xs)))


class TestMeanAndStddevAtTheLimits:
    def test_two_values_of_1e308_have_mean_1e308(self) -> None:
        assert mean(np.array([1e308, 1e308])) == 1e308

    def test_values_near_1e308_have_a_finite_stddev(self) -> None:
        assert stddev(np.array([1e308, -1e308])) == pytest.approx(math.sqrt(2) * 1e308,
                                                                  rel=1e-15)
        assert stddev(np.array([1e308, 0.0, 1e308])) == pytest.approx(
            _exact_stddev(np.array([1e308, 0.0, 1e308])), rel=1e-15)

    def test_tiny_values_keep_their_stddev(self) -> None:
        assert stddev(np.array([1e-300, 2e-300])) == pytest.approx(math.sqrt(0.5) * 1e-300,
                                                                   rel=1e-15)

    def test_ordinary_samples_are_numpys_bit_for_bit(self) -> None:
        values = np.random.default_rng(1).normal(10.0, 2.0, 10_001)
        assert mean(values) == float(np.mean(values))
        assert stddev(values) == float(np.std(values, ddof=1))

    @LIMITS
    # magnitudes that are not rescaled (stats.scaling)
    @given(st.lists(st.one_of(st.integers(-3, 3).map(float), st.floats(-1e6, 1e6).filter(
        lambda x: x == 0 or abs(x) > 1e-100)), min_size=1, max_size=300).map(
            lambda xs: np.array(xs, dtype=np.float64)))
    def test_mean_and_stddev_from_one_sum_are_numpys_bit_for_bit(self, xs: FloatArray) -> None:
        expected_sd = float(np.std(xs, ddof=1)) if xs.shape[0] >= 2 else None
        assert mean_and_stddev(xs) == (float(np.mean(xs)), expected_sd)
        ordered = np.sort(xs)
        assert mean_and_stddev(ordered, ordered=True) == (float(np.mean(ordered)), expected_sd
                                                           if expected_sd is None else
                                                           float(np.std(ordered, ddof=1)))

    @LIMITS
    @given(finite_samples)
    def test_at_the_limits_they_are_numpys_of_the_rescaled_values_bit_for_bit(
            self, xs: FloatArray) -> None:
        exponent = sample_exponent(xs)
        scaled = rescaled(xs, exponent)
        expected_sd = (restored(float(np.std(scaled, ddof=1)), exponent) if xs.shape[0] >= 2
                       else None)
        assert mean_and_stddev(xs) == (mean(xs), expected_sd)

    @LIMITS
    @given(finite_samples)
    # The exact mean 2**-1075 is half the smallest subnormal: rounded to even, 0 is right.
    @example(np.array([0.0, 5e-324]))
    def test_the_mean_is_finite_and_exact_to_rounding(self, xs: FloatArray) -> None:
        got = mean(xs)
        assert got is not None
        assert math.isfinite(got)
        # Within rounding of the data's magnitude, plus the result's own rounding to the float
        # grid, whose spacing below 2**-1022 is 2**-1074 (half of it: 2**-1075).
        tolerance = Fraction(1e-13) * Fraction(_scale(xs)) + Fraction(1, 2**1075)
        assert abs(Fraction(got) - _exact_mean(xs)) <= tolerance

    @LIMITS
    @given(finite_samples.filter(lambda xs: xs.shape[0] >= 2))
    def test_the_stddev_is_finite_whenever_the_true_one_is(self, xs: FloatArray) -> None:
        got = stddev(xs)
        expected = _exact_stddev(xs)
        assert got is not None
        if math.isinf(expected):
            return  # beyond the float range (e.g. +-1.7e308): infinite is the right answer
        assert math.isfinite(got)
        # Backward stable: within rounding of the data's own magnitude.
        assert abs(got - expected) <= 1e-9 * expected + 1e-12 * _scale(xs)


class TestWassersteinAtTheLimits:
    def test_values_near_1e308_give_a_finite_normed_distance(self) -> None:
        ref = np.array([-1e308, 1e308])
        norm = stddev(ref)
        assert norm is not None
        assert math.isfinite(norm)
        _, normed = ks_and_wasserstein(sorted_sample(ref), np.array([1e308, 1e308]), norm)
        assert normed == pytest.approx(1e308 / norm, rel=1e-15)

    def test_ordinary_samples_are_unchanged_bit_for_bit(self) -> None:
        rng = np.random.default_rng(2)
        ref, win = sorted_sample(rng.normal(size=3000)), np.sort(rng.normal(0.1, 1.0, 700))
        d, w = ks_and_wasserstein(ref, win)
        assert ks_and_wasserstein(ref, win, 2.5) == (d, w / 2.5)

    @LIMITS
    @given(finite_samples, finite_samples)
    # subnormal values: the norm rescaled by 2**1036 overflowed and the distance came out 0
    @example(np.array([0.0]), np.array([2.22507386e-313]))
    def test_the_normed_distance_is_finite_whenever_the_true_one_is(
            self, ref: FloatArray, win: FloatArray) -> None:
        norm = max(stddev(ref) or 0.0, 0.001)
        if not math.isfinite(norm):
            return  # the reference's own spread is beyond the float range
        _d, got = ks_and_wasserstein(sorted_sample(ref), np.sort(win), norm)
        exact = _exact_wasserstein(ref, win) / Fraction(norm)
        expected = _as_float(exact)
        if math.isinf(expected):
            return
        assert math.isfinite(got)
        scale = Fraction(_scale(np.concatenate((ref, win)))) / Fraction(norm)
        assert abs(Fraction(got) - exact) <= Fraction(1e-9) * exact + Fraction(1e-12) * scale
