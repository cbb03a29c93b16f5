"""``drift-exporter demo``: a generated reference, a simulated model appending predictions with
drift after a while, and the exporter running on them."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from exporter.app import App
from exporter.config import parse_config

log = logging.getLogger(__name__)

REFERENCE_ROWS = 30_000  # 25,000 or more: the alarm is dependable with this one reference
BATCH = 20
BATCH_SECONDS = 0.1
FEATURES = ("income", "age", "debt_ratio", "tenure_months", "session_seconds")


def generate(rng: np.random.Generator, rows: int, drifted: bool) -> pd.DataFrame:
    """Loan-scoring inputs with different shapes; ``drifted`` shifts income and debt_ratio."""
    income = rng.lognormal(mean=10.8 + (0.35 if drifted else 0.0), sigma=0.45, size=rows)
    age = np.clip(rng.normal(41, 12, size=rows), 18, 90).round()
    debt = rng.beta(2.0, 5.0 if not drifted else 2.5, size=rows)
    tenure = rng.poisson(36, size=rows).astype(float)
    session = rng.exponential(120.0, size=rows)
    logit = 0.8 * (np.log(income) - 10.8) - 3.0 * (debt - 0.3) + 0.01 * (age - 41)
    score = 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame({"income": income, "age": age, "debt_ratio": debt,
                         "tenure_months": tenure, "session_seconds": session,
                         "score": score})


def demo_config(directory: Path) -> dict[str, object]:
    """The demo's model config (the same shape as config/example.yaml)."""
    return {"models": [{
        "name": "loan-scoring",
        "logs": {"path": str(directory / "logs" / "*.jsonl")},
        "reference": {"path": str(directory / "reference.parquet")},
        "features": [{"name": f, "type": "numerical"} for f in FEATURES],
        "prediction": {"column": "score", "type": "numerical"},
        "timestamp_column": "timestamp",
        "id_column": "request_id",
        "window": {"rows": 2000},
        "update_interval": "2s",
        # The default, spelled out: the alarm pages once the drift starts, and a false alarm
        # comes about once a month (SPEC 6.9), so never during a demo.
        "alarm": {"false_alarm_every": "30d"},
    }]}


class SimulatedModel(threading.Thread):
    """Appends small batches of predictions; inputs drift after ``drift_after`` seconds."""

    def __init__(self, path: Path, drift_after: float, stop: threading.Event) -> None:
        super().__init__(name="simulated-model", daemon=True)
        self.path = path
        self.drift_after = drift_after
        self.stop_event = stop
        self.rng = np.random.default_rng(7)

    def run(self) -> None:
        started = time.time()
        request = 0
        with open(self.path, "a", encoding="utf-8") as out:
            while not self.stop_event.wait(BATCH_SECONDS):
                drifted = time.time() - started >= self.drift_after
                frame = generate(self.rng, BATCH, drifted)
                lines = []
                for row in frame.to_dict("records"):
                    request += 1
                    row["timestamp"] = time.time()
                    row["request_id"] = f"req-{request}"
                    lines.append(json.dumps(row))
                out.write("\n".join(lines) + "\n")
                out.flush()


def run_demo(listen: str, directory: str | None, drift_after: float) -> int:
    """Generate the data, start the simulated model and the exporter; block until a signal."""
    base = Path(directory or tempfile.mkdtemp(prefix="drift-exporter-demo-"))
    (base / "logs").mkdir(parents=True, exist_ok=True)
    generate(np.random.default_rng(1), REFERENCE_ROWS, False).to_parquet(
        base / "reference.parquet", index=False)
    config = parse_config(demo_config(base), base_dir=base)
    stop = threading.Event()
    model = SimulatedModel(base / "logs" / "predictions.jsonl", drift_after, stop)
    model.start()
    app = App(config, listen)
    host = app.web.host
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{app.web.port}"
    print(f"""drift-exporter demo
  data:    {base}
  metrics: {url}/metrics   (landing page: {url}/)
  inputs 'income' and 'debt_ratio' start to drift after {drift_after:g}s.
The drift alarm (drift_alarm) stays 0 until then and is raised soon after.
Try in Prometheus (scraping {url}):
  drift_alarm{{model="loan-scoring"}}
  drift_feature_alarm{{model="loan-scoring"}} == 1
  drift_feature_drift_detected{{model="loan-scoring"}}
  drift_feature_ks_statistic{{model="loan-scoring", feature="income"}}
  drift_dataset_drift_share{{model="loan-scoring"}}
Press Ctrl-C to stop.""", flush=True)
    try:
        return app.run_until_signalled()
    finally:
        stop.set()
        model.join(timeout=2)
