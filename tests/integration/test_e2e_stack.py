"""The deploy/ stack end to end, with real processes on loopback and no Docker: the example
app and its load generator, ``drift-exporter run``, Debian's ``prometheus`` and
``prometheus-alertmanager``, and a webhook receiver in this test.

The configuration files are the ones in deploy/, with only addresses and paths rewritten to
loopback and a temporary directory, and intervals shortened (scrape and evaluation 1s, alert
``for:`` 2s, Alertmanager grouping 1s, exporter update 1s); the fleet rules are
deploy/prometheus/fleet_rules.py's for a 10s range sampled every 1s (FLEET_RANGE), instead of
the shipped hour. The test asserts that the target is up; that every PromQL expression of the
dashboard and the rules (the fleet rules too) is valid, that every metric it names has data,
and that each returns data at some point of the run (except the ones listed in MAY_BE_EMPTY,
each with its reason); that the FeatureDrift alert (a ticket) and the DriftAlarm page (with
the shifted columns in its annotation) reach the webhook through Alertmanager once the load
generator shifts the inputs, and not before, and that FeatureDrift is resolved after the shift
ends; and that the
exporter read every record the app wrote (with log roll-over on the way).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from harness import (
    HTTP_TIMEOUT,
    STARTED,
    Exporter,
    Prometheus,
    free_port,
    load_fleet_rules,
    start_exporter,
    value,
    wait_until,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLE = DEPLOY / "example-app"
MODEL = "diabetes-progression"
FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
SHIFTED = {"age", "sex", "bmi", "bp", "s3", "s5"}  # deploy/example-app/diabetes_model.SHIFTED
RATE = 250  # predictions per second: the 1000-row window turns over in 4 s
BATCH = 25
ALERT_FOR = "2s"
# The fleet rules' range and subquery step: 2500 records at RATE (the alerts want 1000), ten
# samples of every counter, and a range that holds only shifted records 10s into the shift.
FLEET_RANGE = ("10s", "1s")
GRAFANA_INTERVALS = {"$__rate_interval": "10s", "$__interval": "1s", "$__range": "5m"}

START_TIMEOUT = 120.0  # scikit-learn's first import can be slow on a cold disk
PHASE_TIMEOUT = 60.0
QUIET = {"stdin": subprocess.DEVNULL}

# Expressions (as written in deploy/, before variable substitution) that legitimately return
# nothing in this run, and why. Their metric names are still checked where they exist.
EXAMPLE_IS_REGRESSION = "the example model is a regression: no classification metrics"
MAY_BE_EMPTY: dict[str, str] = {
    'drift_prediction_class_ratio{model="$model", segment=~"$segment"}':
        "the example's prediction is numerical: no classes",
    'drift_reference_prediction_class_ratio{model="$model", segment=~"$segment"}':
        "the example's prediction is numerical: no classes",
    'drift_model_accuracy{model="$model", segment=~"$segment"}': EXAMPLE_IS_REGRESSION,
    'drift_reference_model_accuracy{model="$model", segment=~"$segment"}': EXAMPLE_IS_REGRESSION,
    'drift_model_f1{model="$model", segment=~"$segment"}': EXAMPLE_IS_REGRESSION,
    'drift_reference_model_f1{model="$model", segment=~"$segment"}': EXAMPLE_IS_REGRESSION,
    'drift_model_roc_auc{model="$model", segment=~"$segment"}': EXAMPLE_IS_REGRESSION,
    'drift_reference_model_roc_auc{model="$model", segment=~"$segment"}': EXAMPLE_IS_REGRESSION,
    "time() - drift_last_record_timestamp_seconds > 900":
        "PredictionLogsStale needs 15 minutes without records",
    "sum without (reason) (rate(drift_rows_rejected_total[10m])) > 0":
        "PredictionRecordsRejected: the app writes no malformed lines",
    "increase(drift_files_rejected_total[15m]) > 0":
        "PredictionFilesRejected: the example logs JSONL, no Parquet files",
    'up{job=~"(.*/)?drift-exporter"} == 0': "DriftExporterDown: the exporter stays up",
    'drift_alarm{segment!=""} == 1': "SegmentDriftAlarm: the example model has no segments",
}
# The label-free estimate (SPEC 6.10) needs a classifier with a score: every expression and
# metric of it is excused here, by name, since the example is a regression.
NO_ESTIMATE = "the label-free estimate needs a classifier; the example is a regression"
ESTIMATE_NAMES = ("drift_model_estimated_", "drift_reference_model_estimated_",
                  "drift_model_estimation_")


def estimate_only(text: str) -> bool:
    """Whether an expression or metric name is about the label-free estimate."""
    return any(name in text for name in ESTIMATE_NAMES)
# Metric names that may have no series at all here (SPEC 6.3/6.4 gauges of other model kinds).
ABSENT_METRICS: dict[str, str] = {
    "drift_prediction_class_ratio": "numerical prediction",
    "drift_reference_prediction_class_ratio": "numerical prediction",
    "drift_model_accuracy": EXAMPLE_IS_REGRESSION,
    "drift_reference_model_accuracy": EXAMPLE_IS_REGRESSION,
    "drift_model_f1": EXAMPLE_IS_REGRESSION,
    "drift_reference_model_f1": EXAMPLE_IS_REGRESSION,
    "drift_model_roc_auc": EXAMPLE_IS_REGRESSION,
    "drift_reference_model_roc_auc": EXAMPLE_IS_REGRESSION,
}
# SPEC 6.4 gauges the example's `label` config produces: excused only if this exporter build
# does not compute model quality at all (then the test says so), never one by one.
QUALITY_METRICS = ("drift_model_rmse", "drift_reference_model_rmse", "drift_model_mae",
                   "drift_reference_model_mae", "drift_model_error_change_ratio",
                   "drift_model_labeled_ratio", "drift_feedback_unmatched_total")
NO_QUALITY = "this exporter build serves no SPEC 6.4 model-quality metrics"
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                "group_left", "group_right", "inf", "nan", "atan2"}


# --- the configuration files of deploy/, rewritten for loopback --------------------------------


def exporter_config(data: Path) -> dict[str, Any]:
    """deploy/compose/exporter.yaml with /data -> ``data`` and a 1s update interval."""
    text = (DEPLOY / "compose" / "exporter.yaml").read_text().replace("/data/", f"{data}/")
    config: dict[str, Any] = yaml.safe_load(text)
    for model in config["models"]:
        model["update_interval"] = "1s"
    return config


def rule_groups() -> dict[str, list[dict[str, Any]]]:
    """file name -> groups: deploy/prometheus/drift-rules.yml as shipped, and the fleet rules
    generated for FLEET_RANGE (the shipped drift-fleet-rules.yml but for the range)."""
    fleet = load_fleet_rules().render(*FLEET_RANGE)
    return {"drift-rules.yml":
            yaml.safe_load((DEPLOY / "prometheus" / "drift-rules.yml").read_text())["groups"],
            "drift-fleet-rules.yml": yaml.safe_load(fleet)["groups"]}


def rules_files(directory: Path) -> list[Path]:
    """The rules files of rule_groups() with every alert's ``for:`` shortened."""
    paths = []
    for name, groups in rule_groups().items():
        for group in groups:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = ALERT_FOR
        path = directory / name
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        paths.append(path)
    return paths


