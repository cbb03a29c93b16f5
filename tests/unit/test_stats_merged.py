"""Tests for exporter.stats.merged: KS statistic and Wasserstein distance from one merge."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from exporter.stats import merged
from exporter.stats.ecdf import FloatArray, run_ends, sorted_sample
from exporter.stats.merged import ks_and_wasserstein, ks_and_wasserstein_ranked
from exporter.stats.ranked import ranked

SIZES = [(1, 1), (1, 2), (2, 1), (100_000, 50), (50, 100_000), (3000, 700), (10_000, 10_001),
         (100_000, 100_000)]
SHAPES = {
    "normal": lambda rng, n: rng.normal(10.0, 2.0, n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.5, n),
    "integers-with-ties": lambda rng, n: rng.integers(0, 6, n).astype(np.float64),
    "rounded": lambda rng, n: np.round(rng.exponential(3.0, n), 2),
    "one-repeated-value": lambda rng, n: np.full(n, 3.25),
}


def _ours(reference: FloatArray, window: FloatArray) -> tuple[float, float]:
    return ks_and_wasserstein(sorted_sample(reference), np.sort(window))


def _scipy_ks(reference: FloatArray, window: FloatArray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sps.ks_2samp(reference, window).statistic)


@pytest.mark.parametrize(("n1", "n2"), SIZES)
@pytest.mark.parametrize("shape", SHAPES)
def test_both_statistics_equal_scipy(n1: int, n2: int, shape: str) -> None:
    rng = np.random.default_rng(n1 * 7 + n2)
    draw = SHAPES[shape]
    reference, window = draw(rng, n1), draw(rng, n2) * 1.05
    d, w = _ours(reference, window)
    assert d == pytest.approx(_scipy_ks(reference, window), abs=1e-9)
    assert w == pytest.approx(sps.wasserstein_distance(reference, window), rel=1e-9, abs=1e-12)


def test_identical_samples_give_exactly_zero() -> None:
    sample = np.random.default_rng(3).normal(size=5000).round(2)
    assert _ours(sample, sample) == (0.0, 0.0)


def test_disjoint_samples_give_ks_one_and_the_distance_between_them() -> None:
    d, w = _ours(np.array([0.0, 1.0]), np.array([10.0, 11.0]))
    assert d == 1.0
    assert w == pytest.approx(10.0)


def test_ties_between_the_samples_are_evaluated_after_the_whole_run() -> None:
    # F_ref(1) = 2/3, F_win(1) = 1/2 at the tied point; a position inside the run of 1s would
    # give a larger difference and is not a pooled point.
    reference, window = np.array([1.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0, 3.0])
    d, w = _ours(reference, window)
    assert d == pytest.approx(_scipy_ks(reference, window), abs=1e-15)
    assert w == pytest.approx(sps.wasserstein_distance(reference, window), rel=1e-12)


def test_a_far_sentinel_costs_no_precision() -> None:
    rng = np.random.default_rng(5)
    reference = np.concatenate(([-1e9], rng.normal(size=999)))
    window = np.concatenate(([-1e9], rng.normal(size=999) * 1e-6))
    _, w = _ours(reference, window)
    rest = sps.wasserstein_distance(reference[1:], window[1:]) * 999 / 1000
    assert w == pytest.approx(rest, rel=1e-9)


def test_empty_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ks_and_wasserstein(sorted_sample(np.empty(0)), np.array([1.0]))
    with pytest.raises(ValueError, match="non-empty"):
        ks_and_wasserstein(sorted_sample(np.array([1.0])), np.empty(0))


@pytest.mark.parametrize("shape", SHAPES)
def test_the_ranked_pass_by_runs_and_by_merge_equal_the_sorting_merge_bit_for_bit(
        shape: str) -> None:
    rng = np.random.default_rng(11)
    reference, window = SHAPES[shape](rng, 100_000), SHAPES[shape](rng, 100_000) * 1.05
    sample = sorted_sample(reference)
    column = ranked(window, sample)
    expected = ks_and_wasserstein(sample, column.values, 0.7)
    for by_runs in (None, True, False):
        assert ks_and_wasserstein_ranked(sample, column.values, column.ranks, 0.7,
                                         by_runs=by_runs) == expected


@pytest.mark.parametrize(("shape", "by_runs"), [("normal", False), ("lognormal", False),
                                                ("rounded", True),
                                                ("integers-with-ties", True),
                                                ("one-repeated-value", True)])
def test_the_ranked_pass_goes_by_runs_only_when_few_values_are_distinct(
        shape: str, by_runs: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(12)
    sample = sorted_sample(SHAPES[shape](rng, 20_000))
    column = ranked(SHAPES[shape](rng, 20_000), sample)
    calls: list[int] = []
    real = merged._by_runs

    def counted(*args: Any) -> tuple[float, float]:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(merged, "_by_runs", counted)
    ks_and_wasserstein_ranked(sample, column.values, column.ranks)
    assert bool(calls) == by_runs


def test_a_window_with_many_distinct_values_against_a_reference_with_few_goes_by_merge(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sample = sorted_sample(np.repeat([1.0, 2.0, 3.0], 1000))
    column = ranked(np.random.default_rng(13).normal(2.0, 1.0, 3000), sample)
    monkeypatch.setattr(merged, "_by_runs", None)  # would fail if called
    d, _ = ks_and_wasserstein_ranked(sample, column.values, column.ranks)
    assert d == ks_and_wasserstein(sample, column.values)[0]


class TestRuns:
    def test_run_ends_are_the_last_index_of_each_run_of_equal_values(self) -> None:
        np.testing.assert_array_equal(run_ends(np.array([-0.0, 0.0, 1.0, 2.0, 2.0, 2.0])),
                                      [1, 2, 5])
        np.testing.assert_array_equal(run_ends(np.array([4.0])), [0])
        assert run_ends(np.empty(0)).shape == (0,)

    def test_distinct_counts_the_runs_of_a_sorted_sample(self) -> None:
        assert sorted_sample(np.array([3.0, 1.0, 3.0, -0.0, 0.0])).distinct == 3
        assert sorted_sample(np.empty(0)).distinct == 0
        values = np.random.default_rng(14).integers(0, 50, 5000).astype(np.float64)
        assert sorted_sample(values).distinct == np.unique(values).shape[0]
