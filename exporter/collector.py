"""Renders each model's latest immutable snapshot, reference profile and counters as metric
families, fresh on every scrape. It never computes statistics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from exporter import __version__
from exporter.alarm import AlarmState
from exporter.counters import detection_key
from exporter.fleet import FleetValues
from exporter.quality import QualitySnapshot
from exporter.reference import (
    EMPTY_CATEGORY,
    CategoricalReference,
    ColumnReference,
    NumericalReference,
    ReferenceProfile,
)
from exporter.snapshot import ColumnSnapshot, ModelSnapshot
from exporter.state import ModelState
from exporter.stats import registry
from exporter.stats.cbpe import Metrics
from exporter.stats.statistic import Gauge

# Per-column gauges: (feature metric, prediction metric or None, help, getter on the snapshot);
# the statistics' own gauges go between the head and the tail (_window_gauges).
_WindowGauge = tuple[str, str | None, str, Callable[[ColumnSnapshot], float | None]]
_WINDOW_GAUGES_HEAD: tuple[_WindowGauge, ...] = (
    ("drift_feature_mean", "drift_prediction_mean", "Mean of the window's usable values.",
     lambda c: c.mean),
    ("drift_feature_stddev", "drift_prediction_stddev",
     "Sample standard deviation (ddof=1) of the window's usable values.", lambda c: c.stddev),
    ("drift_feature_missing_ratio", "drift_prediction_missing_ratio",
     "Share of window rows whose value is missing or invalid.", lambda c: c.missing_ratio),
)
_WINDOW_GAUGES_TAIL: tuple[_WindowGauge, ...] = (
    ("drift_feature_unseen_ratio", None,
     "Share of the window's usable values never seen in the reference.",
     lambda c: c.unseen_ratio),
    ("drift_feature_drift_score", "drift_prediction_drift_score",
     "Value of the configured drift statistic.", lambda c: c.score),
    ("drift_feature_drift_threshold", "drift_prediction_drift_threshold",
     "Drift threshold in force (configured, or calibrated for auto).", lambda c: c.threshold),
    ("drift_feature_drift_detected", "drift_prediction_drift_detected",
     "1 when the drift score crosses its threshold, else 0.",
     lambda c: None if c.detected is None else float(c.detected)),
)


def _window_gauges() -> tuple[_WindowGauge, ...]:
    """Every per-column window gauge in exposition order, the registered statistics' included."""
    def row(gauge: Gauge) -> _WindowGauge:
        return (gauge.feature_metric, gauge.prediction_metric, gauge.help,
                lambda c: c.gauges.get(gauge.suffix))

    return (*_WINDOW_GAUGES_HEAD, *map(row, registry.gauges()), *_WINDOW_GAUGES_TAIL)


_REFERENCE_GAUGES: tuple[tuple[str, str, str, Callable[[ColumnReference], float | None]],
                         ...] = (
    ("drift_reference_feature_mean", "drift_reference_prediction_mean",
     "Mean of the reference's usable values.",
     lambda r: r.mean if isinstance(r, NumericalReference) else None),
    ("drift_reference_feature_stddev", "drift_reference_prediction_stddev",
     "Sample standard deviation (ddof=1) of the reference's usable values.",
     lambda r: r.stddev if isinstance(r, NumericalReference) else None),
    ("drift_reference_feature_missing_ratio", "drift_reference_prediction_missing_ratio",
     "Share of reference rows whose value is missing or invalid.", lambda r: r.missing_ratio),
)
# (window ratio metric, reference ratio metric, label) for features and the prediction
_RATIOS = {
    "feature": ("drift_feature_category_ratio", "drift_reference_feature_category_ratio",
                "category"),
    "prediction": ("drift_prediction_class_ratio", "drift_reference_prediction_class_ratio",
                   "class"),
}


F = TypeVar("F", GaugeMetricFamily, CounterMetricFamily, HistogramMetricFamily,
              UnknownMetricFamily)


