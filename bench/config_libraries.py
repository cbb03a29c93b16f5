"""Why the config schema is a small table of our own: the start-up cost of validating a config.

Each candidate validates the same one-model config in a fresh process (after `yaml` and
`exporter.tables`, which the config module needs anyway, and with the .pyc files already
written): the CPU time of importing the validator, declaring the schema and validating, and
the resident memory it adds. Candidates whose library is not installed are skipped.

    python bench/config_libraries.py [--runs 15]

Measured 2026-12 on the 2-core VM (median of 15; exporter `import exporter.app` is ~0.5 s):
declarative table 8.2 ms / +0.6 MiB, msgspec 0.23 6.6 ms / +1.1 MiB (stops at the first
problem), jsonschema 4.26 39 ms / +4.0 MiB, pydantic 2.13 87 ms / +11.5 MiB; the hand-written
engine it replaced 7.7 ms / +0.55 MiB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

SAMPLE = """{"models": [{"name": "car-loan", "logs": {"path": "/logs/*.jsonl"},
 "reference": {"path": REF},
 "features": [{"name": "a", "type": "numerical"},
              {"name": "b", "type": "categorical", "statistic": "chi2", "threshold": 0.01}],
 "prediction": {"column": "p", "type": "numerical"},
 "label": {"column": "y", "task": "classification"},
 "window": {"rows": 5000}, "update_interval": "5s",
 "drift": {"numerical": {"statistic": "ks", "threshold": "auto"}, "min_rows": 100,
           "dataset_share": 0.5, "bins": 10},
 "max_categories": 20, "max_versions": 3, "fleet": {"buckets": 20}}]}"""

PRE = """
import sys, time
def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
import yaml, exporter.tables
REF = sys.argv[1]
data = """ + SAMPLE + """
r0 = rss(); t0 = time.process_time()
"""
POST = """
t1 = time.process_time(); r1 = rss()
print(f"{(t1 - t0) * 1000:.2f} {r1 - r0:.2f}")
"""

_STAT = '["ks", "psi", "wasserstein", "jensen_shannon", "chi2"]'

CANDIDATES = {
    "declarative table (exporter.config)": """
from exporter.config import parse_config
parse_config(data, check_reference=False)
""",
    "jsonschema": """
import jsonschema
S = {"type": "string", "minLength": 1}
STAT = {"enum": """ + _STAT + """}
TH = {"anyOf": [{"const": "auto"}, {"type": "number", "exclusiveMinimum": 0}]}
def obj(props, required=()):
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": list(required)}
def integer(minimum):
    return {"type": "integer", "minimum": minimum}
