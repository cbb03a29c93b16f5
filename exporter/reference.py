"""The reference data set, profiled once at start into an immutable ``ReferenceProfile``.

Nothing after start-up touches the raw reference again: KS and Wasserstein use the sorted
sample, PSI and Jensen-Shannon the bin edges and proportions, categorical statistics the
category vocabulary and counts.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from exporter.config import ModelConfig
from exporter.errors import ReferenceDataError
from exporter.fleet import CategorySlots, FleetReference, fleet_reference
from exporter.parsing import (
    CATEGORY,
    NUMBER,
    Batch,
    Coded,
    ColumnSpec,
    batch_from_records,
    batch_from_table,
)
from exporter.quality import QualitySnapshot, compute_quality, label_is_number
from exporter.segments import Segmentation, choose
from exporter.stats import cbpe, moments
from exporter.stats import quality as q
from exporter.stats.binning import IntArray, bin_counts, proportions, quantile_edges
from exporter.stats.calibration import seed_for
from exporter.stats.cbpe import CbpeReference
from exporter.stats.ecdf import FloatArray, SortedSample, sorted_sample
from exporter.stats.statistic import ReferenceInputs
from exporter.tables import read_parquet_columns, read_table, table_format
from exporter.values import missing_objects

if TYPE_CHECKING:
    import pandas as pd

OTHER = "__other__"
EMPTY_CATEGORY = "__empty__"  # the label value of the empty category ("" means no label)
RESERVED_LABELS = (OTHER, EMPTY_CATEGORY)
MIN_WASSERSTEIN_NORM = 0.001


@dataclass(frozen=True)
class NumericalReference:
    """Everything the numerical statistics need from one reference column."""

    name: str
    sample: SortedSample
    mean: float | None
    stddev: float | None
    missing_ratio: float
    edges: FloatArray
    bin_proportions: FloatArray
    fleet: FleetReference  # bucket bounds of the mergeable histogram (SPEC 6.8)

    @property
    def wasserstein_norm(self) -> float:
        """Divisor of the normed Wasserstein distance: max(std(reference, ddof=1), 0.001)."""
        return max(self.stddev or 0.0, MIN_WASSERSTEIN_NORM)

    @cached_property
    def inputs(self) -> ReferenceInputs:
        """What the statistics and their calibration read from this column."""
        return ReferenceInputs(self.sample.size, self.bin_proportions, sample=self.sample,
                               norm=self.wasserstein_norm)


@dataclass(frozen=True)
class CategoricalReference:
    """Category vocabulary (most frequent first) and counts of one reference column."""

    name: str
    categories: tuple[str, ...]
    counts: IntArray  # per category, plus a last bin for values never seen (always 0 here)
    missing_ratio: float
    exposed: int  # the first ``exposed`` categories get their own label; the rest are __other__

    @property
    def bin_proportions(self) -> FloatArray:
        """Shares of each category and of the unseen bin."""
        return proportions(self.counts)

    @cached_property
    def inputs(self) -> ReferenceInputs:
        """What the statistics and their calibration read from this column."""
        return ReferenceInputs(int(self.counts.sum()), self.bin_proportions, counts=self.counts)

    def encode(self, values: NDArray[np.object_], coded: Coded | None = None) -> NDArray[np.int32]:
        """Codes: category index, len(categories) for unseen values, -1 for missing.

        ``coded``, the batch's dictionary codes of ``values`` when it has them, saves hashing
        every row."""
        if coded is not None:  # parsed by the fast path: map its few distinct values once
            codes_in, dictionary = coded.codes, coded.dictionary
            unseen = len(self.categories)
            lookup = np.full(len(dictionary) + 1, -1, dtype=np.int32)  # last slot: missing
            if 0 < len(dictionary) <= 4096:  # a dict beats pandas' set-up for a few values
                position = {c: i for i, c in enumerate(self.categories)}
                lookup[:-1] = [position.get(v, unseen) for v in dictionary]
            elif dictionary:
                import pandas as pd  # only for thousands of distinct values

                found = pd.Index(self.categories, dtype=object).get_indexer(
                    pd.Index(list(dictionary), dtype=object))
                lookup[:-1] = np.where(found < 0, unseen, found)
            mapped: NDArray[np.int32] = lookup[codes_in]  # code -1 (missing) -> the last slot
            return mapped
        import pandas as pd  # only for object values without codes (line-by-line parsing)

        missing = missing_objects(values)
        index = pd.Index(self.categories, dtype=object)
        codes: NDArray[np.int32] = index.get_indexer(pd.Index(values, dtype=object)).astype(
            np.int32)
        codes[(codes < 0) & ~missing] = len(self.categories)
        codes[missing] = -1
        return codes

    def _exposed(self) -> list[tuple[int, str]]:
        # A data category literally named __other__ or __empty__ is never exposed under its own
        # name (it would collide with the bucket, or with the empty category's label value);
        # it is summed into the bucket like the rest, so every label value is unique.
        return [(i, c) for i, c in enumerate(self.categories)
                if c not in RESERVED_LABELS][: self.exposed]

    def fleet_slots(self) -> CategorySlots:
        """Exposed categories then __other__ (always: unseen values may come any time)."""
        exposed = self._exposed()
        slot = [len(exposed)] * (len(self.categories) + 1)  # default: __other__
        for position, (code, _) in enumerate(exposed):
            slot[code] = position
        return CategorySlots((*(c for _, c in exposed), OTHER), np.asarray(slot, dtype=np.intp))

    def label_ratios(self, counts: IntArray) -> tuple[tuple[str, float], ...]:
        """Shares per exposed category plus __other__ (the rest and unseen), from bin counts."""
        total = int(counts.sum())
        if total == 0:
            return ()
        exposed = self._exposed()
        shares = [(c, float(counts[i]) / total) for i, c in exposed]
        rest = total - int(sum(counts[i] for i, _ in exposed))
        if len(self.categories) > len(exposed) or rest:
            shares.append((OTHER, rest / total))
        return tuple(shares)


ColumnReference = NumericalReference | CategoricalReference


@dataclass(frozen=True)
class ReferenceProfile:
    """The profiled reference of one model."""

    model: str
    rows: int
    columns: Mapping[str, ColumnReference]
    quality: QualitySnapshot | None = None  # needs the label and the prediction in the reference
    cbpe: CbpeReference | None = None  # label-free performance estimate (SPEC 6.10)
    cbpe_reason: str = ""  # why ``cbpe`` is None (or why it applies), said by check and run
    segmentation: Segmentation | None = None  # with segments.column (SPEC 6.11)
    # Each segment's slice of the reference, profiled like the whole (docs/segments.md).
    segments: Mapping[str, ReferenceProfile] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}))

    def for_segment(self, segment: str) -> ReferenceProfile:
        """The profile a segment's window is compared with ("" = the whole reference)."""
        return self.segments[segment] if segment else self


