"""The SPEC's statistics written again, independently of ``exporter/``, with numpy and scipy.

Every function follows the wording of SPEC 6.1 and 6.5 literally; none is optimised.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

FloatArray = NDArray[np.float64]

EMPTY_BIN = 1e-4
MIN_NORM = 0.001
PREDICTION_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

# Metric suffix -> (relative, absolute) tolerance. SPEC 6.1: KS statistic within 1e-9, its
# p-value within 1e-6; the rest are plain float arithmetic.
TOLERANCE: dict[str, tuple[float, float]] = {
    "mean": (1e-9, 1e-12),
    "stddev": (1e-9, 1e-12),
    "missing_ratio": (0.0, 1e-12),
    "ks_statistic": (0.0, 1e-9),
    "ks_pvalue": (0.0, 1e-6),
    "wasserstein_normed": (1e-9, 1e-12),
    "psi": (1e-9, 1e-12),
    "jensen_shannon_distance": (0.0, 1e-9),
}


def usable(values: FloatArray) -> FloatArray:
    """The values that are neither missing nor invalid (NaN marks both here)."""
    result: FloatArray = values[~np.isnan(values)]
    return result


def quantile_edges(reference: FloatArray, bins: int) -> FloatArray:
    """SPEC 6.5: numpy.quantile(reference, [1/bins, ..., (bins-1)/bins]), duplicates dropped."""
    probs = [i / bins for i in range(1, bins)]
    result: FloatArray = np.unique(np.quantile(reference, probs))
    return result


def bin_proportions(edges: FloatArray, values: FloatArray) -> FloatArray:
    """Shares of ``values`` in (-inf, e1], (e1, e2], ..., (e_last, inf), counted bin by bin."""
    bounds = [-math.inf, *edges.tolist(), math.inf]
    counts = np.array([np.count_nonzero((values > lo) & (values <= hi))
                       for lo, hi in itertools.pairwise(bounds)], dtype=float)
    assert counts.sum() == values.shape[0]
    result: FloatArray = counts / counts.sum()
    return result


def psi(p_reference: FloatArray, p_window: FloatArray) -> float:
    """SPEC 6.5: empty-bin proportions become 1e-4, then sum((w - r) * ln(w / r))."""
    ref = np.where(p_reference == 0, EMPTY_BIN, p_reference)
    win = np.where(p_window == 0, EMPTY_BIN, p_window)
    return float(sum((w - r) * math.log(w / r) for r, w in zip(ref, win, strict=True)))


def jensen_shannon(p_reference: FloatArray, p_window: FloatArray) -> float:
    """SPEC 6.1: scipy.spatial.distance.jensenshannon(p_reference, p_window, base=2)."""
    return float(jensenshannon(p_reference, p_window, base=2))


def wasserstein_normed(reference: FloatArray, window: FloatArray) -> float:
    """SPEC 6.1: wasserstein_distance / max(std(reference, ddof=1), 0.001)."""
    norm = max(float(np.std(reference, ddof=1)), MIN_NORM)
    return float(wasserstein_distance(reference, window)) / norm


def describe(values: FloatArray) -> dict[str, float]:
    """Mean, sample stddev and missing ratio of one column (NaN = missing or invalid)."""
    good = usable(values)
    return {
        "mean": float(np.mean(good)),
        "stddev": float(np.std(good, ddof=1)),
        "missing_ratio": 1.0 - good.shape[0] / values.shape[0],
    }


def numerical(reference: FloatArray, window: FloatArray, bins: int = 10) -> dict[str, float]:
    """Every window gauge of a numerical column, keyed by metric suffix."""
    ref, win = usable(reference), usable(window)
    ks = ks_2samp(ref, win)
    edges = quantile_edges(ref, bins)
    p_ref, p_win = bin_proportions(edges, ref), bin_proportions(edges, win)
    return {
        **describe(window),
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "wasserstein_normed": wasserstein_normed(ref, win),
        "psi": psi(p_ref, p_win),
        "jensen_shannon_distance": jensen_shannon(p_ref, p_win),
    }


def prediction_quantiles(window: FloatArray) -> dict[str, float]:
    """numpy.quantile of the window's usable predictions, keyed by the ``q`` label."""
    good = usable(window)
    return {f"{q:g}": float(np.quantile(good, q)) for q in PREDICTION_QUANTILES}


def tolerance(suffix: str) -> tuple[float, float]:
    """(relative, absolute) tolerance for a metric suffix."""
    return TOLERANCE.get(suffix, (1e-9, 1e-12))
