"""Run every benchmark: generate the data if needed, then (a) catch-up and (b) recompute, and
print one table of figure, baseline, ratio, target and PASS/FAIL.

    python bench/run_all.py [--only catch_up|recompute] [--json bench/results/summary.json]
                            [--wait-quiet SECONDS]

Each benchmark runs in its own Python process (so the memory of one never weighs on the other)
and writes its figures to ``bench/results/<name>.json``; this script reads them back.
Exit code: 0 when every target is met, 1 when one is missed, 2 when a benchmark failed to run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BENCHMARKS = ("catch_up", "recompute")


def run_one(name: str) -> dict[str, Any] | None:
    """Run bench/<name>.py in a child process; its figures, or None if it failed."""
    out = RESULTS / f"{name}.json"
    out.unlink(missing_ok=True)
    print(f"== {name}", flush=True)
    done = subprocess.run([sys.executable, str(HERE / f"{name}.py"), "--json", str(out)],
                          check=False)
    if done.returncode != 0 or not out.is_file():
        print(f"!! {name} failed (exit code {done.returncode})", flush=True)
        return None
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def rows(results: dict[str, dict[str, Any] | None]) -> list[tuple[str, ...]]:
    """Table rows: figure, value, baseline, ratio, target, verdict."""
    table: list[tuple[str, ...]] = []
    c = results.get("catch_up")
    if "catch_up" in results:
        if c is None:
            table.append(("(a) catch-up 1M rows", "-", "-", "-", "<= 1.5x", "ERROR"))
        else:
            table.append((
                "(a) catch-up 1M rows -> stats published",
                f"{c['published_s']:.2f} s",
                f"{c['baseline_s']:.2f} s ({str(c['baseline_name']).split('.')[0]})",
                f"{c['ratio']:.2f}x",
                f"<= {c['target']}x",
                "PASS" if c["passed"] else "FAIL"))
            table.append(("    CPU seconds (all threads)", f"{c['exporter_cpu_s']:.2f} s",
                          f"{c['baseline_cpu_s']:.2f} s",
                          f"{c['exporter_cpu_s'] / c['baseline_cpu_s']:.2f}x", "(info)", ""))
            table.append(("    exporter peak RSS (VmHWM)",
                          f"{int(c['peak_rss_bytes']) / 2**20:.0f} MiB", "", "", "", ""))
    r = results.get("recompute")
    if "recompute" in results:
        if r is None:
            table.append(("(b) recompute 100k window", "-", "-", "-", ">= 10x", "ERROR"))
        else:
            table.append((
                "(b) recompute 100k window (best of 5)",
                f"{float(r['compute_s']) * 1000:.0f} ms",
                f"{float(r['scipy_ks_s']) * 1000:.0f} ms (scipy ks x{r['numerical_features']})",
                f"{r['ratio']:.2f}x",
                f">= {r['target']}x",
                "PASS" if r["passed"] else "FAIL"))
            table.append(("    CPU time", f"{float(r['compute_cpu_s']) * 1000:.0f} ms",
                          f"{float(r['scipy_ks_cpu_s']) * 1000:.0f} ms",
                          f"{r['scipy_ks_cpu_s'] / r['compute_cpu_s']:.2f}x", "(info)", ""))
            table.append(("    first (cold) call", f"{float(r['cold_s']) * 1000:.0f} ms",
                          "", "", "", ""))
    return table


def render(table: list[tuple[str, ...]]) -> str:
    """A plain-text table with a header."""
    header = ("figure", "value", "baseline", "ratio", "target", "result")
    widths = [max(len(row[i]) for row in (header, *table)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in (header, *table)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def wait_quiet(max_seconds: float, threshold: float = 1.0) -> None:
    """Wait (at most ``max_seconds``) until the 1-minute load average is below ``threshold``."""
    deadline = time.monotonic() + max_seconds
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        print(f"   load average {os.getloadavg()[0]:.2f} >= {threshold}; waiting", flush=True)
        time.sleep(10)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=BENCHMARKS, action="append",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each benchmark, wait up to this long for a 1-min load "
                             "average below 1")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    print("== generate", flush=True)
    subprocess.run([sys.executable, str(HERE / "generate.py")], check=True)
    results = {}
    for name in args.only or BENCHMARKS:
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        results[name] = run_one(name)
    print()
    print(render(rows(results)))
    print(f"(1-min load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          "figures taken while other processes run are slower and noisier)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if any(v is None for v in results.values()):
        return 2
    return 0 if all(bool(v and v["passed"]) for v in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
