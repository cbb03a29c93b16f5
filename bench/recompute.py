"""Benchmark (b): one recomputation of every statistic of a 100,000-row window against the
100,000-row reference, in-process with the exporter's own code, against per-column scipy.

Steps:

1. Config with ``exporter.config.load_config`` (the generated ``bench.yaml``), reference profile
   with ``exporter.reference.load_reference``.
2. A ``exporter.sources.ModelSource`` follows the generated 1,000,000-row JSONL file: its
   start-up backfill reads only the last 100,000 lines, and one ``feed()`` passes them into a
   ``exporter.pipeline.ModelPipeline``'s window, exactly as the running exporter would.
3. ``exporter.snapshot.compute(view, profile, model, thresholds)`` on the window's view: the
   first (cold) call is timed on its own (it fills the calibration cache for ``threshold:
   auto``); then best of 5.
4. Baseline: ``scipy.stats.ks_2samp(reference, window)`` for each of the 20 numerical features on
   the same arrays (usable values only), summed over the columns; best of 3. The exporter's KS
   statistics are checked against scipy's while at it.

The target: compute is at least 10x faster than the scipy baseline (ratio = baseline / compute).

    python bench/recompute.py [--json OUT] [--profile OUT.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import json
import math
import os
import pstats
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate

from exporter.config import ModelConfig, load_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.snapshot import ModelSnapshot, compute
from exporter.sources import ModelSource, feed
from exporter.thresholds import Thresholds
from exporter.window import WindowView

TARGET_SPEEDUP = 10.0
WARM_RUNS = 5
BASELINE_RUNS = 3


@dataclass
class RecomputeResult:
    """Figures of one recompute run (seconds)."""

    window_rows: int
    reference_rows: int
    numerical_features: int
    categorical_features: int
    cold_s: float
    compute_s: float
    compute_runs_s: list[float]
    scipy_ks_s: float
    compute_cpu_s: float
    scipy_ks_cpu_s: float
    ratio: float
    target: float
    passed: bool
    max_ks_statistic_diff: float
    max_ks_pvalue_diff: float
    load_before: float


def build(data_dir: Path) -> tuple[ModelConfig, ModelPipeline]:
    """Config, reference profile and a pipeline whose window holds the file's last rows."""
    config = load_config(data_dir / generate.CONFIG_NAME)
    model = config.models[0]
    # Follow the generated file itself rather than the (empty) log directory.
    logs = dataclasses.replace(model.logs, path=str(data_dir / generate.LOG_NAME))
    model = dataclasses.replace(model, logs=logs)
    pipeline = ModelPipeline(model, load_reference(model))
    source = ModelSource.of(pipeline)
    source.start(time.time())  # backfill: only the last window.rows lines are read
    feed(source, pipeline, time.time)
    source.close()
    if len(pipeline.window) != generate.WINDOW_ROWS:
        raise RuntimeError(f"window holds {len(pipeline.window)} rows, expected "
                           f"{generate.WINDOW_ROWS}")
    return model, pipeline


def timed_compute(view: WindowView, pipeline: ModelPipeline, model: ModelConfig,
                  thresholds: Thresholds) -> tuple[float, float, ModelSnapshot]:
    """Wall and CPU time of one compute() call, and its snapshot."""
    gc.collect()
    started, cpu_started = time.perf_counter(), time.process_time()
    snapshot = compute(view, pipeline.profile, model, thresholds)
    return (time.perf_counter() - started, time.process_time() - cpu_started, snapshot)


def scipy_baseline(reference: pl.DataFrame, view: WindowView,
                   names: list[str]) -> tuple[float, float, dict[str, Any]]:
    """Best-of wall time of ks_2samp over every numerical column, its CPU time, the results."""
    ref = {n: _usable(reference.get_column(n).cast(pl.Float64).to_numpy()) for n in names}
    win = {n: _usable(view.numbers[n]) for n in names}
    best, cpu, results = math.inf, math.nan, {}
    for _ in range(BASELINE_RUNS):
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        results = {n: stats.ks_2samp(ref[n], win[n]) for n in names}
        wall = time.perf_counter() - started
        if wall < best:
            best, cpu = wall, time.process_time() - cpu_started
    return best, cpu, results


