"""Generate the benchmark data set (deterministic, seeded) under ``bench/data/``.

Writes:

* ``predictions.jsonl``: 1,000,000 prediction records (about 600 MB), one JSON object per line:
  ``request_id``, ``timestamp`` (epoch seconds), 20 numerical features of mixed shapes, 5
  categorical features (string values, 3 to 30 categories) and a numerical prediction ``score``.
* ``reference.parquet``: 100,000 records with the same columns, drawn from the same distributions
  (another seed), as the model's reference.
* ``bench.yaml``: the exporter config (window of 100,000 rows, the 20 numerical and 5 categorical
  features, the numerical prediction, ``update_interval: 1s``), following ``logs/*.jsonl``.
* ``manifest.json``: the generator's parameters and the files' sizes. A later run skips
  generation when the manifest matches the parameters and every file has its recorded size.

Writing is vectorised: columns are drawn with numpy and written by polars (``write_ndjson``,
``write_parquet``); no Python loop runs per row.

    python bench/generate.py [--data-dir bench/data] [--rows 1000000] [--force]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

GENERATOR_VERSION = 2  # bump when the data changes shape, so old files are regenerated
LOG_ROWS = 1_000_000
REFERENCE_ROWS = 100_000
WINDOW_ROWS = 100_000
LOG_SEED = 20261123
REFERENCE_SEED = 20261124
TIMESTAMP_BASE = 1_767_225_600.0  # 2026-01-01T00:00:00Z
RECORDS_PER_SECOND = 10.0

DATA_DIR = Path(__file__).resolve().parent / "data"
LOG_NAME = "predictions.jsonl"
REFERENCE_NAME = "reference.parquet"
CONFIG_NAME = "bench.yaml"
MANIFEST_NAME = "manifest.json"
MODEL_NAME = "bench"
LOG_DIR_NAME = "logs"  # the exporter follows logs/*.jsonl; catch_up.py fills it

Draw = Callable[[np.random.Generator, int], Any]

# name -> how to draw n values. Shapes: normal, lognormal, exponential, integer-valued with ties
# (written as JSON integers), uniform. Some columns are rounded as real logs often are (amounts in
# cents, rates to 4 decimals), which adds ties and keeps the file near 600 MB.
NUMERICAL: dict[str, Draw] = {
    "norm_0": lambda r, n: np.round(r.normal(50.0, 10.0, n), 3),
    "norm_1": lambda r, n: r.normal(0.0, 1.0, n),
    "norm_2": lambda r, n: np.round(r.normal(-3.0, 0.5, n), 4),
    "norm_3": lambda r, n: np.round(r.normal(1000.0, 250.0, n), 2),
    "lognorm_0": lambda r, n: r.lognormal(0.0, 0.5, n),
    "lognorm_1": lambda r, n: np.round(r.lognormal(3.0, 1.0, n), 2),
    "lognorm_2": lambda r, n: np.round(r.lognormal(8.0, 0.7, n), 2),
    "lognorm_3": lambda r, n: r.lognormal(-1.0, 1.5, n),
    "expo_0": lambda r, n: r.exponential(1.0, n),
    "expo_1": lambda r, n: np.round(r.exponential(30.0, n), 3),
    "expo_2": lambda r, n: r.exponential(0.2, n),
    "int_pois_0": lambda r, n: r.poisson(3.0, n),
    "int_pois_1": lambda r, n: r.poisson(40.0, n),
    "int_binom": lambda r, n: r.binomial(10, 0.3, n),
    "int_unif": lambda r, n: r.integers(18, 91, n),
    "int_geom": lambda r, n: r.geometric(0.2, n),
    "unif_0": lambda r, n: np.round(r.uniform(0.0, 1.0, n), 6),
    "unif_1": lambda r, n: np.round(r.uniform(-100.0, 100.0, n), 4),
    "unif_2": lambda r, n: np.round(r.uniform(0.0, 1e6, n), 2),
    "unif_3": lambda r, n: r.uniform(5.0, 6.0, n),
}

# name -> category labels; frequencies fall off like a Zipf law (1 / (k+1)^1.1).
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "cat_risk": ("low", "medium", "high"),
    "cat_channel": ("web", "mobile_app", "branch", "phone", "partner", "email", "kiosk"),
    "cat_region": tuple(f"region-{k:02d}" for k in range(12)),
    "cat_product": tuple(f"product_{k:02d}" for k in range(20)),
    "cat_merchant": tuple(f"merchant-{chr(65 + k % 26)}{k:02d}" for k in range(30)),
}
PREDICTION = "score"
TIMESTAMP = "timestamp"
REQUEST_ID = "request_id"


def columns(rows: int, seed: int, id_prefix: str, time_base: float) -> pl.DataFrame:
    """Draw one data set: id, timestamp, numerical and categorical features, prediction."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {
        REQUEST_ID: pl.int_range(0, rows, eager=True).cast(pl.String).str.zfill(9),
        TIMESTAMP: np.round(time_base + np.arange(rows) / RECORDS_PER_SECOND, 3),
    }
    for name, draw in NUMERICAL.items():
        data[name] = draw(rng, rows)
    for name, labels in CATEGORICAL.items():
        weights = 1.0 / np.arange(1, len(labels) + 1) ** 1.1
        codes = rng.choice(len(labels), size=rows, p=weights / weights.sum())
        data[name] = np.asarray(labels, dtype=object)[codes]
    # A plausible model score: logistic in a few standardised features plus noise.
    z = (0.9 * data["norm_1"]
         + 0.02 * (np.asarray(data["int_unif"]) - 54.0)
         - 0.4 * np.log(np.asarray(data["lognorm_1"]) + 1.0)
         + rng.normal(0.0, 0.7, rows))
    data[PREDICTION] = 1.0 / (1.0 + np.exp(-z))
    frame = pl.DataFrame({k: (pl.Series(k, v, dtype=pl.String) if k in CATEGORICAL else v)
                          for k, v in data.items()})
    return frame.with_columns((pl.lit(id_prefix) + pl.col(REQUEST_ID)).alias(REQUEST_ID))


