"""Exact power-of-two rescaling, so that huge or tiny values give finite, accurate moments.

Multiplying by a power of two changes only the exponent, so a sum, mean or difference of
rescaled values is the rescaled result bit for bit (unless a value underflows, which only the
values negligible beside the largest can). Values of normal magnitude are never rescaled.
"""

from __future__ import annotations

import math

import numpy as np

from exporter.stats.ecdf import FloatArray

# Outside 2**+-400, squares of deviations (stddev) and differences of far-apart values
# (Wasserstein) can overflow or underflow; inside, 2**220 of them still sum to a finite float.
SAFE_EXPONENT = 400


def exponent_for(*magnitudes: float) -> int:
    """The e to rescale by 2**-e (largest magnitude then in [0.5, 1)), or 0 when none is needed."""
    largest = max((abs(m) for m in magnitudes), default=0.0)
    if largest == 0.0 or not math.isfinite(largest):
        return 0
    exponent = math.frexp(largest)[1]
    return exponent if abs(exponent) > SAFE_EXPONENT else 0


def sample_exponent(values: FloatArray) -> int:
    """``exponent_for`` the largest magnitude in a non-empty sample."""
    return exponent_for(float(np.min(values)), float(np.max(values)))


def rescaled(values: FloatArray, exponent: int) -> FloatArray:
    """values * 2**-exponent, exactly."""
    result: FloatArray = np.ldexp(values, -exponent)
    return result


def restored(value: float, exponent: int) -> float:
    """value * 2**exponent: infinite only when the true result is beyond the float range."""
    with np.errstate(over="ignore"):
        return float(np.ldexp(value, exponent))
