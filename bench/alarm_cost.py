"""CPU cost of the drift alarm's detector (``AlarmDetector.add``): old code vs new, same run.

The old detector is ``exporter/alarm.py`` at a baseline commit (``git show``), imported as a
separate module; both are fed the same synthetic records of 26 columns like the benchmark's
(normal and exponential values rounded to a few decimals, lognormal and uniform ones, Poisson
integers, categories of 3 to 30 codes) against a 100,000-row reference, with one time per record
(5,000 records/s). Two ways of arriving:

* catch-up: a whole file at once, in calls of ``--catch-up-batch`` records (default 10,000),
  each record with its own time (``timestamp_column``), or all of a call with one (records
  read in one batch without timestamps: windows without budget);
* steady state: calls of 50 records (each call tests the 100-record window every other call).

Old and new alternate, ``--repeats`` times each; the best time of each is printed per value
(one column of one record) with the ratio, and the two detectors' final states are checked to be
the same (the unit tests check every window's result).

    python bench/alarm_cost.py [--records 200000] [--steady-records 50000] [--repeats 3]
        [--baseline 930a617] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import importlib.util
import io
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter import alarm  # noqa: E402

BASELINE = "930a617"  # exporter/alarm.py before the detector was made cheaper
REFERENCE_ROWS = 100_000
RATE = 5000.0  # records per second


def load_baseline(commit: str) -> ModuleType:
    """``exporter/alarm.py`` at ``commit`` as a module of its own (``alarm_baseline``)."""
    source = subprocess.run(["git", "show", f"{commit}:exporter/alarm.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "alarm_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("alarm_baseline", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["alarm_baseline"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def columns(rng: np.random.Generator, rows: int) -> list[tuple[str, str, np.ndarray]]:
    """26 columns like the benchmark's: (name, kind, values)."""
    out: list[tuple[str, str, np.ndarray]] = []
    for i in range(4):
        out.append((f"norm_{i}", "numerical", np.round(rng.normal(50, 10, rows), 2)))
    for i in range(4):
        out.append((f"lognorm_{i}", "numerical", rng.lognormal(0, 1, rows)))
    for i in range(3):
        out.append((f"expo_{i}", "numerical", np.round(rng.exponential(1, rows), 4)))
    for i in range(5):
        out.append((f"int_{i}", "numerical", rng.poisson(5 + 10 * i, rows).astype(np.float64)))
    for i in range(4):
        out.append((f"unif_{i}", "numerical", rng.random(rows)))
    for i, codes in enumerate((3, 7, 12, 20, 30)):
        out.append((f"cat_{i}", "categorical", rng.integers(0, codes, rows)))
    out.append(("score", "numerical", rng.random(rows)))
    return out


def run(module: ModuleType, reference: Any, values: list[np.ndarray], times: np.ndarray,
        batch: int) -> tuple[float, tuple[Any, ...]]:
    """Seconds to feed every record in calls of ``batch``, and the final state as a tuple."""
    detector = module.AlarmDetector(reference, module.AlarmConfig(), seed=5)
    started = time.process_time()
    for at in range(0, times.shape[0], batch):
        detector.add([v[at:at + batch] for v in values], times[at:at + batch])
    return time.process_time() - started, dataclasses.astuple(detector.state())


def compare(old: ModuleType, records: int, batch: int, repeats: int, label: str,
            per_call_time: bool = False) -> None:
    """Print old and new time per value for ``records`` records in calls of ``batch``.

    ``per_call_time``: every record of a call has the call's time (records read in one batch
    without timestamps), else each its own.
    """
    rng = np.random.default_rng(11)
    ref = columns(rng, REFERENCE_ROWS)
    new_ref = alarm.prepare_reference([alarm.ReferenceColumn(*c) for c in ref], seed=3)
    old_ref = old.prepare_reference([old.ReferenceColumn(*c) for c in ref], seed=3)
    values = [c[2] for c in columns(rng, records)]
    times = 1.7e9 + np.arange(records) / RATE
    if per_call_time:
        times = 1.7e9 + (np.arange(records) // batch * batch) / RATE
    best = {"old": float("inf"), "new": float("inf")}
    states = {}
    for _ in range(repeats):
        for name, module, reference in (("old", old, old_ref), ("new", alarm, new_ref)):
            seconds, states[name] = run(module, reference, values, times, batch)
            best[name] = min(best[name], seconds)
    assert states["old"] == states["new"], states
    cells = records * len(values)
    old_us, new_us = (best[k] / cells * 1e6 for k in ("old", "new"))
    print(f"| {label} | {records:,} x {len(values)} in calls of {batch:,} | {old_us:.3f} | "
          f"{new_us:.3f} | {old_us / new_us:.1f}x | {best['new'] * RATE / records:.1%} |")


def profile(records: int, batch: int, top: int) -> None:
    """cProfile of the new detector, by own time."""
    rng = np.random.default_rng(11)
    reference = alarm.prepare_reference(
        [alarm.ReferenceColumn(*c) for c in columns(rng, REFERENCE_ROWS)], seed=3)
    values = [c[2] for c in columns(rng, records)]
    times = 1.7e9 + np.arange(records) / RATE
    profiler = cProfile.Profile()
    profiler.enable()
    run(alarm, reference, values, times, batch)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    print(f"\nnew detector, {records:,} records in calls of {batch:,}, by own time:")
    print(text.getvalue())


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--catch-up-batch", type=int, default=10_000)
    parser.add_argument("--steady-records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--profile", action="store_true", help="also profile the new code")
    args = parser.parse_args(argv)
    old = load_baseline(args.baseline)
    print(f"CPU seconds per value (one column of one record), best of {args.repeats}, old = "
          f"{args.baseline}; 'core' = share of a core at {RATE:,.0f} records/s (new)\n")
    print("| arrival | records | old µs/value | new µs/value | old / new | core |")
    print("|---|---|---|---|---|---|")
    compare(old, args.records, args.catch_up_batch, args.repeats, "catch-up")
    compare(old, args.records, args.catch_up_batch, args.repeats,
            "catch-up, one time per call", per_call_time=True)
    compare(old, args.steady_records, 50, args.repeats, "steady")
    if args.profile:
        profile(args.records, args.catch_up_batch, 25)
        profile(args.steady_records, 50, 25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
