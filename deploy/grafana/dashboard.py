"""Generates dashboards/drift-exporter.json, the Grafana dashboard of one model.

    python deploy/grafana/dashboard.py          # rewrite the JSON
    python deploy/grafana/dashboard.py --check  # exit 1 if the JSON is out of date

The JSON is what Grafana loads (provisioning/dashboards); this script is where it is edited,
so the panels stay consistent (one data source variable, a `model` filter on every drift
query, the same units and colours). tests/unit/test_deploy_grafana.py checks that the two agree
and the end-to-end test runs every query against a real Prometheus.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "drift-exporter.json"
UID = "drift-exporter-model"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# The window's series: the whole model's (segment="" when the segment variable is All) or one
# segment's (SPEC 6.11); per-model series (ingestion, fleet) have no segment and take MODEL.
MODEL = 'model="$model"'
M = 'model="$model", segment=~"$segment"'
MF = 'model="$model", segment=~"$segment", feature="$feature"'
WHOLE_MODEL = "^$"  # the segment variable's All value: series without a segment label
EXPORTER_JOB = 'job=~"(.*/)?drift-exporter"'

Panel = dict[str, Any]


class Layout:
    """Places panels left to right in rows of 24 columns and numbers them."""

    def __init__(self) -> None:
        self.panels: list[Panel] = []
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str, repeat: str | None = None) -> None:
        """Start a row (a full-width header)."""
        self.newline()
        panel: Panel = {"type": "row", "title": title, "id": self._id(), "collapsed": False,
                        "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []}
        if repeat:
            panel["repeat"] = repeat
        self.panels.append(panel)
        self.y += 1

    def newline(self) -> None:
        """Continue below the tallest panel of the current line."""
        if self.x:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def add(self, panel: Panel, w: int, h: int) -> None:
        """Place a panel of ``w`` x ``h`` grid units."""
        if self.x + w > 24:
            self.newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> Panel:
    """One PromQL query of a panel."""
    query: Panel = {"refId": ref, "datasource": DATASOURCE, "expr": expr,
                    "legendFormat": legend or "__auto", "range": not instant,
                    "instant": instant}
    if instant:
        query["format"] = "table"
    return query


def targets(*queries: tuple[str, str]) -> list[Panel]:
    """Queries with refIds A, B, ..."""
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def dashed(ref: str, color: str = "red") -> Panel:
    """An override drawing one query as a dashed line (thresholds, references)."""
    return {"matcher": {"id": "byFrameRefID", "options": ref},
            "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                           {"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]}


def timeseries(title: str, queries: list[Panel], *, unit: str = "short",
               description: str = "", log_scale: bool = False,
               overrides: list[Panel] | None = None, no_value: str = "",
               threshold_line: float | None = None) -> Panel:
    """A time-series panel (``threshold_line``: a red line at that value)."""
    custom: Panel = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0,
                     "showPoints": "never", "spanNulls": False}
    if log_scale:
        custom["scaleDistribution"] = {"type": "log", "log": 10}
    defaults: Panel = {"unit": unit, "custom": custom}
    if threshold_line is not None:
        custom["thresholdsStyle"] = {"mode": "line"}
        defaults["thresholds"] = {"mode": "absolute", "steps": [
            {"color": "transparent", "value": None}, {"color": "red", "value": threshold_line}]}
    if no_value:
        defaults["noValue"] = no_value
    return {"type": "timeseries", "title": title, "description": description,
            "datasource": DATASOURCE, "targets": queries,
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                   "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title: str, expr: str, *, unit: str = "short", description: str = "",
         red_from: float | None = None, mappings: list[Panel] | None = None,
         no_value: str = "") -> Panel:
    """A single-value panel, red from ``red_from``."""
    steps: list[Panel] = [{"color": "green", "value": None}]
    if red_from is not None:
        steps.append({"color": "red", "value": red_from})
    defaults: Panel = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps},
                       "mappings": mappings or [], "color": {"mode": "thresholds"}}
    if no_value:
        defaults["noValue"] = no_value
    return {"type": "stat", "title": title, "description": description,
            "datasource": DATASOURCE, "targets": [target(expr)],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                          "values": False},
                        "colorMode": "background", "graphMode": "area",
                        "textMode": "auto", "justifyMode": "auto"}}


def yes_no(no: str, yes: str) -> list[Panel]:
    """Value mappings of a 0/1 gauge."""
    return [{"type": "value", "options": {"0": {"text": no, "color": "green", "index": 0},
                                          "1": {"text": yes, "color": "red", "index": 1}}}]


def features_table() -> Panel:
    """One row per feature: drifted?, score, threshold, mean shift, missing share."""
    columns = [("drift_feature_drift_detected", "drifted"),
               ("drift_feature_drift_score", "score"),
               ("drift_feature_drift_threshold", "threshold"),
               ("drift:feature_mean_shift:stddevs", "mean shift (sd)"),
               ("drift_feature_missing_ratio", "missing")]
    queries = [target(f"{metric}{{{M}}}", "", chr(ord("A") + i), instant=True)
               for i, (metric, _) in enumerate(columns)]
    rename = {"feature": "feature"}
    rename.update({f"Value #{chr(ord('A') + i)}": name for i, (_, name) in enumerate(columns)})
    return {
        "type": "table", "title": "Features: drift now",
        "description": "Each feature's drift statistic (the configured one), the threshold in "
                       "force and whether it is crossed; sorted with drifted features first.",
        "datasource": DATASOURCE, "targets": queries,
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True, "__name__": True, "job": True,
                                  "instance": True, "model": True, "segment": True},
                "renameByName": rename}},
            {"id": "sortBy", "options": {"sort": [{"field": "drifted", "desc": True}]}},
        ],
        "fieldConfig": {
            "defaults": {"custom": {"align": "auto"}},
            "overrides": [
                {"matcher": {"id": "byName", "options": "drifted"},
                 "properties": [{"id": "mappings", "value": yes_no("no", "DRIFT")},
                                {"id": "custom.cellOptions",
                                 "value": {"type": "color-background"}}]},
                {"matcher": {"id": "byName", "options": "missing"},
                 "properties": [{"id": "unit", "value": "percentunit"}]},
                {"matcher": {"id": "byName", "options": "score"},
                 "properties": [{"id": "decimals", "value": 4}]},
            ]},
        "options": {"showHeader": True, "cellHeight": "sm"},
    }


def alerts_table() -> Panel:
    """The model's pending and firing alerts (Prometheus' ALERTS series)."""
    return {
        "type": "table", "title": "Alerts (pending and firing)",
        "description": "From deploy/prometheus/drift-rules.yml; empty when all is well.",
        "datasource": DATASOURCE,
        "targets": [target(f"ALERTS{{{M}}}", "", instant=True)],
        "transformations": [{"id": "organize", "options": {
            "excludeByName": {"Time": True, "__name__": True, "Value": True, "job": True,
                              "instance": True, "model": True}}}],
        "fieldConfig": {"defaults": {"noValue": "no alerts"}, "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm"},
    }


def alarm(lay: Layout) -> None:
    """The drift alarm (SPEC 6.9): raised or not, the columns taking part, its target."""
    lay.row("Drift alarm (pages)")
    lay.add(stat("Drift alarm", f"drift_alarm{{{M}}}", mappings=yes_no("down", "RAISED"),
                 red_from=1,
                 description="Raised when the model's input changed, with a false alarm about "
                             "once per alarm.false_alarm_every whatever the traffic and the "
                             "number of features (docs/alarms.md). The DriftAlarm alert pages "
                             "on it."), 4, 6)
    lay.add(stat("Alarms raised in range", f"increase(drift_alarm_raised_total{{{M}}}"
                 "[$__range])", red_from=1, description="Times the alarm went from 0 to 1 "
                 "in the dashboard's time range."), 4, 6)
    lay.add(stat("A false alarm every", f"drift_alarm_false_alarm_every_seconds{{{MODEL}}}",
                 unit="s", description="alarm.false_alarm_every: the target mean time "
                 "between false alarms on data like the reference."), 4, 6)
    lay.add(timeseries("Columns in the alarm", targets(
        (f"drift_feature_alarm{{{M}}} == 1", "{{feature}}")),
        no_value="none", description="1 for each column taking part in the raised alarm "
        "(__prediction__ is the prediction); empty while the alarm is down."), 12, 6)


def overview(lay: Layout) -> None:
    """Headline numbers and the per-feature table."""
    lay.row("Overview")
    lay.add(stat("Dataset drift share", f"drift_dataset_drift_share{{{M}}}",
                 unit="percentunit", red_from=0.5,
                 description="Share of features whose drift is detected (the prediction does "
                             "not count); dataset drift at drift.dataset_share (0.5 default)."),
            4, 4)
    lay.add(stat("Dataset drift", f"drift_dataset_drift_detected{{{M}}}",
                 mappings=yes_no("no drift", "DRIFT"), red_from=1), 4, 4)
    lay.add(stat("Drifted features", f"drift:features_drifted:sum{{{M}}}", red_from=1,
                 description="Features whose drift score crosses its threshold now."), 4, 4)
    lay.add(stat("Prediction drift", f"drift_prediction_drift_detected{{{M}}}",
                 mappings=yes_no("no drift", "DRIFT"), red_from=1), 4, 4)
    lay.add(stat("Window rows", f"drift_window_rows{{{M}}}",
                 description="Records in the sliding window compared with the reference."),
            4, 4)
    lay.add(stat("Error vs reference", f"drift_model_error_change_ratio{{{M}}}",
                 unit="percentunit", red_from=0.2, no_value="no labels",
                 description="(error in window - error on reference) / error on reference; "
                             "needs `label` in the exporter config."), 4, 4)
    lay.add(timeseries("Dataset drift share (red line: default dataset_share)", targets(
        (f"drift_dataset_drift_share{{{M}}}", "drifted share")),
        unit="percentunit", threshold_line=0.5), 8, 8)
    lay.add(features_table(), 10, 8)
    lay.add(alerts_table(), 6, 8)


def features(lay: Layout) -> None:
    """All features at once: shifts in location and spread, category shares."""
    lay.row("Features")
    lay.add(timeseries("Mean shift (reference standard deviations)", targets(
        (f"drift:feature_mean_shift:stddevs{{{M}}}", "{{feature}}")),
        description="(window mean - reference mean) / reference stddev, numerical features."),
        12, 8)
    lay.add(timeseries("Stddev ratio (window / reference)", targets(
        (f"drift_feature_stddev{{{M}}} / drift_reference_feature_stddev{{{M}}}",
         "{{feature}}"))), 12, 8)
    lay.add(timeseries("Category shares: window (solid) vs reference (dashed)", targets(
        (f"drift_feature_category_ratio{{{M}}}", "{{feature}}={{category}}"),
        (f"drift_reference_feature_category_ratio{{{M}}}", "{{feature}}={{category}} ref")),
        unit="percentunit", overrides=[dashed("B", "gray")]), 12, 8)
    lay.add(timeseries("Missing and unseen values", targets(
        (f"drift_feature_missing_ratio{{{M}}}", "missing {{feature}}"),
        (f"drift_feature_unseen_ratio{{{M}}}", "unseen {{feature}}")),
        unit="percentunit",
        description="Missing: share of window rows missing or invalid. Unseen: share of a "
                    "categorical feature's values never seen in the reference."), 12, 8)


def per_feature(lay: Layout) -> None:
    """One row per selected feature (repeated over the `feature` variable)."""
    lay.row("Feature $feature", repeat="feature")
    lay.add(timeseries("$feature: drift score vs threshold (dashed)", targets(
        (f"drift_feature_drift_score{{{MF}}}", "score"),
        (f"drift_feature_drift_threshold{{{MF}}}", "threshold")),
        log_scale=True, overrides=[dashed("B")],
        description="p-value statistics (ks, chi2) drift below the threshold, distances "
                    "(psi, jensen_shannon, wasserstein) above it."), 8, 7)
    lay.add(timeseries("$feature: mean and stddev vs reference (dashed)", targets(
        (f"drift_feature_mean{{{MF}}}", "mean"),
        (f"drift_reference_feature_mean{{{MF}}}", "reference mean"),
        (f"drift_feature_stddev{{{MF}}}", "stddev"),
        (f"drift_reference_feature_stddev{{{MF}}}", "reference stddev")),
        overrides=[dashed("B", "blue"), dashed("D", "orange")],
        no_value="categorical feature"), 8, 7)
    lay.add(timeseries("$feature: category shares vs reference (dashed)", targets(
        (f"drift_feature_category_ratio{{{MF}}}", "{{category}}"),
        (f"drift_reference_feature_category_ratio{{{MF}}}", "{{category}} ref")),
        unit="percentunit", overrides=[dashed("B", "gray")],
        no_value="numerical feature"), 8, 7)


def prediction(lay: Layout) -> None:
    """The model's output distribution against the reference."""
    lay.row("Prediction")
    lay.add(timeseries("Prediction quantiles vs reference mean (dashed)", targets(
        (f"drift_prediction_quantile{{{M}}}", "q{{q}}"),
        (f"drift_reference_prediction_mean{{{M}}}", "reference mean"),
        (f"drift_prediction_mean{{{M}}}", "mean")),
        overrides=[dashed("B", "blue")],
        description="Quantiles 0.05 ... 0.95 of the window's numerical predictions."), 8, 8)
    lay.add(timeseries("Prediction drift score vs threshold (dashed)", targets(
        (f"drift_prediction_drift_score{{{M}}}", "score"),
        (f"drift_prediction_drift_threshold{{{M}}}", "threshold")),
        log_scale=True, overrides=[dashed("B")]), 8, 8)
    lay.add(timeseries("Predicted classes: window vs reference (dashed)", targets(
        (f"drift_prediction_class_ratio{{{M}}}", "{{class}}"),
        (f"drift_reference_prediction_class_ratio{{{M}}}", "{{class}} ref")),
        unit="percentunit", overrides=[dashed("B", "gray")],
        no_value="numerical prediction"), 8, 8)