def profile_numerical(name: str, values: FloatArray, bins: int,
                      fleet_buckets: int = 20) -> NumericalReference:
    """Profile one numerical reference column (NaN = missing or invalid)."""
    usable = values[~np.isnan(values)]
    sample = sorted_sample(usable)
    edges = quantile_edges(sample.values, bins)
    props = proportions(bin_counts(edges, sample.values))
    missing = 1.0 - usable.shape[0] / values.shape[0] if values.shape[0] else 0.0
    mean, stddev = moments.mean_and_stddev(usable)
    return NumericalReference(name, sample, mean, stddev, missing, edges, props,
                              fleet_reference(sample.values, fleet_buckets))


def profile_categorical(name: str, values: NDArray[np.object_],
                        max_categories: int) -> CategoricalReference:
    """Profile one categorical reference column (None = missing)."""
    present = values[~missing_objects(values)]
    counts = Counter(present.tolist())
    order = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    categories = tuple(str(k) for k, _ in order)
    bins = np.array([int(v) for _, v in order] + [0], dtype=np.int64)
    missing = 1.0 - present.shape[0] / values.shape[0] if values.shape[0] else 0.0
    return CategoricalReference(name, categories, bins, missing,
                                min(max_categories, len(categories)))


def load_reference(model: ModelConfig) -> ReferenceProfile:
    """Read and profile the reference of one model (raises ReferenceDataError)."""
    specs = reference_columns(model)
    segment_spec = ([] if model.segments is None
                    or model.segments.column in {s.name for s in specs}
                    else [ColumnSpec(model.segments.column, CATEGORY)])
    source = _read_source(model, specs + segment_spec)
    batch = _batch(source, specs + segment_spec)
    if batch.rows == 0:
        raise ReferenceDataError(f"reference {model.reference_path} has no rows")
    columns: dict[str, ColumnReference] = {}
    for spec in specs:
        if spec.kind == NUMBER:
            columns[spec.name] = profile_numerical(spec.name, batch.numbers[spec.name],
                                                   model.drift.bins, model.fleet.buckets)
        else:
            columns[spec.name] = profile_categorical(spec.name, batch.categories[spec.name],
                                                     model.max_categories)
    estimate, reason = _reference_cbpe(model, source)
    whole = ReferenceProfile(model.name, batch.rows, MappingProxyType(columns),
                             _reference_quality(model, source), estimate, reason)
    if model.segments is None:
        return whole
    return _with_segments(model, whole, source, batch, specs)


