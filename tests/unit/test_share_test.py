"""Tests for exporter.share_test: the alarm's exact, randomized test of each category's share."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from exporter.alarm import AlarmConfig, AlarmDetector, ReferenceColumn
from exporter.share_test import (
    MAX_SHARE_BINS,
    ShareTests,
    prepare_shares,
    share_bins,
    share_bins_tested,
    share_pvalues,
    share_uniforms,
)


def scipy_pvalue(x: int, reference_count: int, m: int, n: int, u: float) -> float:
    """The same randomized two-sided p-value from scipy's hypergeometric distribution."""
    pooled = x + reference_count
    if pooled in (0, n + m):
        return 1.0
    law = sps.hypergeom(n + m, pooled, m)
    upper = law.sf(x) + u * law.pmf(x)
    lower = law.cdf(x - 1) + (1.0 - u) * law.pmf(x)
    return float(min(1.0, 2.0 * min(upper, lower)))


class TestPvalues:
    def test_they_are_scipys_hypergeometric_tails_randomized_on_the_observed_count(self) -> None:
        rng = np.random.default_rng(3)
        for _ in range(200):
            n = int(rng.integers(200, 40_000))
            m = int(rng.integers(1, 6_400))
            pooled = int(rng.integers(0, n + m + 1))
            centre = rng.binomial(m, pooled / (n + m))
            x = int(np.clip(centre + rng.integers(-60, 60), max(0, pooled - n), min(pooled, m)))
            u = float(rng.random())
            got = share_pvalues(np.array([x]), np.array([pooled - x]), m, n, np.array([u]))[0]
            assert got == pytest.approx(scipy_pvalue(x, pooled - x, m, n, u), rel=1e-8,
                                        abs=1e-300)

    @pytest.mark.parametrize(("x", "reference_count"), [(60, 880 - 60), (0, 9_000), (25, 0)])
    def test_far_tails_keep_their_relative_precision(self, x: int, reference_count: int) -> None:
        n, m, u = 28_890, 604, 0.3
        got = share_pvalues(np.array([x]), np.array([reference_count]), m, n, np.array([u]))[0]
        expected = scipy_pvalue(x, reference_count, m, n, u)
        assert expected < 1e-10
        assert got == pytest.approx(expected, rel=1e-8)

    def test_a_category_absent_from_window_and_reference_is_never_evidence(self) -> None:
        got = share_pvalues(np.array([0, 100]), np.array([0, 5_000]), 100, 5_000,
                            np.array([0.0, 0.0]))
        assert got.tolist() == [1.0, 1.0]

    def test_under_the_null_they_are_uniform_whatever_the_share(self) -> None:
        # Window counts drawn from the hypergeometric law given the pooled count: the
        # randomized p-value is exactly uniform, so P(p < a) = a even for a rare category
        # whose count takes a handful of values (without the coin it would be ~0 at a = 0.01).
        rng = np.random.default_rng(5)
        n, m, draws = 5_000, 100, 40_000
        for pooled in (10, 60, 2_500):
            x = rng.hypergeometric(pooled, n + m - pooled, m, size=draws)
            p = share_pvalues(x, pooled - x, m, n, rng.random(draws))
            for a in (0.01, 0.1, 0.5):
                rate = float(np.mean(p < a))
                sd = np.sqrt(a * (1 - a) / draws)
                assert abs(rate - a) < 5 * sd, (pooled, a, rate)


class TestBins:
    def test_the_31_most_frequent_categories_are_tested_alone_and_the_rest_together(
            self) -> None:
        bins = share_bins(100)
        assert bins[:31].tolist() == list(range(31))
        assert set(bins[31:].tolist()) == {MAX_SHARE_BINS - 1}
        assert share_bins_tested(100).tolist() == list(range(MAX_SHARE_BINS))

    def test_a_binary_column_tests_one_share_and_unseen_categories(self) -> None:
        # The two categories' counts add up to the window (but for unseen ones): one test.
        assert share_bins_tested(2).tolist() == [1, 2]
        assert share_bins_tested(1).tolist() == [1]
        assert share_bins_tested(5).tolist() == [0, 1, 2, 3, 4, 5]


