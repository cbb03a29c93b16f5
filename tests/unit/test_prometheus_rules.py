"""The shipped Prometheus configuration and rules pass promtool and behave as documented."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
promtool = shutil.which("promtool")
pytestmark = pytest.mark.skipif(promtool is None, reason="promtool not installed (bash .ci/run)")

RULE_TESTS = """
rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'drift_feature_drift_detected{{model="m", feature="income"}}'
        values: '0 0 1x20 0x20'
      - series: 'drift_feature_drift_detected{{model="m", feature="age"}}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 10m
        alertname: FeatureDrift
        exp_alerts: []
      - eval_time: 20m
        alertname: FeatureDrift
        exp_alerts:
          - exp_labels: {{severity: warning, model: m, feature: income}}
            exp_annotations:
              summary: "m: feature income drifted"
              description: "The income drift score crossed its threshold for 15 minutes."
      - eval_time: 35m
        alertname: FeatureDrift
        exp_alerts: []
  - interval: 1m
    input_series:
      - series: 'drift_last_record_timestamp_seconds{{model="m"}}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 10m
        alertname: PredictionLogsStale
        exp_alerts: []
      - eval_time: 25m
        alertname: PredictionLogsStale
        exp_alerts:
          - exp_labels: {{severity: warning, model: m}}
            exp_annotations:
              summary: "m: no new prediction records for 15 minutes"
"""


class TestShippedPrometheusFiles:
    """deploy/prometheus is valid and its alerts fire and resolve as intended."""

    def test_the_rules_file_passes_promtool_check_rules(self) -> None:
        result = subprocess.run([str(promtool), "check", "rules",
                                 str(PROMETHEUS / "drift-rules.yml")],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_the_prometheus_config_passes_promtool_check_config(self) -> None:
        result = subprocess.run([str(promtool), "check", "config", "--syntax-only",
                                 str(PROMETHEUS / "prometheus.yml")],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_feature_drift_and_stale_logs_alerts_fire_and_resolve(self, tmp_path: Path) -> None:
        tests = tmp_path / "rules_test.yml"
        tests.write_text(RULE_TESTS.format(rules=PROMETHEUS / "drift-rules.yml"))
        result = subprocess.run([str(promtool), "test", "rules", str(tests)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
