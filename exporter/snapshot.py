"""compute(window view, reference profile) -> an immutable ``ModelSnapshot``; pure apart from
the calibration cache. The collector renders snapshots and never computes.

``compute_sorted`` also returns the window's numerical columns sorted and ranked in their
reference (``SortedWindow``); given back with the next view of the same window, only the rows
that entered and left since are sorted in (``stats.ranked``) rather than the whole window again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from exporter.config import ModelConfig, StatisticConfig
from exporter.quality import QualitySnapshot, compute_quality
from exporter.reference import (
    CategoricalReference,
    ColumnReference,
    NumericalReference,
    ReferenceProfile,
)
from exporter.stats import cbpe, moments, registry
from exporter.stats.allocator import keep_heap_pad
from exporter.stats.binning import code_counts, proportions, sorted_bin_counts
from exporter.stats.merged import ks_and_wasserstein_ranked
from exporter.stats.ranked import RankedColumn, advanced, ranked
from exporter.stats.statistic import ColumnInputs
from exporter.thresholds import Thresholds, crosses
from exporter.window import WindowView


@dataclass(frozen=True)
class ColumnSnapshot:
    """Window statistics of one feature or of the prediction; None = not defined (absent)."""

    name: str
    type: str
    statistic: str
    usable: int
    missing_ratio: float | None = None
    mean: float | None = None
    stddev: float | None = None
    # Every registered statistic of the column's type, by name (empty below min_rows) ...
    scores: Mapping[str, float] = field(default_factory=dict)
    # ... and their gauges' values, by ``Gauge.suffix`` (the scores and e.g. ks_statistic).
    gauges: Mapping[str, float] = field(default_factory=dict)
    unseen_ratio: float | None = None
    category_ratios: tuple[tuple[str, float], ...] = ()
    quantiles: tuple[tuple[float, float], ...] = ()
    score: float | None = None
    threshold: float | None = None
    detected: bool | None = None
    # The window's proportions over the SPEC 6.5 bins (those of PSI and Jensen-Shannon, in the
    # reference's bin order; empty below min_rows): for the landing page's charts, not a metric.
    bins: tuple[float, ...] = ()


@dataclass(frozen=True)
class ModelSnapshot:
    """Everything the collector renders for one model, computed at ``computed_at``."""

    model: str
    window_rows: int
    features: tuple[ColumnSnapshot, ...]
    prediction: ColumnSnapshot | None
    dataset_drift_share: float | None
    dataset_drift_detected: bool | None
    computed_at: float
    duration_seconds: float
    quality: QualitySnapshot | None = None
    version: str = ""  # the model_version this window holds ("" without version_column)
    estimate: cbpe.WindowEstimate | None = None  # label-free performance (SPEC 6.10)


@dataclass(frozen=True)
class SortedWindow:
    """A view's numerical columns sorted and ranked, and what identifies the rows they hold."""

    first: int  # WindowView.first
    rows: int
    edits: Mapping[str, int]  # WindowView.edits
    # The oldest half of each of the view's columns: the values that leave by the next
    # recomputation, unless more than half the window changes (then it sorts anew).
    oldest: Mapping[str, NDArray[np.float64]]
    columns: Mapping[str, RankedColumn]


MAX_STATS_THREADS = 4  # columns computed at once (bounded by the cores)
SORTED_BYTES_PER_VALUE = 16  # a kept sorted value: itself, its rank, its copy in ``oldest``
# A window whose sorted columns would weigh more is recomputed from scratch each time: the
# memory kept between recomputations stays bounded per window (a 100,000-row window of 21
# numerical columns, ~34 MB, keeps them; 300,000 rows of 13 columns, ~62 MB, does not).
MAX_SORTED_BYTES = 48 * 2**20


def keeps_sorted(rows: int, numerical_columns: int) -> bool:
    """Whether a window of this size keeps its sorted columns between recomputations."""
    return rows * numerical_columns * SORTED_BYTES_PER_VALUE <= MAX_SORTED_BYTES


def compute(view: WindowView, profile: ReferenceProfile, model: ModelConfig,
            thresholds: Thresholds, now: float | None = None, version: str = "") -> ModelSnapshot:
    """All statistics of one model's window against its reference."""
    return compute_sorted(view, profile, model, thresholds, None, now, version)[0]


