"""Benchmark: replay. How fast ``drift-exporter replay`` turns the benchmark's 1,000,000-record
log into a history of 1,000 evaluations, against the catch-up of the same file measured in the
same run.

Steps:

1. The catch-up (``catch_up.run``, without the naive baseline): the exporter reads the whole file
   and publishes statistics covering it; its throughput is 1,000,000 records / (rename ->
   statistics published).
2. The file is hard-linked into a private log directory (``bench/results/replay-<pid>/``, with
   a copy of the generated config pointing at it: ``bench/data`` may be shared by benchmarks
   running at the same time, and a catch-up watching ``bench/data/logs`` would read the file
   too) and ``drift-exporter replay`` runs on that config (26 columns, a 100,000-row window,
   ``update_interval: 1s``) with
   ``--step=100s --from=FIRST+100s --to=FIRST+100000s``: the records are 10 per second over
   100,000 s, so 1,000 steps cover every record and each step recomputes (new records, more
   than ``update_interval`` later). Wall time from the process start to its exit (start-up and
   the reference included), records/s, and peak RSS (the child's ``VmHWM``, read every 0.2 s).
3. Ratio replay records/s / catch-up records/s; target >= 0.5. Each replay step recomputes a
   100,000-row window, which the catch-up does only a few times: the recomputation dominates.

    python bench/replay.py [--json OUT] [--keep-output]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import catch_up
import generate

TARGET_RATIO = 0.5  # replay throughput at least half the catch-up's
STEPS = 1000
RSS_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ReplayBenchResult:
    """Figures of one replay benchmark (seconds, bytes)."""

    rows: int
    steps: int
    step_s: float
    replay_wall_s: float
    replay_records_per_s: float
    replay_peak_rss_bytes: int
    output_bytes: int
    output_samples: int
    catch_up_published_s: float
    catch_up_records_per_s: float
    ratio: float
    target: float
    passed: bool
    load_before: float
    load_after: float


def first_timestamp(path: Path) -> float:
    """The first record's timestamp."""
    with path.open("rb") as log:
        return float(json.loads(log.readline())[generate.TIMESTAMP])


def private_config(data_dir: Path, private: Path) -> None:
    """The generated config in ``private``, reading ``private/logs`` and the shared reference."""
    (private / generate.LOG_DIR_NAME).mkdir(parents=True)
    config = (data_dir / generate.CONFIG_NAME).read_text()
    reference = (data_dir / generate.REFERENCE_NAME).resolve()
    (private / generate.CONFIG_NAME).write_text(
        config.replace(f"path: {generate.REFERENCE_NAME}", f"path: {reference}"))


def run_replay(data_dir: Path, output: Path, start: float, end: float,
               step: float) -> tuple[float, int]:
    """Run the replay on the generated config; wall seconds and peak RSS (bytes).

    The peak is the child's ``VmHWM``, read while it runs: ``ru_maxrss`` of a child would count
    this process's own size at the fork (getrusage keeps it across ``execve``), and this
    process holds the catch-up's baseline parse."""
    started = time.monotonic()
    proc = subprocess.Popen(
        ["drift-exporter", "replay", f"--config.file={data_dir / generate.CONFIG_NAME}",
         f"--output={output}", f"--from={start}", f"--to={end}", f"--step={int(step)}s"],
        stdin=subprocess.DEVNULL)
    peak = 0
    while True:
        with contextlib.suppress(OSError, ValueError):  # gone between two reads
            peak = max(peak, catch_up.peak_rss(proc.pid))
        try:
            code = proc.wait(RSS_POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            continue
    wall = time.monotonic() - started
    if code != 0:
        msg = f"drift-exporter replay exited with {code}"
        raise RuntimeError(msg)
    return wall, peak


def run(data_dir: Path = generate.DATA_DIR, keep_output: bool = False) -> ReplayBenchResult:
    """Measure the catch-up, then the replay of the same file."""
    generate.generate(data_dir)
    load_before = os.getloadavg()[0]
    print("catch-up of the same file (baseline)...", file=sys.stderr)
    caught = catch_up.run(naive=False, data_dir=data_dir)
    source = data_dir / generate.LOG_NAME
    rows = generate.LOG_ROWS
    span = rows / generate.RECORDS_PER_SECOND
    step = span / STEPS
    first = first_timestamp(source)
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    output = results_dir / "replay.om"
    private = results_dir / f"replay-{os.getpid()}"
    print(f"replay: {STEPS} steps of {step:.0f} s...", file=sys.stderr)
    try:
        private_config(data_dir, private)
        os.link(source, private / generate.LOG_DIR_NAME / generate.LOG_NAME)
        wall, rss = run_replay(private, output, first + step, first + STEPS * step, step)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    size = output.stat().st_size
    with output.open("rb") as history:
        samples = sum(1 for line in history if not line.startswith(b"#"))
    if not keep_output:
        output.unlink()
    replay_rate = rows / wall
    catch_up_rate = rows / caught.published_s
    ratio = replay_rate / catch_up_rate
    return ReplayBenchResult(
        rows=rows, steps=STEPS, step_s=step, replay_wall_s=wall,
        replay_records_per_s=replay_rate, replay_peak_rss_bytes=rss, output_bytes=size,
        output_samples=samples, catch_up_published_s=caught.published_s,
        catch_up_records_per_s=catch_up_rate, ratio=ratio, target=TARGET_RATIO,
        passed=ratio >= TARGET_RATIO, load_before=load_before,
        load_after=os.getloadavg()[0])


def report(r: ReplayBenchResult) -> str:
    """Human-readable lines."""
    return "\n".join([
        f"replay of {r.rows} records, {r.steps} steps of {r.step_s:.0f} s",
        f"  replay wall time (process start -> exit): {r.replay_wall_s:8.2f} s",
        f"  replay throughput:      {r.replay_records_per_s:10,.0f} records/s",
        f"  catch-up (rename -> published): {r.catch_up_published_s:8.2f} s, "
        f"{r.catch_up_records_per_s:,.0f} records/s",
        f"  ratio replay / catch-up: {r.ratio:6.2f} x  (target >= {r.target} x: "
        f"{'PASS' if r.passed else 'FAIL'})",
        f"  replay peak RSS:        {r.replay_peak_rss_bytes / 2**20:8.0f} MiB",
        f"  history: {r.output_samples:,} samples, {r.output_bytes / 1e6:.0f} MB",
        f"  1-min load average before / after: {r.load_before:.2f} / {r.load_after:.2f} "
        f"(on {os.cpu_count()} cores)",
    ])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--keep-output", action="store_true",
                        help="keep bench/results/replay.om (removed by default)")
    args = parser.parse_args(argv)
    result = run(keep_output=args.keep_output)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0 if math.isfinite(result.ratio) else 2


if __name__ == "__main__":
    sys.exit(main())
