"""``drift-exporter init`` (SPEC 4): a config inferred from the reference that ``check`` and
``run`` accept as printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from harness import Exporter, append_lines, jsonl_line, run_cli

ExporterFactory = Callable[..., Exporter]
ROWS = 300


def reference() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({
        "request_id": [f"req-{i}" for i in range(ROWS)],
        "timestamp": pd.date_range("2026-01-01", periods=ROWS, freq="min").strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "car_value": rng.normal(20_000, 4_000, ROWS),
        "doors": rng.integers(2, 6, ROWS),
        "owner": rng.random(ROWS) < 0.5,
        "color": rng.choice(["red", "blue", "green"], ROWS),
        "y_pred_proba": rng.random(ROWS),
        "repaid": rng.integers(0, 2, ROWS),
    })


def write_reference(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    return path


def log_records(count: int) -> list[str]:
    rng = np.random.default_rng(6)
    return [jsonl_line({"request_id": f"live-{i}", "timestamp": "2026-12-06T10:00:00Z",
                        "car_value": float(rng.normal(20_000, 4_000)),
                        "doors": int(rng.integers(2, 6)), "owner": bool(rng.random() < 0.5),
                        "color": "red", "y_pred_proba": float(rng.random())})
            for i in range(count)]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_check_accepts_the_config_init_prints(tmp_path: Path, suffix: str) -> None:
    ref = write_reference(reference(), tmp_path / f"car-loan{suffix}")
    logs = tmp_path / "logs"
    logs.mkdir()
    append_lines(logs / "app.jsonl", log_records(20))
    result = run_cli("init", f"--reference={ref}", f"--logs={logs}/*.jsonl",
                     "--prediction=y_pred_proba", "--label=repaid")
    assert result.returncode == 0, result.stderr
    config = tmp_path / "config.yaml"
    config.write_text(result.stdout)
    model = yaml.safe_load(result.stdout)["models"][0]
    assert model["name"] == "car-loan"
    assert [f["name"] for f in model["features"]] == ["car_value", "doors", "owner", "color"]
    assert model["timestamp_column"] == "timestamp"
    assert model["id_column"] == "request_id"
    checked = run_cli("check", f"--config.file={config}")
    assert checked.returncode == 0, checked.stderr
    assert "config OK" in checked.stdout


def test_run_serves_the_config_init_prints(tmp_path: Path, exporter: ExporterFactory) -> None:
    ref = write_reference(reference(), tmp_path / "car-loan.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    append_lines(logs / "app.jsonl", log_records(150))
    result = run_cli("init", f"--reference={ref}", f"--logs={logs}/*.jsonl", "--name=loans",
                     "--prediction=y_pred_proba")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    config["models"][0]["update_interval"] = "200ms"
    process = exporter(config)
    process.wait_for_window("loans", 150, 150)


def test_a_prediction_column_missing_from_the_reference_is_a_usage_error(
        tmp_path: Path) -> None:
    ref = write_reference(reference(), tmp_path / "ref.parquet")
    result = run_cli("init", f"--reference={ref}", "--prediction=proba")
    assert result.returncode == 2
    assert "--prediction: column 'proba' is not in the reference" in result.stderr
    assert result.stdout == ""


def test_an_unreadable_reference_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("init", f"--reference={tmp_path / 'missing.parquet'}")
    assert result.returncode == 2
    assert "missing.parquet" in result.stderr
    result = run_cli("init")
    assert result.returncode == 2
    assert "--reference" in result.stderr