def compute_sorted(view: WindowView, profile: ReferenceProfile, model: ModelConfig,
                   thresholds: Thresholds, previous: SortedWindow | None,
                   now: float | None = None,
                   version: str = "") -> tuple[ModelSnapshot, SortedWindow]:
    """``compute``, updating the sorted columns of the previous view of the same window (None:
    sort them afresh); returns the snapshot and what to pass as ``previous`` next time.

    The sorted columns are kept from a window's second recomputation on (after the first,
    ``previous`` holds none): they weigh 16 bytes a value (the values, their ranks, the
    oldest half of the view's column to find the values that leave), ~34 MB for the
    benchmark's 21 numerical columns of 100,000 rows, which a window recomputed once (the end
    of a catch-up, a one-off computation) does not need to pay. ``previous`` is used up:
    each column's old arrays are let go as soon as its new ones exist (the caller keeps no
    reference to it), so that a recomputation does not hold two sets at its peak."""
    started = time.perf_counter()
    keep_heap_pad()
    old_columns = dict(previous.columns) if previous is not None else {}
    old_numbers = dict(previous.oldest) if previous is not None else {}
    if previous is not None:
        previous = replace(previous, oldest={}, columns={})
    jobs: list[tuple[ColumnReference, str, StatisticConfig, bool]] = [
        (profile.columns[f.name], f.type, f.statistic, False) for f in model.features]
    if model.prediction is not None:
        p = model.prediction
        jobs.append((profile.columns[p.column], p.type, p.statistic, True))
    sorted_columns: dict[str, RankedColumn] = {}

    def one(job: tuple[ColumnReference, str, StatisticConfig, bool]) -> ColumnSnapshot:
        reference, kind, statistic, quantiles = job
        column = None
        if isinstance(reference, NumericalReference):
            name = reference.name
            column = sorted_columns[name] = _sorted_column(
                view, reference, previous, old_columns.pop(name, None),
                old_numbers.pop(name, None))
        return column_snapshot(view, reference, kind, statistic, model, thresholds,
                               with_quantiles=quantiles, ranked_column=column)

    # Columns are independent and numpy's sorts and reductions release the GIL: spread them
    # over the cores (the thresholds' cache is locked; the view is read only). The threads
    # live for one computation (~0.1 ms to start), so none outlives the exporter's own.
    workers = min(os.cpu_count() or 1, MAX_STATS_THREADS, len(jobs))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stats") as pool:
            done = tuple(pool.map(one, jobs))
    else:
        done = tuple(map(one, jobs))
    features = done[: len(model.features)]
    prediction = done[-1] if model.prediction is not None else None
    scored = [f for f in features if f.detected is not None]
    share = sum(1 for f in scored if f.detected) / len(scored) if scored else None
    detected = None if share is None else share >= model.drift.dataset_share
    quality = compute_quality(view.rows, view.numbers, view.objects, model, profile.quality,
                              model.drift.min_rows)
    estimate = _estimate(view, profile, model)
    snapshot = ModelSnapshot(model.name, view.rows, features, prediction, share, detected,
                             time.time() if now is None else now,
                             time.perf_counter() - started, quality, version, estimate)
    # Kept from the second recomputation on (see above), and only up to MAX_SORTED_BYTES.
    if previous is None or not keeps_sorted(view.rows, len(sorted_columns)):
        sorted_columns.clear()
    half = view.rows // 2
    return snapshot, SortedWindow(view.first, view.rows, view.edits,
                                  {name: view.numbers[name][:half].copy()
                                   for name in sorted_columns}, sorted_columns)


def sorted_column(view: WindowView, reference: NumericalReference,
                  previous: SortedWindow | None) -> RankedColumn:
    """The view's column sorted and ranked: the previous view's, with the rows that left and
    entered since, when the two views are runs of the same window that overlap; else anew."""
    if previous is None:
        return _sorted_column(view, reference, None, None, None)
    return _sorted_column(view, reference, previous, previous.columns.get(reference.name),
                          previous.oldest.get(reference.name))


def _sorted_column(view: WindowView, reference: NumericalReference,
                   previous: SortedWindow | None, last: RankedColumn | None,
                   last_values: NDArray[np.float64] | None) -> RankedColumn:
    name = reference.name
    values = view.numbers[name]
    if (previous is None or last is None or last_values is None
            or last.reference is not reference.sample):
        return ranked(values, reference.sample)
    end, previous_end = view.first + view.rows, previous.first + previous.rows
    left, entered = view.first - previous.first, end - previous_end
    if (view.first < 0 or previous.first < 0 or view.edits.get(name) != previous.edits.get(name)
            or not 0 <= left <= last_values.shape[0] or entered < 0 or view.first > previous_end
            or 2 * (left + entered) > view.rows):  # sorting anew is then as cheap
        return ranked(values, reference.sample)
    return advanced(last, last_values[:left], values[values.shape[0] - entered:])


