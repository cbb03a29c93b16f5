"""Tests for exporter.alarm: blocks, budgets in time, hysteresis, min_effect, calibration."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats as sps

from exporter.alarm import (
    CLEAR_BLOCKS,
    EXACT_MAX_CELLS,
    AlarmConfig,
    AlarmDetector,
    ReferenceColumn,
    ks_tail_exact,
    ks_tail_screen,
    pair_factor,
    plan_scales,
    prepare_reference,
    rank_tail_exact,
    rank_tail_screen_many,
    reference_warning,
    sidak_level,
    window_levels,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import alarms as bench_alarms

Values = list[npt.NDArray[Any]]


def normal_reference(rng: np.random.Generator, rows: int = 5000,
                     names: Sequence[str] = ("x",)) -> list[ReferenceColumn]:
    return [ReferenceColumn(n, "numerical", rng.normal(size=rows)) for n in names]


def feed(detector: AlarmDetector, values: Values, start_time: float = 0.0,
         rate: float = 1.0) -> None:
    times = start_time + np.arange(values[0].shape[0]) / rate
    detector.add(values, times)


def exact_mann_whitney_tail(n1: int, n2: int) -> npt.NDArray[np.float64]:
    """P(U >= u) for u = 0..n1*n2, from the q-binomial generating function (exact counts).

    The division by 1 - q^i is a running sum in floats: stable to 1e-9 for n2 up to ~n1 / 10.
    """
    poly = np.array([1.0])
    for i in range(1, n2 + 1):
        # times (1 - q^(n1+i)) / (1 - q^i) = (1 + ... + q^(n1+i-1)) (1 - q) / (1 - q^i)
        poly = np.convolve(np.convolve(poly, np.ones(n1 + i)), [1.0, -1.0])
        for k in range(i, poly.shape[0]):
            poly[k] += poly[k - i]
        poly = poly[:poly.shape[0] - i]
        poly /= poly.sum()
    tail: npt.NDArray[np.float64] = np.cumsum(poly[::-1])[::-1]
    return tail


class TestPlanScales:
    def test_a_25000_row_reference_gets_blocks_of_100_to_6400(self) -> None:
        assert plan_scales(25_000) == (100, 400, 1600, 6400)

    def test_a_large_reference_gets_at_most_five_scales(self) -> None:
        assert plan_scales(10_000_000) == (100, 400, 1600, 6400, 25_600)

    def test_blocks_are_at_most_a_third_of_the_reference(self) -> None:
        assert plan_scales(19_199) == (100, 400, 1600)
        assert plan_scales(76_800) == (100, 400, 1600, 6400, 25_600)

    def test_a_small_reference_gets_one_block_of_a_third_of_it(self) -> None:
        assert plan_scales(210) == (70,)

    def test_a_tiny_reference_gets_no_alarm(self) -> None:
        assert plan_scales(150) == ()
        assert "stays off" in (reference_warning(150) or "")
        assert plan_scales(199) == ()

    def test_check_warns_below_25000_rows_and_not_above(self) -> None:
        assert reference_warning(5000) is not None
        assert reference_warning(25_000) is None


class TestConfig:
    def test_a_non_positive_target_is_refused(self) -> None:
        with pytest.raises(ValueError, match="false_alarm_every"):
            AlarmConfig(false_alarm_every=0.0)

    def test_a_min_effect_outside_0_1_is_refused(self) -> None:
        with pytest.raises(ValueError, match="min_effect"):
            AlarmConfig(min_effect=1.5)


class TestLevels:
    @pytest.mark.parametrize("columns", [1, 2, 20, 500])
    def test_sidak_level_gives_the_block_budget_for_independent_columns(self,
                                                                       columns: int) -> None:
        level = sidak_level(1e-7, columns)
        assert 1.0 - (1.0 - level) ** columns == pytest.approx(1e-7, rel=1e-6)

    def test_a_budget_of_one_or_more_makes_every_window_exceed(self) -> None:
        assert sidak_level(1.0, 20) == 1.0
        assert sidak_level(3.5, 20) == 1.0
        assert window_levels(np.array([1.0, 3.5]), 5, 20).tolist() == [1.0, 1.0]

    def test_a_window_is_budgeted_as_at_least_one_test(self) -> None:
        # Only unseen-category bins of weight 0 (or less than one test's worth): the level of
        # one test, not 1 (which would page on one record of a new category).
        alphas = np.array([0.0, 1e-7, 0.01])
        for singles in (0.0, 0.25):
            assert window_levels(alphas, singles, 0).tolist() == pytest.approx(
                alphas.tolist(), rel=1e-12)

    def test_without_pairs_the_window_level_is_sidaks(self) -> None:
        alphas = np.array([0.0, 1e-9, 1e-4, 0.01])
        expected = [sidak_level(a, 7) if a > 0 else 0.0 for a in alphas]
        assert window_levels(alphas, 7, 0).tolist() == pytest.approx(expected, rel=1e-12)

    @pytest.mark.parametrize("alpha", [1e-9, 1e-5, 1e-2])
    def test_the_pair_level_spends_the_budget_at_the_pairs_union_rate(self, alpha: float) -> None:
        # The level is the fixed point: 3 single tests and 10 pairs of union rate 2 l f(l).
        level = float(window_levels(np.array([alpha]), 3, 10)[0])
        union = 2.0 * level * float(pair_factor(np.array(level)))
        assert 1.0 - (1.0 - level) ** 3 * (1.0 - union) ** 10 == pytest.approx(alpha, rel=1e-3)
        assert level > sidak_level(alpha, 23)  # dependent pairs: a larger level than Šidák's

    def test_the_pair_factor_is_below_one_and_rises_toward_one_as_the_level_falls(self) -> None:
        f = pair_factor(np.array([1e-2, 1e-5, 1e-9, 1e-30]))
        assert np.all(np.diff(f) > 0)
        assert 0.5 < f[0] < f[-1] < 1.0


def pair_rate(alpha: float, sidak: bool) -> float:
    """One numerical column's exceedance rate / alpha: KS or Mann-Whitney below the level."""
    ks, mw = bench_alarms.pair_pvalues(1_600, 100, 200_000, np.random.default_rng(5))
    level = (sidak_level(alpha, 2) if sidak
             else float(window_levels(np.array([alpha]), 0, 1)[0]))
    return float(np.mean((ks < level) | (mw < level))) / alpha


