"""Diagnostic for benchmark (c): the cost of one small read, in process.

Appends batches of ``--lines`` lines of the generated log to a file a ``ModelSource`` follows
and ``feed()``s it into a ``ModelPipeline`` after each: the CPU and wall time of one ingest
(best and median of 6 rounds of 60), then, unless ``--no-profile``, a cProfile of 60 more by
own time. The steady state benchmark reads ~500 lines per ingest (5,000 lines/s, a read every
100 ms).

    python bench/profile_batches.py [--lines 500] [--top 25] [--no-profile] [--no-alarm]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import itertools
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate

from exporter.config import load_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.sources import ModelSource, feed

ROUNDS, STEPS, POOL = 6, 60, 20_000


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-alarm", action="store_true",
                        help="do not feed the drift alarm (what the rest of the path costs)")
    args = parser.parse_args(argv)
    data_dir = generate.DATA_DIR
    generate.generate(data_dir)
    with (data_dir / generate.LOG_NAME).open("rb") as source:
        pool = list(itertools.islice(source, POOL))
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "app.jsonl"
        log.touch()
        model = load_config(data_dir / generate.CONFIG_NAME).models[0]
        model = dataclasses.replace(model, logs=dataclasses.replace(model.logs, path=str(log)))
        pipeline = ModelPipeline(model, load_reference(model))
        if args.no_alarm:
            pipeline.alarms.add = lambda key, records: None  # type: ignore[method-assign]
        source = ModelSource.of(pipeline)
        source.start(time.time())
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        step = itertools.count()

        def one() -> None:
            start = (next(step) * args.lines) % (POOL - args.lines)
            os.write(fd, b"".join(pool[start:start + args.lines]))
            feed(source, pipeline, time.time)

        for _ in range(20):  # warm up
            one()
        rounds = []
        for _ in range(ROUNDS):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(STEPS):
                one()
            rounds.append(((time.perf_counter() - wall) / STEPS,
                           (time.process_time() - cpu) / STEPS))
        cpus = [r[1] for r in rounds]
        print(f"ingest of {args.lines} lines: CPU best {min(cpus) * 1e3:.2f} ms, median "
              f"{statistics.median(cpus) * 1e3:.2f} ms; wall best "
              f"{min(r[0] for r in rounds) * 1e3:.2f} ms")
        if not args.no_profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(STEPS):
                one()
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
        os.close(fd)
        source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
