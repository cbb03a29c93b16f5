"""``promtool check metrics`` on a real scrape (SPEC 5): no errors and no lint findings."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
from harness import Exporter, append_lines, model_config
from logdata import (
    FEATURES,
    PREDICTION,
    live_columns,
    messy_log,
    reference_frame,
    write_reference,
)

ExporterFactory = Callable[..., Exporter]


def test_a_real_scrape_passes_promtool_check_metrics_without_findings(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not on PATH"
    reference = write_reference(reference_frame(), tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    features = [{"name": f, "type": "numerical"} for f in FEATURES]
    cfg = {"models": [
        model_config("scoring", logs / "scoring.jsonl", reference, features,
                     prediction={"column": PREDICTION}, window={"rows": 300}),
        model_config("idle", logs / "idle-*.jsonl", reference, features[:1]),
    ]}
    process = exporter(cfg)
    rng = np.random.default_rng(51)
    log = messy_log(rng, live_columns(rng, 400), integral=("counts",), malformed_every=150)
    append_lines(logs / "scoring.jsonl", log.lines)
    process.wait_for_window("scoring", log.records, 300)

    exposition = process.scrape_text()
    assert "drift_feature_ks_statistic" in exposition
    result = subprocess.run([promtool, "check", "metrics"], input=exposition,
                            capture_output=True, text=True, timeout=30, check=False)
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, findings
    assert findings == "", f"promtool check metrics reported:\n{findings}"
