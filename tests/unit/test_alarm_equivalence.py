"""The detector tests windows in batches and places records per group: the same results as testing
every window on its own and placing records by one search over the reference keys.

``OneByOne`` below is the detector as first written (before it was made cheaper), without its
bounded buffer: every window tested alone, in the order windows complete, each record placed by
``searchsorted`` over the column's sorted keys. The fast detector must match it exactly: states
after every call, and every window's statistics, p-values (1e-12 relative) and exceedances.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from exporter import alarm
from exporter.alarm import (
    CLEAR_BLOCKS,
    CLEAR_LEVEL,
    MAX_BLOCK_ALPHA,
    RANK_MAX_SHARE,
    RANK_SCREEN_FACTOR,
    SCREEN_FACTOR,
    STEPS_PER_BLOCK,
    AlarmConfig,
    AlarmDetector,
    BlockResult,
    PreparedReference,
    ReferenceColumn,
    block_statistics,
    ks_tail_exact,
    ks_tail_screen_many,
    plan_scales,
    prepare_reference,
    rank_tail_exact,
    rank_tail_screen_many,
    tie_groups,
    window_levels,
)
from exporter.share_test import share_pvalues, share_uniforms
from exporter.stats.divergence import jensen_shannon
from exporter.stats.ks import ks_statistic

Array = npt.NDArray[Any]


class OneByOne:
    """The reference semantics: every window tested alone, every record kept (unbounded)."""

    def __init__(self, reference: PreparedReference, config: AlarmConfig, seed: int,
                 scales: tuple[int, ...] | None = None,
                 max_block_alpha: float = MAX_BLOCK_ALPHA) -> None:
        self.columns = reference.columns
        self.rows = reference.rows
        self.rngs = [np.random.Generator(np.random.PCG64([seed, j]).advance(self.rows))
                     for j in range(len(self.columns))]
        self.config = config
        self.seed = seed
        self.scales = plan_scales(self.rows) if scales is None else scales
        self.steps = [max(1, m // STEPS_PER_BLOCK) for m in self.scales]
        self.max_alpha = max_block_alpha
        self.weight = 1.0 / len(self.scales) if self.scales else 0.0
        self.below = np.zeros((len(self.columns), 0), dtype=np.int64)
        self.groups = np.zeros((len(self.columns), 0), dtype=np.int64)
        self.times = np.zeros(0)
        self.start: float | None = None
        self.last_end = [0.0] * len(self.scales)
        self.raised: dict[str, Any] | None = None
        self.raised_total = 0
        self.blocks_tested = 0
        self.results: list[BlockResult] = []

    def add(self, values: Sequence[Array], times: Array) -> None:
        count = times.shape[0]
        if not self.scales or count == 0:
            return
        if self.start is None:
            finite = times[np.isfinite(times)]
            if finite.shape[0] == 0:
                return
            self.start = float(finite[0])
            self.last_end = [self.start] * len(self.scales)
        groups, below = [], []
        for column, rng, v in zip(self.columns, self.rngs, values, strict=True):
            g = tie_groups(column.levels, column.rank_of_level, column.categorical, v)
            groups.append(g)
            below.append(np.searchsorted(column.keys.values, g + rng.random(count)))
        seen = self.times.shape[0]
        self.groups = np.concatenate((self.groups, groups), axis=1)
        self.below = np.concatenate((self.below, below), axis=1)
        self.times = np.concatenate((self.times, times))
        step = self.steps[0]
        for boundary in range((seen // step + 1) * step, self.times.shape[0] + 1, step):
            for k, (scale, every) in enumerate(zip(self.scales, self.steps, strict=True)):
                if boundary % every == 0 and boundary >= scale:
                    self.test_block(k, boundary - scale, boundary)

    def test_block(self, k: int, start: int, stop: int) -> None:
        end_time = float(self.times[stop - 1])
        elapsed = end_time - self.last_end[k]
        if math.isfinite(elapsed) and elapsed > 0.0:
            self.last_end[k] = end_time
        else:
            elapsed = 0.0
        alpha = min(self.max_alpha, self.weight * elapsed / self.config.false_alarm_every)
        n1, n2 = self.rows, stop - start
        ranked = n2 * RANK_MAX_SHARE <= n1
        categorical = [c.categorical for c in self.columns]
        shares = [c.share_test for c in self.columns if c.share_test is not None]
        share_tests = sum(float(c.weights(n2).sum()) for c in shares)
        numerical = categorical.count(False)
        singles, pairs = (share_tests, numerical) if ranked else (numerical + share_tests, 0)
        level = float(window_levels(np.array([alpha]), singles, pairs)[0])
        below = self.below[:, start:stop]
        statistics = block_statistics(below, n1)
        pvalues = ks_tail_screen_many(statistics, n1, n2)
        pvalues[categorical] = 1.0
        numerical = [j for j, c in enumerate(categorical) if not c]
        for j in numerical:
            if level / SCREEN_FACTOR <= pvalues[j] < SCREEN_FACTOR * level:
                pvalues[j] = ks_tail_exact(float(statistics[j]), n1, n2)
        rank_pvalues = np.ones(len(self.columns))
        if ranked:
            ranks = below.sum(axis=1).astype(np.float64)
            rank_pvalues = rank_tail_screen_many(ranks, n1, n2)
            rank_pvalues[categorical] = 1.0
            for j in numerical:
                if level <= rank_pvalues[j] < RANK_SCREEN_FACTOR * level:
                    rank_pvalues[j] = rank_tail_exact(float(ranks[j]), n1, n2)
        # Categorical columns: each tested category's count, by a plain bincount, against its
        # reference count (share_pvalues), randomized by the window's identity.
        share = np.ones(len(self.columns))
        window = stop * len(self.scales) + k
        for j, column in enumerate(self.columns):
            if column.share_test is None:
                continue
            test = column.share_test
            counts = np.bincount(test.bin_of_group[self.groups[j, start:stop]],
                                 minlength=test.counts.shape[0])[test.tested]
            u = share_uniforms(self.seed, j, np.array([window]), test.tested)[0]
            share[j] = min(share_pvalues(counts, test.counts[test.tested], n2, n1, u),
                           default=1.0)
        smallest = np.minimum(np.minimum(pvalues, rank_pvalues), share)
        exceeded = [j for j in range(len(self.columns))
                    if smallest[j] < level and self.effect(j, stop) >= self.config.min_effect]
        self.blocks_tested += 1
        self.results.append(BlockResult(n2, end_time, alpha, statistics, pvalues, rank_pvalues,
                                        tuple(exceeded), share))
        self.update(k, start, end_time, exceeded, float(np.min(smallest)), singles + 2 * pairs)

    def effect(self, j: int, stop: int) -> float:
        if self.config.min_effect <= 0.0:
            return 1.0
        column = self.columns[j]
        groups = self.groups[j, max(0, stop - self.scales[-1]):stop]
        if column.categorical:
            counts = np.bincount(groups, minlength=column.shares.shape[0]).astype(np.float64)
            return jensen_shannon(column.shares, counts / counts.sum())
        return ks_statistic(column.sorted_groups(), np.sort(groups).astype(np.float64))

    def update(self, k: int, first: int, end_time: float, exceeded: list[int],
               smallest: float, tests: int) -> None:
        raised = self.raised
        if raised is None:
            if exceeded:
                self.raised = {"scale": k, "at": end_time, "last": first + self.scales[k] - 1,
                               "columns": set(exceeded), "clean": [0] * len(self.scales)}
                self.raised_total += 1
            return
        raised["columns"].update(exceeded)
        if first <= raised["last"]:
            return
        combined = 1.0 if smallest >= 1.0 else -math.expm1(tests * math.log1p(-smallest))
        clean = combined >= CLEAR_LEVEL and not exceeded
        raised["clean"][k] = raised["clean"][k] + 1 if clean else 0
        if min(raised["clean"]) >= 1 and raised["clean"][raised["scale"]] >= CLEAR_BLOCKS:
            self.raised = None

    def state(self) -> tuple[Any, ...]:
        """The fields of AlarmState, in order."""
        raised = self.raised
        columns = tuple(c.name for i, c in enumerate(self.columns)
                        if raised is not None and i in raised["columns"])
        return (raised is not None, self.raised_total, columns,
                raised["at"] if raised else None,
                self.scales[raised["scale"]] if raised else None, self.scales,
                self.blocks_tested)


def mixed_reference(rng: np.random.Generator, rows: int) -> list[ReferenceColumn]:
    """Continuous, rounded, integer with missing values, and categorical columns."""
    counts = rng.poisson(3, rows).astype(np.float64)
    counts[rng.random(rows) < 0.1] = np.nan
    return [
        ReferenceColumn("normal", "numerical", rng.normal(size=rows)),
        ReferenceColumn("rounded", "numerical", np.round(rng.normal(size=rows), 1)),
        ReferenceColumn("counts", "numerical", counts),
        ReferenceColumn("category", "categorical", rng.integers(0, 5, rows)),
    ]


def drifting_records(rng: np.random.Generator, n: int) -> tuple[list[Array], Array]:
    """Records with two changes (a short burst, then a persistent one), odd times."""
    normal = rng.normal(size=n)
    normal[n // 5:n // 5 + 300] += 1.5  # a burst: raises, then the alarm lowers
    normal[3 * n // 4:] += 0.4  # a persistent change: raises again
    rounded = np.round(rng.normal(size=n), 1)
    counts = rng.poisson(3, n).astype(np.float64)
    counts[rng.random(n) < 0.1] = np.nan
    counts[n // 2:n // 2 + 500] = np.nan  # a jump in missing values
    category = rng.integers(0, 5, n)
    category[n // 2 + 1500:n // 2 + 1700] = 5  # a code never seen in the reference
    times = np.cumsum(rng.exponential(1.0, n))
    times[rng.random(n) < 0.01] = np.nan
    times[n // 3:n // 3 + 100] -= 50.0  # time going backwards
    return [normal, rounded, counts, category], times


def splits(rng: np.random.Generator, n: int, kind: str) -> list[int]:
    """Call sizes: one call, 1-record calls then a huge one, calls of 50, or random cuts."""
    if kind == "one":
        return [n]
    if kind == "ones":
        return [1] * 700 + [n - 700]
    if kind == "fifty":
        return [50] * (n // 50) + ([n % 50] if n % 50 else [])
    cuts = np.sort(rng.choice(np.arange(1, n), 120, replace=False))
    return np.diff(np.concatenate(([0], cuts, [n]))).tolist()


def assert_same(fast: AlarmDetector, slow: OneByOne) -> None:
    assert len(fast.results) == len(slow.results)
    for got, want in zip(fast.results, slow.results, strict=True):
        assert (got.scale, got.alpha, got.exceeded) == (want.scale, want.alpha, want.exceeded)
        assert got.end_time == want.end_time or (math.isnan(got.end_time)
                                                 and math.isnan(want.end_time))
        for name in ("statistics", "pvalues", "rank_pvalues", "share_pvalues"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12,
                                       atol=0, err_msg=name)


def run_both(reference: list[ReferenceColumn], values: list[Array], times: Array,
             sizes: list[int], config: AlarmConfig, keep: bool = True,
             **options: Any) -> tuple[AlarmDetector, OneByOne]:
    prepared = prepare_reference(reference, seed=3)
    fast = AlarmDetector(prepared, config, seed=9, keep_results=keep, **options)
    slow = OneByOne(prepared, config, seed=9, **options)
    at = 0
    for size in sizes:
        part = [v[at:at + size] for v in values]
        fast.add(part, times[at:at + size])
        slow.add(part, times[at:at + size])
        assert dataclasses.astuple(fast.state()) == slow.state(), at
        at += size
    return fast, slow


class TestSameResultsAsOneWindowAtATime:
    @pytest.mark.parametrize("split", ["one", "ones", "fifty", "random"])
    @pytest.mark.parametrize("min_effect", [0.0, 0.05])
    def test_drifting_mixed_columns_give_the_same_windows_and_states(
            self, split: str, min_effect: float) -> None:
        rng = np.random.default_rng(5)
        # Over 4,096 distinct values: the normal column is placed in sorted order in big calls.
        reference = mixed_reference(rng, 6000)
        values, times = drifting_records(rng, 12_000)
        config = AlarmConfig(false_alarm_every=3 * 86400.0, min_effect=min_effect)
        fast, slow = run_both(reference, values, times, splits(rng, 12_000, split), config)
        assert slow.raised_total >= 2  # the data exercise raising and lowering
        assert_same(fast, slow)

    @pytest.mark.parametrize("split", ["one", "fifty", "random"])
    def test_windows_merged_from_the_sorted_steps_of_a_smaller_scale_are_the_same(
            self, split: str, monkeypatch: pytest.MonkeyPatch) -> None:
        # Steps of 200 kept sorted: 400-record windows merge 2 runs, 1,600-record ones 8.
        monkeypatch.setattr(alarm, "_MERGE_FROM", 100)
        rng = np.random.default_rng(4)
        reference = mixed_reference(rng, 6000)
        values, times = drifting_records(rng, 12_000)
        fast, slow = run_both(reference, values, times, splits(rng, 12_000, split),
                              AlarmConfig(false_alarm_every=3 * 86400.0))
        assert fast._sorted_scale == 1
        assert_same(fast, slow)

    @pytest.mark.parametrize("split", ["fifty", "random"])
    def test_without_kept_results_the_states_are_the_same_after_every_call(
            self, split: str) -> None:
        # Without keep_results, windows without budget are tested only when the call holds an
        # exceedance or the alarm is up; the states must not tell the difference.
        rng = np.random.default_rng(15)
        reference = mixed_reference(rng, 6000)
        values, times = drifting_records(rng, 12_000)
        sizes = splits(rng, 12_000, split)
        # One time per call, as for records read in one batch without timestamps.
        ends = np.cumsum(sizes)
        batch_times = np.repeat(ends * 1.0, sizes)
        config = AlarmConfig(false_alarm_every=3 * 86400.0)
        for stamps in (times, batch_times):
            fast, slow = run_both(reference, values, stamps, sizes, config, keep=False)
            assert slow.raised_total >= 1
            assert fast.results == []

    @pytest.mark.parametrize("split", ["fifty", "one"])
    def test_a_change_only_the_largest_windows_see_raises_alike_without_kept_results(
            self, split: str) -> None:
        # The largest windows are bounded by the mean of the smaller ones' statistics while
        # the alarm is down: a small shift that only they detect must still raise at the
        # same record.
        rng = np.random.default_rng(21)
        reference = [ReferenceColumn(name, "numerical", rng.normal(size=6000))
                     for name in ("x", "y")]
        n = 8000
        x = rng.normal(size=n)
        x[3000:] += 0.2
        values = [x, rng.normal(size=n)]
        _, slow = run_both(reference, values, np.arange(n, dtype=np.float64),
                              splits(rng, n, split), AlarmConfig(), keep=False)
        assert slow.state()[3:5] == (3999.0, 1600)  # raised by a 1,600-record window

    @pytest.mark.parametrize("shift", [0.15, 0.2])
    def test_a_change_only_ranked_large_windows_see_raises_alike_without_kept_results(
            self, shift: float) -> None:
        # 1,600-record windows of a 30,000-row reference run Mann-Whitney too: bounded, their
        # rank sums must still be checked.
        rng = np.random.default_rng(22)
        reference = [ReferenceColumn(name, "numerical", rng.normal(size=30_000))
                     for name in ("x", "y")]
        n = 8000
        x = rng.normal(size=n)
        x[3000:] += shift
        values = [x, rng.normal(size=n)]
        _, slow = run_both(reference, values, np.arange(n, dtype=np.float64), [50] * (n // 50),
                           AlarmConfig(), keep=False, scales=(100, 400, 1600))
        assert slow.state()[4] == 1600  # raised by a 1,600-record window

    def test_every_window_exceeding_gives_the_same_exact_p_values(self) -> None:
        rng = np.random.default_rng(6)
        reference = mixed_reference(rng, 1500)
        values, times = drifting_records(rng, 3000)
        fast, slow = run_both(reference, values, times, splits(rng, 3000, "random"),
                              AlarmConfig(false_alarm_every=100.0), max_block_alpha=1.0,
                              scales=(50, 100, 400))
        assert_same(fast, slow)

    def test_a_reference_column_without_usable_values_gives_the_same_results(self) -> None:
        rng = np.random.default_rng(7)
        reference = [ReferenceColumn("empty", "numerical", np.full(1200, np.nan)),
                     ReferenceColumn("x", "numerical", rng.normal(size=1200))]
        n = 2000
        values = [np.where(rng.random(n) < 0.5, np.nan, rng.normal(size=n)),
                  rng.normal(size=n) + (np.arange(n) > 1000)]
        times = np.arange(n, dtype=np.float64)
        for split in ("one", "fifty"):
            fast, slow = run_both(reference, values, times, splits(rng, n, split),
                                  AlarmConfig(false_alarm_every=86400.0))
            assert_same(fast, slow)

    @pytest.mark.parametrize("split", ["one", "fifty"])
    def test_many_categories_and_integer_arrays_give_the_same_results(self, split: str) -> None:
        rng = np.random.default_rng(9)
        reference = [ReferenceColumn("code", "categorical", rng.integers(0, 6000, 8000)),
                     ReferenceColumn("count", "numerical", rng.poisson(40, 8000))]
        n = 6000
        codes = rng.integers(0, 6500, n)  # some unseen
        counts = rng.poisson(40, n) + (np.arange(n) > 3000) * 3  # integers, not floats
        fast, slow = run_both(reference, [codes, counts], np.arange(n, dtype=np.float64),
                              splits(rng, n, split), AlarmConfig(false_alarm_every=86400.0))
        assert fast.state().raised_total >= 1
        assert_same(fast, slow)

    def test_times_without_a_finite_one_place_nothing_in_either(self) -> None:
        rng = np.random.default_rng(8)
        reference = mixed_reference(rng, 1000)
        values, times = drifting_records(rng, 1000)
        times[:300] = np.nan
        fast, slow = run_both(reference, values, times, [100, 100, 100, 700],
                              AlarmConfig(false_alarm_every=86400.0))
        assert_same(fast, slow)


class TestPlacementEqualsOneSearchOverTheKeys:
    @pytest.mark.parametrize("call", [3, 300, 20_000])
    def test_counts_below_equal_searchsorted_even_for_draws_at_the_ends(self, call: int) -> None:
        rng = np.random.default_rng(10)
        reference = mixed_reference(rng, 5000)
        prepared = prepare_reference(reference, seed=1)
        values, _ = drifting_records(rng, call)
        special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e308, -1e308, 5e-324])
        for column in values[:3]:  # the numerical ones
            column[:special.shape[0]] = special[:column.shape[0]]
        draws = rng.random((len(values), call))
        # Draws whose keys round to their group or to the next one.
        draws[:, ::3] = 0.0
        draws[:, 1::7] = np.nextafter(1.0, 0.0)
        draws[:, 2::11] = 1e-17
        expected = []
        for column, v, d in zip(prepared.columns, values, draws, strict=True):
            groups = tie_groups(column.levels, column.rank_of_level, column.categorical, v)
            below = np.searchsorted(column.keys.values, groups + d)
            got_groups, got_below = column.place(v, d)
            assert np.array_equal(got_groups, groups)
            assert np.array_equal(got_below, below)
            expected.append(below)
        assert prepared.flat is not None
        _, together = alarm._place_all(prepared.flat, values, draws[prepared.flat.order])
        assert np.array_equal(together, np.array(expected))

    def test_keys_of_the_reference_that_round_to_the_next_group_are_counted_alike(self) -> None:
        # Large groups: g + u rounds to g + 1 for u within 2**-53 * g of 1.
        levels = np.arange(0, 4_000_000, 2, dtype=np.float64)
        reference = [ReferenceColumn("x", "numerical", np.repeat(levels[-300:], 3))]
        prepared = prepare_reference(reference, seed=2)
        column = prepared.columns[0]
        values = np.repeat(levels[-300:], 4)
        values[::4] += 1.0  # between two reference values
        draws = np.tile([0.0, 1e-12, 0.5, np.nextafter(1.0, 0.0)], 300)
        groups = tie_groups(column.levels, column.rank_of_level, False, values)
        below = np.searchsorted(column.keys.values, groups + draws)
        assert np.array_equal(column.place(values, draws)[1], below)
        assert prepared.flat is not None
        _, together = alarm._place_all(prepared.flat, [values], draws[np.newaxis, :])
        assert np.array_equal(together[0], below)

    @pytest.mark.parametrize("kind", ["numerical", "categorical"])
    def test_a_reference_key_rounded_up_to_the_next_group_is_not_below_a_key_equal_to_it(
            self, kind: str) -> None:
        # g + u can round up to g + 1 (u within 2**-53 * g of 1): rare with real groups, so the
        # last key of each group is set to the next group here.
        rng = np.random.default_rng(12)
        codes = rng.integers(0, 40, 4000)
        values_ref = codes if kind == "categorical" else codes.astype(np.float64)
        prepared = prepare_reference([ReferenceColumn("x", kind, values_ref)], seed=4)
        column = prepared.columns[0]
        keys = column.keys.values  # shared with prepared.flat.keys
        for group in range(1, int(keys[-1])):
            last = int(np.searchsorted(keys, group)) - 1
            if last >= 0 and keys[last] > group - 1:
                keys[last] = float(group)
        if column.cells.shape[0]:  # the cells of the changed keys (views of flat's)
            _, cells, steps = alarm._cells(keys, column.slot_rows, column.categorical)
            column.cells[:] = cells
            column = dataclasses.replace(column, cell_steps=steps)
            assert prepared.flat is not None
            flat = dataclasses.replace(prepared.flat, search_steps=(0, steps))
            prepared = dataclasses.replace(prepared, columns=(column,), flat=flat)
        values = (rng.integers(-1, 42, 3000) if kind == "categorical"
                  else rng.integers(-1, 42, 3000) + rng.choice([0.0, 0.5], 3000))
        draws = np.where(rng.random(3000) < 0.5, 0.0, rng.random(3000))
        groups = tie_groups(column.levels, column.rank_of_level, column.categorical, values)
        below = np.searchsorted(keys, groups + draws)
        assert np.array_equal(column.place(values, draws)[1], below)
        assert prepared.flat is not None
        _, together = alarm._place_all(prepared.flat, [values], draws[np.newaxis, :])
        assert np.array_equal(together[0], below)


class TestBlockStatistics:
    @pytest.mark.parametrize(("n1", "n2"), [(1000, 100), (100_000, 6400), (100_000, 25_600),
                                            (1_000_000, 25_600)])
    def test_the_statistic_is_the_largest_ecdf_gap_in_exact_integers(self, n1: int,
                                                                     n2: int) -> None:
        rng = np.random.default_rng(n2)
        below = rng.integers(0, n1 + 1, (3, n2)).astype(np.int32)
        below[1] = np.minimum(below[1], n1 // 3)  # a large gap
        ordered = np.sort(below, axis=1).astype(object)  # Python integers: no overflow
        for row, got in zip(ordered, block_statistics(below, n1), strict=True):
            gaps = [max(j * n1 - int(b) * n2, int(b) * n2 - (j - 1) * n1)
                    for j, b in enumerate(row, start=1)]
            assert got == max(*gaps, 0) / (n1 * n2)


class TestGuide:
    @pytest.mark.parametrize("kind", ["normal", "lognormal", "zeros and tiny", "signed wide",
                                      "infinite", "one level"])
    def test_levels_below_equal_searchsorted_for_any_value(self, kind: str) -> None:
        rng = np.random.default_rng(13)
        draws = {
            "normal": rng.normal(size=3000),
            "lognormal": rng.lognormal(0, 2, 3000),
            "zeros and tiny": np.concatenate((np.zeros(100), -np.zeros(10),
                                              rng.random(3000) * 1e-300, rng.random(100))),
            "signed wide": rng.normal(size=3000) * 10.0 ** rng.integers(-300, 300, 3000),
            "infinite": np.concatenate((rng.normal(size=1000), [np.inf, -np.inf])),
            "one level": np.full(10, 2.5),
        }[kind]
        levels = np.unique(draws)
        guide = alarm._guide(levels)
        values = np.concatenate((rng.choice(levels, 2000), rng.normal(size=500) * 1e3,
                                 [0.0, -0.0, np.inf, -np.inf, np.nan, 1e308, -1e308, 5e-324,
                                  levels[0], levels[-1], np.nextafter(levels[0], -np.inf),
                                  np.nextafter(levels[-1], np.inf)]))
        found = guide.levels_below(levels, values)
        usable = ~np.isnan(values)  # NaN: fixed after (after every level)
        assert np.array_equal(found[usable], np.searchsorted(levels, values[usable]))


class TestBound:
    def test_a_bounded_window_with_an_extreme_rank_sum_is_still_tested(self) -> None:
        rng = np.random.default_rng(23)
        reference = [ReferenceColumn("x", "numerical", rng.normal(size=30_000))]
        detector = AlarmDetector(reference, AlarmConfig(), seed=1, scales=(100, 400, 1600))
        detector.add([rng.normal(size=1600)], np.arange(1600, dtype=np.float64))
        assert detector._bounded == (2,)
        for end in (400, 800, 1200, 1600):  # the 400-record windows: KS statistics of 0
            detector._parts_ks[1][end] = np.zeros(1)
        assert detector._cannot_exceed(2, 1600, 1e-6)
        detector._below[:, :1600] = 30_000  # every record above the whole reference
        assert not detector._cannot_exceed(2, 1600, 1e-6)
        detector._parts_ks[1][800] = np.ones(1)  # and a part far from the reference
        assert not detector._cannot_exceed(2, 1600, 1e-6)
