"""A reference sample prepared once for ECDF-based statistics (KS, Wasserstein)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class SortedSample:
    """A sorted sample with its distinct values, cumulative counts and ECDF integral."""

    values: FloatArray  # sorted, finite
    unique: FloatArray  # distinct values, ascending
    cum_counts: IntArray  # number of values <= unique[j]
    integral: FloatArray  # integral of the ECDF from unique[0] to unique[j]

    @property
    def size(self) -> int:
        """Number of values in the sample."""
        return int(self.values.shape[0])


def sorted_sample(values: FloatArray) -> SortedSample:
    """Sort a finite sample once and precompute what KS and Wasserstein need."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    unique, counts = np.unique(ordered, return_counts=True)
    cum_counts = np.cumsum(counts, dtype=np.int64)
    n = max(int(ordered.shape[0]), 1)
    # Trapezoid-free: the ECDF is constant (cum/n) on [unique[j], unique[j+1]).
    steps = (cum_counts[:-1] / n) * np.diff(unique)
    integral = np.concatenate(([0.0], np.cumsum(steps)))
    return SortedSample(ordered, unique, cum_counts, integral)
