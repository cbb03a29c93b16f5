"""deploy/kubernetes: valid against the Kubernetes schemas, consistent with itself, and its
generated PrometheusRule and ConfigMap in sync with the files they come from."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30"
CORE_KINDS = {"Namespace", "Deployment", "Service", "ConfigMap"}
promtool = shutil.which("promtool")


def _load_generate() -> Any:
    spec = importlib.util.spec_from_file_location("kube_generate", KUBE / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load_generate()


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file, object) for every object of every manifest under deploy/kubernetes."""
    found = []
    for path in sorted(KUBE.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((str(path.relative_to(KUBE)), doc))
    return found


def objects(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The objects of one kind (and name)."""
    return [doc for _, doc in manifests()
            if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)]


def one(kind: str, name: str) -> dict[str, Any]:
    """The single object of a kind and name."""
    (found,) = objects(kind, name)
    return found


def pod_spec(deployment: str) -> dict[str, Any]:
    """The pod template spec of a Deployment."""
    spec: dict[str, Any] = one("Deployment", deployment)["spec"]["template"]["spec"]
    return spec


def container(deployment: str, name: str) -> dict[str, Any]:
    """One container of a Deployment."""
    (found,) = [c for c in pod_spec(deployment)["containers"] if c["name"] == name]
    return found


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# Prometheus Operator CRDs: no schema ships offline, so the fields we use are checked
# structurally (unknown keys are errors, so a typo such as `podMetricEndpoints` fails).
_ENDPOINT = {"type": "object", "additionalProperties": False, "required": ["port"],
             "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": r"^\d+[smh]$"},
                            "scrapeTimeout": {"type": "string", "pattern": r"^\d+[smh]$"}}}
_METADATA = {"type": "object", "required": ["name", "namespace"],
             "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                            "labels": {"type": "object",
                                       "additionalProperties": {"type": "string"}}}}
_SELECTOR = {"type": "object", "additionalProperties": False, "required": ["matchLabels"],
             "properties": {"matchLabels": {"type": "object",
                                            "additionalProperties": {"type": "string"}}}}


def _crd(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {"apiVersion": {"const": "monitoring.coreos.com/v1"},
                           "kind": {"const": kind}, "metadata": _METADATA, "spec": spec}}


_RULE = {"type": "object", "additionalProperties": False, "required": ["expr"],
         "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
         "properties": {"record": {"type": "string"}, "alert": {"type": "string"},
                        "expr": {"type": "string"}, "for": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "annotations": {"type": "object",
                                        "additionalProperties": {"type": "string"}}}}
CRD_SCHEMAS = {
    "ServiceMonitor": _crd("ServiceMonitor", {
        "type": "object", "additionalProperties": False, "required": ["selector", "endpoints"],
        "properties": {"selector": _SELECTOR,
                       "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT}}}),
    "PodMonitor": _crd("PodMonitor", {
        "type": "object", "additionalProperties": False,
        "required": ["selector", "podMetricsEndpoints"],
        "properties": {"selector": _SELECTOR,
                       "podMetricsEndpoints": {"type": "array", "minItems": 1,
                                               "items": _ENDPOINT}}}),
    "PrometheusRule": _crd("PrometheusRule", {
        "type": "object", "additionalProperties": False, "required": ["groups"],
        "properties": {"groups": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "rules"],
            "properties": {"name": {"type": "string"}, "interval": {"type": "string"},
                           "rules": {"type": "array", "minItems": 1, "items": _RULE}}}}}}),
}


class TestSchemas:
    """Every object is valid for its kind."""

    def test_every_manifest_is_a_known_kind(self) -> None:
        kinds = {doc["kind"] for _, doc in manifests()}
        assert kinds == CORE_KINDS | set(CRD_SCHEMAS)

    @pytest.mark.parametrize(("where", "doc"), [m for m in manifests()
                                                if m[1]["kind"] in CORE_KINDS],
                             ids=lambda v: v if isinstance(v, str) else v["metadata"]["name"])
    def test_core_objects_pass_the_kubernetes_schema_strictly(self, where: str,
                                                             doc: dict[str, Any]) -> None:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} {doc['kind']}/{doc['metadata']['name']}: "
                        f"{'.'.join(map(str, exc.path))}: {exc.message}")

    @pytest.mark.parametrize(("where", "doc"), [m for m in manifests()
                                                if m[1]["kind"] in CRD_SCHEMAS],
                             ids=lambda v: v if isinstance(v, str) else v["metadata"]["name"])
    def test_operator_objects_have_the_structure_of_their_crd(self, where: str,
                                                              doc: dict[str, Any]) -> None:
        errors = sorted(jsonschema.Draft202012Validator(CRD_SCHEMAS[doc["kind"]])
                        .iter_errors(doc), key=str)
        assert not errors, f"{where}: " + "; ".join(
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)

    def test_the_strict_schema_check_would_catch_a_misspelled_field(self) -> None:
        broken = one("Service", "drift-exporter")
        broken = {**broken, "spec": {**broken["spec"], "selectr": {}}}
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSION, strict=True)

    def test_every_object_lives_in_the_example_namespace(self) -> None:
        namespaces = {doc["metadata"].get("namespace") for _, doc in manifests()
                      if doc["kind"] != "Namespace"}
        assert namespaces == {one("Namespace", "drift-example")["metadata"]["name"]}


class TestGenerated:
    """The PrometheusRule and ConfigMap are generated from deploy/, never copied by hand."""

    def test_the_generated_files_are_up_to_date(self) -> None:
        for path, text in generate.render().items():
            assert path.read_text() == text, (
                f"{path.relative_to(ROOT)} is stale: run python deploy/kubernetes/generate.py")

    def test_the_prometheus_rule_holds_exactly_both_rules_files(self) -> None:
        groups = []
        for name in ("drift-rules.yml", "drift-fleet-rules.yml"):
            groups += yaml.safe_load((ROOT / "deploy" / "prometheus" / name).read_text())["groups"]
        rule = one("PrometheusRule", "drift-exporter-rules")
        assert rule["spec"]["groups"] == groups

    def test_the_prometheus_rule_carries_the_fleet_recording_rules_and_alerts(self) -> None:
        rules = [r for g in one("PrometheusRule", "drift-exporter-rules")["spec"]["groups"]
                 for r in g["rules"]]
        alerts = {r["alert"] for r in rules if "alert" in r}
        records = {r["record"] for r in rules if "record" in r}
        assert {"FeatureDrift", "FleetFeatureDrift", "FleetFeatureDistributionShift",
                "FleetPredictionDrift"} <= alerts
        assert {"drift:features_drifted:sum", "drift:feature_ks_statistic:sum",
                "drift:feature_psi:sum", "drift:feature_category_psi:sum"} <= records
        assert [r for r in rules if "[1h:1m]" in r["expr"]], "not the shipped fleet range"

    @pytest.mark.skipif(promtool is None, reason="promtool not installed (bash .ci/run)")
    def test_the_prometheus_rule_passes_promtool(self, tmp_path: Path) -> None:
        path = tmp_path / "rules.yml"
        path.write_text(yaml.safe_dump(one("PrometheusRule", "drift-exporter-rules")["spec"]))
        result = subprocess.run([str(promtool), "check", "rules", str(path)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_the_config_map_holds_the_compose_exporter_config_byte_for_byte(self) -> None:
        data = one("ConfigMap", "drift-exporter-config")["data"]["config.yaml"]
        assert data == (ROOT / "deploy" / "compose" / "exporter.yaml").read_text()

    def test_check_mode_reports_a_stale_file(self, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
        monkeypatch.setattr(generate, "GENERATED", tmp_path)
        assert generate.main(["--check"]) == 1
        assert generate.main([]) == 0
        assert generate.main(["--check"]) == 0


class TestPod:
    """The app and the exporter sidecar share the data volume; the exporter only reads it."""

    def test_app_and_exporter_share_an_empty_dir_the_exporter_mounts_read_only(self) -> None:
        volumes = {v["name"]: v for v in pod_spec("diabetes-model")["volumes"]}
        app = {m["mountPath"]: m for m in container("diabetes-model", "app")["volumeMounts"]}
        exporter = {m["mountPath"]: m
                    for m in container("diabetes-model", "drift-exporter")["volumeMounts"]}
        assert app["/data"]["name"] == exporter["/data"]["name"]
        assert "emptyDir" in volumes[app["/data"]["name"]]
        assert exporter["/data"].get("readOnly") is True
        assert not app["/data"].get("readOnly", False)

    def test_the_reference_is_written_by_an_init_container_on_the_same_volume(self) -> None:
        (init,) = pod_spec("diabetes-model")["initContainers"]
        assert "--write-reference-only" in init["command"]
        assert {m["mountPath"]: m["name"] for m in init["volumeMounts"]}["/data"] == "data"

    def test_the_exporter_reads_the_config_map_at_the_path_it_is_given(self) -> None:
        exporter = container("diabetes-model", "drift-exporter")
        (flag,) = [a for a in exporter["args"] if a.startswith("--config.file=")]
        config_file = Path(flag.split("=", 1)[1])
        mounts = {m["name"]: m for m in exporter["volumeMounts"]}
        volumes = {v["name"]: v for v in pod_spec("diabetes-model")["volumes"]}
        (config_volume,) = [n for n, v in volumes.items() if "configMap" in v]
        assert mounts[config_volume]["mountPath"] == str(config_file.parent)
        config_map = one("ConfigMap", volumes[config_volume]["configMap"]["name"])
        assert config_file.name in config_map["data"]

    def test_the_exporter_config_paths_are_on_the_shared_volume(self) -> None:
        config = yaml.safe_load(one("ConfigMap", "drift-exporter-config")["data"]["config.yaml"])
        (model,) = config["models"]
        paths = [model["logs"]["path"], model["reference"]["path"],
                 model["label"]["feedback"]["path"]]
        assert all(p.startswith("/data/") for p in paths)

    def test_the_exporter_probes_use_its_ready_and_healthy_endpoints(self) -> None:
        exporter = container("diabetes-model", "drift-exporter")
        assert exporter["readinessProbe"]["httpGet"]["path"] == "/-/ready"
        assert exporter["livenessProbe"]["httpGet"]["path"] == "/-/healthy"

    def test_every_container_runs_as_non_root_without_privileges(self) -> None:
        for deployment in objects("Deployment"):
            spec = deployment["spec"]["template"]["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True
            for item in spec["containers"] + spec.get("initContainers", []):
                context = item["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, item["name"]
                assert context["readOnlyRootFilesystem"] is True, item["name"]
                assert context["capabilities"]["drop"] == ["ALL"], item["name"]


class TestWiring:
    """Selectors, ports and names agree across objects."""

    def test_services_select_pods_and_target_named_container_ports(self) -> None:
        for service in objects("Service"):
            pods = [d for d in objects("Deployment")
                    if _labels_match(service["spec"]["selector"],
                                     d["spec"]["template"]["metadata"]["labels"])]
            assert len(pods) == 1, service["metadata"]["name"]
            ports = {p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"]
                     for p in c.get("ports", [])}
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in ports, (service["metadata"]["name"], port)

    def test_the_service_monitor_scrapes_the_exporter_service_port(self) -> None:
        monitor = one("ServiceMonitor", "drift-exporter")
        (service,) = [s for s in objects("Service")
                      if _labels_match(monitor["spec"]["selector"]["matchLabels"],
                                       s["metadata"]["labels"])]
        assert service["metadata"]["name"] == "drift-exporter"  # the job label the alert uses
        names = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= names
        assert {p["targetPort"] for p in service["spec"]["ports"]} == {"metrics"}

    def test_the_pod_monitor_scrapes_the_exporter_container_port(self) -> None:
        monitor = one("PodMonitor", "drift-exporter")
        labels = one("Deployment", "diabetes-model")["spec"]["template"]["metadata"]["labels"]
        assert _labels_match(monitor["spec"]["selector"]["matchLabels"], labels)
        ports = {p["name"] for p in container("diabetes-model", "drift-exporter")["ports"]}
        assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports

    def test_the_deployment_selector_matches_its_template(self) -> None:
        for deployment in objects("Deployment"):
            assert _labels_match(deployment["spec"]["selector"]["matchLabels"],
                                 deployment["spec"]["template"]["metadata"]["labels"])

    def test_kustomization_lists_every_manifest_but_the_alternative_pod_monitor(self) -> None:
        listed = yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]
        files = {str(p.relative_to(KUBE)) for p in KUBE.rglob("*.yaml")}
        assert set(listed) == files - {"kustomization.yaml", "podmonitor.yaml"}
