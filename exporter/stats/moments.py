"""Mean, sample standard deviation and quantiles of the usable values.

Mean and stddev stay finite whenever the true value is (two values of 1e308 have mean 1e308,
not the +Inf of their overflowing sum): huge or tiny samples are rescaled by a power of two
first (stats.scaling), which leaves every other sample's result bit for bit numpy's.
"""

from __future__ import annotations

import math

import numpy as np

from exporter.stats.ecdf import FloatArray
from exporter.stats.scaling import exponent_for, rescaled, restored, sample_exponent

PREDICTION_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def mean(values: FloatArray, *, ordered: bool = False) -> float | None:
    """Arithmetic mean, or None for an empty sample (``ordered``: the values are sorted)."""
    return _moments(values, ordered, deviation=False)[0]


def stddev(values: FloatArray, *, ordered: bool = False) -> float | None:
    """Sample standard deviation (ddof=1), or None below two values (``ordered``: sorted)."""
    return _moments(values, ordered, deviation=True)[1]


def mean_and_stddev(values: FloatArray, *,
                    ordered: bool = False) -> tuple[float | None, float | None]:
    """``mean`` and ``stddev`` from one sum (for a column that needs both)."""
    return _moments(values, ordered, deviation=True)


def _moments(values: FloatArray, ordered: bool,
             deviation: bool) -> tuple[float | None, float | None]:
    """The mean (``np.mean``'s steps: the sum divided by the count) and, when asked, the
    stddev (``np.std(ddof=1)``'s: the squared deviations from that mean summed and divided by
    n - 1, the root), bit for bit numpy's, the sum taken once."""
    n = values.shape[0]
    if n == 0:
        return None, None
    exponent = _exponent(values, ordered)
    sample = rescaled(values, exponent) if exponent else values
    average = float(np.add.reduce(sample)) / n
    spread = None
    if deviation and n >= 2:
        squares = np.subtract(sample, average)
        np.multiply(squares, squares, out=squares)
        spread = math.sqrt(float(np.add.reduce(squares)) / (n - 1))
    if exponent:
        return (restored(average, exponent),
                None if spread is None else restored(spread, exponent))
    return average, spread


def _exponent(values: FloatArray, ordered: bool) -> int:
    # A sorted sample's extremes are its ends: no pass over it.
    return exponent_for(float(values[0]), float(values[-1])) if ordered else sample_exponent(
        values)


def quantiles(values_sorted: FloatArray, probs: tuple[float, ...]) -> tuple[float, ...]:
    """numpy.quantile (default method) of an already sorted sample."""
    result = np.quantile(values_sorted, probs)
    return tuple(float(v) for v in result)