def quality(lay: Layout) -> None:
    """Model quality on labelled records (needs `label` in the exporter config)."""
    lay.row("Model quality (labelled records)")
    lay.add(timeseries("Regression error vs reference (dashed)", targets(
        (f"drift_model_rmse{{{M}}}", "rmse"),
        (f"drift_reference_model_rmse{{{M}}}", "reference rmse"),
        (f"drift_model_mae{{{M}}}", "mae"),
        (f"drift_reference_model_mae{{{M}}}", "reference mae")),
        overrides=[dashed("B", "blue"), dashed("D", "orange")],
        no_value="no regression labels"), 8, 8)
    lay.add(timeseries("Classification quality vs reference (dashed)", targets(
        (f"drift_model_accuracy{{{M}}}", "accuracy"),
        (f"drift_reference_model_accuracy{{{M}}}", "reference accuracy"),
        (f"drift_model_f1{{{M}}}", "f1 (macro)"),
        (f"drift_reference_model_f1{{{M}}}", "reference f1"),
        (f"drift_model_roc_auc{{{M}}}", "roc auc"),
        (f"drift_reference_model_roc_auc{{{M}}}", "reference roc auc")),
        unit="percentunit",
        overrides=[dashed("B", "blue"), dashed("D", "orange"), dashed("F", "purple")],
        no_value="no classification labels"), 8, 8)
    lay.add(timeseries("Error change and labelled share", targets(
        (f"drift_model_error_change_ratio{{{M}}}", "error change vs reference"),
        (f"drift_model_labeled_ratio{{{M}}}", "labelled share of window")),
        unit="percentunit", no_value="no labels"), 8, 8)
    estimated = "drift_model_estimated_accuracy"
    band = f"3 * {estimated}_sampling_error{{{M}}}"
    lay.add(timeseries("Estimated without labels (CBPE) vs realized, band +-3 errors (dashed)",
        targets(
        (f"{estimated}{{{M}}}", "estimated accuracy"),
        (f"{estimated}{{{M}}} - {band}", "estimated accuracy - 3 errors"),
        (f"{estimated}{{{M}}} + {band}", "estimated accuracy + 3 errors"),
        (f"drift_model_accuracy{{{M}}}", "realized accuracy"),
        (f"drift_reference_model_estimated_accuracy{{{M}}}", "reference estimate"),
        (f"drift_model_estimated_f1{{{M}}}", "estimated f1"),
        (f"drift_model_f1{{{M}}}", "realized f1"),
        (f"drift_model_estimated_roc_auc{{{M}}}", "estimated roc auc"),
        (f"drift_model_roc_auc{{{M}}}", "realized roc auc")),
        unit="percentunit",
        overrides=[dashed("B", "gray"), dashed("C", "gray"), dashed("E", "blue")],
        no_value="no estimate (SPEC 6.10: classifier score, labelled reference)",
        description="The estimate covers every window record, labelled or not, from the "
                    "scores and a calibration learnt on the reference (docs/cbpe.md); the "
                    "realized metrics only the labelled ones. EstimatedPerformanceDrop fires "
                    "when the estimate stays below the reference estimate by more than the "
                    "band."), 16, 8)
    lay.add(timeseries("Estimate's assumptions: scores outside the reference range", targets(
        (f"drift_model_estimated_outside_reference_ratio{{{M}}}", "outside the reference"),
        (f"drift_model_estimation_calibrated{{{M}}}", "calibrated (1) or raw score (0)")),
        unit="percentunit", no_value="no estimate",
        description="The estimate extrapolates for scores the reference never had; it cannot "
                    "see a change in the relation between score and label (concept drift)."),
        8, 8)


