"""Benchmark (b): one recomputation of every statistic of a 100,000-row window against the
100,000-row reference, in-process with the exporter's own code, against per-column scipy.

Steps:

1. Config with ``exporter.config.load_config`` (the generated ``bench.yaml``), reference profile
   with ``exporter.reference.load_reference``.
2. A ``exporter.sources.ModelSource`` follows the generated 1,000,000-row JSONL file: its
   start-up backfill reads only the last 100,000 lines, and one ``feed()`` passes them into a
   ``exporter.pipeline.ModelPipeline``'s window, exactly as the running exporter would.
3. From scratch: ``exporter.snapshot.compute(view, profile, model, thresholds)`` on the
   window's view, which sorts every column anew: the first (cold) call is timed on its own (it
   fills the calibration cache for ``threshold: auto``); then best of 5.
4. The exporter's own recomputation, ``ModelPipeline.recompute(now)``: after
   ``NEW_RECORDS_PER_STEP`` (1,000, one replay step of the replay benchmark; 1% of the window)
   new records are appended to the window, the 1,000 oldest leave, and the statistics of the
   whole 100,000-row window are published. It copies the window's view, sorts in only the rows
   that entered and left since the previous recomputation (``exporter.stats.ranked``) and
   computes every statistic of every column. The new records are the window's own records
   again, oldest first (real values; the distribution does not change). Best of ``STEPS``.
   Its statistics are checked against step 3's from-scratch ``compute`` of the same view.
5. Baseline: ``scipy.stats.ks_2samp(reference, window)`` for each of the 20 numerical features on
   the same arrays (usable values only), summed over the columns; best of 3. The exporter's KS
   statistics are checked against scipy's while at it.

The target: the recomputation (4) is at least 10x faster than the scipy baseline (ratio =
baseline / recompute); the from-scratch figure (3) is shown beside it.

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

from exporter import snapshot as snapshot_module
from exporter.config import ModelConfig, load_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.snapshot import ModelSnapshot, compute
from exporter.sources import ModelSource, feed
from exporter.thresholds import Thresholds
from exporter.window import Records, WindowView

TARGET_SPEEDUP = 10.0
WARM_RUNS = 5
BASELINE_RUNS = 3
NEW_RECORDS_PER_STEP = 1_000
STEPS = 10


@dataclass
class RecomputeResult:
    """Figures of one recompute run (seconds)."""

    window_rows: int
    reference_rows: int
    numerical_features: int
    categorical_features: int
    cold_s: float
    compute_s: float  # from scratch (step 3)
    compute_runs_s: list[float]
    recompute_s: float  # the pipeline's recomputation after new records (step 4)
    recompute_runs_s: list[float]
    recompute_cpu_s: float
    new_records_per_step: int
    recompute_equals_compute: bool
    scipy_ks_s: float
    compute_cpu_s: float
    scipy_ks_cpu_s: float
    ratio: float  # scipy / recompute
    compute_ratio: float  # scipy / compute from scratch
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


def timed_recomputes(pipeline: ModelPipeline, steps: int = STEPS,
                     new: int = NEW_RECORDS_PER_STEP) -> tuple[list[tuple[float, float]],
                                                               WindowView, ModelSnapshot]:
    """Wall and CPU time of ``steps`` recomputations, each after ``new`` records entered the
    window; the last view and its snapshot."""
    now = time.time()
    # The second recomputation of a window sorts every column and keeps them: what the next
    # ones start from (snapshot.compute_sorted).
    pipeline.recompute(now)
    pipeline.recompute(now)
    source = pipeline.window.view(now)
    timed = []
    snapshot = None
    for step in range(steps):
        rows = slice(step * new, (step + 1) * new)
        pipeline.window.append(Records(
            new, {k: v[rows] for k, v in source.numbers.items()},
            {k: v[rows] for k, v in source.codes.items()}, source.times[rows],
            {k: v[rows] for k, v in source.objects.items()}))
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        snapshot = pipeline.recompute(now)[0]
        timed.append((time.perf_counter() - started, time.process_time() - cpu_started))
    assert snapshot is not None
    return timed, pipeline.window.view(now), snapshot


def same_statistics(a: ModelSnapshot, b: ModelSnapshot) -> bool:
    """Whether two snapshots hold the same figures (when and how long they took aside)."""
    return dataclasses.replace(a, computed_at=0.0, duration_seconds=0.0) == dataclasses.replace(
        b, computed_at=0.0, duration_seconds=0.0)


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
    recomputed, last_view, last = timed_recomputes(pipeline)
    equal = same_statistics(last, compute(last_view, pipeline.profile, model, thresholds,
                                          now=last.computed_at))
    if profile_out is not None:
        # cProfile sees only its own thread: compute the columns on this one meanwhile.
        threads, snapshot_module.MAX_STATS_THREADS = snapshot_module.MAX_STATS_THREADS, 1
        profiler = cProfile.Profile()
        profiler.enable()
        timed_recomputes(pipeline)
        profiler.disable()
        snapshot_module.MAX_STATS_THREADS = threads
        profiler.dump_stats(profile_out)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        print(text.getvalue(), file=sys.stderr)

    numerical = [f.name for f in model.features if f.type == "numerical"]
    reference = pl.read_parquet(data_dir / generate.REFERENCE_NAME, columns=numerical)
    scipy_s, scipy_cpu, results = scipy_baseline(reference, view, numerical)
    by_name = {f.name: f for f in snapshot.features}
    d_stat = max(_difference(by_name[n].gauges.get("ks_statistic"), results[n].statistic)
                 for n in numerical)
    d_p = max(_difference(by_name[n].scores.get("ks"), results[n].pvalue) for n in numerical)
    compute_s = min(runs)
    best_recompute = min(recomputed)
    ratio = scipy_s / best_recompute[0]
    return RecomputeResult(
        window_rows=view.rows, reference_rows=pipeline.profile.rows,
        numerical_features=len(numerical),
        categorical_features=sum(1 for f in model.features if f.type == "categorical"),
        cold_s=cold, compute_s=compute_s, compute_runs_s=runs,
        recompute_s=best_recompute[0], recompute_runs_s=[t[0] for t in recomputed],
        recompute_cpu_s=best_recompute[1], new_records_per_step=NEW_RECORDS_PER_STEP,
        recompute_equals_compute=equal, scipy_ks_s=scipy_s,
        compute_cpu_s=fastest[1], scipy_ks_cpu_s=scipy_cpu,
        ratio=ratio, compute_ratio=scipy_s / compute_s, target=TARGET_SPEEDUP,
        passed=ratio >= TARGET_SPEEDUP and equal,
        max_ks_statistic_diff=d_stat, max_ks_pvalue_diff=d_p, load_before=load_before)


def report(r: RecomputeResult) -> str:
    """Human-readable lines."""
    runs = ", ".join(f"{t * 1000:.0f}" for t in r.compute_runs_s)
    steps = ", ".join(f"{t * 1000:.0f}" for t in r.recompute_runs_s)
    return "\n".join([
        f"recompute: {r.window_rows}-row window vs {r.reference_rows}-row reference, "
        f"{r.numerical_features} numerical + {r.categorical_features} categorical features "
        "+ numerical prediction",
        f"  exporter compute() from scratch, first (cold) call: {r.cold_s * 1000:8.1f} ms",
        f"  exporter compute() from scratch, best of {len(r.compute_runs_s)}:       "
        f"{r.compute_s * 1000:8.1f} ms   (runs: {runs} ms)",
        f"  pipeline recompute() after {r.new_records_per_step} new records, best of "
        f"{len(r.recompute_runs_s)}: {r.recompute_s * 1000:8.1f} ms   (runs: {steps} ms)",
        f"    same statistics as compute() from scratch: {r.recompute_equals_compute}",
        f"  scipy ks_2samp x {r.numerical_features} columns, best of {BASELINE_RUNS}: "
        f"{r.scipy_ks_s * 1000:8.1f} ms",
        f"  speed-up scipy / recompute:  {r.ratio:8.2f} x   (target >= {r.target} x: "
        f"{'PASS' if r.passed else 'FAIL'}); scipy / compute from scratch: "
        f"{r.compute_ratio:.2f} x",
        f"  CPU time: recompute {r.recompute_cpu_s * 1000:.1f} ms, compute from scratch "
        f"{r.compute_cpu_s * 1000:.1f} ms, scipy {r.scipy_ks_cpu_s * 1000:.1f} ms (ratio "
        f"scipy / recompute {r.scipy_ks_cpu_s / r.recompute_cpu_s:.2f} x; less sensitive to "
        "other load)",
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
                        help=f"cProfile {STEPS} recompute() steps (one statistics thread) into "
                        "this file; print the top 25")
    args = parser.parse_args(argv)
    result = run(profile_out=args.profile)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
