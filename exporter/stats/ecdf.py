"""A reference sample prepared once for ECDF-based statistics (KS, Wasserstein)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class SortedSample:
    """A sorted sample; its distinct values, cumulative counts and ECDF integral on demand.

    The integral is kept as an unevaluated sum ``integral + integral_error`` (a compensated
    prefix sum): Wasserstein subtracts two prefix integrals, and far-apart values (a sentinel
    at -1e9 next to data near 0) would otherwise cancel away every digit of a small distance.
    The derived arrays are computed on first use: the exporter's own statistics need only
    ``values`` (stats.merged), so a reference keeps one array per column instead of five
    (measured: 55 MiB for the benchmark's 21 numerical reference columns of 100,000 rows).
    """

    values: FloatArray  # sorted, finite

    @property
    def size(self) -> int:
        """Number of values in the sample."""
        return int(self.values.shape[0])

    @functools.cached_property
    def distinct(self) -> int:
        """Number of distinct values (counted once; the arrays of ``unique`` only on demand)."""
        if self.size == 0:
            return 0
        return int(np.count_nonzero(self.values[1:] != self.values[:-1])) + 1

    @functools.cached_property
    def _steps(self) -> tuple[FloatArray, IntArray]:
        unique, counts = np.unique(self.values, return_counts=True)
        return unique, np.cumsum(counts, dtype=np.int64)

    @property
    def unique(self) -> FloatArray:
        """Distinct values, ascending."""
        return self._steps[0]

    @property
    def cum_counts(self) -> IntArray:
        """Number of values <= unique[j]."""
        return self._steps[1]

    @functools.cached_property
    def _integrals(self) -> tuple[FloatArray, FloatArray]:
        n = max(self.size, 1)
        # The ECDF is constant (cum/n) on [unique[j], unique[j+1]).
        steps = (self.cum_counts[:-1] / n) * np.diff(self.unique)
        return _compensated_cumsum(steps)

    @property
    def integral(self) -> FloatArray:
        """Integral of the ECDF from unique[0] to unique[j] (rounded)."""
        return self._integrals[0]

    @property
    def integral_error(self) -> FloatArray:
        """What rounding left out of ``integral`` (exact TwoSum terms)."""
        return self._integrals[1]


def sorted_usable(values: FloatArray) -> FloatArray:
    """The values without NaN (missing), sorted: NaN sorts last, so they are the prefix."""
    ordered = np.sort(values)
    usable: FloatArray = ordered[: int(np.searchsorted(ordered, np.nan, side="left"))]
    return usable


def run_ends(values_sorted: FloatArray) -> IntArray:
    """Index of the last value of each run of equal values in a sorted sample."""
    if values_sorted.shape[0] == 0:
        return np.empty(0, dtype=np.intp)
    ends: IntArray = np.flatnonzero(values_sorted[1:] != values_sorted[:-1])
    return np.append(ends, values_sorted.shape[0] - 1)


def sorted_sample(values: FloatArray) -> SortedSample:
    """Sort a finite sample once (no NaN allowed); the rest is derived on demand."""
    return SortedSample(np.sort(np.asarray(values, dtype=np.float64)))


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
