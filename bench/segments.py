"""Benchmark: what segments (SPEC 6.11, docs/segments.md) cost, 10 segments against none.

Steps, each for one model without ``segments`` and the same model with
``segments: {column: country, max_segments: 10}``:

1. A generated reference (``--reference-rows``, 8 numerical and 2 categorical features, a
   numerical prediction, a ``country`` column of 14 values with Zipf-like shares, so 10 get
   their own window and 4 share ``__other__``) is profiled (``load_reference``) and a
   ``ModelPipeline`` built: the segment slices' profiles and alarm references are made here.
2. ``--records`` generated records drawn like the reference are added in batches of 5,000
   (``pipeline.add``): each record goes to the whole-model window and to its segment's.
3. ``pipeline.recompute(now)`` of every window: the first (cold: calibrations) call timed
   alone, then the best of 3.

Memory is Python's traced allocations (``tracemalloc``: numpy's arrays included) held by the
profile and the pipeline after step 2. Prints a table and the ratios (segments / none).

    python bench/segments.py [--records N] [--reference-rows N] [--window N] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from exporter.config import parse_config
from exporter.parsing import batch_from_table
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference

NUMERICAL = [f"n{i}" for i in range(8)]
CATEGORICAL = ["colour", "channel"]
COUNTRIES = [f"c{i:02d}" for i in range(14)]
SHARES = np.array([1 / (i + 1) for i in range(len(COUNTRIES))])
BATCH = 5000
NOW = 1_000_000.0


@dataclass
class Result:
    """The figures of one configuration."""

    segments: int  # windows besides the whole model's
    load_seconds: float  # profile + pipeline construction
    ingest_seconds: float
    recompute_cold_seconds: float
    recompute_warm_seconds: float  # best of 3
    memory_mib: float  # traced allocations held after ingestion
    window_rows: int  # rows held by all windows together


def table(rng: np.random.Generator, rows: int) -> pa.Table:
    """Rows drawn like the reference: each country shifts the numerical features a little."""
    country = rng.choice(COUNTRIES, rows, p=SHARES / SHARES.sum())
    shift = np.array([COUNTRIES.index(c) for c in country]) / 10
    columns: dict[str, Any] = {n: rng.normal(shift, 1.0) for n in NUMERICAL}
    columns |= {c: rng.choice(["a", "b", "c", "d", "e"], rows) for c in CATEGORICAL}
    columns["score"] = rng.random(rows)
    columns["country"] = country
    return pa.table(columns)


def config(directory: Path, segments: bool, window: int) -> Any:
    entry: dict[str, Any] = {
        "name": "bench", "logs": {"path": str(directory / "*.jsonl")},
        "reference": {"path": str(directory / "reference.parquet")},
        "features": [{"name": n, "type": "numerical"} for n in NUMERICAL]
        + [{"name": c, "type": "categorical"} for c in CATEGORICAL],
        "prediction": {"column": "score", "type": "numerical"},
        "window": {"rows": window}}
    if segments:
        entry["segments"] = {"column": "country", "max_segments": 10}
    return parse_config({"models": [entry]}, base_dir=directory).models[0]


def measure(directory: Path, records: pa.Table, segments: bool, window: int) -> Result:
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    model = config(directory, segments, window)
    pipeline = ModelPipeline(model, load_reference(model))
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    for first in range(0, records.num_rows, BATCH):
        pipeline.add(batch_from_table(records.slice(first, BATCH), pipeline.columns), NOW)
    ingest = time.perf_counter() - started
    gc.collect()
    memory = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    started = time.perf_counter()
    pipeline.recompute(NOW)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(3):
        started = time.perf_counter()
        pipeline.recompute(NOW)
        warm.append(time.perf_counter() - started)
    held = sum(w.view(NOW).rows for _, w in pipeline.router.windows())
    return Result(len(pipeline.router.windows()) - 1, loaded, ingest, cold, min(warm), memory,
                  held)


def main(argv: list[str] | None = None) -> int:
    """Run both configurations and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--reference-rows", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=20_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        pq.write_table(table(rng, args.reference_rows), directory / "reference.parquet")
        records = table(rng, args.records)
        none = measure(directory, records, False, args.window)
        ten = measure(directory, records, True, args.window)
    print(f"{args.records} records, reference {args.reference_rows} rows, window rows "
          f"{args.window}, {len(NUMERICAL)} numerical + {len(CATEGORICAL)} categorical "
          "features + numerical prediction")
    print(f"{'':28}{'no segments':>14}{'10 segments':>14}{'ratio':>8}")
    for field in ("segments", "window_rows", "memory_mib", "load_seconds", "ingest_seconds",
                  "recompute_cold_seconds", "recompute_warm_seconds"):
        a, b = getattr(none, field), getattr(ten, field)
        ratio = f"{b / a:.1f}x" if a else "-"
        print(f"{field:28}{a:>14.3f}{b:>14.3f}{ratio:>8}" if isinstance(a, float)
              else f"{field:28}{a:>14}{b:>14}{ratio:>8}")
    if args.json:
        args.json.write_text(json.dumps({"none": asdict(none), "segments": asdict(ten)},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
