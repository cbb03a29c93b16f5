"""Mergeable counts for fleet-wide drift (SPEC 6.8).

Per-replica gauges cannot be combined (an average of KS statistics is not the fleet's KS), but
counts can: every replica counts every record it reads into a cumulative histogram whose bucket
bounds are a pure function of the reference (its quantiles at ``1/B, ..., (B-1)/B``), and per
category for categorical features. Prometheus sums them across replicas and the recording rules
of ``deploy/prometheus/drift-fleet-rules.yml`` compute the fleet's CDF, KS, PSI and
Jensen-Shannon distance from the sums (docs/fleet.md).

The reference side (the bounds, the reference's CDF and bucket shares) is profiled once at
start-up (``FleetReference``); ingestion only bins each batch (one binary search per value).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from prometheus_client.utils import floatToGoString

from exporter.stats.binning import IntArray, quantile_edges
from exporter.stats.ecdf import FloatArray

SMALL_BATCH_ROWS = 2048  # up to this many rows a batch is binned by one comparison


@dataclass(frozen=True)
class FleetReference:
    """Bucket bounds of one numerical column and the reference's share at and below each."""

    bounds: FloatArray  # finite upper bounds, increasing; +Inf is implied last
    cdf: FloatArray  # share of usable reference values <= each bound
    labels: tuple[str, ...]  # the ``le`` label of each bound, then "+Inf"

    @property
    def bucket_ratios(self) -> FloatArray:
        """Share of reference values in each bucket (lower, le], +Inf bucket last."""
        result: FloatArray = np.diff(np.concatenate(([0.0], self.cdf, [1.0])))
        return result


def fleet_reference(sorted_values: FloatArray, buckets: int) -> FleetReference:
    """Bounds numpy.quantile(reference, [1/B, ..., (B-1)/B]) (duplicates dropped) and the CDF."""
    bounds = quantile_edges(sorted_values, buckets)
    n = sorted_values.shape[0]
    at_or_below = np.searchsorted(sorted_values, bounds, side="right")
    cdf = at_or_below / n if n else np.zeros(bounds.shape[0])
    labels = (*(le_label(b) for b in bounds), "+Inf")
    return FleetReference(bounds, cdf.astype(np.float64), labels)


def le_label(bound: float) -> str:
    """The ``le`` label text of a bound, as prometheus_client writes histogram buckets."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]  # untyped upstream


@dataclass(frozen=True)
class NumericalCounts:
    """Cumulative bucket counts (``le`` order, +Inf last) and the sum of one column's values."""

    name: str
    labels: tuple[str, ...]
    cumulative: tuple[int, ...]
    total: float