def config_text() -> str:
    """The exporter config for the benchmark (paths relative to the config's directory)."""
    lines = [
        "# Generated by bench/generate.py: the benchmark model.",
        "models:",
        f"  - name: {MODEL_NAME}",
        "    logs:",
        f"      path: {LOG_DIR_NAME}/*.jsonl",
        "    reference:",
        f"      path: {REFERENCE_NAME}",
        "    features:",
    ]
    lines += [f"      - {{name: {n}, type: numerical}}" for n in NUMERICAL]
    lines += [f"      - {{name: {n}, type: categorical}}" for n in CATEGORICAL]
    lines += [
        "    prediction:",
        f"      column: {PREDICTION}",
        "      type: numerical",
        f"    id_column: {REQUEST_ID}",
        f"    timestamp_column: {TIMESTAMP}",
        "    window:",
        f"      rows: {WINDOW_ROWS}",
        "    update_interval: 1s",
    ]
    return "\n".join(lines) + "\n"


def _params(rows: int, reference_rows: int) -> dict[str, object]:
    return {"generator_version": GENERATOR_VERSION, "rows": rows,
            "reference_rows": reference_rows, "log_seed": LOG_SEED,
            "reference_seed": REFERENCE_SEED, "polars": pl.__version__,
            "numpy": np.__version__}


def _up_to_date(data_dir: Path, params: dict[str, object]) -> bool:
    try:
        manifest = json.loads((data_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("params") != params:
        return False
    sizes: dict[str, int] = manifest.get("sizes", {})
    for name in (LOG_NAME, REFERENCE_NAME, CONFIG_NAME):
        path = data_dir / name
        if name not in sizes or not path.is_file() or path.stat().st_size != sizes[name]:
            return False
    return True


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def generate(data_dir: Path = DATA_DIR, rows: int = LOG_ROWS,
             reference_rows: int = REFERENCE_ROWS, force: bool = False) -> dict[str, object]:
    """Create the data set unless an identical one exists; returns the manifest."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / LOG_DIR_NAME).mkdir(exist_ok=True)
    params = _params(rows, reference_rows)
    if not force and _up_to_date(data_dir, params):
        print(f"data up to date in {data_dir} (skipping generation)", file=sys.stderr)
        result: dict[str, object] = json.loads((data_dir / MANIFEST_NAME).read_text())
        return result
    started = time.perf_counter()
    (data_dir / MANIFEST_NAME).unlink(missing_ok=True)
    log = columns(rows, LOG_SEED, "req-", TIMESTAMP_BASE)
    _write_atomically(data_dir / LOG_NAME, log.write_ndjson)
    del log
    ref = columns(reference_rows, REFERENCE_SEED, "ref-", TIMESTAMP_BASE - 30 * 86400.0)
    _write_atomically(data_dir / REFERENCE_NAME, ref.write_parquet)
    _write_atomically(data_dir / CONFIG_NAME, lambda p: p.write_text(config_text()))
    sizes = {n: (data_dir / n).stat().st_size for n in (LOG_NAME, REFERENCE_NAME, CONFIG_NAME)}
    manifest = {"params": params, "sizes": sizes}
    (data_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"generated {data_dir / LOG_NAME} ({sizes[LOG_NAME] / 1e6:.0f} MB, {rows} rows), "
          f"{data_dir / REFERENCE_NAME} ({reference_rows} rows) in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--rows", type=int, default=LOG_ROWS)
    parser.add_argument("--reference-rows", type=int, default=REFERENCE_ROWS)
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")
    args = parser.parse_args(argv)
    generate(args.data_dir, args.rows, args.reference_rows, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