formats = {"enum": ["jsonl", "parquet"]}
types = {"enum": ["numerical", "categorical"]}
model = obj({
    "name": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]+$"},
    "logs": obj({"path": S, "format": formats, "max_line_bytes": integer(1024)}, ["path"]),
    "reference": obj({"path": S}, ["path"]),
    "features": {"type": "array", "minItems": 1, "items": obj(
        {"name": S, "type": types, "statistic": STAT, "threshold": TH}, ["name", "type"])},
    "prediction": obj({"column": S, "type": types, "statistic": STAT, "threshold": TH},
                      ["column"]),
    "label": obj({"column": S, "task": {"enum": ["classification", "regression"]},
                  "threshold": {"type": "number"},
                  "feedback": obj({"path": S, "format": formats}, ["path"])},
                 ["column", "task"]),
    "id_column": S, "version_column": S, "timestamp_column": S,
    "window": obj({"rows": integer(1), "duration": {"type": "string"}}),
    "update_interval": {"type": "string"},
    "drift": obj({"numerical": obj({"statistic": STAT, "threshold": TH}),
                  "categorical": obj({"statistic": STAT, "threshold": TH}),
                  "min_rows": integer(1), "bins": integer(2),
                  "dataset_share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}),
    "max_categories": integer(1), "max_versions": integer(1),
    "fleet": obj({"buckets": integer(2)}),
}, ["name", "logs", "reference", "features"])
schema = obj({"models": {"type": "array", "minItems": 1, "items": model}}, ["models"])
assert not list(jsonschema.Draft202012Validator(schema).iter_errors(data))
""",
}

# pydantic and msgspec take the same class declarations, spelled with their own field metadata.
_CLASSES = """
Stat = Literal""" + _STAT + """
Kind = Literal["numerical", "categorical"]
Format = Literal["jsonl", "parquet"]
NE = Annotated[str, M(min_length=1)]
Threshold = Literal["auto"] | float | None
class Logs(B):
    path: NE
    format: Format | None = None
    max_line_bytes: Annotated[int, M(ge=1024)] = 1048576
class Reference(B):
    path: NE
class Feature(B):
    name: NE
    type: Kind
    statistic: Stat | None = None
    threshold: Threshold = None
class Prediction(B):
    column: NE
    type: Kind = "numerical"
    statistic: Stat | None = None
    threshold: Threshold = None
class Feedback(B):
    path: NE
    format: Format | None = None
class Label(B):
    column: NE
    task: Literal["classification", "regression"]
    threshold: float = 0.5
    feedback: Feedback | None = None
class Window(B):
    rows: Annotated[int, M(ge=1)] | None = None
    duration: str | None = None
class StatisticDefault(B):
    statistic: Stat | None = None
    threshold: Threshold = None
class Drift(B):
    numerical: StatisticDefault | None = None
    categorical: StatisticDefault | None = None
    min_rows: Annotated[int, M(ge=1)] = 100
    dataset_share: Annotated[float, M(gt=0, le=1)] = 0.5
    bins: Annotated[int, M(ge=2)] = 10
class Fleet(B):
    buckets: Annotated[int, M(ge=2)] = 20
class Model(B):
    name: Annotated[str, M(pattern=r"^[A-Za-z0-9_.:-]+$")]
    logs: Logs
    reference: Reference
    features: Annotated[list[Feature], M(min_length=1)]
    prediction: Prediction | None = None
    label: Label | None = None
    id_column: NE | None = None
    version_column: NE | None = None
    timestamp_column: NE | None = None
    window: Window | None = None
    update_interval: str = "5s"
    drift: Drift | None = None
    max_categories: Annotated[int, M(ge=1)] = 20
    max_versions: Annotated[int, M(ge=1)] = 3
    fleet: Fleet | None = None
class Root(B):
    models: Annotated[list[Model], M(min_length=1)]
"""
CANDIDATES["pydantic"] = """
from typing import Annotated, Literal
from pydantic import BaseModel, ConfigDict, Field as M
class B(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
""" + _CLASSES + """
Root.model_validate(data)
"""
CANDIDATES["msgspec (first problem only)"] = """
from typing import Annotated, Literal
import msgspec
from msgspec import Meta as M
class B(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass
""" + _CLASSES + """
msgspec.convert(data, Root)
"""


def main() -> int:
    """Print the median CPU time and added RSS of each candidate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reference = os.path.join(tmp, "ref.parquet")
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": [1.0], "b": ["x"], "p": [0.1]}), reference)
        # The .pyc files are written once, outside the work tree, as an installed package has.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        print(f"{'candidate':38} {'CPU ms':>8} {'x table':>8} {'+RSS MiB':>9}")
        baseline = None
        for name, body in CANDIDATES.items():
            command = [sys.executable, "-c", PRE + body + POST, reference]
            subprocess.run(command, capture_output=True, env=env, check=False)
            runs = [subprocess.run(command, capture_output=True, text=True, env=env, check=False)
                    for _ in range(args.runs)]
            if runs[0].returncode:
                print(f"{name:38} skipped: {runs[0].stderr.strip().splitlines()[-1]}")
                continue
            cpu = statistics.median(float(r.stdout.split()[0]) for r in runs)
            rss = statistics.median(float(r.stdout.split()[1]) for r in runs)
            baseline = baseline or cpu
            print(f"{name:38} {cpu:8.1f} {cpu / baseline:8.1f} {rss:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
