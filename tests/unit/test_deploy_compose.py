"""deploy/compose: the stack is wired consistently (no Docker engine needed to check that), and
its exporter config is valid for what the example app writes."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
EXPORTER_CONFIG = COMPOSE_DIR / "exporter.yaml"
SERVICES = {"app", "loadgen", "exporter", "prometheus", "alertmanager", "alert-log", "grafana"}


def compose() -> dict[str, Any]:
    """The compose file."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def service(name: str) -> dict[str, Any]:
    """One service."""
    found: dict[str, Any] = compose()["services"][name]
    return found


def mounts(name: str) -> dict[str, tuple[str, str]]:
    """A service's volumes: target -> (source, mode)."""
    result = {}
    for spec in service(name).get("volumes", []):
        source, target, *mode = spec.split(":")
        result[target] = (source, mode[0] if mode else "rw")
    return result


def flag(command: list[str], name: str) -> str:
    """The value of ``--name=value`` or ``--name value`` in a command."""
    for index, item in enumerate(command):
        if item.startswith(f"{name}="):
            return item.split("=", 1)[1]
        if item == name:
            return command[index + 1]
    msg = f"{name} not in {command}"
    raise AssertionError(msg)


def published(name: str) -> set[str]:
    """The container ports a service publishes."""
    return {p.rsplit(":", 1)[1] for p in service(name).get("ports", [])}


class TestServices:
    """One command brings up every part, in a workable order."""

    def test_the_stack_has_every_service(self) -> None:
        assert set(compose()["services"]) == SERVICES

    def test_the_exporter_shares_the_app_volume_read_only(self) -> None:
        app_source, app_mode = mounts("app")["/data"]
        exporter_source, exporter_mode = mounts("exporter")["/data"]
        assert app_source == exporter_source
        assert app_source in compose()["volumes"]
        assert (app_mode, exporter_mode) == ("rw", "ro")

    def test_the_exporter_starts_once_the_app_wrote_the_reference(self) -> None:
        assert service("exporter")["depends_on"]["app"]["condition"] == "service_healthy"
        assert "/healthz" in " ".join(service("app")["healthcheck"]["test"])

    def test_the_exporter_reads_the_mounted_config_file(self) -> None:
        config_file = flag(service("exporter")["command"], "--config.file")
        source, mode = mounts("exporter")[config_file]
        assert (COMPOSE_DIR / source).resolve() == EXPORTER_CONFIG
        assert mode == "ro"

    def test_every_bind_mount_source_exists(self) -> None:
        for name in SERVICES:
            for source, _ in mounts(name).values():
                if source.startswith("."):
                    assert (COMPOSE_DIR / source).exists(), f"{name}: {source}"

    def test_every_build_context_has_its_dockerfile_and_copy_sources(self) -> None:
        for name in SERVICES:
            build = service(name).get("build")
            if build is None:
                continue
            context = (COMPOSE_DIR / build["context"]).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.exists(), name
            for line in dockerfile.read_text().splitlines():
                if line.startswith("COPY") and "--from" not in line:
                    for source in line.split()[1:-1]:
                        assert list(context.glob(source)), f"{dockerfile}: {source}"

    def test_the_app_image_runs_the_app_loadgen_and_alert_log_scripts(self) -> None:
        for name in ("app", "loadgen", "alert-log"):
            script = service(name)["command"][1]
            assert (ROOT / "deploy" / "example-app" / script).exists(), name


class TestAddresses:
    """The addresses in the Prometheus, Alertmanager and Grafana files are compose services."""

    def test_prometheus_scrapes_and_alerts_services_of_this_stack(self) -> None:
        config_dir = mounts("prometheus")["/etc/prometheus"][0]
        config_file = flag(service("prometheus")["command"], "--config.file")
        assert Path(config_file).parent == Path("/etc/prometheus")
        config = yaml.safe_load((COMPOSE_DIR / config_dir / Path(config_file).name).read_text())
        targets = [t for job in config["scrape_configs"] for s in job["static_configs"]
                   for t in s["targets"]]
        targets += [t for am in config["alerting"]["alertmanagers"]
                    for s in am["static_configs"] for t in s["targets"]]
        for target in targets:
            host, port = target.split(":")
            if host == "localhost":
                assert port in published("prometheus")
                continue
            assert host in SERVICES, target
            assert port in published(host), target

    def test_prometheus_finds_every_rule_file_it_loads_in_its_mounted_directory(self) -> None:
        config_file = Path(flag(service("prometheus")["command"], "--config.file"))
        mounted = {Path(target): COMPOSE_DIR / source
                   for target, (source, _) in mounts("prometheus").items()}
        config = yaml.safe_load((mounted[config_file.parent] / config_file.name).read_text())
        assert {"drift-rules.yml", "drift-fleet-rules.yml"} <= set(config["rule_files"])
        for rule_file in config["rule_files"]:
            path = config_file.parent / rule_file  # relative to the config file
            assert path.parent in mounted, f"{rule_file}: {path.parent} is not mounted"
            assert (mounted[path.parent] / path.name).exists(), rule_file

    def test_the_load_generator_targets_the_app(self) -> None:
        url = flag(service("loadgen")["command"], "--url")
        match = re.fullmatch(r"http://([a-z-]+):(\d+)", url)
        assert match is not None
        assert match[1] == "app"
        assert match[2] in published("app")


@pytest.fixture(scope="module")
def written_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory in which the example app wrote its reference."""
    sys.path.insert(0, str(ROOT / "deploy" / "example-app"))
    import app as example_app

    data = tmp_path_factory.mktemp("data")
    example_app.write_reference(data)
    return data


class TestExporterConfig:
    """deploy/compose/exporter.yaml fits the example app's files."""

    def test_the_config_is_valid_for_the_reference_the_app_writes(
            self, written_reference: Path) -> None:
        text = EXPORTER_CONFIG.read_text().replace("/data/", f"{written_reference}/")
        config = parse_config(yaml.safe_load(text), check_reference=True)
        (model,) = config.models
        assert model.name == "diabetes-progression"
        assert model.label is not None
        assert model.label.feedback is not None

    def test_the_config_names_the_columns_the_app_logs(self) -> None:
        sys.path.insert(0, str(ROOT / "deploy" / "example-app"))
        import diabetes_model as diabetes

        (model,) = yaml.safe_load(EXPORTER_CONFIG.read_text())["models"]
        assert [f["name"] for f in model["features"]] == list(diabetes.FEATURES)
        kinds = {f["name"]: f["type"] for f in model["features"]}
        assert {n for n, k in kinds.items() if k == "categorical"} == set(diabetes.CATEGORICAL)
        assert model["prediction"]["column"] == diabetes.PREDICTION
        assert model["label"]["column"] == diabetes.TARGET
        assert model["id_column"] == diabetes.ID
        assert model["timestamp_column"] == diabetes.TIMESTAMP