def ingestion(lay: Layout) -> None:
    """Is the exporter reading, and are the logs healthy?"""
    lay.row("Ingestion health")
    lay.add(timeseries("Records per second", targets(
        (f"rate(drift_rows_ingested_total{{{MODEL}}}[$__rate_interval])", "ingested"),
        (f"sum by (reason) (rate(drift_rows_rejected_total{{{MODEL}}}[$__rate_interval]))",
         "rejected {{reason}}"),
        (f"rate(drift_values_invalid_total{{{MODEL}}}[$__rate_interval])",
         "invalid {{feature}}")), unit="reqps"), 8, 7)
    lay.add(timeseries("Age of newest record and of the statistics", targets(
        (f"time() - drift_last_record_timestamp_seconds{{{MODEL}}}", "newest record"),
        (f"time() - drift_last_update_timestamp_seconds{{{M}}}", "last recomputation")),
        unit="s", description="PredictionLogsStale fires past 15 minutes."), 8, 7)
    lay.add(timeseries("Recomputation time", targets(
        (f"histogram_quantile(0.5, sum by (le) "
         f"(rate(drift_update_duration_seconds_bucket{{{MODEL}}}[$__rate_interval])))", "p50"),
        (f"histogram_quantile(0.95, sum by (le) "
         f"(rate(drift_update_duration_seconds_bucket{{{MODEL}}}[$__rate_interval])))", "p95")),
        unit="s"), 8, 7)
    lay.add(timeseries("Rejected files, truncations, unmatched feedback", targets(
        (f"increase(drift_files_rejected_total{{{MODEL}}}[$__rate_interval])",
         "files rejected {{reason}}"),
        (f"increase(drift_log_truncations_total{{{MODEL}}}[$__rate_interval])", "truncations"),
        (f"increase(drift_feedback_unmatched_total{{{MODEL}}}[$__rate_interval])",
         "unmatched feedback")), no_value="0"), 8, 7)
    lay.add(timeseries("Window rows and drift detections", targets(
        (f"drift_window_rows{{{M}}}", "window rows"),
        (f"sum(increase(drift_detections_total{{{M}}}[$__rate_interval]))",
         "new detections")), no_value="0"), 8, 7)
    lay.add(stat("Exporters up", f"sum(up{{{EXPORTER_JOB}}})",
                 description="Scrape targets of the drift-exporter job that answer."), 4, 7)
    lay.add(stat("Reading by polling only", "max(drift_exporter_polling_fallback)",
                 mappings=yes_no("inotify", "polling"), red_from=1,
                 description="1 when filesystem events are unavailable and rescans alone "
                             "find changes."), 4, 7)