class _Families:
    """Metric families by name, created on first use, yielded in creation order."""

    def __init__(self) -> None:
        # One family object per (name, label names): models with and without model_version
        # share a family name but not its label names; __iter__ joins them under one name.
        self._by_key: dict[tuple[str, tuple[str, ...]], Metric] = {}

    def _get(self, kind: type[F], name: str, doc: str, labels: Sequence[str]) -> F:
        key = (name, tuple(labels))
        if key not in self._by_key:
            self._by_key[key] = kind(name, doc, labels=list(labels))
        family = self._by_key[key]
        assert isinstance(family, kind)
        return family

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> GaugeMetricFamily:
        return self._get(GaugeMetricFamily, name, doc, labels)

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> CounterMetricFamily:
        return self._get(CounterMetricFamily, name, doc, labels)

    def histogram(self, name: str, doc: str, labels: Sequence[str]) -> HistogramMetricFamily:
        return self._get(HistogramMetricFamily, name, doc, labels)

    def untyped(self, name: str, doc: str, labels: Sequence[str]) -> UnknownMetricFamily:
        return self._get(UnknownMetricFamily, name, doc, labels)

    def __iter__(self) -> Iterator[Metric]:
        joined: dict[str, Metric] = {}
        for (name, _), family in self._by_key.items():
            if name in joined:
                joined[name].samples.extend(family.samples)
            else:
                joined[name] = family
        return iter(joined.values())


class DriftCollector(Collector):
    """Custom collector over the models' latest states."""

    def __init__(self, states: Callable[[], Iterable[ModelState]]) -> None:
        self._states = states

    def collect(self) -> Iterator[Metric]:
        """Build every drift_* family afresh from the current states."""
        fam = _Families()
        build = fam.gauge("drift_exporter_build_info", "drift-exporter build information.",
                          ["version"])
        build.add_metric([__version__], 1.0)
        for state in self._states():
            _render_model(fam, state)
        yield from fam


def label_value(category: str) -> str:
    """A category as a label value: Prometheus reads an empty value as no label at all.

    Unique per series: a data category literally named ``__empty__`` is never exposed on its
    own (``CategoricalReference`` sums it into ``__other__``)."""
    return category if category else EMPTY_CATEGORY


def _render_model(fam: _Families, state: ModelState) -> None:
    for version in state.versions:
        # A segment window's series carry a ``segment`` label (SPEC 6.11); the whole model's not.
        base_labels = ["model", "model_version"] if state.versioned else ["model"]
        base = [state.name, version.name] if state.versioned else [state.name]
        if version.segment:
            base_labels, base = [*base_labels, "segment"], [*base, version.segment]
        profile = version.profile or state.profile
        snap = version.snapshot
        by_name = {c.name: c for c in snap.features} if snap else {}
        for feature in state.feature_names:
            _render_column(fam, "feature", [*base, feature], [*base_labels, "feature"],
                           profile.columns[feature], by_name.get(feature))
        if state.prediction_column is not None:
            _render_column(fam, "prediction", base, base_labels,
                           profile.columns[state.prediction_column],
                           snap.prediction if snap else None)
        _render_window_gauges(fam, base, base_labels, profile, snap)
        detections = fam.counter("drift_detections_total", "Times a feature went from not drifted "
                                 "to drifted.", [*base_labels, "feature"])
        for feature in state.feature_names:
            count = state.counters.detections.get(
                detection_key(version.name, feature, version.segment), 0)
            detections.add_metric([*base, feature], count)
        if version.alarm is not None:
            _render_alarm(fam, base, base_labels, state, version.alarm)
    _render_model_gauges(fam, state)
    _render_counters(fam, state)
    if state.fleet is not None:
        _render_fleet(fam, state, state.fleet)


# (window metric, reference twin, help, getter)
_QUALITY_GAUGES: tuple[tuple[str, str, str, Callable[[QualitySnapshot], float | None]], ...] = (
    ("drift_model_accuracy", "drift_reference_model_accuracy",
     "Accuracy over the labelled records.", lambda q: q.accuracy),
    ("drift_model_f1", "drift_reference_model_f1",
     "Macro-averaged F1 score over the labelled records.", lambda q: q.f1),
    ("drift_model_roc_auc", "drift_reference_model_roc_auc",
     "ROC AUC of the score over the labelled records (binary).", lambda q: q.roc_auc),
    ("drift_model_mae", "drift_reference_model_mae",
     "Mean absolute error over the labelled records.", lambda q: q.mae),
    ("drift_model_rmse", "drift_reference_model_rmse",
     "Root mean squared error over the labelled records.", lambda q: q.rmse),
)

