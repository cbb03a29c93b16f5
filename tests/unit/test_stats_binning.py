"""Tests for exporter.stats.binning: the bins of SPEC 6.5."""

from __future__ import annotations

import numpy as np
import pytest

from exporter.stats.binning import (
    bin_counts,
    code_counts,
    proportions,
    quantile_edges,
    sorted_bin_counts,
)


def _naive_bins(edges: np.ndarray, values: np.ndarray) -> list[int]:
    """(-inf, e1], (e1, e2], ..., (e_last, inf), one value at a time."""
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[sum(1 for e in edges if v > e)] += 1
    return counts


class TestQuantileEdges:
    @pytest.mark.parametrize("bins", [2, 4, 10, 20])
    def test_the_edges_are_numpys_quantiles_at_the_inner_bin_boundaries(self, bins: int) -> None:
        reference = np.random.default_rng(1).lognormal(size=1234)
        expected = np.quantile(reference, np.arange(1, bins) / bins)
        assert quantile_edges(reference, bins).tolist() == expected.tolist()

    def test_duplicate_edges_of_tied_data_are_dropped(self) -> None:
        reference = np.array([0.0] * 70 + [1.0] * 20 + [2.0] * 10)
        edges = quantile_edges(reference, 10)
        # 0.1..0.6 all fall on 0; 0.7, 0.8 and 0.9 interpolate (numpy's default 'linear').
        assert edges.tolist() == pytest.approx([0.0, 0.3, 1.0, 1.1], abs=1e-12)

    def test_a_single_repeated_value_gives_one_edge(self) -> None:
        assert quantile_edges(np.full(50, 4.5), 10).tolist() == [4.5]

    def test_the_edges_are_strictly_increasing(self) -> None:
        reference = np.random.default_rng(2).integers(0, 4, 500).astype(np.float64)
        edges = quantile_edges(reference, 10)
        assert np.all(np.diff(edges) > 0)

    def test_one_bin_or_an_empty_reference_has_no_inner_edge(self) -> None:
        assert quantile_edges(np.array([1.0, 2.0]), 1).shape == (0,)
        assert quantile_edges(np.empty(0), 10).shape == (0,)


class TestBinCounts:
    def test_bins_are_closed_on_the_right(self) -> None:
        edges = np.array([1.0, 2.0, 3.0])
        values = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 3.5])
        assert bin_counts(edges, values).tolist() == [2, 2, 1, 1]

    def test_the_outer_bins_reach_the_infinities(self) -> None:
        edges = np.array([0.0])
        values = np.array([-np.inf, -1e308, 1e308, np.inf])
        assert bin_counts(edges, values).tolist() == [2, 2]

    def test_the_counts_match_a_naive_assignment_and_sum_to_n(self) -> None:
        rng = np.random.default_rng(3)
        reference = rng.normal(size=1000)
        edges = quantile_edges(reference, 10)
        values = np.concatenate((rng.normal(0.2, 1.5, 700), edges))  # edges themselves too
        counts = bin_counts(edges, values)
        assert counts.tolist() == _naive_bins(edges, values)
        assert int(counts.sum()) == values.shape[0]

    def test_no_edges_means_one_bin(self) -> None:
        assert bin_counts(np.empty(0), np.array([1.0, 2.0])).tolist() == [2]

    def test_no_values_gives_zero_counts(self) -> None:
        assert bin_counts(np.array([1.0, 2.0]), np.empty(0)).tolist() == [0, 0, 0]

    def test_nan_must_be_dropped_by_the_caller(self) -> None:
        # The statistics take usable values only: NaN would land in the last bin, which is why
        # the snapshot layer bins values[~np.isnan(values)].
        edges = np.array([0.0])
        values = np.array([-1.0, np.nan, 1.0])
        assert bin_counts(edges, values).tolist() == [1, 2]
        assert bin_counts(edges, values[~np.isnan(values)]).tolist() == [1, 1]


class TestCodeCounts:
    def test_codes_are_counted_with_the_unseen_bin_last(self) -> None:
        codes = np.array([0, 2, 2, 3, 1, 3, 3], dtype=np.int32)
        assert code_counts(codes, 3).tolist() == [1, 1, 2, 3]

    def test_negative_codes_are_missing_values_and_ignored(self) -> None:
        codes = np.array([-1, 0, -1, 1], dtype=np.int32)
        assert code_counts(codes, 2).tolist() == [1, 1, 0]

    def test_no_codes_gives_zero_counts(self) -> None:
        assert code_counts(np.empty(0, dtype=np.int32), 2).tolist() == [0, 0, 0]


class TestProportions:
    def test_proportions_are_counts_over_their_total(self) -> None:
        result = proportions(np.array([1, 3, 0, 4], dtype=np.int64))
        assert result.tolist() == [0.125, 0.375, 0.0, 0.5]
        assert result.dtype == np.float64

    def test_a_zero_total_gives_zero_proportions(self) -> None:
        assert proportions(np.zeros(3, dtype=np.int64)).tolist() == [0.0, 0.0, 0.0]


class TestSortedBinCounts:
    def test_a_sorted_sample_gets_the_same_counts_one_search_per_edge(self) -> None:
        rng = np.random.default_rng(2)
        reference = np.round(rng.normal(size=500), 1)
        values = np.sort(np.round(rng.normal(size=700), 1))
        edges = quantile_edges(reference, 10)
        assert sorted_bin_counts(edges, values).tolist() == _naive_bins(edges, values)

    def test_values_on_an_edge_fall_in_the_bin_the_edge_closes(self) -> None:
        edges = np.array([1.0, 2.0])
        assert sorted_bin_counts(edges, np.array([1.0, 1.0, 2.0, 2.5])).tolist() == [2, 1, 1]

    def test_no_edges_and_no_values(self) -> None:
        assert sorted_bin_counts(np.empty(0), np.array([1.0, 2.0])).tolist() == [2]
        assert sorted_bin_counts(np.array([1.0]), np.empty(0)).tolist() == [0, 0]
