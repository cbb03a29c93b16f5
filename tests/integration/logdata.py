"""Small generated data sets: references in each format and messy JSONL prediction logs.

A messy log writes each value in one of the ways SPEC 2 allows (number, numeric string, null,
absent key, NaN token) or as an invalid value, and remembers what each cell means: the number,
or NaN for missing/invalid, plus the count of invalid values per column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from harness import jsonl_line
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# Values that are invalid in a numerical column (SPEC 2): counted, then treated as missing.
INVALID_VALUES: tuple[object, ...] = ("abc", math.inf, -math.inf, True, [1.0], {"x": 1}, "")
FEATURES = ("gauss", "skewed", "counts")
PREDICTION = "score"
REFERENCE_ROWS = 2000
MALFORMED_LINES = ('{"gauss": 1.0, "skewed": ', "[1, 2, 3]", "not json at all")


def reference_frame(seed: int = 1, rows: int = REFERENCE_ROWS) -> pd.DataFrame:
    """Three numerical features of different shapes and a score; a few missing cells."""
    rng = np.random.default_rng(seed)
    n = rows
    frame = pd.DataFrame({
        "gauss": np.round(rng.normal(50.0, 10.0, n), 6),
        "skewed": np.round(rng.exponential(2.0, n), 6),
        "counts": rng.poisson(3.0, n).astype(np.float64),  # many ties: duplicate bin edges
        PREDICTION: np.round(rng.beta(2.0, 5.0, n), 6),
    })
    frame.loc[rng.choice(n, 40, replace=False), "gauss"] = np.nan
    frame.loc[rng.choice(n, 10, replace=False), PREDICTION] = np.nan
    return frame


def live_columns(rng: np.random.Generator, n: int, *, gauss_mean: float = 58.0,
                 skewed_scale: float = 2.0, counts_mean: float = 3.0,
                 score_a: float = 2.6) -> dict[str, FloatArray]:
    """Production data; by default ``gauss`` and the score shift, the others do not."""
    return {
        "gauss": rng.normal(gauss_mean, 10.0, n),
        "skewed": rng.exponential(skewed_scale, n),
        "counts": rng.poisson(counts_mean, n).astype(np.float64),
        PREDICTION: rng.beta(score_a, 5.0, n),
    }


def write_reference(frame: pd.DataFrame, path: Path) -> Path:
    """Write a reference in the format its extension names (missing cells stay missing)."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        with path.open("w") as handle:
            for row in frame.to_dict(orient="records"):
                present = {k: v for k, v in row.items()
                           if not (isinstance(v, float) and math.isnan(v))}
                handle.write(json.dumps(present) + "\n")
    else:
        msg = f"no writer for {path}"
        raise ValueError(msg)
    return path


@dataclass
class MessyLog:
    """JSONL lines and the meaning of every record in them."""

    lines: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    records: int = 0
    malformed: int = 0

    def column(self, name: str) -> FloatArray:
        """What the exporter should see for a column, record by record (NaN = missing)."""
        return np.asarray(self.values[name], dtype=np.float64)

    def window(self, name: str, rows: int) -> FloatArray:
        """The last ``rows`` records of a column: the SPEC's rows window."""
        return self.column(name)[-rows:]


def _messy_cell(rng: np.random.Generator, number: float,
                integral: bool) -> tuple[bool, object, float, bool]:
    """(present?, JSON value, meaning, invalid?) for one cell."""
    roll = rng.random()
    if roll < 0.04:
        return False, None, math.nan, False  # absent key
    if roll < 0.06:
        return True, None, math.nan, False  # null
    if roll < 0.08:
        return True, math.nan, math.nan, False  # NaN token
    if roll < 0.13:
        text = str(int(number)) if integral else repr(number)
        return True, text, float(text), False  # numeric string
    if roll < 0.14:
        bad = INVALID_VALUES[int(rng.integers(len(INVALID_VALUES)))]
        return True, bad, math.nan, True
    return True, (int(number) if integral else number), number, False


def messy_log(rng: np.random.Generator, columns: Mapping[str, FloatArray],
              integral: Sequence[str] = (), extra: Mapping[str, Any] | None = None,
              malformed_every: int = 0, log: MessyLog | None = None) -> MessyLog:
    """Append records built from ``columns`` (equal lengths) to ``log`` with messy values.

    ``malformed_every`` > 0 inserts a malformed line before every that many records.
    """
    log = log or MessyLog()
    for name in columns:
        log.values.setdefault(name, [])
        log.invalid.setdefault(name, 0)
    size = len(next(iter(columns.values())))
    for i in range(size):
        if malformed_every and i % malformed_every == malformed_every // 2:
            log.lines.append(MALFORMED_LINES[log.malformed % len(MALFORMED_LINES)])
            log.malformed += 1
        record: dict[str, Any] = {"request_id": f"r{log.records}", "unused": {"k": [1, 2]}}
        for name, data in columns.items():
            present, raw, meaning, bad = _messy_cell(rng, float(data[i]), name in integral)
            if present:
                record[name] = raw
            log.values[name].append(meaning)
            log.invalid[name] += int(bad)
        record.update(extra or {})
        log.lines.append(jsonl_line(record))
        log.records += 1
    return log


def clean_lines(columns: Mapping[str, FloatArray], start: int = 0) -> list[str]:
    """Plain JSONL lines, one record per row of ``columns``."""
    size = len(next(iter(columns.values())))
    return [jsonl_line({"request_id": f"r{start + i}",
                        **{k: float(v[i]) for k, v in columns.items()}}) for i in range(size)]
