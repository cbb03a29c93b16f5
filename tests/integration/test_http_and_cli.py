"""The HTTP surface (SPEC 5) and the command line (SPEC 4)."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from harness import (
    STARTED,
    Exporter,
    append_lines,
    free_port,
    model_config,
    run_cli,
    start_exporter,
    value,
    write_config,
)
from logdata import (
    FEATURES,
    PREDICTION,
    clean_lines,
    live_columns,
    reference_frame,
    write_reference,
)
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

WINDOW = 300


def two_models(tmp_path: Path) -> dict[str, Any]:
    """``scoring`` has drifting ``gauss`` in its logs; ``fraud`` has no logs yet."""
    reference = write_reference(reference_frame(), tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    features = [{"name": f, "type": "numerical"} for f in FEATURES]
    return {"models": [
        model_config("scoring", logs / "scoring-*.jsonl", reference, features,
                     prediction={"column": PREDICTION}, window={"rows": WINDOW}),
        model_config("fraud", logs / "fraud-*.jsonl", reference, features[:2],
                     window={"rows": 50}),
    ]}


def with_drifting_logs(tmp_path: Path) -> dict[str, Any]:
    """The two-model config, with a full window of drifted records for ``scoring``."""
    cfg = two_models(tmp_path)
    columns = live_columns(np.random.default_rng(41), WINDOW, gauss_mean=90.0, score_a=2.0)
    append_lines(tmp_path / "logs" / "scoring-1.jsonl", clean_lines(columns))
    return cfg


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """One exporter for the read-only HTTP checks, with a full window of drifted records."""
    tmp_path = tmp_path_factory.mktemp("http")
    process = start_exporter(tmp_path, with_drifting_logs(tmp_path), free_port())
    try:
        process.wait_ready()
        process.wait_for_window("scoring", WINDOW, WINDOW)
        yield process
    finally:
        code, took = process.stop()
    assert code == 0, f"exit code {code} {took:.1f}s after SIGTERM:\n{process.stderr()}"


@pytest.fixture
def http(serving: Exporter, request: pytest.FixtureRequest) -> Exporter:
    """The shared exporter, registered so a failing test shows its stderr."""
    request.node.stash.setdefault(STARTED, []).append(serving)
    return serving


class TestHttp:
    def test_the_landing_page_names_each_model_its_window_and_drifting_features(
            self, http: Exporter) -> None:
        response = http.get("/")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")
        page = response.text
        assert "<html" in page.lower()
        assert "scoring" in page
        assert "fraud" in page
        assert version("drift-exporter") in page
        assert str(WINDOW) in page, "the window size of 'scoring'"
        assert "gauss" in page, "gauss drifts (mean 90 vs 50) and should be named"
        assert 'href="/metrics"' in page

    def test_health_and_readiness_answer_200_once_started(self, http: Exporter) -> None:
        assert http.get("/-/healthy").status_code == 200
        assert http.get("/-/ready").status_code == 200
        assert http.get("/no-such-page").status_code == 404

    def test_metrics_are_prometheus_text_by_default_and_openmetrics_when_asked(
            self, http: Exporter) -> None:
        plain = http.get("/metrics")
        assert plain.status_code == 200
        assert plain.headers["Content-Type"].startswith("text/plain")
        assert "version=0.0.4" in plain.headers["Content-Type"]

        accept = "application/openmetrics-text; version=1.0.0; charset=utf-8"
        om = http.get("/metrics", headers={"Accept": accept})
        assert om.status_code == 200
        assert om.headers["Content-Type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n")
        families = {f.name: f for f in openmetrics_families(om.text)}
        ingested = families["drift_rows_ingested"]
        assert ingested.type == "counter"
        samples = {(s.name, s.labels.get("model")): s.value for s in ingested.samples}
        assert samples[("drift_rows_ingested_total", "scoring")] == WINDOW
        assert families["drift_feature_ks_statistic"].type == "gauge"


class TestCommandLine:
    def test_version_prints_the_package_version(self) -> None:
        result = run_cli("--version")
        assert result.returncode == 0, result.stderr
        assert version("drift-exporter") in result.stdout + result.stderr

    def test_check_accepts_a_good_config(self, tmp_path: Path) -> None:
        config = write_config(tmp_path, with_drifting_logs(tmp_path))
        result = run_cli("check", f"--config.file={config}")
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr

    def test_check_lists_every_mistake_with_its_yaml_path(self, tmp_path: Path) -> None:
        cfg = two_models(tmp_path)
        scoring = cfg["models"][0]
        scoring["features"][1]["type"] = "numeric"
        scoring["window"] = {"rows": 0}
        scoring["update_interval"] = "soon"
        config = write_config(tmp_path, cfg)
        result = run_cli("check", f"--config.file={config}")
        assert result.returncode == 2, (result.stdout, result.stderr)
        for path in ("models[0].features[1].type", "models[0].window.rows",
                     "models[0].update_interval"):
            assert path in result.stderr, f"{path} not named in:\n{result.stderr}"
        assert "numeric" in result.stderr
        assert "Traceback" not in result.stderr

    def test_check_reports_a_configured_column_missing_from_the_logs(
            self, tmp_path: Path) -> None:
        cfg = two_models(tmp_path)
        append_lines(tmp_path / "logs" / "scoring-1.jsonl",
                     ['{"gauss": 1.0, "skewed": 2.0, "score": 0.5}'] * 3)
        config = write_config(tmp_path, cfg)
        result = run_cli("check", f"--config.file={config}")
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "models[0]" in result.stderr
        assert "counts" in result.stderr

    def test_run_with_a_missing_reference_is_a_usage_error(self, tmp_path: Path) -> None:
        cfg = two_models(tmp_path)
        cfg["models"][1]["reference"]["path"] = str(tmp_path / "nowhere.parquet")
        config = write_config(tmp_path, cfg)
        result = run_cli("run", f"--config.file={config}",
                         f"--web.listen-address=127.0.0.1:{free_port()}", timeout=30)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "models[1].reference.path" in result.stderr
        assert "nowhere.parquet" in result.stderr
        assert "Traceback" not in result.stderr

    @pytest.mark.parametrize("args", [
        (),
        ("run",),
        ("run", "--config.file=x.yaml", "--no-such-flag"),
        ("check", "--config.file=x.yaml", "--log.level=loud"),
        ("frobnicate",),
    ], ids=["no_command", "run_without_config", "unknown_flag", "bad_log_level",
            "unknown_command"])
    def test_a_usage_error_exits_2_with_a_message(self, args: tuple[str, ...]) -> None:
        result = run_cli(*args)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert result.stderr.strip()
        assert "Traceback" not in result.stderr

    def test_a_listen_address_in_use_is_a_runtime_failure(self, tmp_path: Path) -> None:
        config = write_config(tmp_path, two_models(tmp_path))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            result = run_cli("run", f"--config.file={config}",
                             f"--web.listen-address=127.0.0.1:{port}", timeout=30)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert str(port) in result.stderr or "in use" in result.stderr
        assert "Traceback" not in result.stderr

    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_a_stop_signal_ends_the_process_with_0_within_5_seconds(
            self, tmp_path: Path, sig: signal.Signals) -> None:
        process = start_exporter(tmp_path, with_drifting_logs(tmp_path), free_port())
        try:
            process.wait_ready()
            assert value(process.scrape(), "drift_window_rows", model="scoring") == WINDOW
            code, took = process.stop(sig)
        finally:
            process.stop(signal.SIGKILL)
        assert code == 0, f"exit code {code} after {sig.name}:\n{process.stderr()}"
        assert took < 5.0
        with pytest.raises(requests.ConnectionError):
            process.get("/-/healthy")
