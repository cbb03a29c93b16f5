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
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sps

from exporter.stats import calibration
from exporter.stats.binning import bin_counts, proportions, quantile_edges
from exporter.stats.calibration import (
    MAX_SIMULATED_BINS,
    P_VALUE_ALPHA,
    binned_threshold,
    effective_size,
    gamma_tail,
    seed_for,
    wasserstein_threshold,
)
from exporter.stats.divergence import (
    JENSEN_SHANNON,
    PSI,
    BinnedDistance,
    jensen_shannon_rows,
    psi_rows,
)
from exporter.stats.ecdf import FloatArray, sorted_sample
from exporter.stats.ks import ks_pvalue, ks_statistic
from exporter.stats.wasserstein import wasserstein, wasserstein_rows

MAX_FALSE_ALARMS = 0.01
BINNED: dict[str, BinnedDistance] = {"psi": PSI, "jensen_shannon": JENSEN_SHANNON}
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
        threshold = binned_threshold(BINNED[statistic], p_reference, window_n, reference_n,
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
        first = binned_threshold(BINNED[statistic], self.P_REFERENCE, 500, 10_000, seed=7)
        assert binned_threshold(BINNED[statistic], self.P_REFERENCE, 500, 10_000, seed=7) == first
        assert binned_threshold(BINNED[statistic], self.P_REFERENCE, 500, 10_000, seed=8) != first

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    def test_the_threshold_decreases_as_the_window_grows(self, statistic: str) -> None:
        thresholds = [binned_threshold(BINNED[statistic], self.P_REFERENCE, n, 100_000, seed=1)
                      for n in (100, 300, 1000, 3000, 10_000, 30_000)]
        assert all(a > b for a, b in itertools.pairwise(thresholds))

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    def test_a_single_bin_reference_gets_a_threshold_its_own_windows_do_not_cross(
            self, statistic: str) -> None:
        p_reference = np.array([1.0, 0.0])
        threshold = binned_threshold(BINNED[statistic], p_reference, 200, 5_000, seed=1)
        assert threshold > 0.0
        rows = psi_rows if statistic == "psi" else jensen_shannon_rows
        assert rows(p_reference, p_reference[np.newaxis, :])[0] < threshold

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    @pytest.mark.parametrize("case", BINNED_CASES)
    def test_windows_from_the_reference_distribution_rarely_cross_the_threshold(
            self, statistic: str, case: str) -> None:
        rates = {(big_n, n): _binned_rate(statistic, BINNED_CASES[case], big_n, n)
                 for big_n in BINNED_REFERENCE_SIZES for n in BINNED_WINDOW_SIZES}
        print(f"{statistic} {case}: " + ", ".join(
            f"N={big_n} n={n}: {rate:.4%}" for (big_n, n), rate in rates.items()))
        assert max(rates.values()) < MAX_FALSE_ALARMS


def _true_shares(shape: str, categories: int) -> FloatArray:
    if shape == "uniform":
        p_true = np.full(categories, 1.0 / categories)
    elif shape == "zipf":
        p_true = 1.0 / np.arange(1, categories + 1) ** 1.1
    else:  # a few heavy categories and a long flat tail
        p_true = np.concatenate((np.full(20, 0.7 / 20), np.full(categories - 20,
                                                                 0.3 / (categories - 20))))
    result: FloatArray = p_true / p_true.sum()
    return result


def _sampled_reference(p_true: FloatArray, reference_n: int,
                       rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """(reference shares: seen categories then the unseen bin, true shares of those bins)."""
    counts = rng.multinomial(reference_n, p_true)
    seen = counts > 0
    return (proportions(np.append(counts[seen], 0)),
            np.append(p_true[seen], p_true[~seen].sum()))


# (shape, categories, reference rows): well sampled, and rare categories seen ~5-15 times,
# beyond MAX_SIMULATED_BINS and below it.
SPARSE_CASES = [("uniform", 2_000, 200_000), ("zipf", 3_000, 200_000),
                ("heavy-head-long-tail", 4_020, 70_000), ("uniform", 4_000, 40_000),
                ("heavy-head-long-tail", 1_020, 20_000), ("uniform", 800, 8_000)]


class TestHighCardinalityThreshold:
    """Beyond MAX_SIMULATED_BINS bins only the largest are simulated, and sparse bins (many
    seen equally rarely) are summed analytically."""

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    @pytest.mark.parametrize("shape", ["uniform", "zipf", "heavy-head-long-tail"])
    @pytest.mark.parametrize("window_n", [200, 5_000, 50_000])
    def test_a_well_sampled_reference_gets_about_the_threshold_of_the_full_simulation(
            self, monkeypatch: pytest.MonkeyPatch, statistic: str, shape: str,
            window_n: int) -> None:
        reference_n = 3_000_000  # every category seen 60 times or more
        p_reference, _ = _sampled_reference(_true_shares(shape, 3_000), reference_n,
                                            np.random.default_rng(4))
        assert p_reference.shape[0] > MAX_SIMULATED_BINS
        capped = binned_threshold(BINNED[statistic], p_reference, window_n, reference_n, seed=1)
        monkeypatch.setattr(calibration, "MAX_SIMULATED_BINS", 10**9)
        full = binned_threshold(BINNED[statistic], p_reference, window_n, reference_n, seed=1)
        print(f"{statistic} {shape} n={window_n}: capped {capped:.5f} full {full:.5f}")
        assert 0.97 * full <= capped <= 1.35 * full

    def test_rare_bin_counts_are_poisson_or_negative_binomial_as_scipy_has_them(self) -> None:
        k = np.arange(0.0, 80.0)[np.newaxis, :]
        poisson = calibration._count_pmf(k, np.array([7.0]), np.array([0.0]))[0]
        mixed = calibration._count_pmf(k, np.array([7.0]), np.array([3.5]))[0]
        np.testing.assert_allclose(poisson, sps.poisson.pmf(k[0], 7.0), rtol=1e-9, atol=1e-15)
        # A gamma mean of 7 and variance 3.5 (shape 14): negative binomial(14, 14 / 21).
        np.testing.assert_allclose(mixed, sps.nbinom.pmf(k[0], 14, 14 / 21), rtol=1e-9,
                                   atol=1e-15)

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    def test_the_same_seed_gives_the_same_capped_threshold(self, statistic: str) -> None:
        p_reference, _ = _sampled_reference(_true_shares("zipf", 5_000), 100_000,
                                            np.random.default_rng(2))
        first = binned_threshold(BINNED[statistic], p_reference, 700, 100_000, seed=7)
        assert binned_threshold(BINNED[statistic], p_reference, 700, 100_000, seed=7) == first

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    def test_a_hundred_thousand_categories_calibrate_in_bounded_time_and_memory(
            self, statistic: str) -> None:
        # Before the cap: 1,024 draws over every bin, 16 s and 4.2 GB for 100k categories.
        p_reference, _ = _sampled_reference(_true_shares("uniform", 100_000), 600_000,
                                            np.random.default_rng(3))
        tracemalloc.start()
        started = time.perf_counter()
        try:
            threshold = binned_threshold(BINNED[statistic], p_reference, 20_000, 600_000, seed=1)
            elapsed = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        print(f"{statistic}: {elapsed * 1000:.0f} ms, peak {peak / 2**20:.1f} MiB")
        assert threshold > 0.0
        assert peak < 48 * 2**20
        assert elapsed < 5.0  # about 0.2 s alone; generous for a loaded machine

    @pytest.mark.parametrize("statistic", ["psi", "jensen_shannon"])
    @pytest.mark.parametrize(("shape", "categories", "reference_n"), SPARSE_CASES)
    def test_windows_from_the_true_distribution_rarely_cross_a_split_threshold(
            self, statistic: str, shape: str, categories: int, reference_n: int) -> None:
        # Simulating every bin at the effective size got up to 100% false alarms on the sparse
        # cases here (a window drawn from the noisy reference shares follows their noise);
        # sparse bins are now summed with estimated true counts (Robbins, Good-Turing).
        rng = np.random.default_rng(seed_for("high-cardinality", statistic, shape, reference_n))
        rows = psi_rows if statistic == "psi" else jensen_shannon_rows
        rates = {}
        for window_n in (200, 1_000, 5_000, 20_000, reference_n):
            crossed = total = 0
            for feature in range(2):
                p_reference, p_true = _sampled_reference(_true_shares(shape, categories),
                                                         reference_n, rng)
                threshold = binned_threshold(BINNED[statistic], p_reference, window_n, reference_n,
                                             seed_for("m", f"f{feature}", statistic, window_n))
                windows = rng.multinomial(window_n, p_true, size=250) / window_n
                crossed += int(np.sum(rows(p_reference, windows) >= threshold))
                total += windows.shape[0]
            rates[window_n] = crossed / total
        print(f"{statistic} {shape} {categories} N={reference_n}: {rates}")
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

    def test_values_near_the_float_limit_get_the_threshold_of_their_rescaled_values(
            self) -> None:
        values = self.REFERENCE.values
        expected = wasserstein_threshold(self.REFERENCE, 400, 1.0, seed=3)
        huge = sorted_sample(np.ldexp(values, 1020))
        assert wasserstein_threshold(huge, 400, float(np.ldexp(1.0, 1020)), seed=3) == expected

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