@dataclass(frozen=True)
class CategoricalCounts:
    """Counts per category label (exposed reference categories, then __other__)."""

    name: str
    labels: tuple[str, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class FleetValues:
    """A consistent copy of one model's fleet counts, for rendering."""

    numerical: Mapping[str, NumericalCounts]
    categorical: Mapping[str, CategoricalCounts]


@dataclass(frozen=True)
class CategorySlots:
    """How category codes map to the exported category labels."""

    labels: tuple[str, ...]  # exposed categories, then "__other__"
    slot_of_code: NDArray[np.intp]  # code (0..categories, the last is unseen) -> label index


class FleetCounts:
    """Every record read, binned per column; updated by ingestion, copied by scrapes."""

    def __init__(self, numerical: Mapping[str, FleetReference],
                 categorical: Mapping[str, CategorySlots]) -> None:
        self._lock = threading.Lock()
        self._numerical = dict(numerical)
        self._categorical = dict(categorical)
        self._bins = {name: np.zeros(ref.bounds.shape[0] + 1, dtype=np.int64)
                      for name, ref in numerical.items()}
        self._sums = dict.fromkeys(numerical, 0.0)
        self._categories = {name: np.zeros(len(slots.labels), dtype=np.int64)
                            for name, slots in categorical.items()}
        # every column's bounds in one matrix, padded with +inf: a small batch is compared
        # with all of them in one numpy operation
        widest = max((ref.bounds.shape[0] for ref in numerical.values()), default=0)
        self._bound_matrix = np.full((len(numerical), widest), np.inf)
        for row, ref in enumerate(numerical.values()):
            self._bound_matrix[row, : ref.bounds.shape[0]] = ref.bounds

    def add(self, numbers: Mapping[str, FloatArray],
            codes: Mapping[str, NDArray[np.int32]]) -> None:
        """Count one batch: usable numerical values into buckets, category codes into labels."""
        rows = next((v.shape[0] for v in numbers.values()), 0)
        binned = (self._bin_small(numbers) if rows <= SMALL_BATCH_ROWS
                  else self._bin_large(numbers))
        counted: dict[str, IntArray] = {}
        for name, slots in self._categorical.items():
            column = codes[name]
            present = column[column >= 0]
            counted[name] = np.bincount(slots.slot_of_code[present],
                                        minlength=len(slots.labels))
        with self._lock:
            for name, (bins, total) in binned.items():
                self._bins[name] += bins
                self._sums[name] += total
            for name, counts in counted.items():
                self._categories[name] += counts

    def _bin_large(self, numbers: Mapping[str, FloatArray]) -> dict[str, tuple[IntArray, float]]:
        binned: dict[str, tuple[IntArray, float]] = {}
        for name, ref in self._numerical.items():
            # One binary search of every value in the ~20 bounds, no sort: ~25% faster than
            # sorting the batch and searching it for the bounds (0.49 vs 0.63 ms for 13,750
            # values). NaN (missing) lands past the last bound and is taken out of that bucket.
            values = numbers[name]
            missing = np.isnan(values)
            buckets = np.bincount(np.searchsorted(ref.bounds, values, side="left"),
                                  minlength=ref.bounds.shape[0] + 1)
            buckets[-1] -= np.count_nonzero(missing)
            binned[name] = (buckets, float(np.sum(values, where=~missing)))
        return binned

    def _bin_small(self, numbers: Mapping[str, FloatArray]) -> dict[str, tuple[IntArray, float]]:
        """``_bin_large`` for a few hundred rows: one comparison of every value with every
        bound instead of a sort and a search per column (measured: 0.15 vs 0.6 ms for 500
        rows of 21 columns)."""
        if not self._numerical:
            return {}
        matrix = np.stack([numbers[name] for name in self._numerical], axis=1)  # rows x columns
        usable = ~np.isnan(matrix)
        # values <= each bound per column (NaN compares false), then the +Inf bucket: usable
        at_or_below = np.count_nonzero(matrix[:, :, np.newaxis] <= self._bound_matrix, axis=0)
        cumulative = np.concatenate((np.zeros((matrix.shape[1], 1), np.int64), at_or_below,
                                     np.count_nonzero(usable, axis=0)[:, np.newaxis]), axis=1)
        buckets = np.diff(cumulative, axis=1)
        totals = np.sum(matrix, axis=0, where=usable)
        return {name: (buckets[c, : ref.bounds.shape[0] + 1], float(totals[c]))
                for c, (name, ref) in enumerate(self._numerical.items())}

    def values(self) -> FleetValues:
        """A consistent copy for rendering."""
        with self._lock:
            bins = {name: np.cumsum(b) for name, b in self._bins.items()}
            sums = dict(self._sums)
            categories = {name: c.copy() for name, c in self._categories.items()}
        numerical = {name: NumericalCounts(name, self._numerical[name].labels,
                                           tuple(int(v) for v in bins[name]), sums[name])
                     for name in bins}
        categorical = {name: CategoricalCounts(name, self._categorical[name].labels,
                                               tuple(int(v) for v in categories[name]))
                       for name in categories}
        return FleetValues(numerical, categorical)

