"""Benchmark: ``threshold: auto`` over a high-cardinality categorical column (issue 13, item 8).

A reference of ``--categories`` categories (each seen 1-15 times) and a window that grows from
5,000 to 10,000 usable values by 25 per recomputation, in-process with the exporter's own code
(``snapshot.column_snapshot`` and ``thresholds.Thresholds``). Prints, per statistic: the first
recomputation's time and peak traced memory (it calibrates), the number of calibrations over
the 201 window sizes, and the whole growth's time. ``--full`` also times one calibration that
simulates every bin (the method before the cap; about 1 GB per 20,000 categories: mind the
machine).

    python bench/high_cardinality.py [--categories 100000] [--full]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from exporter.config import StatisticConfig, parse_config
from exporter.reference import CategoricalReference
from exporter.snapshot import column_snapshot
from exporter.stats import calibration
from exporter.stats.divergence import JENSEN_SHANNON, PSI
from exporter.thresholds import Thresholds
from exporter.window import WindowView

BINNED = {"jensen_shannon": JENSEN_SHANNON, "psi": PSI}


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", type=int, default=100_000)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    counts = np.sort(rng.poisson(5, args.categories) + 1)[::-1]
    names = tuple(f"k{i}" for i in range(args.categories))
    ref = CategoricalReference("c", names, np.append(counts, 0).astype(np.int64), 0.0, 50)
    with tempfile.TemporaryDirectory() as tmp:  # the config wants a reference file to exist
        pd.DataFrame({"c": ["a", "b"]}).to_parquet(Path(tmp) / "ref.parquet")
        model = parse_config({"models": [{
            "name": "m", "logs": {"path": f"{tmp}/*.jsonl"},
            "reference": {"path": f"{tmp}/ref.parquet"},
            "features": [{"name": "c", "type": "categorical"}]}]}).models[0]
    codes = ref.encode(rng.choice(np.array(names, dtype=object), 10_000))
    print(f"{args.categories} categories, reference {int(counts.sum())} values")
    for statistic in ("jensen_shannon", "psi"):
        thresholds = Thresholds("m", int(counts.sum()))
        config = StatisticConfig(statistic, None)
        tracemalloc.start()
        started = time.perf_counter()
        view = WindowView(5_000, {}, {"c": codes[:5_000]}, np.zeros(5_000))
        column_snapshot(view, ref, "categorical", config, model, thresholds)
        first = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        started = time.perf_counter()
        for n in range(5_000, 10_001, 25):
            view = WindowView(n, {}, {"c": codes[:n]}, np.zeros(n))
            column_snapshot(view, ref, "categorical", config, model, thresholds)
        growth = time.perf_counter() - started
        print(f"{statistic:15s} first recomputation {first:.2f} s, peak {peak / 2**20:.1f} MiB; "
              f"201 sizes: {thresholds.calibrations} calibrations, {growth:.1f} s in all")
        if args.full:
            calibration.MAX_SIMULATED_BINS = 10**9
            tracemalloc.start()
            started = time.perf_counter()
            calibration.binned_threshold(BINNED[statistic], ref.bin_proportions, 5_000,
                                         int(counts.sum()), 1)
            full = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            calibration.MAX_SIMULATED_BINS = 1024
            print(f"{'':15s} one calibration simulating every bin: {full:.2f} s, "
                  f"peak {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