def fleet(lay: Layout) -> None:
    """Every replica's records pooled (deploy/prometheus/drift-fleet-rules.yml, SPEC 6.8)."""
    lay.row("Fleet (all replicas)")
    over = ("Over the fleet rules' range (the last hour as shipped), from every replica's "
            "counts summed in Prometheus: ")
    lay.add(timeseries("Fleet KS per feature vs critical value at alpha = 0.001 (dashed)",
                       targets(
        (f"drift:feature_ks_statistic:sum{{{MODEL}}}", "{{feature}}"),
        (f"drift:feature_ks_threshold:sum{{{MODEL}}}", "{{feature}} critical")),
        overrides=[dashed("B")],
        description=over + "the KS statistic at the reference's quantiles (a lower bound of "
                           "the exact one) and its critical value for these counts. "
                           "FleetFeatureDistributionShift fires above it."), 8, 8)
    lay.add(timeseries("Fleet PSI per feature (red line: 0.2)", targets(
        (f"drift:feature_psi:sum{{{MODEL}}}", "{{feature}}"),
        (f"drift:feature_category_psi:sum{{{MODEL}}}", "{{feature}}")),
        threshold_line=0.2,
        description=over + "PSI over the reference-quantile buckets (numerical features) or "
                           "the categories. FleetFeatureDrift fires above 0.2."), 8, 8)
    lay.add(timeseries("Fleet Jensen-Shannon distance per feature", targets(
        (f"drift:feature_jensen_shannon_distance:sum{{{MODEL}}}", "{{feature}}"),
        (f"drift:feature_category_jensen_shannon_distance:sum{{{MODEL}}}", "{{feature}}")),
        description=over + "base 2, between 0 and 1."), 8, 8)
    lay.add(timeseries("Fleet category shares vs reference (dashed)", targets(
        (f"drift:feature_category_ratio:sum{{{MODEL}}}", "{{feature}}={{category}}"),
        (f"drift:reference_feature_category_ratio:max{{{MODEL}}}", "{{feature}}={{category}} ref")),
        unit="percentunit", overrides=[dashed("B", "gray")], no_value="no categorical feature",
        description=over + "each category's share (the top max_categories reference "
                           "categories, the rest as __other__)."), 8, 8)
    lay.add(timeseries("Fleet prediction PSI (red line: 0.2) and KS vs critical value (dashed)",
                       targets(
        (f"drift:prediction_psi:sum{{{MODEL}}}", "psi"),
        (f"drift:prediction_ks_statistic:sum{{{MODEL}}}", "ks"),
        (f"drift:prediction_ks_threshold:sum{{{MODEL}}}", "ks critical")),
        threshold_line=0.2, overrides=[dashed("C")], no_value="no numerical prediction",
        description=over + "FleetPredictionDrift fires when the PSI passes 0.2."), 8, 8)
    lay.add(timeseries("Fleet records per range", targets(
        (f"drift:feature_values_count_increase:sum{{{MODEL}}}", "{{feature}}"),
        (f"drift:feature_category_count_increase:sum{{{MODEL}}}", "{{feature}}"),
        (f"drift:prediction_values_count_increase:sum{{{MODEL}}}", "prediction")),
        description=over + "usable values per column. The fleet alerts wait for 1000."),
        8, 8)