def _difference(ours: float | None, scipy_value: float) -> float:
    """|ours - scipy|; infinite when the exporter has no value."""
    return math.inf if ours is None else abs(ours - float(scipy_value))


def _usable(values: object) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    usable: np.ndarray = array[~np.isnan(array)]
    return usable


def run(data_dir: Path = generate.DATA_DIR, profile_out: Path | None = None) -> RecomputeResult:
    """Run the whole recompute measurement and return its figures."""
    generate.generate(data_dir)
    load_before = os.getloadavg()[0]
    model, pipeline = build(data_dir)
    view = pipeline.window.view(time.time())
    thresholds = Thresholds(model.name, pipeline.profile.rows)
    cold, _, _ = timed_compute(view, pipeline, model, thresholds)
    timed = [timed_compute(view, pipeline, model, thresholds) for _ in range(WARM_RUNS)]
    runs = [t[0] for t in timed]
    fastest = min(timed, key=lambda t: t[0])
    snapshot = fastest[2]
    if profile_out is not None:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(WARM_RUNS):
            compute(view, pipeline.profile, model, thresholds)
        profiler.disable()
        profiler.dump_stats(profile_out)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        print(text.getvalue(), file=sys.stderr)

    numerical = [f.name for f in model.features if f.type == "numerical"]
    reference = pl.read_parquet(data_dir / generate.REFERENCE_NAME, columns=numerical)
    scipy_s, scipy_cpu, results = scipy_baseline(reference, view, numerical)
    by_name = {f.name: f for f in snapshot.features}
    d_stat = max(_difference(by_name[n].gauges.get("ks_statistic"), results[n].statistic)
                 for n in numerical)
    d_p = max(_difference(by_name[n].scores.get("ks"), results[n].pvalue) for n in numerical)
    compute_s = min(runs)
    ratio = scipy_s / compute_s
    return RecomputeResult(
        window_rows=view.rows, reference_rows=pipeline.profile.rows,
        numerical_features=len(numerical),
        categorical_features=sum(1 for f in model.features if f.type == "categorical"),
        cold_s=cold, compute_s=compute_s, compute_runs_s=runs, scipy_ks_s=scipy_s,
        compute_cpu_s=fastest[1], scipy_ks_cpu_s=scipy_cpu,
        ratio=ratio, target=TARGET_SPEEDUP, passed=ratio >= TARGET_SPEEDUP,
        max_ks_statistic_diff=d_stat, max_ks_pvalue_diff=d_p, load_before=load_before)


def report(r: RecomputeResult) -> str:
    """Human-readable lines."""
    runs = ", ".join(f"{t * 1000:.0f}" for t in r.compute_runs_s)
    return "\n".join([
        f"recompute: {r.window_rows}-row window vs {r.reference_rows}-row reference, "
        f"{r.numerical_features} numerical + {r.categorical_features} categorical features "
        "+ numerical prediction",
        f"  exporter compute(), first (cold) call: {r.cold_s * 1000:8.1f} ms",
        f"  exporter compute(), best of {len(r.compute_runs_s)}:       {r.compute_s * 1000:8.1f} ms"
        f"   (runs: {runs} ms)",
        f"  scipy ks_2samp x {r.numerical_features} columns, best of {BASELINE_RUNS}: "
        f"{r.scipy_ks_s * 1000:8.1f} ms",
        f"  speed-up scipy / compute:  {r.ratio:8.2f} x   (target >= {r.target} x: "
        f"{'PASS' if r.passed else 'FAIL'})",
        f"  CPU time of those: compute {r.compute_cpu_s * 1000:.1f} ms, scipy "
        f"{r.scipy_ks_cpu_s * 1000:.1f} ms (ratio {r.scipy_ks_cpu_s / r.compute_cpu_s:.2f} x; "
        "less sensitive to other load)",
        f"  max |KS statistic - scipy|: {r.max_ks_statistic_diff:.2e}, "
        f"max |KS p-value - scipy|: {r.max_ks_pvalue_diff:.2e}",
        f"  1-min load average before: {r.load_before:.2f} (on {os.cpu_count()} cores; "
        "other processes skew the figures)",
    ])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--profile", type=Path,
                        help="cProfile 5 warm compute() calls into this file; print the top 25")
    args = parser.parse_args(argv)
    result = run(profile_out=args.profile)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