def prometheus_config(directory: Path, addresses: dict[str, str]) -> Path:
    """deploy/prometheus/prometheus.yml with loopback addresses and 1s intervals."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    assert config["rule_files"] == list(rule_groups()), "rules files the test does not load"
    config["rule_files"] = [str(p) for p in rules_files(directory)]
    groups = [*config["scrape_configs"], *config["alerting"]["alertmanagers"]]
    for group in groups:
        for static in group["static_configs"]:
            static["targets"] = [addresses[t] for t in static["targets"]]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def alertmanager_config(directory: Path, webhook: str) -> Path:
    """deploy/alertmanager/alertmanager.yml with webhooks to ``webhook`` and 1s grouping."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    for route in [config["route"], *config["route"]["routes"]]:
        for key, short in (("group_wait", "1s"), ("group_interval", "1s")):
            if key in route:
                route[key] = short
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = re.sub(r"^http://alert-log:\d+", webhook, hook["url"])
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- the PromQL under test ---------------------------------------------------------------------


def rule_expressions() -> list[str]:
    """Every rule's expression, as written in deploy/prometheus/drift-rules.yml and the fleet
    rules for FLEET_RANGE."""
    return [" ".join(r["expr"].split()) for groups in rule_groups().values()
            for g in groups for r in g["rules"]]