def _with_segments(model: ModelConfig, whole: ReferenceProfile, source: Source, batch: Batch,
                   specs: list[ColumnSpec]) -> ReferenceProfile:
    """The whole profile with each segment's slice profiled once (docs/segments.md): numerical
    bins at the slice's own quantiles (SPEC 6.5: the reference's quantiles, and a segment's
    reference is its slice); categories in the whole reference's codes, which the encoder
    gives every record, with the slice's counts."""
    assert model.segments is not None
    values = batch.categories[model.segments.column]
    segmentation = choose(model.segments.column, values, model.segments.max_segments,
                          model.drift.min_rows)
    codes = segmentation.codes(values)
    profiles: dict[str, ReferenceProfile] = {}
    for index, name in enumerate(segmentation.names):
        rows = codes == index
        columns: dict[str, ColumnReference] = {}
        for spec in specs:
            ref = whole.columns[spec.name]
            if isinstance(ref, NumericalReference):
                columns[spec.name] = profile_numerical(spec.name, batch.numbers[spec.name][rows],
                                                       model.drift.bins, model.fleet.buckets)
            else:
                columns[spec.name] = _slice_categorical(ref, batch.categories[spec.name][rows])
        sliced = (source.filter(pa.array(rows)) if isinstance(source, pa.Table)
                  else source[rows])
        # The label-free estimate is the whole model's (docs/segments.md): no slice of its own.
        profiles[name] = ReferenceProfile(model.name, int(rows.sum()), MappingProxyType(columns),
                                          _reference_quality(model, sliced), None,
                                          "not estimated per segment")
    return dataclasses.replace(whole, segmentation=segmentation,
                               segments=MappingProxyType(profiles))


def _slice_categorical(whole: CategoricalReference,
                       values: NDArray[np.object_]) -> CategoricalReference:
    """A slice's categorical profile in the whole reference's vocabulary (same codes)."""
    codes = whole.encode(values)
    present = codes[codes >= 0]
    counts = np.bincount(present, minlength=len(whole.categories) + 1).astype(np.int64)
    missing = 1.0 - present.shape[0] / values.shape[0] if values.shape[0] else 0.0
    return CategoricalReference(whole.name, whole.categories, counts, missing, whole.exposed)


Source: TypeAlias = "pa.Table | pd.DataFrame"


def _read_source(model: ModelConfig, specs: list[ColumnSpec]) -> Source:
    """Parquet: only the columns used, as Arrow (the Parquet log's conversion rules apply to
    it as they do to a Parquet log); CSV and JSONL: a DataFrame."""
    if table_format(model.reference_path) != "parquet":
        return read_table(model.reference_path)
    names = [s.name for s in specs]
    if model.label is not None:
        names.append(model.label.column)
    return read_parquet_columns(model.reference_path, names)


