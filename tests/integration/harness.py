"""Real processes for the integration tests: the exporter, Prometheus, scraping and polling.

Nothing here sleeps to synchronise: every wait polls a condition against a deadline.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from exporter.app import App

T = TypeVar("T")
SampleKey = tuple[str, frozenset[tuple[str, str]]]
Samples = dict[SampleKey, float]

POLL_SECONDS = 0.05
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
HTTP_TIMEOUT = 5.0


# The exporters a test uses, so a failing test's report can show their stderr.
STARTED = pytest.StashKey[list["Exporter"]]()


_GIVEN_PORTS: set[int] = set()
_PORTS = random.Random(os.getpid())


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Chosen below the kernel's ephemeral range: a port the kernel hands out with bind(0) can be
    taken, before our server binds it, by any process's outgoing connection (seen in CI:
    Prometheus failing with "address already in use" on such a port)."""
    floor = min(_ephemeral_floor(), 60000)
    for _ in range(200):
        port = _PORTS.randrange(max(floor - 12000, 1024), floor)
        if port in _GIVEN_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN_PORTS.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # fall back to the kernel
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, *, what: str = "condition",
               interval: float = POLL_SECONDS) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:g}s waiting for {what}; last value: {last!r}"
            raise AssertionError(msg)
        time.sleep(interval)
        last = predicate()
    return last


def parse_metrics(text: str) -> Samples:
    """Prometheus text exposition -> {(sample name, frozenset(labels)): value}."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {s.name}{s.labels}"
            samples[key] = float(s.value)
    return samples


def key(name: str, **labels: str) -> SampleKey:
    """The dictionary key of one sample."""
    return (name, frozenset(labels.items()))


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, or None when it is absent."""
    return samples.get(key(name, **labels))


def names(samples: Samples) -> set[str]:
    """Every sample name present."""
    return {name for name, _ in samples}


def with_labels(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]],
                                                                   float]:
    """Samples of one name whose labels include ``labels``."""
    wanted = set(labels.items())
    return {lbl: v for (n, lbl), v in samples.items() if n == name and wanted <= lbl}