# Label-free estimates (SPEC 6.10): (window metric, reference twin, help, getter); the window
# metric's standard error is ``<metric>_sampling_error``.
_ESTIMATE_GAUGES: tuple[tuple[str, str, str, Callable[[Metrics], float | None]], ...] = (
    ("drift_model_estimated_accuracy", "drift_reference_model_estimated_accuracy",
     "Accuracy estimated from the scores of every window record, labelled or not (CBPE).",
     lambda m: m.accuracy),
    ("drift_model_estimated_f1", "drift_reference_model_estimated_f1",
     "Macro-averaged F1 score estimated from the scores of every window record (CBPE).",
     lambda m: m.f1),
    ("drift_model_estimated_roc_auc", "drift_reference_model_estimated_roc_auc",
     "ROC AUC estimated from the scores of every window record (CBPE).", lambda m: m.roc_auc),
)


def _render_window_gauges(fam: _Families, base: list[str], labels: list[str],
                          profile: ReferenceProfile, snap: ModelSnapshot | None) -> None:
    fam.gauge("drift_reference_rows", "Records in the reference.", labels).add_metric(
        base, profile.rows)
    reference_quality = profile.quality
    if reference_quality is not None:
        for _, twin, doc, get in _QUALITY_GAUGES:
            value = get(reference_quality)
            if value is not None:
                fam.gauge(twin, f"{doc} (reference)", labels).add_metric(base, value)
    _render_reference_estimate(fam, base, labels, profile)
    if snap is None:
        return
    fam.gauge("drift_window_rows", "Records in the window.", labels).add_metric(
        base, snap.window_rows)
    if snap.dataset_drift_share is not None:
        fam.gauge("drift_dataset_drift_share",
                  "Share of features with drift detected among those with a score.",
                  labels).add_metric(base, snap.dataset_drift_share)
        fam.gauge("drift_dataset_drift_detected",
                  "1 when the dataset drift share reaches drift.dataset_share.",
                  labels).add_metric(base, float(bool(snap.dataset_drift_detected)))
    fam.gauge("drift_last_update_timestamp_seconds",
              "When the statistics were last recomputed.", labels).add_metric(
        base, snap.computed_at)
    _render_estimate(fam, base, labels, snap)
    quality = snap.quality
    if quality is None:
        return
    for name, _, doc, get in _QUALITY_GAUGES:
        value = get(quality)
        if value is not None:
            fam.gauge(name, doc, labels).add_metric(base, value)
    if quality.labeled_ratio is not None:
        fam.gauge("drift_model_labeled_ratio", "Share of window records that carry a label.",
                  labels).add_metric(base, quality.labeled_ratio)
    if quality.error_change_ratio is not None:
        fam.gauge("drift_model_error_change_ratio",
                  "Relative change of the error (1 - accuracy, or RMSE) against the reference.",
                  labels).add_metric(base, quality.error_change_ratio)


def _render_reference_estimate(fam: _Families, base: list[str], labels: list[str],
                               profile: ReferenceProfile) -> None:
    """The reference's own label-free estimate: what the window's is compared with."""
    reference = profile.cbpe
    if reference is None:
        return
    for name, twin, _, get in _ESTIMATE_GAUGES:
        value = get(reference.estimated)
        if value is not None:
            fam.gauge(twin, f"The estimate on the reference itself, what {name} is compared "
                      "with.", labels).add_metric(base, value)
    fam.gauge("drift_model_estimation_calibrated", "1 when the estimate uses the isotonic "
              "calibration fitted on the reference, 0 when it uses the raw score.",
              labels).add_metric(base, float(reference.calibration.calibrated))


def _render_estimate(fam: _Families, base: list[str], labels: list[str],
                     snap: ModelSnapshot) -> None:
    """The window's label-free estimate (SPEC 6.10); absent below drift.min_rows scores."""
    estimate = snap.estimate
    if estimate is None:
        return
    for name, _, doc, get in _ESTIMATE_GAUGES:
        value, error = get(estimate.estimate.metrics), get(estimate.sampling_errors)
        if value is not None:
            fam.gauge(name, doc, labels).add_metric(base, value)
        if value is not None and error is not None:
            fam.gauge(f"{name}_sampling_error", f"One standard error of {name}: the band is "
                      "+-3 of them.", labels).add_metric(base, error)
    fam.gauge("drift_model_estimated_outside_reference_ratio", "Share of the window's scores "
              "outside the reference's score range (the estimate extrapolates there).",
              labels).add_metric(base, estimate.outside_share)