def _batch(source: Source, specs: list[ColumnSpec]) -> Batch:
    if isinstance(source, pa.Table):
        return batch_from_table(source, specs)
    return batch_from_frame(source, specs)


def _reference_quality(model: ModelConfig, source: Source) -> QualitySnapshot | None:
    """Quality of the model on its reference, when the reference has labels and predictions."""
    names = source.column_names if isinstance(source, pa.Table) else source.columns
    if model.label is None or model.prediction is None or model.label.column not in names:
        return None
    label_kind = NUMBER if label_is_number(model) else CATEGORY
    prediction_kind = NUMBER if model.prediction.type == "numerical" else CATEGORY
    specs = [ColumnSpec(model.label.column, label_kind),
             ColumnSpec(model.prediction.column, prediction_kind)]
    batch = _batch(source, specs)
    return compute_quality(batch.rows, batch.numbers, batch.categories, model, None, min_rows=1)


def _reference_cbpe(model: ModelConfig,
                    source: Source) -> tuple[CbpeReference | None, str]:
    """The reference side of the label-free estimate, prepared once, or why there is none."""
    label, prediction = model.label, model.prediction
    if label is None or prediction is None:
        return None, "no label configured" if label is None else "no prediction configured"
    names = source.column_names if isinstance(source, pa.Table) else source.columns
    in_reference = label.column in names
    scores: FloatArray = np.empty(0)
    positive: NDArray[np.bool_] = np.empty(0, dtype=bool)
    if in_reference and label.task == "classification" and prediction.type == "numerical":
        batch = _batch(source, [ColumnSpec(label.column, CATEGORY),
                                ColumnSpec(prediction.column, NUMBER)])
        is_positive, usable = q.binary_labels(batch.categories[label.column])
        all_scores = batch.numbers[prediction.column]
        keep = usable & np.isfinite(all_scores)
        scores, positive = all_scores[keep], is_positive[keep]
    found = cbpe.applicable(label.task, prediction.type, in_reference, int(scores.shape[0]),
                            int(positive.sum()))
    if not found.applies:
        return None, found.reason
    if label.estimate != "cbpe":
        return None, "label.estimate is none"
    return cbpe.prepare_reference(scores, positive, label.threshold,
                                  seed=seed_for(model.name, "cbpe")), found.reason


def batch_from_frame(frame: pd.DataFrame, specs: list[ColumnSpec]) -> Batch:
    """Convert reference columns with the log's rules (SPEC 2: "in the log and the reference
    alike"): typed columns through Arrow, mixed Python objects (JSONL) value by value."""
    typed = [s for s in specs if s.name in frame.columns and frame[s.name].dtype != object]
    mixed = [s for s in specs if s.name in frame.columns and frame[s.name].dtype == object]
    absent = [s for s in specs if s.name not in frame.columns]
    table = pa.Table.from_pandas(frame[[s.name for s in typed]], preserve_index=False)
    parts = [batch_from_table(table, typed + absent)]
    if mixed:
        columns = {s.name: frame[s.name].tolist() for s in mixed}
        records = [{k: v[i] for k, v in columns.items()} for i in range(len(frame))]
        parts.append(batch_from_records(records, mixed))
    numbers = {k: v for p in parts for k, v in p.numbers.items()}
    categories = {k: v for p in parts for k, v in p.categories.items()}
    return Batch(len(frame), numbers, categories)


def reference_columns(model: ModelConfig) -> list[ColumnSpec]:
    """The monitored columns (features, then the prediction) and how to read them."""
    specs = [ColumnSpec(f.name, NUMBER if f.type == "numerical" else CATEGORY)
             for f in model.features]
    if model.prediction is not None:
        kind = NUMBER if model.prediction.type == "numerical" else CATEGORY
        specs.append(ColumnSpec(model.prediction.column, kind))
    return specs
