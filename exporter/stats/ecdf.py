"""A reference sample prepared once for ECDF-based statistics (KS, Wasserstein)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class SortedSample:
    """A sorted sample with its distinct values, cumulative counts and ECDF integral.

    The integral is kept as an unevaluated sum ``integral + integral_error`` (a compensated
    prefix sum): Wasserstein subtracts two prefix integrals, and far-apart values (a sentinel
    at -1e9 next to data near 0) would otherwise cancel away every digit of a small distance.
    """

    values: FloatArray  # sorted, finite
    unique: FloatArray  # distinct values, ascending
    cum_counts: IntArray  # number of values <= unique[j]
    integral: FloatArray  # integral of the ECDF from unique[0] to unique[j] (rounded)
    integral_error: FloatArray  # what rounding left out of ``integral`` (exact TwoSum terms)

    @property
    def size(self) -> int:
        """Number of values in the sample."""
        return int(self.values.shape[0])


def sorted_sample(values: FloatArray) -> SortedSample:
    """Sort a finite sample once and precompute what KS and Wasserstein need (no NaN allowed)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    unique, counts = np.unique(ordered, return_counts=True)
    cum_counts = np.cumsum(counts, dtype=np.int64)
    n = max(int(ordered.shape[0]), 1)
    # The ECDF is constant (cum/n) on [unique[j], unique[j+1]).
    steps = (cum_counts[:-1] / n) * np.diff(unique)
    integral, integral_error = _compensated_cumsum(steps)
    return SortedSample(ordered, unique, cum_counts, integral, integral_error)


def _compensated_cumsum(steps: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Prefix sums [0, s0, s0+s1, ...] as rounded sums plus the exact rounding errors."""
    # add.accumulate adds sequentially, so every partial sum is fl(previous + step) and
    # Knuth's TwoSum recovers each rounding error exactly, all vectorised.
    total = np.concatenate(([0.0], np.cumsum(steps)))
    previous = total[:-1]
    current = total[1:]
    step_part = current - previous
    prev_part = current - step_part
    errors = (previous - prev_part) + (steps - step_part)
    return total, np.concatenate(([0.0], np.cumsum(errors)))