def _estimate(view: WindowView, profile: ReferenceProfile,
              model: ModelConfig) -> cbpe.WindowEstimate | None:
    """CBPE over every window record, labelled or not; None below drift.min_rows scores."""
    if profile.cbpe is None or model.prediction is None:
        return None
    scores = view.numbers[model.prediction.column]
    if int(np.isfinite(scores).sum()) < model.drift.min_rows:
        return None
    return cbpe.estimate_window(profile.cbpe, scores)


def column_snapshot(view: WindowView, reference: ColumnReference, kind: str,
                    statistic: StatisticConfig, model: ModelConfig, thresholds: Thresholds,
                    *, with_quantiles: bool = False,
                    ranked_column: RankedColumn | None = None) -> ColumnSnapshot:
    """Statistics of one column: numerical or categorical (a numerical column's values sorted
    and ranked already, or None to do it here)."""
    if isinstance(reference, NumericalReference):
        column = ranked_column or ranked(view.numbers[reference.name], reference.sample)
        return _numerical(column, view.rows, reference, statistic, model, thresholds,
                          with_quantiles)
    return _categorical(view.codes[reference.name], view.rows, reference, statistic, model,
                        thresholds)


def _numerical(column: RankedColumn, rows: int, ref: NumericalReference,
               statistic: StatisticConfig, model: ModelConfig, thresholds: Thresholds,
               with_quantiles: bool) -> ColumnSnapshot:
    usable = column.values
    n = column.size
    mean, stddev = moments.mean_and_stddev(usable, ordered=True)
    base = ColumnSnapshot(
        name=ref.name, type="numerical", statistic=statistic.statistic, usable=n,
        missing_ratio=(1.0 - n / rows) if rows else None, mean=mean, stddev=stddev,
        quantiles=tuple(zip(moments.PREDICTION_QUANTILES,
                            moments.quantiles(usable, moments.PREDICTION_QUANTILES), strict=True))
        if with_quantiles and n else ())
    if n < model.drift.min_rows or ref.sample.size == 0:
        return base
    # The passes several statistics share run once: one merge gives KS and Wasserstein, one
    # binning gives the proportions of PSI and Jensen-Shannon.
    d, normed = ks_and_wasserstein_ranked(ref.sample, usable, column.ranks, ref.wasserstein_norm)
    window_bins = proportions(sorted_bin_counts(ref.edges, usable))
    inputs = ColumnInputs("numerical", ref.inputs, n, window_bins,
                          window_sorted=usable, ks_statistic=d, wasserstein_normed=normed)
    return _with_drift(replace(base, bins=tuple(window_bins.tolist())), ref, statistic, inputs,
                       thresholds)


def _categorical(codes: NDArray[np.int32], rows: int, ref: CategoricalReference,
                 statistic: StatisticConfig, model: ModelConfig,
                 thresholds: Thresholds) -> ColumnSnapshot:
    counts = code_counts(codes, len(ref.categories))
    n = int(counts.sum())
    base = ColumnSnapshot(
        name=ref.name, type="categorical", statistic=statistic.statistic, usable=n,
        missing_ratio=(1.0 - n / rows) if rows else None,
        unseen_ratio=float(counts[-1]) / n if n else None,
        category_ratios=ref.label_ratios(counts))
    if n < model.drift.min_rows or int(ref.counts.sum()) == 0:
        return base
    window_bins = proportions(counts)
    inputs = ColumnInputs("categorical", ref.inputs, n, window_bins, window_counts=counts)
    return _with_drift(replace(base, bins=tuple(window_bins.tolist())), ref, statistic, inputs,
                       thresholds)


def _with_drift(base: ColumnSnapshot, ref: ColumnReference, statistic: StatisticConfig,
                inputs: ColumnInputs, thresholds: Thresholds) -> ColumnSnapshot:
    """Every registered statistic of the column's type, then the configured one's drift."""
    scores: dict[str, float] = {}
    gauges: dict[str, float] = {}
    for declared in registry.for_kind(inputs.kind):
        scores[declared.name] = value = declared.compute(inputs)
        for gauge in declared.gauges:
            gauges[gauge.suffix] = gauge.value(inputs, value)
    score = scores[statistic.statistic]
    threshold = thresholds.threshold(ref, statistic, inputs.n)
    return replace(base, scores=scores, gauges=gauges, score=score, threshold=threshold,
                   detected=crosses(statistic.statistic, score, threshold))
