"""Property tests for the statistics kept up to date as records enter and leave the window
(exporter.stats.ranked, snapshot.compute_sorted): after any sequence of additions and
evictions they equal the plain recomputation from scratch, bit for bit, and scipy.

Row and duration windows (timestamps in and out of order), model versions and segments are
driven through the pipeline core with an explicit clock."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_models import write_model
from scipy import stats as sps

from exporter.parsing import batch_from_records
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.snapshot import ModelSnapshot, compute
from exporter.stats.ecdf import sorted_sample
from exporter.stats.merged import ks_and_wasserstein, ks_and_wasserstein_ranked
from exporter.stats.ranked import advanced, ranked

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Ties (small integers, both zeros) mixed with spread-out values, and missing values.
finite = st.one_of(st.integers(-3, 3).map(float), st.sampled_from([0.0, -0.0]),
                   st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False,
                             allow_subnormal=False))
with_missing = st.one_of(finite, st.just(float("nan")))
# One step: how many of the oldest values leave, then the values that enter.
steps = st.lists(st.tuples(st.integers(0, 30), st.lists(with_missing, max_size=30)),
                 min_size=1, max_size=12)


class TestAdvanced:
    @SETTINGS
    @given(reference=st.lists(finite, min_size=1, max_size=60),
           initial=st.lists(with_missing, max_size=60), moves=steps)
    def test_after_any_adds_and_evictions_it_equals_sorting_and_ranking_anew(
            self, reference: list[float], initial: list[float],
            moves: list[tuple[int, list[float]]]) -> None:
        sample = sorted_sample(np.array(reference))
        rows = np.array(initial, dtype=np.float64)
        column = ranked(rows, sample)
        for oldest, entering in moves:
            leaving = min(oldest, rows.shape[0])
            entered = np.array(entering, dtype=np.float64)
            column = advanced(column, rows[:leaving], entered)
            rows = np.concatenate((rows[leaving:], entered))
            fresh = ranked(rows, sample)
            np.testing.assert_array_equal(column.values, fresh.values)
            np.testing.assert_array_equal(column.ranks, fresh.ranks)
            expected = np.searchsorted(sample.values, fresh.values, side="right")
            np.testing.assert_array_equal(column.ranks, expected)

    @pytest.mark.parametrize("entering", [1_000, 5_000, 20_000])  # through a mask, positions
    def test_a_large_column_after_many_or_few_entries_equals_sorting_and_ranking_anew(
            self, entering: int) -> None:
        rng = np.random.default_rng(entering)
        sample = sorted_sample(np.round(rng.normal(size=50_000), 2))
        rows = np.round(rng.normal(0.1, 1.0, 100_000), 3)
        rows[rng.random(100_000) < 0.01] = np.nan
        entered = np.round(rng.normal(0.2, 1.0, entering), 3)
        column = advanced(ranked(rows, sample), rows[:entering], entered)
        fresh = ranked(np.concatenate((rows[entering:], entered)), sample)
        np.testing.assert_array_equal(column.values, fresh.values)
        np.testing.assert_array_equal(column.ranks, fresh.ranks)

    def test_values_that_were_not_in_the_column_are_refused(self) -> None:
        column = ranked(np.array([1.0, 2.0, 2.0]), sorted_sample(np.array([0.0, 3.0])))
        with pytest.raises(ValueError, match="not in it"):
            advanced(column, np.array([2.0, 2.0, 2.0]), np.array([]))
        with pytest.raises(ValueError, match="not in it"):
            advanced(column, np.array([5.0]), np.array([]))


# Few distinct values (the pass by runs), at the float limits too (rescaled gaps).
few = st.one_of(st.integers(-3, 3).map(float), st.sampled_from([0.0, -0.0, 1e300, -1e300,
                                                                 5e-324, 1e-310, 2.5]))


class TestRankedMerge:
    @SETTINGS
    @given(reference=st.lists(finite, min_size=1, max_size=80),
           window=st.lists(finite, min_size=1, max_size=80),
           norm=st.floats(0.001, 1e3), by_runs=st.sampled_from([None, True, False]))
    def test_it_equals_the_sorting_merge_bit_for_bit_and_scipy(
            self, reference: list[float], window: list[float], norm: float,
            by_runs: bool | None) -> None:
        sample = sorted_sample(np.array(reference))
        column = ranked(np.array(window), sample)
        ours = ks_and_wasserstein_ranked(sample, column.values, column.ranks, norm,
                                         by_runs=by_runs)
        assert ours == ks_and_wasserstein(sample, column.values, norm)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            d = sps.ks_2samp(reference, window).statistic
        assert ours[0] == pytest.approx(d, abs=1e-12)
        assert ours[1] * norm == pytest.approx(sps.wasserstein_distance(reference, window),
                                               rel=1e-9, abs=1e-9)

    @SETTINGS
    @given(reference=st.lists(few, min_size=1, max_size=80),
           window=st.lists(few, min_size=1, max_size=80), norm=st.floats(0.001, 1e3))
    def test_by_runs_and_by_merge_give_the_same_bits_at_the_float_limits(
            self, reference: list[float], window: list[float], norm: float) -> None:
        sample = sorted_sample(np.array(reference))
        column = ranked(np.array(window), sample)
        by_merge = ks_and_wasserstein_ranked(sample, column.values, column.ranks, norm,
                                             by_runs=False)
        assert ks_and_wasserstein_ranked(sample, column.values, column.ranks, norm,
                                         by_runs=True) == by_merge
        assert ks_and_wasserstein(sample, column.values, norm) == by_merge

    @SETTINGS
    @given(reference=st.lists(st.one_of(finite, few), min_size=1, max_size=60),
           window=st.lists(st.one_of(finite, few), min_size=1, max_size=60),
           by_runs=st.booleans())
    def test_the_ks_statistic_is_the_exact_maximum_correctly_rounded(
            self, reference: list[float], window: list[float], by_runs: bool) -> None:
        ref, win = np.sort(np.array(reference)), np.sort(np.array(window))
        n1, n2 = ref.shape[0], win.shape[0]
        # n1 * n2 * |F_ref - F_win| at every pooled point, in exact integers
        largest = max(abs(n2 * int(np.searchsorted(ref, x, side="right"))
                          - n1 * int(np.searchsorted(win, x, side="right")))
                      for x in np.concatenate((ref, win)))
        sample = sorted_sample(ref)
        column = ranked(win, sample)
        d, _ = ks_and_wasserstein_ranked(sample, column.values, column.ranks, by_runs=by_runs)
        assert d == largest / (n1 * n2)  # Python's int division rounds correctly


NOW = 1_000_000.0


def _pipeline(tmp_path: Path, window: dict[str, object], **extra: object) -> ModelPipeline:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": np.round(rng.normal(size=300), 1),
                              "city": rng.choice(["a", "b"], 300), "score": rng.random(300),
                              "seg": rng.choice(["s", "t", "u"], 300)})
    config = write_model(tmp_path, reference, timestamp_column="ts", window=window,
                         drift={"min_rows": 1}, **extra)
    return ModelPipeline(config, load_reference(config))


def _figures(snapshot: ModelSnapshot) -> ModelSnapshot:
    return dataclasses.replace(snapshot, computed_at=0.0, duration_seconds=0.0)


record = st.fixed_dictionaries({
    "x": st.one_of(st.integers(-3, 3).map(lambda v: v / 2), st.floats(-5, 5), st.none()),
    "city": st.sampled_from(["a", "b", "z"]),
    "score": st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1)),
    "v": st.sampled_from(["1", "2", "3"]),
    "seg": st.sampled_from(["s", "t", "u", "w"]),
    "age": st.floats(0, 40),  # seconds before the clock: out of order within a batch
})
batches = st.lists(st.tuples(st.lists(record, max_size=25), st.floats(0, 15), st.booleans()),
                   min_size=1, max_size=10)
windows = st.sampled_from([{"rows": 30}, {"rows": 7}, {"duration": "30s"}])


class TestPipelineRecompute:
    @FEW
    @given(window=windows, moves=batches, versioned=st.booleans(), segmented=st.booleans())
    def test_every_recomputation_equals_computing_its_window_from_scratch(
            self, tmp_path: Path, window: dict[str, object],
            moves: list[tuple[list[dict[str, object]], float, bool]], versioned: bool,
            segmented: bool) -> None:
        extra: dict[str, object] = {}
        if versioned:
            extra.update(version_column="v", max_versions=2)
        if segmented:
            extra["segments"] = {"column": "seg", "max_segments": 2}
        core = _pipeline(tmp_path, window, **extra)
        now = NOW
        for records, advance, recompute in moves:
            now += advance
            stamped = [{k: v for k, v in r.items() if k != "age"} | {"ts": now - r["age"]}
                       for r in records]
            core.add(batch_from_records(stamped, core.columns), now)
            if not recompute:
                continue
            snapshots = core.recompute(now)
            keys = [key for key, _ in core.router.windows()]
            assert len(snapshots) == len(keys)
            for key, snapshot in zip(keys, snapshots, strict=True):
                window_of_key = core.router.window(key)
                assert window_of_key is not None
                fresh = compute(window_of_key.view(now), core.profile.for_segment(key.segment),
                                core.config, core.thresholds[key.segment], now=now,
                                version=key.version)
                assert _figures(snapshot) == _figures(fresh)
