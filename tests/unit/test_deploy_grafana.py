"""deploy/grafana: the dashboard is generated, well formed, filtered by model, covers what a
user needs to see, and its provisioning matches the compose stack."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "drift-exporter.json"
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
# Queries about the exporter process rather than one model need no model filter.
UNFILTERED = ('sum(up{job=~"(.*/)?drift-exporter"})', "max(drift_exporter_polling_fallback)")
SELECTOR = r"\b(drift_[a-z0-9_]+|drift:[a-z0-9_:]+|ALERTS)(\{[^}]*\})?"
# What the deploy issue asks the dashboard to show, as the metrics that show it.
REQUIRED_METRICS = {
    "dataset drift share": {"drift_dataset_drift_share"},
    "drifted-features table": {"drift_feature_drift_detected", "drift_feature_drift_score",
                               "drift_feature_drift_threshold"},
    "score vs threshold": {"drift_feature_drift_score", "drift_feature_drift_threshold"},
    "mean/stddev vs reference": {"drift_feature_mean", "drift_reference_feature_mean",
                                 "drift_feature_stddev", "drift_reference_feature_stddev"},
    "category shares": {"drift_feature_category_ratio",
                        "drift_reference_feature_category_ratio"},
    "prediction distribution": {"drift_prediction_quantile", "drift_prediction_drift_score"},
    "model quality": {"drift_model_rmse", "drift_model_accuracy",
                      "drift_model_error_change_ratio"},
    "ingestion health": {"drift_rows_ingested_total", "drift_rows_rejected_total",
                         "drift_last_record_timestamp_seconds"},
}

# What the fleet row shows (SPEC 6.8), as the fleet recording rules that show it.
FLEET_ROW = "Fleet (all replicas)"
REQUIRED_FLEET_RECORDS = {
    "KS vs its critical value": {"drift:feature_ks_statistic:sum",
                                 "drift:feature_ks_threshold:sum"},
    "PSI, numerical and categorical": {"drift:feature_psi:sum", "drift:feature_category_psi:sum"},
    "Jensen-Shannon distance": {"drift:feature_jensen_shannon_distance:sum",
                                "drift:feature_category_jensen_shannon_distance:sum"},
    "category shares vs reference": {"drift:feature_category_ratio:sum",
                                     "drift:reference_feature_category_ratio:max"},
    "prediction PSI and KS": {"drift:prediction_psi:sum", "drift:prediction_ks_statistic:sum"},
    "records per range": {"drift:feature_values_count_increase:sum"},
}
RULE_FILES = (ROOT / "deploy/prometheus/drift-rules.yml",
              ROOT / "deploy/prometheus/drift-fleet-rules.yml")
RECORD = r"\bdrift:[a-z_]+:[a-z0-9_]+"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("grafana_dashboard", GRAFANA / "dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


dashboard_py = _load_generator()


def dashboard() -> dict[str, Any]:
    """The committed dashboard JSON."""
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    """Every panel but the rows."""
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    """Every PromQL expression of every panel."""
    return [t["expr"] for p in panels() for t in p["targets"]]


def row_panels(title: str) -> list[dict[str, Any]]:
    """The panels below a row's header, up to the next row."""
    every = dashboard()["panels"]
    (start,) = [i for i, p in enumerate(every) if p["type"] == "row" and p["title"] == title]
    found = []
    for panel in every[start + 1:]:
        if panel["type"] == "row":
            break
        found.append(panel)
    return found


