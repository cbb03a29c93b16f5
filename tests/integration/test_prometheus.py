"""A real Prometheus scrapes the exporter (SPEC 1, 5): what it stores is what was served."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from harness import Exporter, Prometheus, append_lines, model_config, value, wait_until
from logdata import (
    FEATURES,
    PREDICTION,
    clean_lines,
    live_columns,
    reference_frame,
    write_reference,
)

ExporterFactory = Callable[..., Exporter]
PrometheusFactory = Callable[[Mapping[str, str]], Prometheus]
JOB = "drift"
MODEL = "scoring"

pytestmark = pytest.mark.slow


def test_prometheus_stores_the_ks_statistic_the_exporter_serves(
        tmp_path: Path, exporter: ExporterFactory, prometheus: PrometheusFactory) -> None:
    reference = write_reference(reference_frame(), tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    features = [{"name": f, "type": "numerical"} for f in FEATURES]
    cfg = model_config(MODEL, logs / "*.jsonl", reference, features,
                       prediction={"column": PREDICTION}, window={"rows": 300})
    append_lines(logs / "app.jsonl", clean_lines(live_columns(np.random.default_rng(61), 300)))
    process = exporter({"models": [cfg]})
    served = process.wait_for_window(MODEL, 300, 300)
    expected = value(served, "drift_feature_ks_statistic", model=MODEL, feature="gauss")
    assert expected is not None

    server = prometheus({JOB: f"127.0.0.1:{process.port}"})
    query = f'drift_feature_ks_statistic{{job="{JOB}",model="{MODEL}",feature="gauss"}}'

    def stored() -> float | None:
        result = server.query(query)
        return float(result[0]["value"][1]) if result else None

    wait_until(lambda: stored() == expected, 20.0,
               what=f"{query} == {expected} in Prometheus")
    up = server.query(f'up{{job="{JOB}"}}')
    assert len(up) == 1
    assert up[0]["value"][1] == "1"
    ingested = server.query(f'drift_rows_ingested_total{{job="{JOB}",model="{MODEL}"}}')
    assert [float(r["value"][1]) for r in ingested] == [300.0]
