"""Histogram bins of SPEC 6.5: reference-quantile edges for numerical data, categories otherwise."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from exporter.stats.ecdf import FloatArray

IntArray = NDArray[np.int64]


def quantile_edges(reference: FloatArray, bins: int) -> FloatArray:
    """Inner edges numpy.quantile(reference, [1/bins, ..., (bins-1)/bins]), duplicates dropped."""
    if reference.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    probs = np.arange(1, bins) / bins
    return np.unique(np.quantile(reference, probs))


def bin_counts(edges: FloatArray, values: FloatArray) -> IntArray:
    """Counts over (-inf, e1], (e1, e2], ..., (e_last, inf) for finite values."""
    index = np.searchsorted(edges, values, side="left")
    return np.bincount(index, minlength=edges.shape[0] + 1).astype(np.int64)


def sorted_bin_counts(edges: FloatArray, values_sorted: FloatArray) -> IntArray:
    """``bin_counts`` of an already sorted sample: one binary search per edge, not per value."""
    below = np.searchsorted(values_sorted, edges, side="right")  # values <= each edge
    bounds = np.concatenate(([0], below, [values_sorted.shape[0]])).astype(np.int64)
    result: IntArray = np.diff(bounds)
    return result


def code_counts(codes: NDArray[np.int32], categories: int) -> IntArray:
    """Counts of category codes 0..categories (the last one is 'unseen'); negatives ignored."""
    # shifted by one, missing (-1) lands in slot 0 and is dropped: no mask, no copy
    counts = np.bincount(np.maximum(codes, -1) + 1, minlength=categories + 2)[1:]
    return counts.astype(np.int64, copy=False)


def proportions(counts: IntArray) -> FloatArray:
    """Counts divided by their total (all zeros when the total is zero)."""
    total = counts.sum()
    if total == 0:
        return np.zeros(counts.shape[0], dtype=np.float64)
    result: FloatArray = counts / total
    return result