def dashboard_expressions() -> list[str]:
    """Every panel query and variable query of the dashboard, as written there."""
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "drift-exporter.json")
                           .read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["definition"])
            assert match is not None, variable["definition"]
            exprs.append(f"group by ({match[2]}) ({match[1]})")
    return exprs


def instances(expr: str) -> list[str]:
    """The expression with Grafana's variables filled in (one per feature for $feature)."""
    for name, interval in GRAFANA_INTERVALS.items():
        expr = expr.replace(name, interval)
    expr = expr.replace("$model", MODEL)
    expr = expr.replace("$segment", "^$")  # the segment variable's All: the whole model
    filled = [expr.replace("$feature", f) for f in FEATURES] if "$feature" in expr else [expr]
    # (not label_replace's "$1")
    assert not any(re.search(r"\$[A-Za-z_{]", e) for e in filled), f"unknown variable in {expr}"
    return filled


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not functions, keywords or label names)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: label values, regexes
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end():].lstrip()
        if match[0].lower() not in PROMQL_WORDS and not rest.startswith("("):
            names.add(match[0])
    return names


@dataclass
class QueryLog:
    """What every expression returned over the run."""

    exprs: list[str]
    errors: dict[str, str] = field(default_factory=dict)
    had_data: set[str] = field(default_factory=set)
    names_with_data: set[str] = field(default_factory=set)

    @property
    def names(self) -> set[str]:
        """Every metric name any expression selects."""
        return {n for e in self.exprs for n in metric_names(e)}

    def poll(self, prometheus: Prometheus) -> None:
        """Run every expression and every metric name once; remember what had data."""
        for expr in self.exprs:
            if expr in self.had_data or expr in self.errors:
                continue
            for instance in instances(expr):
                ok, result = instant_query(prometheus, instance)
                if not ok:
                    self.errors[expr] = f"{instance}: {result}"
                    break
                if result:
                    self.had_data.add(expr)
                    break
        for name in self.names - self.names_with_data:
            ok, result = instant_query(prometheus, name)
            if ok and result:
                self.names_with_data.add(name)

    excused: dict[str, str] = field(default_factory=dict)

    def missing(self) -> list[str]:
        """Expressions that never had data and are not excused."""
        return [e for e in self.exprs if e not in self.had_data
                and e not in MAY_BE_EMPTY and e not in self.excused and not estimate_only(e)]


def instant_query(prometheus: Prometheus, expr: str) -> tuple[bool, Any]:
    """(True, result vector) or (False, the API's error) for one instant query."""
    response = requests.get(prometheus.url("/api/v1/query"), params={"query": expr},
                            timeout=HTTP_TIMEOUT)
    body = response.json()
    if body.get("status") != "success":
        return False, f"{body.get('errorType')}: {body.get('error')}"
    return True, body["data"]["result"]


# --- processes ---------------------------------------------------------------------------------