def templating() -> Panel:
    """Variables: the data source, the model, its segment (All: the whole model) and the
    features (for the repeated rows)."""
    def query(name: str, expr: str, label: str, **extra: Any) -> Panel:
        return {"type": "query", "name": name, "label": label, "datasource": DATASOURCE,
                "query": {"query": expr, "refId": f"{name}-variable"},
                "definition": expr, "refresh": 2, "sort": 1, "hide": 0,
                "current": {}, "options": [], **extra}
    return {"list": [
        {"type": "datasource", "name": "datasource", "label": "Data source",
         "query": "prometheus", "current": {}, "hide": 0, "options": [], "refresh": 1},
        query("model", "label_values(drift_window_rows, model)", "Model",
              multi=False, includeAll=False),
        query("segment", 'label_values(drift_window_rows{model="$model"}, segment)',
              "Segment (All: the whole model)", multi=False, includeAll=True,
              allValue=WHOLE_MODEL,
              description="SPEC 6.11: a segment's windows are compared with its slice of the "
                          "reference; All shows the whole model's series (docs/segments.md)."),
        query("feature", 'label_values(drift_reference_feature_missing_ratio{model="$model"}, '
                         "feature)", "Features", multi=True, includeAll=True),
    ]}


def build() -> Panel:
    """The whole dashboard."""
    lay = Layout()
    alarm(lay)
    overview(lay)
    features(lay)
    per_feature(lay)
    prediction(lay)
    quality(lay)
    ingestion(lay)
    fleet(lay)
    return {
        "uid": UID, "title": "drift-exporter: model drift",
        "description": "Data and prediction drift of one model, from drift-exporter "
                       "(docs/deploy.md).",
        "tags": ["drift-exporter", "ml", "drift"], "editable": True, "graphTooltip": 1,
        "schemaVersion": 39, "version": 1, "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"}, "timezone": "browser",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": templating(), "panels": lay.panels, "links": [],
    }