class TestDashboardFile:
    """The JSON is the generator's output and well formed."""

    def test_the_json_is_what_the_generator_writes(self) -> None:
        assert DASHBOARD.read_text() == dashboard_py.render(), (
            "stale: run python deploy/grafana/dashboard.py")

    def test_panel_ids_are_unique_and_panels_fit_the_grid_without_overlap(self) -> None:
        every = dashboard()["panels"]
        assert len({p["id"] for p in every}) == len(every)
        cells: dict[tuple[int, int], str] = {}
        for panel in every:
            pos = panel["gridPos"]
            assert pos["x"] >= 0
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            for cell in itertools.product(range(pos["x"], pos["x"] + pos["w"]),
                                          range(pos["y"], pos["y"] + pos["h"])):
                assert cell not in cells, f"{panel['title']} overlaps {cells[cell]}"
                cells[cell] = panel["title"]

    def test_every_panel_queries_the_data_source_variable_with_unique_ref_ids(self) -> None:
        for panel in panels():
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            refs = [t["refId"] for t in panel["targets"]]
            assert refs
            assert len(set(refs)) == len(refs), panel["title"]
            assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])

    def test_every_drift_query_is_filtered_by_the_model_variable(self) -> None:
        unfiltered = [e for e in expressions() if e not in UNFILTERED]
        for expr in unfiltered:
            selectors = re.findall(SELECTOR, expr)
            assert selectors, expr
            for name, labels in selectors:
                assert 'model="$model"' in labels, f"{name} in {expr!r} ignores $model"

    def test_the_model_and_feature_variables_exist_and_feature_repeats_a_row(self) -> None:
        variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert "label_values(drift_window_rows, model)" in variables["model"]["definition"]
        assert variables["feature"]["includeAll"] is True
        repeated = [p for p in dashboard()["panels"] if p.get("repeat")]
        assert [p["repeat"] for p in repeated] == ["feature"]
        assert all('feature="$feature"' in t["expr"] for p in panels()
                   if p["title"].startswith("$feature") for t in p["targets"])

    def test_a_segment_variable_selects_one_segment_or_all_for_the_whole_model(self) -> None:
        variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
        segment = variables["segment"]
        assert 'label_values(drift_window_rows{model="$model"}, segment)' in (
            segment["definition"])
        assert segment["includeAll"] is True
        assert segment["allValue"] == "^$"  # segment=~"^$": the series without a segment
        per_model = ("drift_rows_", "drift_values_invalid", "drift_files_rejected",
                     "drift_log_truncations", "drift_feedback_", "drift_last_record",
                     "drift_update_duration", "drift_alarm_false_alarm_every", "drift:feature_",
                     "drift:prediction_", "drift:reference_")
        window = {"drift_window_rows", "drift_feature_drift_score", "drift_alarm",
                  "drift_feature_alarm", "drift_dataset_drift_share", "drift_prediction_quantile"}
        seen = set()
        for expr in expressions():
            for name, labels in re.findall(SELECTOR, expr):
                if name.startswith(per_model) and name != "drift:feature_mean_shift:stddevs":
                    assert "segment" not in labels, f"{name} has no segment label: {expr}"
                elif name.startswith("drift_") and name != "drift_exporter_polling_fallback":
                    assert 'segment=~"$segment"' in labels, f"{name} ignores $segment: {expr}"
                    seen.add(name)
        assert window <= seen

    def test_the_dashboard_shows_what_the_issue_asks_for(self) -> None:
        used = {m for e in expressions() for m in re.findall(r"\bdrift_[a-z0-9_]+", e)}
        missing = {what: names - used for what, names in REQUIRED_METRICS.items()
                   if names - used}
        assert not missing

    def test_one_panel_shows_the_estimate_with_its_band_beside_the_realized_metrics(
            self) -> None:
        wanted = {"drift_model_estimated_accuracy", "drift_model_estimated_accuracy_sampling_error",
                  "drift_model_accuracy", "drift_model_estimated_f1", "drift_model_f1",
                  "drift_model_estimated_roc_auc", "drift_model_roc_auc",
                  "drift_reference_model_estimated_accuracy"}
        together = [p["title"] for p in panels()
                    if wanted <= {m for t in p["targets"]
                                  for m in re.findall(r"\bdrift_[a-z0-9_]+", t["expr"])}]
        assert together

    def test_recording_rules_the_dashboard_uses_exist(self) -> None:
        records = {r["record"] for path in RULE_FILES
                   for g in yaml.safe_load(path.read_text())["groups"]
                   for r in g["rules"] if "record" in r}
        used = {m for e in expressions() for m in re.findall(RECORD, e)}
        assert used
        assert used <= records

    def test_the_fleet_row_shows_the_pooled_statistics_of_every_replica(self) -> None:
        fleet = row_panels(FLEET_ROW)
        used = {m for p in fleet for t in p["targets"] for m in re.findall(RECORD, t["expr"])}
        missing = {what: names - used for what, names in REQUIRED_FLEET_RECORDS.items()
                   if names - used}
        assert not missing
        fleet_records = {r["record"] for g in yaml.safe_load(RULE_FILES[1].read_text())["groups"]
                         for r in g["rules"] if "record" in r}
        assert used <= fleet_records, "the fleet row shows only fleet records"

    def test_fleet_psi_panels_draw_the_alerts_0_2_threshold(self) -> None:
        psi_panels = [p for p in row_panels(FLEET_ROW)
                      if any("_psi:sum" in t["expr"] for t in p["targets"])]
        assert len(psi_panels) == 2  # features (numerical and categorical), the prediction
        for panel in psi_panels:
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert steps[-1] == {"color": "red", "value": 0.2}, panel["title"]
            assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {
                "mode": "line"}, panel["title"]


class TestProvisioning:
    """Grafana finds the data source and the dashboard where compose mounts them."""

    def test_the_data_source_points_at_the_compose_prometheus(self) -> None:
        config = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
        (source,) = config["datasources"]
        assert source["type"] == "prometheus"
        assert source["url"] == "http://prometheus:9090"
        compose = yaml.safe_load(COMPOSE.read_text())
        assert "9090:9090" in compose["services"]["prometheus"]["ports"]

    def test_the_dashboard_provider_reads_the_directory_compose_mounts(self) -> None:
        provider = yaml.safe_load(
            (GRAFANA / "provisioning/dashboards/drift-exporter.yml").read_text())["providers"][0]
        grafana = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]
        mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
        assert mounts["../grafana/dashboards"] == provider["options"]["path"]
        assert mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"
        home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        assert home == f"{provider['options']['path']}/{DASHBOARD.name}"


class TestLayoutPicture:
    """docs/deploy.md and the README show the dashboard's current layout."""

    def test_the_docs_and_the_readme_show_the_current_layout(self) -> None:
        layout = dashboard_py.layout_text(dashboard())
        for doc in (ROOT / "docs" / "deploy.md", ROOT / "README.md"):
            assert layout in doc.read_text(), (
                f"{doc.name}: paste the output of python deploy/grafana/dashboard.py --layout")

    def test_every_panel_title_appears_in_the_picture(self) -> None:
        layout = " ".join(dashboard_py.layout_text(dashboard()).split())
        for panel in panels():
            words = panel["title"].split()
            assert all(w in layout for w in words), panel["title"]
