"""First Wasserstein distance between a sorted reference and a window (scipy's 1-D definition)."""

from __future__ import annotations

import numpy as np

from exporter.stats.ecdf import FloatArray, SortedSample


def _ref_cdf_integral(reference: SortedSample, x: FloatArray) -> FloatArray:
    """Integral of the reference ECDF from unique[0] to each x (0 left of the sample)."""
    idx = np.searchsorted(reference.unique, x, side="right") - 1
    safe = np.clip(idx, 0, None)
    level = reference.cum_counts[safe] / reference.size
    value = reference.integral[safe] + level * (x - reference.unique[safe])
    return np.where(idx < 0, 0.0, value)


def wasserstein(reference: SortedSample, window_sorted: FloatArray) -> float:
    """Return integral |F_ref - F_win| dx, equal to scipy.stats.wasserstein_distance."""
    n2 = int(window_sorted.shape[0])
    if reference.size == 0 or n2 == 0:
        raise ValueError("wasserstein needs two non-empty samples")
    ref = reference.values
    # The window ECDF is constant (= c) between consecutive window points a < b; on such a
    # stretch the integral of |F_ref - c| is split where F_ref reaches c.
    values, counts = np.unique(window_sorted, return_counts=True)
    c_levels = np.cumsum(counts) / n2
    lo = np.concatenate(([min(ref[0], values[0])], values))
    hi = np.concatenate((values, [max(ref[-1], values[-1])]))
    c = np.concatenate(([0.0], c_levels))
    # First reference order statistic where F_ref >= c: index ceil(c*n1) - 1.
    k = np.ceil(c * reference.size - 1e-9).astype(np.int64) - 1
    cross = np.where(k < 0, -np.inf, ref[np.clip(k, 0, ref.shape[0] - 1)])
    split = np.clip(cross, lo, hi)
    g_lo = _ref_cdf_integral(reference, lo)
    g_split = _ref_cdf_integral(reference, split)
    g_hi = _ref_cdf_integral(reference, hi)
    below = c * (split - lo) - (g_split - g_lo)  # F_ref <= c on [lo, split)
    above = (g_hi - g_split) - c * (hi - split)  # F_ref >= c on [split, hi)
    return float(np.sum(np.abs(below) + np.abs(above)))