class TestPairLevel:
    # Null windows of 100 records against fresh 1,600-row references, exact p-values: the
    # pair is distribution-free, so uniforms stand for every continuous (or tie-broken) column.
    @pytest.mark.parametrize("alpha", [1e-2, 3e-3])
    def test_ks_or_mann_whitney_below_the_pair_level_has_the_columns_budget(
            self, alpha: float) -> None:
        # ~2,000 and ~600 windows expected: +-12% is 5 and 3 standard deviations.
        assert 0.88 <= pair_rate(alpha, sidak=False) <= 1.12

    def test_sidaks_level_for_two_tests_would_page_a_quarter_less(self) -> None:
        # What the pair level corrects (and what the test above would catch): 0.74x at 1e-2.
        assert pair_rate(1e-2, sidak=True) < 0.8

    @pytest.mark.parametrize(("n1", "n2"), [(25_000, 100), (25_000, 1600), (5000, 400)])
    def test_the_screening_pvalue_is_within_10_percent_of_the_exact_one_in_the_tail(
            self, n1: int, n2: int) -> None:
        for target in (1e-3, 1e-5, 1e-7):
            d = sps.kstwo.isf(target, round(n1 * n2 / (n1 + n2)))
            lcm = math.lcm(n1, n2)
            d = round(d * lcm) / lcm
            assert ks_tail_screen(d, n1, n2) == pytest.approx(ks_tail_exact(d, n1, n2), rel=0.1)

    @pytest.mark.parametrize(("n1", "n2"), [(200, 20), (400, 40), (600, 60), (1000, 25)])
    def test_the_rank_pvalue_is_within_1_percent_of_the_exact_mann_whitney_tail(
            self, n1: int, n2: int) -> None:
        upper = exact_mann_whitney_tail(n1, n2)
        mean, sd = n1 * n2 / 2.0, math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
        for z in (2.0, 4.0, 5.5, 6.5):
            u = int(mean + z * sd)
            exact = 2.0 * upper[u]
            assert rank_tail_exact(float(u), n1, n2) == pytest.approx(exact, rel=0.01)
            assert rank_tail_exact(float(n1 * n2 - u), n1, n2) == pytest.approx(exact, rel=0.01)
            # The normal screen overstates the tail: it never hides an exceedance.
            assert rank_tail_screen_many(np.array([float(u)]), n1, n2)[0] >= exact

    def test_the_rank_statistic_is_scipys_mann_whitney_u_for_continuous_data(self) -> None:
        rng = np.random.default_rng(9)
        reference = rng.normal(size=10_000)  # Mann-Whitney: windows of up to 1/16 of it
        detector = AlarmDetector([ReferenceColumn("x", "numerical", reference)], AlarmConfig(),
                                 seed=1, keep_results=True)
        block = rng.normal(0.1, 1.0, size=400)
        feed(detector, [block])
        result = next(r for r in detector.results if r.scale == 400)
        expected = sps.mannwhitneyu(block, reference, method="asymptotic").pvalue
        assert result.rank_pvalues[0] == pytest.approx(expected, rel=1e-3)

    def test_mann_whitney_runs_only_on_windows_of_up_to_a_sixteenth_of_the_reference(
            self) -> None:
        rng = np.random.default_rng(9)
        detector = AlarmDetector(normal_reference(rng, 25_000), AlarmConfig(), seed=1,
                                 keep_results=True)
        feed(detector, [rng.normal(0.3, 1.0, size=1600)])
        ranked = {r.scale for r in detector.results if r.rank_pvalues[0] < 1.0}
        assert ranked == {100, 400}

    def test_the_exact_pvalue_is_scipys_exact_ks_2samp(self) -> None:
        rng = np.random.default_rng(3)
        a, b = rng.normal(size=3000), rng.normal(0.2, 1.0, size=400)
        result = sps.ks_2samp(a, b, method="exact")
        assert ks_tail_exact(result.statistic, 3000, 400) == pytest.approx(result.pvalue,
                                                                           rel=1e-9)


