"""Property tests for exporter.alarm: chunking, tie groups, the block statistic, the budgets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from exporter.alarm import STEPS_PER_BLOCK, AlarmConfig, AlarmDetector, ReferenceColumn

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def detector(seed: int) -> AlarmDetector:
    rng = np.random.default_rng(seed)
    reference = [
        ReferenceColumn("n", "numerical", rng.normal(size=3000)),
        ReferenceColumn("p", "numerical", rng.poisson(1.0, size=3000).astype(np.float64)),
        ReferenceColumn("c", "categorical", rng.choice(4, size=3000, p=[0.5, 0.3, 0.15, 0.05])),
    ]
    return AlarmDetector(reference, AlarmConfig(false_alarm_every=5000.0), seed=seed,
                         keep_results=True, max_block_alpha=1.0)


class TestChunking:
    @PROPERTY
    @given(cuts=st.lists(st.integers(0, 1300), max_size=8), seed=st.integers(0, 3))
    def test_how_records_are_split_into_calls_changes_nothing(self, cuts: list[int],
                                                               seed: int) -> None:
        rng = np.random.default_rng(100 + seed)
        n = 1300
        values = [rng.normal(0.2, 1.0, size=n), rng.poisson(1.3, size=n).astype(np.float64),
                  rng.choice(5, size=n)]
        times = np.cumsum(rng.exponential(1.0, size=n))
        whole, parts = detector(seed), detector(seed)
        whole.add(values, times)
        bounds = [0, *sorted(cuts), n]
        for a, b in itertools.pairwise(bounds):
            parts.add([v[a:b] for v in values], times[a:b])
        assert whole.state() == parts.state()
        assert len(whole.results) == len(parts.results)
        for x, y in zip(whole.results, parts.results, strict=True):
            assert x.alpha == y.alpha
            assert np.array_equal(x.pvalues, y.pvalues)
            assert x.exceeded == y.exceeded


class TestTieGroups:
    @PROPERTY
    @given(reference=st.lists(st.integers(-5, 5).map(float), min_size=1, max_size=50),
           values=st.lists(st.one_of(st.integers(-7, 7).map(float),
                                     st.floats(-7, 7), st.just(float("nan"))),
                             min_size=1, max_size=50))
    def test_numerical_groups_keep_the_order_and_the_ties_of_the_values(
            self, reference: list[float], values: list[float]) -> None:
        found = AlarmDetector([ReferenceColumn("x", "numerical", np.array(reference))],
                              AlarmConfig(), scales=(1,))
        column = found._columns[0]
        v = np.array(values)
        groups = column.group_of(v)
        order = np.argsort(v, kind="stable")  # NaN last, as the groups put missing last
        assert np.all(np.diff(groups[order]) >= 0)
        for a in range(len(v)):
            for b in range(len(v)):
                same = v[a] == v[b] or (np.isnan(v[a]) and np.isnan(v[b]))
                assert (groups[a] == groups[b]) == same or not (
                    np.isin(v[a], reference) or np.isin(v[b], reference))
        seen = np.isin(v, reference)
        # A value of the reference is in an odd group, a value between two (or missing,
        # when the reference has none) never shares a group with a reference value.
        assert np.all(groups[seen] % 2 == 1)

    @PROPERTY
    @given(reference=st.lists(st.integers(0, 6), min_size=1, max_size=60),
           values=st.lists(st.integers(-2, 9), min_size=1, max_size=30))
    def test_categories_are_ranked_by_reference_frequency_and_unseen_ones_come_last(
            self, reference: list[int], values: list[int]) -> None:
        found = AlarmDetector([ReferenceColumn("c", "categorical", np.array(reference))],
                              AlarmConfig(), scales=(1,))
        column = found._columns[0]
        codes, counts = np.unique(reference, return_counts=True)
        groups = column.group_of(np.array(values))
        for value, group in zip(values, groups, strict=True):
            if value in codes:
                count = counts[list(codes).index(value)]
                more = int(np.sum(counts > count))
                assert more <= group < more + int(np.sum(counts == count))
            else:
                assert group == len(codes)


class TestBlockStatistic:
    @PROPERTY
    @given(reference=st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=80, unique=True),
           block=st.lists(st.floats(-1e6, 1e6), min_size=8, max_size=8, unique=True))
    def test_it_is_scipys_ks_statistic_when_no_value_is_repeated(
            self, reference: list[float], block: list[float]) -> None:
        if set(reference) & set(block):
            return  # a value in both is a tie, broken at random
        found = AlarmDetector([ReferenceColumn("x", "numerical", np.array(reference))],
                              AlarmConfig(), scales=(8,), keep_results=True)
        found.add([np.array(block)], np.arange(8.0))
        expected = sps.ks_2samp(reference, block).statistic
        assert found.results[0].statistics[0] == pytest.approx(expected, abs=1e-12)


class TestBudgets:
    @PROPERTY
    @given(gaps=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=80),
           target=st.floats(1e5, 1e9))
    def test_a_scales_budgets_add_up_to_its_share_of_the_elapsed_time(
            self, gaps: list[float], target: float) -> None:
        rng = np.random.default_rng(0)
        found = AlarmDetector([ReferenceColumn("x", "numerical", rng.normal(size=1000))],
                              AlarmConfig(false_alarm_every=target), keep_results=True,
                              max_block_alpha=1.0, scales=(2, 8, 32))
        times = np.cumsum(gaps)
        found.add([rng.normal(size=len(gaps))], times)
        for size in found.scales:
            blocks = [r for r in found.results if r.scale == size]
            if not blocks:
                continue
            step = size // STEPS_PER_BLOCK  # a window of ``size`` every ``step`` records
            end = times[size + (len(blocks) - 1) * step - 1]
            total = sum(r.alpha for r in blocks)
            assert total == pytest.approx((end - times[0]) / len(found.scales) / target,
                                          rel=1e-9, abs=1e-300)
