"""Mean, sample standard deviation and quantiles of the usable values."""

from __future__ import annotations

import numpy as np

from exporter.stats.ecdf import FloatArray

PREDICTION_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def mean(values: FloatArray) -> float | None:
    """Arithmetic mean, or None for an empty sample."""
    if values.shape[0] == 0:
        return None
    return float(np.mean(values))


def stddev(values: FloatArray) -> float | None:
    """Sample standard deviation (ddof=1), or None below two values."""
    if values.shape[0] < 2:
        return None
    return float(np.std(values, ddof=1))


def quantiles(values_sorted: FloatArray, probs: tuple[float, ...]) -> tuple[float, ...]:
    """numpy.quantile (default method) of an already sorted sample."""
    result = np.quantile(values_sorted, probs)
    return tuple(float(v) for v in result)