def scipy_exact_tail(d: float, n1: int, n2: int) -> float | None:
    """scipy's exact two-sample P(D >= d) (None where it reports an overflow)."""
    stats_py = sps._stats_py  # what ks_2samp(method="exact") calls
    ok, _, prob = stats_py._attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
    return float(prob) if ok else None


class TestExactKolmogorovSmirnov:
    """ks_tail_exact (no scipy.stats) against scipy's own exact lattice-path count."""

    def test_it_is_scipys_exact_tail_for_many_sizes_and_statistics(self) -> None:
        rng = np.random.default_rng(11)
        checked = 0
        for _ in range(600):
            n1 = int(rng.integers(1, 250))
            n2 = int(rng.choice([n1, max(1, n1 // int(rng.integers(1, 8))),
                                 int(rng.integers(1, 250))]))
            lcm = math.lcm(n1, n2)
            d = int(rng.integers(1, lcm + 1)) / lcm  # on the lattice: D's own values
            expected = scipy_exact_tail(d, n1, n2)
            if expected is None or expected < 1e-290:
                continue
            assert ks_tail_exact(d, n1, n2) == pytest.approx(expected, rel=1e-6), (n1, n2, d)
            checked += 1
        assert checked > 500

    @pytest.mark.parametrize(("n1", "n2"), [(25_000, 100), (3000, 400), (5000, 5000),
                                            (1001, 1000), (7, 2000), (600, 150)])
    def test_it_is_scipys_exact_tail_far_out(self, n1: int, n2: int) -> None:
        for target in (1e-3, 1e-7, 1e-12):
            d = sps.kstwo.isf(target, round(n1 * n2 / (n1 + n2)))
            lcm = math.lcm(n1, n2)
            for h in (math.floor(d * lcm), math.ceil(d * lcm)):
                expected = scipy_exact_tail(h / lcm, n1, n2)
                assert expected is not None
                assert ks_tail_exact(h / lcm, n1, n2) == pytest.approx(expected, rel=1e-6)

    def test_a_statistic_on_a_lattice_point_counts_the_paths_touching_it(self) -> None:
        # D takes values k / lcm; a statistic exactly there is P(D >= d), not P(D > d).
        for n1, n2 in ((6, 4), (10, 15), (9, 9)):
            lcm = math.lcm(n1, n2)
            for h in range(1, lcm + 1):
                assert ks_tail_exact(h / lcm, n1, n2) == pytest.approx(
                    brute_force_ks_tail(h, n1, n2), rel=1e-12, abs=1e-300)

    def test_sizes_are_symmetric_and_a_zero_statistic_has_probability_one(self) -> None:
        assert ks_tail_exact(0.3, 300, 40) == ks_tail_exact(0.3, 40, 300)
        assert ks_tail_exact(0.0, 300, 40) == 1.0
        assert ks_tail_exact(1.0, 300, 40) == pytest.approx(2.0 / math.comb(340, 40))

    def test_a_band_too_large_for_the_exact_count_gets_the_screening_value(self) -> None:
        d = 0.04
        assert 2 * d * 100_000 * 25_600 > EXACT_MAX_CELLS
        assert ks_tail_exact(d, 100_000, 25_600) == ks_tail_screen(d, 100_000, 25_600)


def brute_force_ks_tail(h: int, n1: int, n2: int) -> float:
    """P(D >= h / lcm) by walking every cell's path count (exact integers; small sizes)."""
    g = math.gcd(n1, n2)
    inside = [[0] * (n2 + 1) for _ in range(n1 + 1)]
    for x in range(n1 + 1):
        for y in range(n2 + 1):
            if abs(x * (n2 // g) - y * (n1 // g)) >= h:
                continue
            inside[x][y] = 1 if x == y == 0 else (
                (inside[x - 1][y] if x else 0) + (inside[x][y - 1] if y else 0))
    total = math.comb(n1 + n2, n1)
    return (total - inside[n1][n2]) / total


class TestSharedReference:
    def test_a_shared_reference_with_the_seed_gives_what_an_own_one_gives(self) -> None:
        rng = np.random.default_rng(5)
        reference = normal_reference(rng, 5000, names=("x", "y"))
        records = [rng.normal(0.2, 1.0, size=1200), rng.normal(size=1200)]
        own = AlarmDetector(reference, AlarmConfig(), seed=9, keep_results=True)
        shared = AlarmDetector(prepare_reference(reference, 9), AlarmConfig(), seed=9,
                               keep_results=True)
        feed(own, records)
        feed(shared, records)
        assert [r.statistics.tolist() for r in own.results] == [
            r.statistics.tolist() for r in shared.results]
        assert own.state() == shared.state()

    def test_detectors_of_other_seeds_read_the_shared_reference_without_changing_it(
            self) -> None:
        rng = np.random.default_rng(5)
        prepared = prepare_reference(normal_reference(rng, 5000), 1)
        keys = prepared.columns[0].keys.values.copy()
        one, two = (AlarmDetector(prepared, AlarmConfig(), seed=s) for s in (2, 3))
        for detector in (one, two):
            feed(detector, [rng.normal(size=500)])
        assert one.reference is two.reference is prepared
        assert np.array_equal(prepared.columns[0].keys.values, keys)
        assert one._below[0, :500].tolist() != two._below[0, :500].tolist()


class TestBlocks:
    def test_blocks_complete_at_every_scale_as_records_arrive(self) -> None:
        rng = np.random.default_rng(1)
        detector = AlarmDetector(normal_reference(rng, 20_000), AlarmConfig(), seed=1)
        assert detector.scales == (100, 400, 1600, 6400)
        # A window of m records every m / 2 records, from the m-th record on.
        feed(detector, [rng.normal(size=6399)])
        assert detector.state().blocks_tested == 126 + 30 + 6
        feed(detector, [rng.normal(size=1)], start_time=6399.0)
        assert detector.state().blocks_tested == 127 + 31 + 7 + 1

    def test_each_block_gets_its_weight_times_its_duration_over_the_target(self) -> None:
        rng = np.random.default_rng(2)
        target = 1e7
        detector = AlarmDetector(normal_reference(rng, 20_000),
                                 AlarmConfig(false_alarm_every=target), seed=1,
                                 keep_results=True)
        feed(detector, [rng.normal(size=1600)], rate=2.0)  # one record every 0.5 s
        alphas = {(r.scale, r.end_time): r.alpha for r in detector.results}
        # The first window's budget runs from the first record (99 gaps of 0.5 s), then each
        # window's from the previous one's end at its scale (half a window later).
        assert alphas[(100, 49.5)] == pytest.approx(49.5 / 4 / target)
        assert alphas[(100, 74.5)] == pytest.approx(25.0 / 4 / target)
        assert alphas[(400, 199.5)] == pytest.approx(199.5 / 4 / target)
        assert alphas[(400, 299.5)] == pytest.approx(100.0 / 4 / target)
        assert alphas[(1600, 799.5)] == pytest.approx(799.5 / 4 / target)

    def test_the_budgets_of_a_scale_add_up_to_its_weight_times_elapsed_over_target(
            self) -> None:
        rng = np.random.default_rng(3)
        detector = AlarmDetector(normal_reference(rng, 20_000), AlarmConfig(1e6), seed=1,
                                 keep_results=True)
        times = np.cumsum(rng.exponential(3.0, size=6400))
        detector.add([rng.normal(size=6400)], times)
        for scale in detector.scales:
            total = sum(r.alpha for r in detector.results if r.scale == scale)
            assert total == pytest.approx((times[-1] - times[0]) / 4 / 1e6)

    def test_a_block_after_a_long_silence_gets_at_most_the_cap(self) -> None:
        rng = np.random.default_rng(4)
        detector = AlarmDetector(normal_reference(rng, 20_000), AlarmConfig(1000.0), seed=1,
                                 keep_results=True)
        feed(detector, [rng.normal(size=100)], rate=0.001)
        assert detector.results[0].alpha == 0.01

    def test_times_going_backwards_give_no_budget(self) -> None:
        rng = np.random.default_rng(5)
        detector = AlarmDetector(normal_reference(rng, 20_000), AlarmConfig(1000.0), seed=1,
                                 keep_results=True)
        feed(detector, [rng.normal(size=100)], start_time=500.0)
        feed(detector, [rng.normal(size=100)], start_time=0.0)
        assert detector.results[1].alpha == 0.0

    def test_a_block_ending_at_a_non_finite_time_gets_no_budget_and_keeps_the_clock(
            self) -> None:
        rng = np.random.default_rng(8)
        detector = AlarmDetector(normal_reference(rng, 20_000), AlarmConfig(1e5), seed=1,
                                 keep_results=True)
        times = np.arange(300.0)
        times[199] = np.nan
        detector.add([rng.normal(size=300)], times)
        alphas = [r.alpha for r in detector.results if r.scale == 100]
        assert alphas[2] == 0.0  # the window ending at record 200 (time NaN)
        assert alphas[3] == pytest.approx((249.0 - 149.0) / 4 / 1e5)

    def test_the_block_statistic_is_scipys_ks_statistic_for_continuous_data(self) -> None:
        rng = np.random.default_rng(6)
        reference = rng.normal(size=5000)
        detector = AlarmDetector([ReferenceColumn("x", "numerical", reference)], AlarmConfig(),
                                 seed=1, keep_results=True)
        block = rng.normal(0.3, 1.0, size=400)
        feed(detector, [block])
        result = next(r for r in detector.results if r.scale == 400)
        assert result.statistics[0] == pytest.approx(sps.ks_2samp(reference, block).statistic,
                                                     abs=1e-12)

    def test_columns_and_times_must_agree_in_length(self) -> None:
        rng = np.random.default_rng(7)
        detector = AlarmDetector(normal_reference(rng), AlarmConfig(), seed=1)
        with pytest.raises(ValueError, match="one value per time"):
            detector.add([np.zeros(3)], np.zeros(4))


class TestRaiseAndHysteresis:
    def make(self, rng: np.random.Generator, **config: float) -> AlarmDetector:
        reference = normal_reference(rng, 20_000, ("a", "b"))
        reference.append(ReferenceColumn("__prediction__", "categorical",
                                         rng.choice(3, size=20_000, p=[0.6, 0.3, 0.1])))
        return AlarmDetector(reference, AlarmConfig(**config), seed=1)

    def values(self, rng: np.random.Generator, n: int, shift: float = 0.0,
               shares: Sequence[float] = (0.6, 0.3, 0.1)) -> Values:
        return [rng.normal(size=n), rng.normal(shift, 1.0, size=n),
                rng.choice(3, size=n, p=list(shares))]

    def test_a_large_shift_raises_within_one_small_block_naming_the_column(self) -> None:
        rng = np.random.default_rng(10)
        detector = self.make(rng)
        feed(detector, self.values(rng, 1000))
        assert not detector.state().raised
        feed(detector, self.values(rng, 100, shift=3.0), start_time=1000.0)
        state = detector.state()
        assert state.raised
        assert state.raised_total == 1
        assert state.columns == ("b",)
        assert state.raising_scale == 100

    def test_a_change_of_category_shares_of_the_prediction_raises(self) -> None:
        rng = np.random.default_rng(11)
        detector = self.make(rng)
        feed(detector, self.values(rng, 6400, shares=(0.2, 0.3, 0.5)))
        assert detector.state().columns == ("__prediction__",)

    def test_the_alarm_stays_raised_while_the_shift_lasts_and_counts_one_raise(self) -> None:
        rng = np.random.default_rng(12)
        detector = self.make(rng)
        feed(detector, self.values(rng, 6400, shift=1.0))
        state = detector.state()
        assert state.raised
        assert state.raised_total == 1

    def test_a_small_lasting_shift_raises_once_and_does_not_flap(self) -> None:
        rng = np.random.default_rng(19)
        reference = normal_reference(rng, 25_000, [f"c{j}" for j in range(5)])
        detector = AlarmDetector(reference, AlarmConfig(), seed=1)  # 30 d at 10 records/s
        up = 0
        for i in range(300):
            values = [rng.normal(size=100) for _ in range(5)]
            values[2] += 0.25
            feed(detector, values, start_time=10.0 * i, rate=10.0)
            up += detector.state().raised
        state = detector.state()
        assert state.raised_total == 1
        assert state.columns == ("c2",)
        assert up >= 250

    def test_the_alarm_clears_after_clean_blocks_at_the_raising_scale(self) -> None:
        rng = np.random.default_rng(13)
        detector = self.make(rng)
        feed(detector, self.values(rng, 100, shift=3.0))
        assert detector.state().raised
        # Blocks of 100 look like the reference again; the alarm needs CLEAR_BLOCKS of them
        # (and none of the larger blocks, which still hold the shifted records, exceeding).
        for i in range(1, 200):
            feed(detector, self.values(rng, 100), start_time=100.0 * i)
            if not detector.state().raised:
                break
        state = detector.state()
        assert not state.raised
        assert state.columns == ()
        assert state.raised_total == 1
        assert i >= CLEAR_BLOCKS

    def test_the_larger_blocks_around_a_short_shift_do_not_raise_it_again(self) -> None:
        # The blocks of 400 to 6,400 records that hold the 100 shifted ones complete after
        # the alarm could have cleared at the scale of 100; they must not count new raises.
        rng = np.random.default_rng(18)
        detector = self.make(rng)
        feed(detector, self.values(rng, 100, shift=3.0))
        feed(detector, self.values(rng, 12_800), start_time=100.0)
        state = detector.state()
        assert not state.raised
        assert state.raised_total == 1

    def test_a_new_shift_after_clearing_counts_a_second_raise(self) -> None:
        rng = np.random.default_rng(14)
        detector = self.make(rng)
        feed(detector, self.values(rng, 100, shift=3.0))
        feed(detector, self.values(rng, 12_800), start_time=100.0)
        assert not detector.state().raised
        feed(detector, self.values(rng, 100, shift=-3.0), start_time=12_900.0)
        assert detector.state().raised_total == 2

    def test_min_effect_keeps_a_significant_small_shift_down(self) -> None:
        rng = np.random.default_rng(15)
        detector = self.make(rng, min_effect=0.3)  # a 0.5 sd shift has KS about 0.2
        feed(detector, self.values(rng, 6400, shift=0.5))
        assert detector.state().raised_total == 0
        without = self.make(np.random.default_rng(15))
        feed(without, self.values(np.random.default_rng(16), 6400, shift=0.5))
        assert without.state().raised_total == 1

    def test_min_effect_lets_a_large_shift_through(self) -> None:
        rng = np.random.default_rng(16)
        detector = self.make(rng, min_effect=0.3)
        feed(detector, self.values(rng, 400, shift=3.0))
        assert detector.state().raised

    def test_a_model_whose_reference_is_too_small_never_raises(self) -> None:
        rng = np.random.default_rng(17)
        detector = AlarmDetector(normal_reference(rng, 150), AlarmConfig(), seed=1)
        feed(detector, [rng.normal(5.0, 1.0, size=1000)])
        assert detector.state().scales == ()
        assert not detector.state().raised


def null_rate(target_factor: float = 1.0, seed: int = 0) -> tuple[int, float]:
    """Exceedances on null streams, and how many the target predicts (several references)."""
    rng = np.random.default_rng(seed)
    exceedances = 0
    expected = 0.0
    for r in range(6):
        # Mixed columns: continuous, integer with ties, and a categorical with a rare class.
        # Blocks of at most 2% of the reference: one reference moves the rate little (the
        # conditional rate's spread grows with the block's share of the reference).
        reference = [
            ReferenceColumn("n", "numerical", rng.normal(size=20_000)),
            ReferenceColumn("p", "numerical", rng.poisson(2.0, size=20_000).astype(np.float64)),
            ReferenceColumn("c", "categorical", rng.choice(3, size=20_000, p=[0.7, 0.28, 0.02])),
        ]
        records = 20_000
        times = np.cumsum(rng.exponential(1.0, size=records))
        target = float(times[-1]) / 10.0  # 10 expected per reference: 60 in all
        detector = AlarmDetector(reference, AlarmConfig(false_alarm_every=target * target_factor),
                                 seed=r, max_block_alpha=1.0, keep_results=True,
                                 scales=(100, 400))
        detector.add([rng.normal(size=records),
                      rng.poisson(2.0, size=records).astype(np.float64),
                      rng.choice(3, size=records, p=[0.7, 0.28, 0.02])], times)
        exceedances += sum(1 for b in detector.results if b.exceeded)
        expected += float(times[-1]) / target
    return exceedances, expected


class TestCalibration:
    def test_null_streams_exceed_at_the_rate_the_target_sets(self) -> None:
        # ~60 expected: the count is within 0.6x-1.6x of it unless the calibration is off
        # (a Poisson count of 60 leaves that range with probability ~1e-4).
        exceedances, expected = null_rate(seed=20)
        assert 0.6 <= exceedances / expected <= 1.6, (exceedances, expected)

    def test_the_tolerance_catches_a_budget_three_times_too_large(self) -> None:
        # The same streams with a budget per block three times the target's (as when alpha
        # ignores that blocks take three times longer at a third of the traffic) fail it.
        exceedances, expected = null_rate(target_factor=1.0 / 3.0, seed=20)
        assert exceedances / expected > 1.6


class TestSortedGroups:
    @pytest.mark.parametrize("kind", ["numerical", "categorical"])
    def test_they_are_the_reference_tie_groups_sorted(self, kind: str) -> None:
        rng = np.random.default_rng(31)
        if kind == "numerical":
            values = np.round(rng.normal(size=3000), 1)
            values[rng.random(3000) < 0.05] = np.nan
        else:
            values = rng.choice(7, size=3000, p=[0.4, 0.2, 0.15, 0.1, 0.1, 0.04, 0.01])
        column = prepare_reference([ReferenceColumn("c", kind, values)], 3).columns[0]  # type: ignore[arg-type]
        expected = np.sort(column.group_of(values).astype(np.float64))
        assert np.array_equal(column.sorted_groups().values, expected)
