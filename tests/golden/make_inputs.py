"""Write the golden tests' inputs (tests/golden/input/): a reference and prediction logs.

The inputs are committed; this script only documents how they were made. Rerunning it must
write the same bytes (seeded); change it only on purpose, then regenerate the goldens
(tests/golden/README.md).

    python3 tests/golden/make_inputs.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

INPUT = Path(__file__).resolve().parent / "input"
START = 1_767_225_600  # 2026-01-01T00:00:00Z: every record carries its own fixed timestamp
COLOURS = ("red", 'say "hi"\\', "green", "blue", "violet")  # a quote and a backslash on purpose


def _reference(rng: np.random.Generator, n: int = 200) -> pd.DataFrame:
    x = rng.normal(0.0, 1.0, n)
    p = 1 / (1 + np.exp(-2 * x))
    frame = pd.DataFrame({
        "n_ks": rng.normal(10.0, 2.0, n),
        "n_psi": rng.exponential(3.0, n),
        "n_wasserstein": rng.normal(0.0, 1.0, n),
        "n_js": rng.uniform(0.0, 5.0, n),
        "sparse": rng.normal(1.0, 1.0, n),
        "c_js": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        "c_psi": rng.choice(["x", "y"], n),
        "c_chi2": rng.choice(COLOURS, n, p=[0.4, 0.25, 0.15, 0.12, 0.08]),
        "p": p,
        "y": (rng.random(n) < p).astype(int),
        "pred": np.where(x > 0.3, "cat", np.where(x < -0.6, "dog", "bird")),
        "yhat": 3 * x,
        "target": 3 * x + rng.normal(0.0, 0.5, n),
    })
    frame["truth"] = np.where(rng.random(n) < 0.8, frame["pred"], "dog")
    return frame.round(4)


def _scoring(rng: np.random.Generator, n: int = 120) -> list[dict[str, Any]]:
    """Drifted numbers, an unseen category, invalid values, unlabelled records."""
    x = rng.normal(0.4, 1.0, n)
    p = np.round(1 / (1 + np.exp(-2 * x)), 4)
    records: list[dict[str, Any]] = []
    for i in range(n):
        record: dict[str, Any] = {
            "ts": START + 10 * i,
            "n_ks": round(float(rng.normal(11.0, 2.0)), 4),
            "n_psi": round(float(rng.exponential(3.0)), 4),
            "n_wasserstein": round(float(rng.normal(0.8, 1.0)), 4),
            "n_js": round(float(rng.uniform(0.0, 6.0)), 4),
            "c_js": str(rng.choice(["a", "b", "c", "d"], p=[0.4, 0.3, 0.2, 0.1])),
            "c_psi": str(rng.choice(["x", "y"])),
            "c_chi2": str(rng.choice(COLOURS, p=[0.2, 0.2, 0.2, 0.2, 0.2])),
            "p": float(p[i]),
            "y": int(rng.random() < p[i]) if i % 4 else None,
        }
        if i % 12 == 0:
            record["sparse"] = round(float(rng.normal(1.0, 1.0)), 4)  # too few for drift
        records.append(record)
    records[5]["n_psi"] = "abc"  # invalid values: counted, then missing
    records[17]["n_js"] = True
    records[29]["n_wasserstein"] = math.inf  # the Infinity token
    records[41]["c_psi"] = None
    return records


def _classes(rng: np.random.Generator, n: int = 60) -> list[dict[str, Any]]:
    """A categorical prediction with its label."""
    records = []
    for i in range(n):
        x = float(rng.normal(0.0, 1.0))
        pred = "cat" if x > 0.3 else "dog" if x < -0.6 else "bird"
        truth = pred if rng.random() < 0.7 else str(rng.choice(["cat", "dog", "bird"]))
        records.append({"ts": START + 30 * i, "n_ks": round(rng.normal(10.0, 2.0), 4),
                        "pred": pred, "truth": truth})
    return records


def _versioned(rng: np.random.Generator, n: int = 80) -> list[dict[str, Any]]:
    """Two model versions, RFC 3339 timestamps, a regression label."""
    records = []
    for i in range(n):
        version = "v1" if i < n // 2 or i % 3 else "v2"
        x = float(rng.normal(0.0 if version == "v1" else 0.5, 1.0))
        stamp = pd.Timestamp(START + 15 * i, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        records.append({"ts": stamp, "v": version, "n_wasserstein": round(x, 4),
                        "yhat": round(3 * x, 4),
                        "target": round(3 * x + float(rng.normal(0.0, 0.7)), 4)})
    return records


def _write_jsonl(path: Path, records: list[dict[str, Any]], extra: dict[int, str]) -> None:
    lines = [json.dumps(r) for r in records]
    for position, line in sorted(extra.items(), reverse=True):
        lines.insert(position, line)
    path.write_text("".join(f"{line}\n" for line in lines))


def main() -> None:
    """Write the reference and the logs."""
    rng = np.random.default_rng(20261206)
    (INPUT / "logs").mkdir(parents=True, exist_ok=True)
    _reference(rng).to_csv(INPUT / "reference.csv", index=False)
    _write_jsonl(INPUT / "logs" / "scoring.jsonl", _scoring(rng),
                 {30: '{"n_ks": 1.0, "n_psi": ', 60: "[1, 2, 3]"})
    _write_jsonl(INPUT / "logs" / "classes.jsonl", _classes(rng), {})
    _write_jsonl(INPUT / "logs" / "versioned.jsonl", _versioned(rng), {})


if __name__ == "__main__":
    main()