def _render_column(fam: _Families, kind: str, values: list[str], labels: list[str],
                   ref: ColumnReference, col: ColumnSnapshot | None) -> None:
    """Gauges of one feature (kind "feature") or of the prediction (kind "prediction")."""
    prediction = kind == "prediction"
    for feature_ref, prediction_ref, doc, get_ref in _REFERENCE_GAUGES:
        value = get_ref(ref)
        if value is not None:
            reference_name = prediction_ref if prediction else feature_ref
            fam.gauge(reference_name, doc, labels).add_metric(values, value)
    ratio_name, reference_ratio_name, ratio_label = _RATIOS[kind]
    if isinstance(ref, CategoricalReference):
        family = fam.gauge(reference_ratio_name,
                           f"Share of each {ratio_label} in the reference.",
                           [*labels, ratio_label])
        for category, share in ref.label_ratios(ref.counts):
            family.add_metric([*values, label_value(category)], share)
    if col is None:
        return
    for feature_name, prediction_name, doc, get in _window_gauges():
        metric = prediction_name if prediction else feature_name
        value = get(col)
        if metric is not None and value is not None:
            fam.gauge(metric, doc, labels).add_metric(values, value)
    if col.category_ratios:
        family = fam.gauge(ratio_name, f"Share of each {ratio_label} in the window.",
                           [*labels, ratio_label])
        for category, share in col.category_ratios:
            family.add_metric([*values, label_value(category)], share)
    if col.quantiles:
        family = fam.gauge("drift_prediction_quantile", "Quantiles of the window's predictions.",
                           [*labels, "q"])
        for q, v in col.quantiles:
            family.add_metric([*values, f"{q:g}"], v)


def _render_alarm(fam: _Families, base: list[str], labels: list[str], state: ModelState,
                  alarm: AlarmState) -> None:
    """The window's drift alarm (SPEC 6.9); every column's series is present, 0 or 1."""
    fam.gauge("drift_alarm", "1 while the drift alarm is raised, else 0.", labels).add_metric(
        base, float(alarm.raised))
    fam.counter("drift_alarm_raised_total", "Times the drift alarm went from 0 to 1.",
                labels).add_metric(base, alarm.raised_total)
    columns = fam.gauge("drift_feature_alarm", "1 for each column (the prediction as "
                        "__prediction__) taking part in the raised alarm, else 0.",
                        [*labels, "feature"])
    raised = set(alarm.columns)
    for column in state.alarm_columns:
        columns.add_metric([*base, column], float(column in raised))


def _render_model_gauges(fam: _Families, state: ModelState) -> None:
    if state.false_alarm_every is not None:
        fam.gauge("drift_alarm_false_alarm_every_seconds", "The drift alarm's target mean time "
                  "between false alarms (alarm.false_alarm_every).", ["model"]).add_metric(
            [state.name], state.false_alarm_every)
    if state.counters.last_record_timestamp is not None:
        fam.gauge("drift_last_record_timestamp_seconds",
                  "Timestamp of the newest record (its own, else when it was read).",
                  ["model"]).add_metric([state.name], state.counters.last_record_timestamp)


def _render_counters(fam: _Families, state: ModelState) -> None:
    model = state.name
    c = state.counters
    fam.counter("drift_rows_ingested_total", "Records read from the logs.", ["model"]).add_metric(
        [model], c.rows_ingested)
    rejected = fam.counter("drift_rows_rejected_total", "Records not read, by reason.",
                           ["model", "reason"])
    for reason, count in sorted(c.rows_rejected.items()):
        rejected.add_metric([model, reason], count)
    invalid = fam.counter("drift_values_invalid_total", "Values of the wrong type, by column.",
                          ["model", "feature"])
    for column, count in sorted(c.values_invalid.items()):
        invalid.add_metric([model, column], count)
    files = fam.counter("drift_files_rejected_total", "Log files that could not be read.",
                        ["model", "reason"])
    for reason, count in sorted(c.files_rejected.items()):
        files.add_metric([model, reason], count)
    if c.feedback_matched is not None:
        fam.counter("drift_feedback_matched_total", "Feedback labels joined to a window record.",
                    ["model"]).add_metric([model], c.feedback_matched)
    if c.feedback_unmatched is not None:
        fam.counter("drift_feedback_unmatched_total", "Feedback labels whose id never met a window "
                    "record (dropped from the bounded buffer).", ["model"]).add_metric(
            [model], c.feedback_unmatched)
    fam.counter("drift_log_truncations_total", "Followed files truncated or replaced in place.",
                ["model"]).add_metric([model], c.truncations)