class TestBudgetWeights:
    def test_a_bin_of_only_unseen_categories_counts_for_nothing_without_singletons(self) -> None:
        groups = np.repeat(np.arange(2), [600, 400])  # two categories, none seen once
        column = prepare_shares(groups, 2, 1_000)
        assert column.tested.tolist() == [1, 2]
        assert column.missing_mass == 0.0
        assert column.weights(100).tolist() == [1.0, 0.0]

    def test_singletons_make_the_unseen_bin_count_for_m_times_the_missing_mass(self) -> None:
        groups = np.repeat(np.arange(5), [700, 290, 8, 1, 1])  # two singletons in 1,000 rows
        column = prepare_shares(groups, 5, 1_000)
        assert column.missing_mass == pytest.approx(0.002)
        assert column.weights(100).tolist() == pytest.approx([1, 1, 1, 1, 1, 0.2])
        assert column.weights(1_600).tolist() == [1.0] * 6  # at most a whole test

    def test_a_rest_bin_holding_reference_categories_is_a_whole_test(self) -> None:
        groups = np.arange(40).repeat(10)  # 40 categories: ranks 31.. share the last bin
        column = prepare_shares(groups, 40, 400)
        assert column.weights(100).tolist() == [1.0] * MAX_SHARE_BINS


def null_exceedances(shares: list[float], alpha: float, windows_per_reference: int) -> float:
    """A categorical column's null windows of 100 records below their level, / alpha."""
    hits, windows = 0, 0
    for r in range(4):
        rng = np.random.default_rng(40 + r)
        n_records = windows_per_reference * 50 + 50
        detector = AlarmDetector(categorical_reference(rng, shares, rows=5_000),
                                 AlarmConfig(false_alarm_every=50.0 / alpha),
                                 seed=r, max_block_alpha=1.0, keep_results=True, scales=(100,))
        detector.add([rng.choice(len(shares), size=n_records, p=shares)],
                     np.arange(1, n_records + 1, dtype=np.float64))
        hits += sum(1 for b in detector.results if b.exceeded)
        windows += len(detector.results)
    return hits / windows / alpha


class TestCalibration:
    # One column, windows of 100 records tested every 50 s (alpha = 50 s / T = 0.02 each);
    # ~640 expected per case over 4 references: +-15% is ~3.5 standard deviations.
    @pytest.mark.parametrize("shares", [[0.7, 0.3], [0.5, 0.3, 0.2]])
    def test_a_categorical_columns_null_windows_exceed_at_their_budget(
            self, shares: list[float]) -> None:
        # Counting the unseen bin as a whole test gave 0.54x (binary) and ~0.8x (3 categories).
        assert 0.85 <= null_exceedances(shares, 0.02, 8_000) <= 1.15


