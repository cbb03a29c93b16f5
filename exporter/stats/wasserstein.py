"""First Wasserstein distance between a sorted reference and a window (scipy's 1-D definition).

The reference is prepared once (``SortedSample``); a window costs O(n log N): between two
consecutive window values the window's ECDF is a constant ``c``, and the integral of
``|F_ref - c|`` over that stretch is read off the reference's prefix integrals, split where
``F_ref`` reaches ``c`` and where it passes ``c``. Those split points are found with integer
arithmetic, so stretches on which both ECDFs are equal contribute exactly nothing (identical
samples give exactly 0, as scipy does), and every integral is a sum of non-negative terms, so
values far apart (a sentinel at -1e9 beside data near 0) cost no precision.
"""

from __future__ import annotations

import numpy as np

from exporter.stats.ecdf import FloatArray, IntArray, SortedSample

_BLOCK_ELEMENTS = 1 << 17  # stretches per block, over all rows


def wasserstein(reference: SortedSample, window_sorted: FloatArray) -> float:
    """Return integral |F_ref - F_win| dx, equal to scipy.stats.wasserstein_distance."""
    if reference.size == 0 or window_sorted.shape[0] == 0:
        raise ValueError("wasserstein needs two non-empty samples")
    return float(wasserstein_rows(reference, window_sorted[np.newaxis, :])[0])


def wasserstein_rows(reference: SortedSample, windows_sorted: FloatArray) -> FloatArray:
    """Wasserstein distance to the reference of each row (sorted, equal lengths) of a 2-D array."""
    m = int(windows_sorted.shape[1])
    if reference.size == 0 or m == 0:
        raise ValueError("wasserstein needs two non-empty samples")
    ref = reference.values
    unique = reference.unique
    last = unique.shape[0] - 1
    # Stretch i runs from window value i-1 to window value i, where F_win = i/m. Ties need no
    # merging: a stretch between equal values has length zero and adds exactly zero.
    lo = np.concatenate((np.minimum(windows_sorted[:, :1], ref[0]), windows_sorted), axis=1)
    hi = np.concatenate((windows_sorted, np.maximum(windows_sorted[:, -1:], ref[-1])), axis=1)
    # Index of the last distinct reference value <= x, found once per window value: the
    # stretches share their ends, and the split points below are reference values.
    at_window = np.searchsorted(unique, windows_sorted, side="right") - 1
    idx_lo = np.concatenate((np.where(windows_sorted[:, :1] < ref[0], -1, 0), at_window), axis=1)
    idx_hi = np.concatenate((at_window, np.full((at_window.shape[0], 1), last)), axis=1)
    total = np.zeros(windows_sorted.shape[0], dtype=np.float64)
    # Stretches are independent: sum them block by block to bound temporary memory.
    step = max(1, _BLOCK_ELEMENTS // windows_sorted.shape[0])
    for start in range(0, m + 1, step):
        cols = slice(start, min(start + step, m + 1))
        total += _stretch_sums(reference, np.arange(start, cols.stop, dtype=np.int64), m,
                               lo[:, cols], idx_lo[:, cols], hi[:, cols], idx_hi[:, cols])
    return total


def _stretch_sums(reference: SortedSample, level: IntArray, m: int, lo: FloatArray,
                  idx_lo: IntArray, hi: FloatArray, idx_hi: IntArray) -> FloatArray:
    """Per row, the sum over these stretches of the integral of |F_ref - level/m|."""
    ref = reference.values
    n1 = reference.size
    c = level / m
    # F_ref >= c from the order statistic ceil(c*n1)-1 on, F_ref > c from floor(c*n1) on.
    k_reach = (level * n1 + m - 1) // m - 1
    k_pass = (level * n1) // m
    reach = np.where(k_reach < 0, -np.inf, ref[np.clip(k_reach, 0, n1 - 1)])
    passed = np.where(k_pass >= n1, np.inf, ref[np.clip(k_pass, 0, n1 - 1)])
    unique = reference.unique
    split_reach, idx_reach = _clip_between(reach, unique, lo, idx_lo, hi, idx_hi)
    split_pass, idx_pass = _clip_between(passed, unique, lo, idx_lo, hi, idx_hi)
    # F_ref < c on [lo, split_reach), = c up to split_pass, > c on [split_pass, hi).
    below = c * (split_reach - lo) - _ecdf_integral(reference, lo, idx_lo, split_reach, idx_reach)
    above = _ecdf_integral(reference, split_pass, idx_pass, hi, idx_hi) - c * (hi - split_pass)
    result: FloatArray = np.sum(np.abs(below) + np.abs(above), axis=-1)
    return result


def _clip_between(points: FloatArray, unique: FloatArray, lo: FloatArray, idx_lo: IntArray,
                  hi: FloatArray, idx_hi: IntArray) -> tuple[FloatArray, IntArray]:
    """Clip reference points into [lo, hi] and return them with their distinct-value index."""
    idx_points = np.searchsorted(unique, points, side="right") - 1
    below_lo = points <= lo
    above_hi = points >= hi
    clipped = np.where(below_lo, lo, np.where(above_hi, hi, points))
    index = np.where(below_lo, idx_lo, np.where(above_hi, idx_hi, idx_points))
    return clipped, index


def _ecdf_integral(reference: SortedSample, a: FloatArray, ia: IntArray, b: FloatArray,
                   ib: IntArray) -> FloatArray:
    """Integral of the reference ECDF over [a, b] (a <= b, ia/ib their distinct-value index).

    Every term is non-negative, so no digits cancel.
    """
    unique = reference.unique
    last = unique.shape[0] - 1
    level_a = np.where(ia < 0, 0.0, reference.cum_counts[np.clip(ia, 0, last)] / reference.size)
    ib_safe = np.clip(ib, 0, last)
    level_b = reference.cum_counts[ib_safe] / reference.size
    # Across reference points: the part up to the next distinct value, whole steps (prefix
    # sums kept with their rounding errors), and the part after the last distinct value.
    nxt = np.clip(ia + 1, 0, last)
    first = level_a * (unique[nxt] - a)
    whole = (reference.integral[ib_safe] - reference.integral[nxt]) + (
        reference.integral_error[ib_safe] - reference.integral_error[nxt])
    tail = level_b * (b - unique[ib_safe])
    result: FloatArray = np.where(ia == ib, level_a * (b - a), first + whole + tail)
    return result