def _render_fleet(fam: _Families, state: ModelState, fleet: FleetValues) -> None:
    """Mergeable counts of every record read and the reference side (SPEC 6.8), per model."""
    model = state.name
    for name, counts in fleet.numerical.items():
        prediction = name == state.prediction_column and name not in state.feature_names
        what, labels, values = (("prediction", ["model"], [model]) if prediction
                                else ("feature", ["model", "feature"], [model, name]))
        histogram = fam.histogram(f"drift_{what}_values",
                                  f"Every usable {what} value read, in buckets at the "
                                  "reference's quantiles.", labels)
        _add_histogram(histogram, labels, values, counts.labels, counts.cumulative,
                       counts.total)
        ref = state.profile.columns[name]
        assert isinstance(ref, NumericalReference)
        # Gauges by meaning, untyped on the wire: an ``le`` label on a gauge fails promtool's
        # lint ("non-histogram metrics should not have le label"), which exempts untyped.
        cdf = fam.untyped(f"drift_reference_{what}_cdf",
                        "Share of the reference's usable values <= le.", [*labels, "le"])
        for le, share in zip(ref.fleet.labels, [*ref.fleet.cdf, 1.0], strict=True):
            cdf.add_metric([*values, le], float(share))
        buckets = fam.untyped(f"drift_reference_{what}_bucket_ratio",
                            "Share of the reference's usable values in (lower, le].",
                            [*labels, "le", "lower"])
        lowers = ("-Inf", *ref.fleet.labels[:-1])
        for le, lower, share in zip(ref.fleet.labels, lowers, ref.fleet.bucket_ratios,
                                    strict=True):
            buckets.add_metric([*values, le, lower], float(share))
    if fleet.categorical:
        family = fam.counter("drift_feature_category_values_total",
                             "Every usable categorical feature value read, per category.",
                             ["model", "feature", "category"])
        for name, category_counts in fleet.categorical.items():
            for category, count in zip(category_counts.labels, category_counts.counts,
                                       strict=True):
                family.add_metric([model, name, label_value(category)], count)


def _add_histogram(family: HistogramMetricFamily, names: Sequence[str], values: Sequence[str],
                   bounds: Sequence[str], cumulative: Sequence[int], total: float) -> None:
    """Buckets, ``_count`` and ``_sum`` of one histogram.

    ``HistogramMetricFamily.add_metric`` leaves out ``_count`` and ``_sum`` when a bucket bound
    is negative (OpenMetrics: the sum is then no counter). SPEC 6.8 asks for both, and
    ``_count`` stays a counter whatever the values, so they are written here for every feature
    (docs/fleet.md: do not ``rate()`` the ``_sum`` of a feature with negative values)."""
    base = dict(zip(names, values, strict=True))
    for le, count in zip(bounds, cumulative, strict=True):
        family.samples.append(Sample(f"{family.name}_bucket", {**base, "le": le}, count))
    family.samples.append(Sample(f"{family.name}_count", dict(base), cumulative[-1]))
    family.samples.append(Sample(f"{family.name}_sum", dict(base), total))


class OpenMetricsView:
    """A registry as OpenMetrics allows it: a histogram with a negative bucket bound has no
    ``_count`` and ``_sum`` there (its sum is no counter), so they are left out of that format
    only; the Prometheus text format carries them (SPEC 6.8)."""

    def __init__(self, registry: Collector) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        """The registry's metrics, negative-bucket histograms without ``_count``/``_sum``."""
        for metric in self._registry.collect():
            if metric.type != "histogram":
                yield metric
                continue
            negative = {_series(s) for s in metric.samples
                        if s.name.endswith("_bucket") and float(s.labels["le"]) < 0}
            if not negative:
                yield metric
                continue
            trimmed = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            trimmed.samples = [s for s in metric.samples
                               if s.name.endswith("_bucket") or _series(s) not in negative]
            yield trimmed


def _series(sample: Sample) -> frozenset[tuple[str, str]]:
    return frozenset((k, v) for k, v in sample.labels.items() if k != "le")