class TestShareColumn:
    def test_window_counts_of_many_windows_are_those_of_each_window(self) -> None:
        rng = np.random.default_rng(8)
        groups = rng.choice(6, size=5_000, p=[0.5, 0.2, 0.1, 0.1, 0.05, 0.05])
        column = prepare_shares(groups, 5, 5_000)
        records = rng.choice(6, size=1_000)
        stops = np.arange(300, 1_001, 50)
        many = column.window_counts(records[200:], stops, 100)
        for t, stop in enumerate(stops):
            one = column.window_counts(records[stop - 100:stop], stops[t:t + 1], 100)
            assert np.array_equal(many[t], one[0])
            expected = np.bincount(column.bin_of_group[records[stop - 100:stop]], minlength=6)
            assert np.array_equal(one[0], expected[column.tested])

    @pytest.mark.parametrize("m", [100, 1_600])
    def test_all_columns_together_give_each_columns_own_pvalues(self, m: int) -> None:
        # Tabled (100) or computed (1,600): the smallest p-value of each column, as
        # share_pvalues gives it for that column's counts and draws.
        rng = np.random.default_rng(9)
        shapes = [[0.6, 0.3, 0.09, 0.01], [0.9, 0.1], [1 / 40] * 40]
        columns = []
        for shares in shapes:
            groups = rng.choice(len(shares), size=20_000, p=shares)
            columns.append(prepare_shares(groups, len(shares), 20_000))
        tests = ShareTests(list(zip([1, 3, 4], columns, strict=True)), 5, 20_000)
        stops = np.arange(m, 3 * m + 1, m // 2)
        records = np.stack([rng.choice(len(s), size=3 * m) for s in shapes])
        windows = np.arange(stops.shape[0]) * 7 + 2
        got = tests.smallest(records, stops, m, windows)
        for i, (j, column) in enumerate(zip([1, 3, 4], columns, strict=True)):
            counts = column.window_counts(records[i], stops, m)
            u = share_uniforms(5, j, windows, column.tested)
            for t in range(stops.shape[0]):
                p = share_pvalues(counts[t], column.counts[column.tested], m, 20_000, u[t])
                assert got[t, i] == pytest.approx(p.min(), rel=1e-12)
        one = tests.smallest(records[:, stops[2] - m:], stops[2:3], m, windows[2:3])
        assert np.allclose(one[0], got[2], rtol=1e-12, atol=0.0)


class TestUniforms:
    def test_they_are_a_function_of_seed_column_window_and_bin_only(self) -> None:
        bins = np.arange(8)
        tests = np.array([123_456, 5])
        first = share_uniforms(7, 2, tests, bins)
        assert first.shape == (2, 8)
        assert np.array_equal(first[0], share_uniforms(7, 2, tests[:1], bins)[0])
        assert not np.array_equal(first, share_uniforms(7, 2, tests + 1, bins))
        assert not np.array_equal(first, share_uniforms(8, 2, tests, bins))
        assert not np.array_equal(first, share_uniforms(7, 3, tests, bins))

    def test_they_are_uniform_on_the_unit_interval(self) -> None:
        u = share_uniforms(1, 0, np.arange(2_000), np.arange(32)).ravel()
        assert u.min() >= 0.0
        assert u.max() < 1.0
        assert sps.kstest(u, "uniform").pvalue > 1e-3


def categorical_reference(rng: np.random.Generator, shares: list[float],
                          rows: int = 25_000) -> list[ReferenceColumn]:
    return [ReferenceColumn("c", "categorical", rng.choice(len(shares), size=rows, p=shares))]


class TestInTheAlarm:
    def test_a_rare_category_growing_from_1_to_4_percent_raises_naming_the_column(self) -> None:
        rng = np.random.default_rng(11)
        shares = [0.6, 0.3, 0.09, 0.01]
        detector = AlarmDetector(categorical_reference(rng, shares), AlarmConfig(), seed=1)
        detector.add([rng.choice(4, size=20_000, p=shares)], np.arange(20_000) / 10.0)
        assert not detector.state().raised
        detector.add([rng.choice(4, size=3_000, p=[0.6, 0.3, 0.06, 0.04])],
                     2_000.0 + np.arange(3_000) / 10.0)
        state = detector.state()
        assert state.raised
        assert state.columns == ("c",)

    def test_a_category_the_reference_never_had_raises_within_a_few_dozen_records(
            self) -> None:
        rng = np.random.default_rng(12)
        shares = [0.5, 0.3, 0.2]
        detector = AlarmDetector(categorical_reference(rng, shares), AlarmConfig(), seed=1,
                                 keep_results=True)
        detector.add([rng.choice(3, size=5_000, p=shares)], np.arange(5_000) / 10.0)
        assert not detector.state().raised
        new = rng.choice(4, size=200, p=[0.45, 0.27, 0.18, 0.10])  # code 3 is new
        detector.add([new], 500.0 + np.arange(200) / 10.0)
        assert detector.state().raised
        assert detector.state().raised_at is not None
        assert detector.state().raised_at < 500.0 + 100 / 10.0

    def test_a_constant_column_pages_on_a_new_category_and_clears_after_it(self) -> None:
        # Its only test is the unseen bin: one new record does not page, a stream of them
        # does, and windows without them (p-values of exactly 1) clear it.
        detector = AlarmDetector([ReferenceColumn("c", "categorical", np.zeros(5_000,
                                                                               dtype=np.int64))],
                                 AlarmConfig(), seed=1)
        records = np.zeros(2_000, dtype=np.int64)
        records[1_500] = 7
        detector.add([records], np.arange(2_000) / 10.0)
        assert not detector.state().raised
        burst = np.zeros(300, dtype=np.int64)
        burst[::20] = 7
        detector.add([burst], 200.0 + np.arange(300) / 10.0)
        assert detector.state().raised
        detector.add([np.zeros(3_000, dtype=np.int64)], 230.0 + np.arange(3_000) / 10.0)
        state = detector.state()
        assert not state.raised
        assert state.raised_total == 1

    @pytest.mark.parametrize("target", [AlarmConfig().false_alarm_every, 20.0])
    def test_numerical_columns_get_no_share_tests(self, target: float) -> None:
        # Also at budgets near 1 (an accelerated target), where the exact KS and Mann-Whitney
        # values are computed for every p-value below 2 and 100 times the level: never for a
        # categorical column (it once got a Mann-Whitney p-value there, and paged on it).
        rng = np.random.default_rng(13)
        reference = [ReferenceColumn("x", "numerical", rng.normal(size=5_000)),
                     ReferenceColumn("c", "categorical", rng.choice(3, size=5_000))]
        detector = AlarmDetector(reference, AlarmConfig(false_alarm_every=target), seed=1,
                                 keep_results=True, max_block_alpha=1.0)
        detector.add([rng.normal(size=400), rng.choice(3, size=400)], np.arange(400.0))
        for result in detector.results:
            assert result.share_pvalues[0] == 1.0
            assert result.pvalues[1] == 1.0
            assert result.rank_pvalues[1] == 1.0
        assert any(r.share_pvalues[1] < 1.0 for r in detector.results)