class WebhookReceiver:
    """An Alertmanager webhook receiver on loopback that keeps every notification."""

    def __init__(self) -> None:
        self.notifications: list[tuple[float, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length))
                with receiver.lock:
                    receiver.notifications.append((time.monotonic(), self.path, payload))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.server.server_port}"

    def alerts(self, alertname: str) -> list[tuple[float, str, dict[str, Any]]]:
        """(received at, path, alert) of every notified alert with that name, in order."""
        with self.lock:
            return [(at, path, alert) for at, path, payload in self.notifications
                    for alert in payload["alerts"]
                    if alert["labels"].get("alertname") == alertname]

    def last_status(self, alertname: str) -> dict[str, str]:
        """fingerprint -> status of the latest notification of each such alert."""
        return {a["fingerprint"]: a["status"] for _, _, a in self.alerts(alertname)}

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Processes:
    """Subprocesses of this test, stopped (SIGTERM, then SIGKILL) in reverse order."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], cwd: Path | None = None) -> \
            subprocess.Popen[bytes]:
        """Start a process whose output goes to DIRECTORY/NAME.log."""
        with (self.directory / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=log, cwd=cwd, **QUIET)
        self.started.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        """What a process wrote so far."""
        return (self.directory / f"{name}.log").read_text(errors="replace")[-5000:]

    def alive(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        """Fail with its output if the process has exited."""
        if proc.poll() is not None:
            msg = f"{name} exited with {proc.returncode}:\n{self.log(name)}"
            raise AssertionError(msg)

    def stop_all(self) -> None:
        """Terminate everything still running."""
        for _, proc in reversed(self.started):
            stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int | None:
    """SIGTERM, wait, SIGKILL if needed; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    return proc.returncode


def http_ok(url: str) -> bool:
    """Whether GET url answers 200."""
    try:
        return requests.get(url, timeout=HTTP_TIMEOUT).status_code == 200
    except requests.ConnectionError:
        return False


