"""Benchmark: import weight. What does ``import exporter.app`` (everything ``run`` loads before
it reads a file) cost in time and peak RSS, against importing only the third-party libraries
``run`` cannot do without, measured in the same run?

Each figure is a fresh interpreter (``python -c "import ..."``), best of ``--runs`` (5), the
three commands alternating so that a change of the machine's load hits them alike:

* ``exporter``: ``import exporter.app``;
* ``libraries``: ``import numpy, scipy.special, polars, pyarrow.compute, pyarrow.parquet,
  prometheus_client, yaml, watchdog.observers`` (the JSONL parser, Arrow and Parquet for the
  reference, scipy.special for the p-values and the alarm, the exposition, the config, the
  file events);
* ``numpy``: ``import numpy``, for scale.

Wall time around the child; peak RSS is the child's ``ru_maxrss`` (``os.wait4``). The
exporter's modules are byte-compiled first (``compileall``), as an installed package's are: the
libraries load from their ``.pyc`` files, and without them the comparison would time the
compilation of the exporter's source (under ``PYTHONDONTWRITEBYTECODE`` at every start).
Targets: exporter / libraries <= 1.25x in time and <= +10 MB of peak RSS: the exporter's own
modules and whatever they import beyond those libraries (pandas, scipy.stats, ...) must stay
small. ``-X importtime`` of the exporter is written to ``bench/results/importtime.txt``.

    python bench/import_weight.py [--runs 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_TIME_RATIO = 1.25
TARGET_EXTRA_RSS_BYTES = 10 * 10**6
LIBRARIES = ("numpy", "scipy.special", "polars", "pyarrow.compute", "pyarrow.parquet",
             "prometheus_client", "yaml", "watchdog.observers")
COMMANDS = {"exporter": "import exporter.app", "libraries": f"import {', '.join(LIBRARIES)}",
            "numpy": "import numpy"}


@dataclass
class ImportResult:
    """Best-of figures (seconds, bytes) per command, and the verdicts."""

    runs: int
    seconds: dict[str, float]
    peak_rss_bytes: dict[str, int]
    time_ratio: float
    extra_rss_bytes: int
    time_target: float
    extra_rss_target: int
    passed: bool
    heaviest: list[tuple[str, float]]
    load_before: float
    load_after: float


def measure(code: str) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one fresh interpreter running ``code``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"python -c {code!r} failed with exit code {proc.returncode}")
    return elapsed, usage.ru_maxrss * 1024


def heaviest_imports(top: int = 12) -> list[tuple[str, float]]:
    """The modules with the largest cumulative import time under ``-X importtime`` (ms)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", COMMANDS["exporter"]],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "importtime.txt").write_text(done.stderr)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((parts[2].rstrip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:top]


def run(runs: int = 5) -> ImportResult:
    """Measure every command ``runs`` times, alternating; keep the best of each."""
    load_before = os.getloadavg()[0]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "exporter")],
                   check=True)
    best = dict.fromkeys(COMMANDS, (math.inf, 0))
    for _ in range(runs):
        for name, code in COMMANDS.items():
            seconds, rss = measure(code)
            best[name] = (min(best[name][0], seconds), max(best[name][1], rss))
    seconds = {name: b[0] for name, b in best.items()}
    rss = {name: b[1] for name, b in best.items()}
    ratio = seconds["exporter"] / seconds["libraries"]
    extra = rss["exporter"] - rss["libraries"]
    return ImportResult(
        runs=runs, seconds=seconds, peak_rss_bytes=rss, time_ratio=ratio, extra_rss_bytes=extra,
        time_target=TARGET_TIME_RATIO, extra_rss_target=TARGET_EXTRA_RSS_BYTES,
        passed=ratio <= TARGET_TIME_RATIO and extra <= TARGET_EXTRA_RSS_BYTES,
        heaviest=heaviest_imports(), load_before=load_before, load_after=os.getloadavg()[0])


def report(r: ImportResult) -> str:
    """Human-readable lines."""
    lines = [f"import weight, best of {r.runs} fresh interpreters each"]
    for name, code in COMMANDS.items():
        lines.append(f"  {name:10} {r.seconds[name]:6.3f} s  {r.peak_rss_bytes[name] / 2**20:6.1f} "
                     f"MiB   ({code[:70]})")
    lines += [
        f"  exporter / libraries: {r.time_ratio:.2f}x time (target <= {r.time_target}x), "
        f"{r.extra_rss_bytes / 1e6:+.1f} MB peak RSS (target <= +{r.extra_rss_target / 1e6:.0f} "
        f"MB): {'PASS' if r.passed else 'FAIL'}",
        "  heaviest imports (cumulative ms, -X importtime):",
        *(f"    {ms:7.1f}  {name.strip()}" for name, ms in r.heaviest),
        f"  1-min load average before / after: {r.load_before:.2f} / {r.load_after:.2f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.runs)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