def layout_text(dashboard: Panel | None = None) -> str:
    """The panels' layout as a text picture (for docs/deploy.md): 4 characters per grid
    column, a few lines per panel; rows are ``=== title ===`` lines."""
    import math
    import textwrap

    panels = (dashboard or build())["panels"]
    edges = sorted({e for p in panels for e in (p["gridPos"]["y"],
                                                 p["gridPos"]["y"] + p["gridPos"]["h"])})
    line = {edges[0]: 0}
    for low, high in itertools.pairwise(edges):
        line[high] = line[low] + (1 if high - low == 1 else max(4, math.ceil(0.6 * (high - low))))
    canvas = [[" "] * 96 for _ in range(line[edges[-1]])]
    for panel in panels:
        pos = panel["gridPos"]
        x0, x1 = pos["x"] * 4, (pos["x"] + pos["w"]) * 4 - 1
        y0, y1 = line[pos["y"]], line[pos["y"] + pos["h"]] - 1
        if panel["type"] == "row":
            title = panel["title"] + (" (repeated for each selected feature)"
                                      if panel.get("repeat") else "")
            canvas[y0] = list(f"=== {title} ".ljust(96, "="))
            continue
        for x in range(x0, x1 + 1):
            canvas[y0][x] = canvas[y1][x] = "-"
        for y in range(y0, y1 + 1):
            canvas[y][x0] = canvas[y][x1] = "|" if y0 < y < y1 else "+"
        wrapped = textwrap.wrap(panel["title"], x1 - x0 - 3)[: max(0, y1 - y0 - 1)]
        for offset, text in enumerate(wrapped):
            canvas[y0 + 1 + offset][x0 + 2: x0 + 2 + len(text)] = list(text)
    return "\n".join("".join(row).rstrip() for row in canvas) + "\n"


def render() -> str:
    """The dashboard as the JSON text written to OUTPUT."""
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the JSON, or with --check report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 if stale")
    parser.add_argument("--layout", action="store_true",
                        help="print the panel layout as text (the picture in docs/deploy.md)")
    args = parser.parse_args(argv)
    if args.layout:
        print(layout_text(), end="")
        return 0
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
