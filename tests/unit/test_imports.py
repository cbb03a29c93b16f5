"""The exporter's resident memory: what it imports at start and while following logs.

scipy.stats (~46 MiB of RSS) and pandas (~31 MiB) load only for what needs them: exact KS
p-values of small windows' drift gauges (the drift alarm computes its own exact p-values);
CSV/JSONL references, labels, versions, text timestamps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PIPELINE = """
import json, sys, time
import numpy as np, polars as pl
import exporter.app, exporter.cli
from exporter.config import parse_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.sources import ModelSource, feed
from exporter.snapshot import compute
from exporter.stats.chi2 import chi2_pvalue
from exporter.stats.calibration import gamma_tail
from exporter.stats.ks import ks_pvalue
from exporter.thresholds import Thresholds

base = sys.argv[1]
drift = sys.argv[2] == "drift"  # else the records are drawn like the reference
shift, cities = (0.2, ["a", "b", "d"]) if drift else (0.0, ["a", "b", "c"])
rng = np.random.default_rng(0)
n = 20_000
# polars writes the reference: pyarrow's pa.table() of numpy arrays itself imports pandas
pl.DataFrame({"x": rng.normal(size=n), "score": rng.random(n),
              "city": rng.choice(["a", "b", "c"], n).tolist()}).write_parquet(f"{base}/ref.parquet")
with open(f"{base}/app.jsonl", "w") as out:
    for i in range(n):
        out.write(json.dumps({"x": float(rng.normal(shift)), "score": float(rng.random()),
                              "city": str(rng.choice(cities)), "ts": 1.7e9 + i}) + "\\n")
data = {"models": [{"name": "m", "logs": {"path": f"{base}/*.jsonl"},
                    "reference": {"path": f"{base}/ref.parquet"}, "timestamp_column": "ts",
                    "features": [{"name": "x", "type": "numerical"},
                                 {"name": "city", "type": "categorical", "statistic": "chi2"}],
                    "prediction": {"column": "score", "type": "numerical"},
                    "window": {"rows": 15_000}}]}
model = parse_config(data, base_dir=base).models[0]
pipeline = ModelPipeline(model, load_reference(model))
source = ModelSource.of(pipeline)
source.reader.follower.start(None, None)
while feed(source, pipeline, time.time):
    pass
view = pipeline.window.view(time.time())
snapshot = compute(view, pipeline.profile, model, Thresholds(model.name, pipeline.profile.rows))
assert "ks" in snapshot.features[0].scores and "chi2" in snapshot.features[1].scores
for d in (0.0, 0.0005, 0.004, 0.02, 0.3, 0.7):  # every branch a 100k-row window takes
    ks_pvalue(d, 100_000, 100_000)
    ks_pvalue(d, 100_000, 20_000)
chi2_pvalue(np.array([50, 30]), np.array([40, 45]))
gamma_tail(np.array([0.1, 0.2, 0.4]))
print(sorted(m for m in ("pandas", "scipy.stats") if m in sys.modules))
"""


def test_following_a_jsonl_log_against_a_parquet_reference_loads_neither_pandas_nor_scipy_stats(
        tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PIPELINE, str(tmp_path), "null"],
                         capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_following_a_drifting_log_loads_neither_pandas_nor_scipy_stats(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PIPELINE, str(tmp_path), "drift"],
                         capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_small_window_imports_scipy_stats_for_its_exact_pvalue() -> None:
    script = ("import sys\nfrom exporter.stats.ks import ks_pvalue\n"
              "ks_pvalue(0.1, 300, 200)\nprint('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "True"
