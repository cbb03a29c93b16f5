"""deploy/alertmanager: amtool accepts it (and its commented examples), alerts route by
severity and are grouped by model."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULES = ROOT / "deploy" / "prometheus" / "drift-rules.yml"
amtool = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(amtool is None,
                                  reason="amtool not installed (prometheus-alertmanager)")
# A commented line that is configuration rather than prose: a list item, a snake_case key,
# or a deeper-indented continuation of one.
CONFIG_LINE = re.compile(r"^(?P<indent>\s*)# (?P<body>- .*|[a-z_]+:(?: .*)?$|\s{2,}\S.*)$")


def config() -> dict[str, Any]:
    """The shipped Alertmanager configuration."""
    loaded: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return loaded


def run_amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """amtool ARGS, output captured."""
    return subprocess.run([str(amtool), *args], capture_output=True, text=True, check=False)


def uncommented(text: str) -> str:
    """The configuration with its commented examples (Slack, Discord, email...) enabled."""
    lines = []
    for line in text.splitlines():
        match = CONFIG_LINE.match(line)
        lines.append(match["indent"] + match["body"] if match else line)
    return "\n".join(lines) + "\n"


class TestAmtool:
    """amtool check-config and route tests."""

    @needs_amtool
    def test_the_config_passes_amtool_check_config(self) -> None:
        result = run_amtool("check-config", str(CONFIG))
        assert result.returncode == 0, result.stdout + result.stderr

    @needs_amtool
    def test_the_commented_examples_are_valid_once_uncommented(self, tmp_path: Path) -> None:
        enabled = uncommented(CONFIG.read_text())
        receivers = {r["name"]: r for r in yaml.safe_load(enabled)["receivers"]}
        assert "slack_configs" in receivers["drift-warning"]
        assert "discord_configs" in receivers["drift-warning"]
        assert "email_configs" in receivers["drift-critical"]
        assert yaml.safe_load(enabled)["inhibit_rules"]
        path = tmp_path / "alertmanager.yml"
        path.write_text(enabled)
        result = run_amtool("check-config", str(path))
        assert result.returncode == 0, result.stdout + result.stderr

    @needs_amtool
    @pytest.mark.parametrize(("labels", "receiver"), [
        (("severity=critical", "alertname=DriftAlarm", "model=m"), "drift-critical"),
        (("severity=warning", "alertname=DatasetDrift", "model=m"), "drift-warning"),
        (("severity=warning", "alertname=FeatureDrift", "model=m"), "drift-warning"),
        (("alertname=Unlabelled",), "drift-warning"),
    ])
    def test_alerts_route_by_severity(self, labels: tuple[str, ...], receiver: str) -> None:
        result = run_amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == receiver


class TestRouting:
    """Every severity the rules use has a receiver; notifications group by model."""

    def test_every_severity_the_rules_set_has_its_own_route(self) -> None:
        groups = yaml.safe_load(RULES.read_text())["groups"]
        severities = {r["labels"]["severity"] for g in groups for r in g["rules"]
                      if "alert" in r}
        routed = {m.split("=")[1].strip('"') for route in config()["route"]["routes"]
                  for m in route["matchers"] if m.startswith("severity=")}
        assert severities <= routed

    def test_notifications_are_grouped_by_model(self) -> None:
        assert "model" in config()["route"]["group_by"]

    def test_every_receiver_has_a_webhook_that_also_reports_resolution(self) -> None:
        for receiver in config()["receivers"]:
            hooks = receiver["webhook_configs"]
            assert hooks, receiver["name"]
            assert all(h["send_resolved"] for h in hooks), receiver["name"]

    def test_the_webhooks_reach_the_compose_alert_log_service(self) -> None:
        compose = yaml.safe_load((ROOT / "deploy/compose/docker-compose.yml").read_text())
        command = compose["services"]["alert-log"]["command"]
        port = command[command.index("--listen") + 1].rsplit(":", 1)[1]
        for receiver in config()["receivers"]:
            for hook in receiver["webhook_configs"]:
                assert hook["url"].startswith(f"http://alert-log:{port}/"), hook["url"]
