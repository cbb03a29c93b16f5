"""Tests for exporter.stats.calibration: ``threshold: auto`` (SPEC 6.1).

The false-alarm tests follow production: the reference is a fresh sample of size N from a true
distribution, the threshold is calibrated on that reference alone, and windows are then drawn
from the true distribution with a generator the calibration never saw. So the measured rate
includes the reference's own sampling noise. Binned windows are drawn as multinomial counts
over the true bin probabilities, which has the same distribution as drawing values and binning
them, at a fraction of the cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sps

from exporter.stats.binning import bin_counts, proportions, quantile_edges
from exporter.stats.calibration import (
    P_VALUE_ALPHA,
    binned_threshold,
    effective_size,
    gamma_tail,
    seed_for,
    wasserstein_threshold,
)
from exporter.stats.divergence import jensen_shannon_rows, psi_rows
from exporter.stats.ecdf import FloatArray, sorted_sample
from exporter.stats.ks import ks_pvalue, ks_statistic
from exporter.stats.wasserstein import wasserstein, wasserstein_rows

MAX_FALSE_ALARMS = 0.01
RARE = np.array([0.6, 0.3, 0.05, 0.03, 0.015, 0.005])
BINNED_REFERENCE_SIZES = (2_000, 20_000)
BINNED_WINDOW_SIZES = (100, 1_000, 5_000)
BINNED_REFERENCES = 40
BINNED_WINDOWS = 500

# A case draws (reference proportions, true proportions over the same bins) for a fresh reference.
BinnedCase = Callable[[np.random.Generator, int], tuple[FloatArray, FloatArray]]


def _numerical_case(dist: sps.rv_continuous | sps.rv_discrete) -> BinnedCase:
    def draw(rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray]:
        reference = dist.rvs(size=n, random_state=rng).astype(np.float64)
        edges = quantile_edges(reference, 10)
        p_reference = proportions(bin_counts(edges, reference))
        p_true = np.diff(np.concatenate(([0.0], dist.cdf(edges), [1.0])))
        return p_reference, p_true
    return draw


def _rare_categories(rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray]:
    counts = rng.multinomial(n, RARE)
    seen = counts > 0
    # Reference categories, then the bin of values the reference never saw.
    p_reference = proportions(np.concatenate((counts[seen], [0])))
    p_true = np.concatenate((RARE[seen], [RARE[~seen].sum()]))
    return p_reference, p_true


BINNED_CASES: dict[str, BinnedCase] = {
    "ten-equal-bins": _numerical_case(sps.norm(10.0, 2.0)),
    "skewed-bins-of-tied-data": _numerical_case(sps.poisson(1.5)),
    "rare-categories": _rare_categories,
}


def _binned_rate(statistic: str, case: BinnedCase, reference_n: int, window_n: int) -> float:
    rng = np.random.default_rng(seed_for("false-alarm", statistic, reference_n, window_n))
    crossed = 0
    for feature in range(BINNED_REFERENCES):
        p_reference, p_true = case(rng, reference_n)
        threshold = binned_threshold(statistic, p_reference, window_n, reference_n,
                                     seed_for("model", f"feature{feature}", statistic, window_n))
        windows = rng.multinomial(window_n, p_true, size=BINNED_WINDOWS) / window_n
        rows = psi_rows if statistic == "psi" else jensen_shannon_rows
        crossed += int(np.sum(rows(p_reference, windows) >= threshold))
    return crossed / (BINNED_REFERENCES * BINNED_WINDOWS)


class TestSeedFor:
    def test_the_seed_is_stable_and_depends_on_every_part(self) -> None:
        assert seed_for("m", "x", "psi", 100) == seed_for("m", "x", "psi", 100)
        assert seed_for("m", "x", "psi", 100) != seed_for("m", "x", "psi", 101)
        assert seed_for("m", "x", "psi", 100) != seed_for("m", "y", "psi", 100)


class TestEffectiveSize:
    def test_the_effective_size_is_that_of_a_two_sample_comparison(self) -> None:
        assert effective_size(1000, 1000) == 500
        assert effective_size(100, 10**9) == 100
        assert effective_size(1, 1) == 1


class TestGammaTail:
    def test_the_tail_is_the_quantile_of_the_gamma_fitted_by_moments(self) -> None:
        samples = np.random.default_rng(1).chisquare(5, 500)
        mean, var = samples.mean(), samples.var(ddof=1)
        expected = sps.gamma.ppf(0.99, mean**2 / var, scale=var / mean)
        assert gamma_tail(samples, 0.99) == pytest.approx(expected, rel=1e-12)

    def test_equal_samples_give_a_threshold_they_do_not_cross(self) -> None:
        assert gamma_tail(np.zeros(10)) > 0.0
        assert gamma_tail(np.full(10, 0.25)) > 0.25

    def test_no_samples_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            gamma_tail(np.empty(0))


class TestBinnedThreshold:
    P_REFERENCE = np.full(10, 0.1)

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    def test_the_same_seed_gives_the_same_threshold(self, statistic: str) -> None:
        first = binned_threshold(statistic, self.P_REFERENCE, 500, 10_000, seed=7)
        assert binned_threshold(statistic, self.P_REFERENCE, 500, 10_000, seed=7) == first
        assert binned_threshold(statistic, self.P_REFERENCE, 500, 10_000, seed=8) != first

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    def test_the_threshold_decreases_as_the_window_grows(self, statistic: str) -> None:
        thresholds = [binned_threshold(statistic, self.P_REFERENCE, n, 100_000, seed=1)
                      for n in (100, 300, 1000, 3000, 10_000, 30_000)]
        assert all(a > b for a, b in itertools.pairwise(thresholds))

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    def test_a_single_bin_reference_gets_a_threshold_its_own_windows_do_not_cross(
            self, statistic: str) -> None:
        p_reference = np.array([1.0, 0.0])
        threshold = binned_threshold(statistic, p_reference, 200, 5_000, seed=1)
        assert threshold > 0.0
        rows = psi_rows if statistic == "psi" else jensen_shannon_rows
        assert rows(p_reference, p_reference[np.newaxis, :])[0] < threshold

    def test_an_unknown_statistic_is_refused(self) -> None:
        with pytest.raises(ValueError, match="wasserstein"):
            binned_threshold("wasserstein", self.P_REFERENCE, 100, 100, seed=1)

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    @pytest.mark.parametrize("case", BINNED_CASES)
    def test_windows_from_the_reference_distribution_rarely_cross_the_threshold(
            self, statistic: str, case: str) -> None:
        rates = {(big_n, n): _binned_rate(statistic, BINNED_CASES[case], big_n, n)
                 for big_n in BINNED_REFERENCE_SIZES for n in BINNED_WINDOW_SIZES}
        print(f"{statistic} {case}: " + ", ".join(
            f"N={big_n} n={n}: {rate:.4%}" for (big_n, n), rate in rates.items()))
        assert max(rates.values()) < MAX_FALSE_ALARMS


WASSERSTEIN_CASES = {
    "normal": sps.norm(10.0, 2.0),
    "lognormal": sps.lognorm(1.0),
}
WASSERSTEIN_SIZES = [(2_000, 100), (2_000, 1_000), (20_000, 1_000), (20_000, 5_000)]
WASSERSTEIN_REFERENCES = 8
WASSERSTEIN_WINDOWS = 250


class TestWassersteinThreshold:
    REFERENCE = sorted_sample(np.random.default_rng(1).normal(size=5000))

    def test_the_same_seed_gives_the_same_threshold(self) -> None:
        first = wasserstein_threshold(self.REFERENCE, 400, 1.0, seed=3)
        assert wasserstein_threshold(self.REFERENCE, 400, 1.0, seed=3) == first
        assert wasserstein_threshold(self.REFERENCE, 400, 1.0, seed=4) != first

    def test_the_threshold_decreases_as_the_window_grows(self) -> None:
        thresholds = [wasserstein_threshold(self.REFERENCE, n, 1.0, seed=1)
                      for n in (50, 200, 1000, 5000, 50_000)]
        assert all(a > b for a, b in itertools.pairwise(thresholds))

    def test_the_threshold_scales_with_the_norm(self) -> None:
        assert wasserstein_threshold(self.REFERENCE, 300, 2.0, seed=1) == pytest.approx(
            wasserstein_threshold(self.REFERENCE, 300, 1.0, seed=1) / 2.0, rel=1e-12)

    def test_a_constant_reference_gets_a_threshold_an_equal_window_does_not_cross(self) -> None:
        reference = sorted_sample(np.full(3000, 7.0))
        threshold = wasserstein_threshold(reference, 5000, 0.001, seed=1)
        assert threshold > 0.0
        assert wasserstein(reference, np.full(5000, 7.0)) / 0.001 < threshold
        assert wasserstein(reference, np.full(5000, 7.001)) / 0.001 >= threshold

    def test_a_large_reference_is_bootstrapped_from_its_order_statistics(self) -> None:
        values = np.random.default_rng(2).normal(size=200_000)
        big = wasserstein_threshold(sorted_sample(values), 1000, 1.0, seed=5)
        thinned = wasserstein_threshold(sorted_sample(values[::10]), 1000, 1.0, seed=5)
        assert big == pytest.approx(thinned, rel=0.15)

    @pytest.mark.parametrize("case", WASSERSTEIN_CASES)
    def test_windows_from_the_reference_distribution_rarely_cross_the_threshold(
            self, case: str) -> None:
        dist = WASSERSTEIN_CASES[case]
        rng = np.random.default_rng(seed_for("false-alarm", case))
        rates = {}
        for big_n, n in WASSERSTEIN_SIZES:
            crossed = 0
            for feature in range(WASSERSTEIN_REFERENCES):
                reference = dist.rvs(size=big_n, random_state=rng)
                sample = sorted_sample(reference)
                norm = max(float(np.std(reference, ddof=1)), 0.001)
                threshold = wasserstein_threshold(
                    sample, n, norm, seed_for("model", f"feature{feature}", "wasserstein", n))
                windows = np.sort(dist.rvs(size=(WASSERSTEIN_WINDOWS, n), random_state=rng),
                                  axis=1)
                crossed += int(np.sum(wasserstein_rows(sample, windows) / norm >= threshold))
            rates[big_n, n] = crossed / (WASSERSTEIN_REFERENCES * WASSERSTEIN_WINDOWS)
        print(f"wasserstein {case}: " + ", ".join(
            f"N={big_n} n={n}: {rate:.4%}" for (big_n, n), rate in rates.items()))
        assert max(rates.values()) < MAX_FALSE_ALARMS


KS_CASES = {
    "continuous": lambda rng, n: rng.normal(10.0, 2.0, n),
    "tied": lambda rng, n: rng.poisson(2.0, n).astype(np.float64),
}


class TestPValueLevel:
    @pytest.mark.parametrize("case", KS_CASES)
    @pytest.mark.parametrize(("reference_n", "window_n"), [(2_000, 500), (20_000, 1_000)])
    def test_ks_windows_from_the_reference_distribution_rarely_fall_below_the_level(
            self, case: str, reference_n: int, window_n: int) -> None:
        draw = KS_CASES[case]
        rng = np.random.default_rng(seed_for("ks-false-alarm", case, reference_n))
        trials, below = 1_000, 0
        for _ in range(trials // 100):  # a fresh reference for every 100 windows
            reference = sorted_sample(draw(rng, reference_n))
            for _ in range(100):
                window = np.sort(draw(rng, window_n))
                d = ks_statistic(reference, window)
                below += ks_pvalue(d, reference_n, window_n) < P_VALUE_ALPHA
        rate = below / trials
        print(f"ks {case} N={reference_n} n={window_n}: {rate:.4%}")
        assert rate < MAX_FALSE_ALARMS