@dataclass
class Stack:
    """The running stack."""

    processes: Processes
    data: Path
    app_url: str
    control_url: str
    exporter: Exporter
    prometheus: Prometheus
    alertmanager_url: str
    webhook: WebhookReceiver
    loadgen: subprocess.Popen[bytes]

    def check_alive(self) -> None:
        """Fail at once, with its output, if any process died."""
        for name, proc in self.processes.started:
            if name != "loadgen" or self.loadgen.poll() is None:
                self.processes.alive(name, proc)

    def poll_until(self, condition: Callable[[], Any], timeout: float, what: str,
                   log: QueryLog | None = None) -> Any:
        """Wait for ``condition``, checking the processes and polling the queries meanwhile."""
        def step() -> Any:
            self.check_alive()
            if log is not None:
                log.poll(self.prometheus)
                assert not log.errors, "invalid PromQL:\n" + "\n".join(log.errors.values())
            return condition()
        return wait_until(step, timeout, what=what, interval=0.5)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query that must be valid."""
        ok, result = instant_query(self.prometheus, expr)
        assert ok, f"{expr}: {result}"
        rows: list[dict[str, Any]] = result
        return rows


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Start app, exporter, Alertmanager, Prometheus and the load generator, in that order."""
    prometheus_bin = shutil.which("prometheus")
    alertmanager_bin = shutil.which("prometheus-alertmanager")
    assert prometheus_bin is not None, "prometheus is not on PATH (bash .ci/run installs it)"
    assert alertmanager_bin is not None, "prometheus-alertmanager is not on PATH"
    processes = Processes(tmp_path)
    webhook = WebhookReceiver()
    data = tmp_path / "data"
    ports = {name: free_port() for name in ("app", "control", "exporter", "alertmanager",
                                            "prometheus")}
    try:
        # The app trains, writes the reference and creates its log directories.
        app_url = f"http://127.0.0.1:{ports['app']}"
        app = processes.start("app", [
            sys.executable, "app.py", "--data-dir", str(data),
            "--listen", f"127.0.0.1:{ports['app']}",
            "--max-log-bytes", "200000"],  # ~700 records a file: roll-over every few seconds
            cwd=EXAMPLE)
        wait_until(lambda: processes.alive("app", app) or http_ok(f"{app_url}/healthz"),
                   START_TIMEOUT, what="the example app's /healthz", interval=0.2)

        exporter = start_exporter(tmp_path, exporter_config(data), ports["exporter"],
                                  tag="exporter")
        request.node.stash.setdefault(STARTED, []).append(exporter)
        exporter.wait_ready(START_TIMEOUT)

        am_dir = tmp_path / "alertmanager"
        am_dir.mkdir()
        alertmanager_url = f"http://127.0.0.1:{ports['alertmanager']}"
        alertmanager = processes.start("alertmanager", [
            alertmanager_bin, f"--config.file={alertmanager_config(am_dir, webhook.url)}",
            f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
            "--cluster.listen-address=", "--log.level=warn"])
        wait_until(lambda: processes.alive("alertmanager", alertmanager)
                   or http_ok(f"{alertmanager_url}/-/ready"), 30.0,
                   what="alertmanager /-/ready", interval=0.2)

        prom_dir = tmp_path / "prometheus"
        prom_dir.mkdir()
        config = prometheus_config(prom_dir, {
            "exporter:9847": f"127.0.0.1:{ports['exporter']}",
            "alertmanager:9093": f"127.0.0.1:{ports['alertmanager']}",
            "localhost:9090": f"127.0.0.1:{ports['prometheus']}"})
        prom_proc = processes.start("prometheus", [
            prometheus_bin, f"--config.file={config}",
            f"--storage.tsdb.path={prom_dir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            "--rules.alert.resend-delay=1s", "--log.level=warn"])
        prometheus = Prometheus(prom_proc, ports["prometheus"], tmp_path / "prometheus.log")
        wait_until(prometheus.ready, 30.0, what="prometheus /-/ready", interval=0.2)

        control_url = f"http://127.0.0.1:{ports['control']}"
        loadgen = processes.start("loadgen", [
            sys.executable, "loadgen.py", "--url", app_url, "--rate", str(RATE),
            "--batch", str(BATCH), "--feedback-delay", "1",
            "--control", f"127.0.0.1:{ports['control']}",
            "--duration", "300"],  # bounded even if this test is killed before its teardown
            cwd=EXAMPLE)
        wait_until(lambda: processes.alive("loadgen", loadgen)
                   or http_ok(f"{control_url}/stats"), START_TIMEOUT,
                   what="the load generator's control endpoint", interval=0.2)
        yield Stack(processes, data, app_url, control_url, exporter, prometheus,
                    alertmanager_url, webhook, loadgen)
        code, took = exporter.stop()
        assert code == 0, f"the exporter exited with {code} {took:.1f}s after SIGTERM"
    finally:
        for started in request.node.stash.get(STARTED, []):
            if started.proc.poll() is None:  # setup failed before the exporter was stopped
                started.proc.kill()
                started.proc.wait(10)
        processes.stop_all()
        webhook.close()


def logged_records(data: Path) -> tuple[int, int]:
    """(records, files) of the app's prediction log."""
    files = sorted((data / "logs" / "predictions").glob("*.jsonl"))
    return sum(f.read_bytes().count(b"\n") for f in files), len(files)


def test_the_deploy_stack_alerts_on_drift_end_to_end(stack: Stack) -> None:
    started = time.monotonic()
    exprs = list(dict.fromkeys(rule_expressions() + dashboard_expressions()))
    stale_excuses = set(MAY_BE_EMPTY) - set(exprs)
    assert not stale_excuses, f"MAY_BE_EMPTY names expressions that no longer exist: " \
                              f"{stale_excuses}"
    log = QueryLog(exprs)
    served = stack.exporter.scrape_text()
    if not any(name in served for name in QUALITY_METRICS):
        log.excused = {e: NO_QUALITY for e in exprs if metric_names(e) & set(QUALITY_METRICS)}
        print(f"\nexcused ({NO_QUALITY}): {sorted(log.excused)}")

    # The exporter and Alertmanager are scraped; the baseline window fills.
    for job in ("drift-exporter", "alertmanager", "prometheus"):
        stack.poll_until(lambda job=job: [r["value"][1] for r in
                                          stack.query(f'up{{job="{job}"}}')] == ["1"],
                         30.0, f'up{{job="{job}"}} == 1')
    stack.poll_until(lambda: stack.query(f'drift_window_rows{{model="{MODEL}"}} == 1000'),
                     PHASE_TIMEOUT, "a full window in Prometheus", log)
    # Two rate() samples, the recording rules and the feature table have data.
    stack.poll_until(lambda: stack.query(f'drift:rows_ingested:rate5m{{model="{MODEL}"}} > 0'),
                     PHASE_TIMEOUT, "an ingestion rate", log)
    baseline = time.monotonic()
    assert stack.webhook.alerts("FeatureDrift") == [], "FeatureDrift fired before the shift"
    assert stack.webhook.alerts("DriftAlarm") == [], "DriftAlarm paged before the shift"

    # Shift the inputs: the feature drift alert reaches the webhook through Alertmanager.
    assert requests.post(f"{stack.control_url}/shift", timeout=HTTP_TIMEOUT).json() == \
        {"shift": True}
    shifted_firing = lambda: [a for _, _, a in stack.webhook.alerts("FeatureDrift")  # noqa: E731
                              if a["status"] == "firing" and a["labels"]["feature"] in SHIFTED]
    stack.poll_until(shifted_firing, PHASE_TIMEOUT,
                     "a FeatureDrift notification for a shifted feature", log)
    fired = time.monotonic()
    # While shifted, every expression that depends on drift gets its chance to show data.
    try:
        stack.poll_until(lambda: not log.missing(), PHASE_TIMEOUT,
                         "data for every expression", log)
    except AssertionError:
        invalid = "\n  ".join(log.errors.values())
        pytest.fail(f"expressions that never returned data: {log.missing()}\n"
                    f"metric names without data: {sorted(log.names - log.names_with_data)}\n"
                    f"invalid: {invalid}")
    # The drift alarm pages (severity critical), naming the columns that take part.
    paged = stack.poll_until(lambda: [(path, a) for _, path, a in stack.webhook.alerts(
        "DriftAlarm") if a["status"] == "firing"], PHASE_TIMEOUT,
        "a DriftAlarm notification", log)
    path, page = paged[0]
    assert path == "/alerts/critical"
    assert page["labels"]["model"] == MODEL
    assert page["annotations"]["summary"] == f"{MODEL}: the model's input changed"
    columns = set(page["annotations"]["columns"].split(", "))
    assert columns & SHIFTED, columns
    assert columns <= SHIFTED | {"__prediction__"}, columns
    firing = {a["labels"]["feature"] for a in shifted_firing()}
    notified = stack.webhook.alerts("FeatureDrift")
    assert {path for _, path, _ in notified} == {"/alerts/warning"}  # routed by severity
    alert = notified[0][2]
    assert alert["labels"]["model"] == MODEL
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"] == \
        f"{MODEL}: feature {alert['labels']['feature']} drifted"

    # End the shift: every FeatureDrift alert that fired is resolved, through the webhook.
    assert requests.delete(f"{stack.control_url}/shift", timeout=HTTP_TIMEOUT).json() == \
        {"shift": False}
    ended = time.monotonic()
    stack.poll_until(lambda: set(stack.webhook.last_status("FeatureDrift").values())
                     == {"resolved"}, PHASE_TIMEOUT,
                     "every FeatureDrift alert resolved at the webhook", log)
    resolved = time.monotonic()

    # Every rule evaluates without error.
    groups = requests.get(stack.prometheus.url("/api/v1/rules"),
                          timeout=HTTP_TIMEOUT).json()["data"]["groups"]
    unhealthy = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"]
                 if r["health"] != "ok"]
    assert not unhealthy

    # Every expression is valid, every metric it names has data, each returned data.
    assert not log.errors, "invalid PromQL:\n" + "\n".join(log.errors.values())
    absent = {name for name in log.names - log.names_with_data - set(ABSENT_METRICS)
              if not estimate_only(name)}
    if log.excused:
        absent -= set(QUALITY_METRICS)
    assert not absent, f"metric names without any series (misspelt?): {sorted(absent)}"
    assert not log.missing(), f"expressions that never returned data: {log.missing()}"

    # The exporter read every record the app wrote, across the writer's roll-overs.
    assert stop(stack.loadgen) == 0, stack.processes.log("loadgen")
    records, files = logged_records(stack.data)
    assert files >= 3, "the app's writer never rolled over"
    wait_until(lambda: value(stack.exporter.scrape(), "drift_rows_ingested_total",
                             model=MODEL) == records, 30.0,
               what=f"drift_rows_ingested_total == {records}")
    print(f"\nfeatures that fired: {sorted(firing)}; records {records} in {files} files; "
          f"baseline {baseline - started:.1f}s, alert {fired - baseline:.1f}s after the shift,"
          f" resolved {resolved - ended:.1f}s after it ended")
