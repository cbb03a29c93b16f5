"""Diagnostic for benchmark (a): ingest the whole 1,000,000-row file in-process through
``exporter.sources.ModelSource`` and ``exporter.pipeline.ModelPipeline`` (follower -> parser ->
encoder -> window, no statistics, no HTTP), timed and under cProfile, to show where ingestion
itself spends its time.

    python bench/profile_ingest.py [--top 30] [--out bench/results/ingest.prof] [--no-profile]
                                   [--no-alarm]

The wall time without the profiler is printed first; then the profiled run's top functions by
cumulative and by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate

from exporter.config import load_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.sources import ModelSource, feed


def ingest_all(data_dir: Path, alarm: bool = True) -> tuple[float, int]:
    """Seconds to ingest the whole file with a fresh pipeline, and the rows ingested
    (``alarm=False``: without feeding the drift alarm, to measure the rest of the path)."""
    model = load_config(data_dir / generate.CONFIG_NAME).models[0]
    model = dataclasses.replace(model, logs=dataclasses.replace(
        model.logs, path=str(data_dir / generate.LOG_NAME)))
    pipeline = ModelPipeline(model, load_reference(model))
    if not alarm:
        pipeline.alarms.add = lambda key, records: None  # type: ignore[method-assign]
    # Read the whole file, as for a file that appears after start-up (start() would backfill
    # only the window's rows).
    source = ModelSource.of(pipeline)
    source.reader.follower.start(None, None)
    gc.collect()
    started = time.perf_counter()
    rows = 0
    while True:
        added = feed(source, pipeline, time.time)
        if not added:
            break
        rows += added
    elapsed = time.perf_counter() - started
    source.close()
    return elapsed, rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-alarm", action="store_true",
                        help="do not feed the drift alarm (what the rest of the path costs)")
    args = parser.parse_args(argv)
    data_dir = generate.DATA_DIR
    generate.generate(data_dir)
    alarm = not args.no_alarm
    elapsed, rows = ingest_all(data_dir, alarm)
    print(f"ingest without profiler{'' if alarm else ', without the alarm'}: {rows} rows in "
          f"{elapsed:.2f} s ({rows / elapsed / 1e3:.0f} k rows/s)")
    if args.no_profile:
        return 0
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed, rows = ingest_all(data_dir, alarm)
    profiler.disable()
    print(f"ingest under cProfile: {rows} rows in {elapsed:.2f} s")
    if args.out:
        profiler.dump_stats(args.out)
    for key in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(key).print_stats(args.top)
        print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