def append_lines(path: Path, lines: Iterable[str]) -> None:
    """Append complete lines with one write, as a logging app flushing a buffer does."""
    data = "".join(f"{line}\n" for line in lines).encode()
    with path.open("ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def jsonl_line(record: Mapping[str, Any]) -> str:
    """One record as Python's json module writes it (NaN and Infinity tokens included)."""
    return json.dumps(record, allow_nan=True)


class Exporter:
    """A running ``drift-exporter run`` subprocess."""

    death_reported = False  # set when a test already failed because the process had exited

    def __init__(self, proc: subprocess.Popen[bytes], port: int, config_path: Path,
                 stderr_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.config_path = config_path
        self.stderr_path = stderr_path

    def url(self, path: str = "/") -> str:
        """Absolute URL of a path on this exporter."""
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """HTTP GET on the exporter."""
        return requests.get(self.url(path), timeout=HTTP_TIMEOUT, **kwargs)

    def scrape_text(self) -> str:
        """The body of /metrics (Prometheus text format)."""
        response = self.get("/metrics")
        assert response.status_code == 200, response.text
        return response.text

    def scrape(self) -> Samples:
        """/metrics parsed into samples."""
        return parse_metrics(self.scrape_text())

    def stderr(self) -> str:
        """Everything the exporter wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def ready_status(self) -> int | None:
        """Status of /-/ready, None while nothing listens; fails if the process died."""
        code = self.proc.poll()
        if code is not None:
            self.death_reported = True
            msg = f"exporter exited with {code} before it was ready:\n{self.stderr()}"
            raise AssertionError(msg)
        try:
            return self.get("/-/ready").status_code
        except requests.ConnectionError:
            return None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll /-/ready until it answers 200."""
        wait_until(lambda: self.ready_status() == 200, timeout, what="/-/ready == 200")

    def stop(self, sig: signal.Signals = signal.SIGTERM,
             timeout: float = STOP_TIMEOUT) -> tuple[int | None, float]:
        """Send ``sig``; return the exit code (None when it did not stop in time) and the delay."""
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
            self.proc.kill()
            self.proc.wait(5)
        return code, time.monotonic() - started

    def update_count(self, samples: Samples, model: str) -> float:
        """How many recomputations the exporter has observed for a model."""
        return value(samples, "drift_update_duration_seconds_count", model=model) or 0.0

    def wait_for_window(self, model: str, ingested: int, window_rows: int,
                        timeout: float = 20.0, quiet: float = 0.6) -> Samples:
        """Wait until ``ingested`` records were read and a recomputation has seen all of them.

        Ingestion is visible at once (a counter); statistics follow within ``update_interval``.
        Once the counter is reached, the recomputation count must stay still for ``quiet``
        seconds (more than update_interval plus a compute tick) so no recomputation is pending.
        """
        deadline = time.monotonic() + timeout

        def caught_up() -> Samples | None:
            samples = self.scrape()
            done = (value(samples, "drift_rows_ingested_total", model=model) == ingested
                    and value(samples, "drift_window_rows", model=model) == window_rows)
            return samples if done else None

        samples = wait_until(caught_up, timeout, what=f"{ingested} records ingested and "
                             f"a window of {window_rows} rows in model {model}")
        count, since = self.update_count(samples, model), time.monotonic()
        while time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                msg = f"the statistics of model {model} never settled"
                raise AssertionError(msg)
            time.sleep(POLL_SECONDS)
            samples = self.scrape()
            now_count = self.update_count(samples, model)
            if now_count != count:
                count, since = now_count, time.monotonic()
        return samples


def model_config(name: str, logs: Path | str, reference: Path | str,
                 features: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """One entry of ``models:`` (SPEC 3) with fast defaults for tests."""
    entry: dict[str, Any] = {
        "name": name,
        "logs": {"path": str(logs)},
        "reference": {"path": str(reference)},
        "features": features,
        "window": {"rows": 300},
        "update_interval": "200ms",
    }
    entry.update(extra)
    return entry


def exporter_command() -> list[str]:
    """The console script, as a user runs it."""
    path = shutil.which("drift-exporter")
    assert path is not None, "the drift-exporter console script is not on PATH"
    return [path]


def write_config(directory: Path, config: Mapping[str, Any], name: str = "config.yaml") -> Path:
    """Write a YAML config file and return its path."""
    path = directory / name
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=False))
    return path


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``drift-exporter ARGS`` to completion."""
    return subprocess.run([*exporter_command(), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def start_exporter(directory: Path, config: Mapping[str, Any], port: int, *,
                   tag: str = "exporter", extra: Iterable[str] = ()) -> Exporter:
    """Start ``drift-exporter run`` on 127.0.0.1:port (does not wait for readiness)."""
    config_path = write_config(directory, config, f"{tag}.yaml")
    stderr_path = directory / f"{tag}.stderr"
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [*exporter_command(), "run", f"--config.file={config_path}",
             f"--web.listen-address=127.0.0.1:{port}", *extra],
            stdout=err, stderr=err, stdin=subprocess.DEVNULL)
    return Exporter(proc, port, config_path, stderr_path)


class Prometheus:
    """A running Prometheus server with a temporary TSDB."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log_path

    def url(self, path: str) -> str:
        """Absolute URL of a path on this Prometheus."""
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        """Prometheus' own log so far."""
        return self.log_path.read_text(errors="replace")

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query through the HTTP API (at a Unix time, else now); the result vector."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = requests.get(self.url("/api/v1/query"), params=params,
                                timeout=HTTP_TIMEOUT)
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def ready(self) -> bool:
        """Whether /-/ready answers 200 (fails if the process died)."""
        if self.proc.poll() is not None:
            msg = f"prometheus exited with {self.proc.returncode}:\n{self.log()}"
            raise AssertionError(msg)
        try:
            return requests.get(self.url("/-/ready"), timeout=HTTP_TIMEOUT).status_code == 200
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        """Stop Prometheus (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_prometheus(directory: Path, targets: Mapping[str, str | Sequence[str]], port: int,
                     *, rule_files: Sequence[Path] = (), tsdb: Path | None = None) -> Prometheus:
    """Start Prometheus scraping each ``job: host:port`` (or list of them) every second and
    evaluating ``rule_files`` every second; wait until ready. ``tsdb``: an existing data
    directory (imported blocks), kept however old its samples (retention 10y)."""
    binary = shutil.which("prometheus")
    assert binary is not None, "the prometheus binary is not on PATH"
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": job, "scrape_interval": "1s", "scrape_timeout": "1s",
                            "static_configs": [{"targets": [target] if isinstance(target, str)
                                                else list(target)}]}
                           for job, target in targets.items()],
    }
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    config_path = write_config(directory, config, "prometheus.yml")
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={config_path}",
             f"--storage.tsdb.path={tsdb or directory / 'tsdb'}",
             *(["--storage.tsdb.retention.time=10y"] if tsdb else []),
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    server = Prometheus(proc, port, log_path)
    try:
        wait_until(server.ready, 30.0, what="prometheus /-/ready")
    except BaseException:
        server.stop()
        raise
    return server


def close(a: float | None, b: float, *, rel: float = 1e-9, abs_tol: float = 1e-12) -> bool:
    """Whether an exported value equals the expected one within tolerance."""
    return a is not None and math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def kill_quietly(proc: subprocess.Popen[bytes]) -> None:
    """Last-resort cleanup of a process this test started."""
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


class Mismatches:
    """Collects every wrong or absent sample so one failure lists them all."""

    def __init__(self, samples: Samples) -> None:
        self.samples = samples
        self.problems: list[str] = []

    def expect(self, name: str, labels: Mapping[str, str], expected: float, *,
               rel: float = 1e-9, abs_tol: float = 1e-12) -> None:
        """The sample must be present and equal ``expected`` within tolerance."""
        got = self.samples.get(key(name, **labels))
        shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
        if got is None:
            self.problems.append(f"{name}{{{shown}}} is absent; expected {expected!r}")
        elif not math.isclose(got, expected, rel_tol=rel, abs_tol=abs_tol):
            self.problems.append(f"{name}{{{shown}}} = {got!r}; expected {expected!r} "
                                 f"(difference {got - expected:.3g})")

    def absent(self, name: str, labels: Mapping[str, str]) -> None:
        """The sample must not be exposed."""
        got = self.samples.get(key(name, **labels))
        if got is not None:
            shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
            self.problems.append(f"{name}{{{shown}}} = {got!r}; expected it to be absent")

    def present(self, name: str, labels: Mapping[str, str]) -> float | None:
        """The sample must be exposed; returns its value."""
        got = self.samples.get(key(name, **labels))
        if got is None:
            shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
            self.problems.append(f"{name}{{{shown}}} is absent")
        return got

    def require(self, condition: bool, message: str) -> None:
        """Record a free-form problem when ``condition`` is false."""
        if not condition:
            self.problems.append(message)

    def verify(self) -> None:
        """Fail listing every problem found."""
        assert not self.problems, (f"{len(self.problems)} problem(s):\n  "
                                   + "\n  ".join(self.problems))


def load_fleet_rules() -> ModuleType:
    """deploy/prometheus/fleet_rules.py (the fleet rules generator) as a module."""
    path = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "fleet_rules.py"
    spec = importlib.util.spec_from_file_location("fleet_rules", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def in_process_app(tmp_path: Path, web_yml: str) -> App:
    """A started in-process ``App`` with one tiny model, served with the given web config."""
    import pandas as pd

    from exporter.app import App
    from exporter.config import parse_config
    from exporter.webconfig import load_web_config

    (tmp_path / "logs").mkdir(exist_ok=True)
    pd.DataFrame({"x": [float(i) for i in range(50)]}).to_parquet(tmp_path / "ref.parquet")
    config = parse_config({"models": [{
        "name": "m", "logs": {"path": str(tmp_path / "logs" / "*.jsonl")},
        "reference": {"path": str(tmp_path / "ref.parquet")},
        "features": [{"name": "x", "type": "numerical"}]}]}, base_dir=tmp_path)
    (tmp_path / "web.yml").write_text(web_yml)
    app = App(config, "127.0.0.1:0", load_web_config(tmp_path / "web.yml"))
    app.start()
    return app
