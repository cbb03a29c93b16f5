"""Benchmark: restart on a present 1,000,000-record log. How long after ``drift-exporter run``
is started beside a log that is already there are statistics of the log's last window
published, against the fastest bare parse of the whole file?

Steps:

1. Baseline: the same as the catch-up's (``catch_up.baseline``): ``pyarrow.json.read_json`` and
   ``polars.read_ndjson`` of the whole file, best of 3 each; the faster one counts. They also
   leave the file in the page cache, so the exporter reads it warm, as a restarted sidecar does.
2. The file is hard-linked into a log directory of this benchmark's own, and the clock starts
   just before ``drift-exporter run`` is spawned on it (interpreter start and imports
   included: that is what a restart costs).
3. ``/metrics`` is scraped every ``--interval`` seconds once it answers; **published** = the
   first scrape with ``drift_window_rows == 100000`` and ``drift_feature_mean`` of four
   features equal (1e-9 relative) to the mean of the file's last 100,000 rows.
4. Also printed: spawn -> ``/-/ready``, the exporter's CPU seconds, its peak RSS (VmHWM), and
   the records it counted (``drift_rows_ingested_total``: the records read; the part of the
   file the window does not need is not read, docs/files.md).

Target: published / baseline <= 0.5x.

    python bench/restart.py [--interval 0.05] [--runs 3] [--json OUT] [--py-spy OUT.txt]
                            [--no-alarm]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import catch_up
import generate

TARGET_RATIO = 0.5


@dataclass
class RestartResult:
    """Figures of one restart measurement (seconds, bytes); the best of ``runs`` restarts."""

    rows: int
    window_rows: int
    baseline_s: float
    baseline_name: str
    runs: int
    published_s: float
    published_all_s: list[float]
    ready_s: float
    exporter_cpu_s: float
    ratio: float
    target: float
    passed: bool
    ingested: float
    peak_rss_bytes: int
    load_before: float
    load_after: float
    notes: list[str] = field(default_factory=list)


def one_restart(config: Path, interval: float, deadline_s: float,
                expected: dict[str, float], py_spy: Path | None = None,
                no_alarm: bool = False) -> tuple[float, float, float, float, int]:
    """Spawn the exporter on the present log; (published, ready, CPU seconds, records counted,
    peak RSS), times from the spawn."""
    port = catch_up.free_port()
    base = f"http://127.0.0.1:{port}"
    results_dir = Path(__file__).resolve().parent / "results"
    command = [*catch_up.exporter_command(no_alarm), "run", f"--config.file={config}",
               f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    if py_spy is not None:  # py-spy starts the exporter itself, so start-up is recorded too
        command = ["py-spy", "record", "--threads", "--rate", "200", "--format", "raw",
                   "--output", str(py_spy), "--subprocesses", "--", *command]
    session = requests.Session()
    model, window = generate.MODEL_NAME, generate.WINDOW_ROWS
    with (results_dir / "restart_exporter.log").open("wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        pid = proc.pid
        ready = published = math.nan
        ingested = math.nan
        try:
            deadline = t0 + deadline_s
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"exporter exited with code {proc.returncode}")
                try:
                    if math.isnan(ready) and session.get(
                            f"{base}/-/ready", timeout=5).status_code == 200:
                        ready = time.monotonic() - t0
                    text = session.get(f"{base}/metrics", timeout=30).text
                except requests.RequestException:
                    time.sleep(interval)
                    continue
                after = time.monotonic() - t0
                samples = catch_up.parse_metrics(text, model)
                rows = catch_up.sample(samples, "drift_window_rows", model)
                means = {f: catch_up.sample(samples, "drift_feature_mean", model, feature=f)
                         for f in expected}
                if rows == window and all(
                        math.isclose(means[f] or math.nan, m, rel_tol=catch_up.REL_TOLERANCE)
                        for f, m in expected.items()):
                    published = after
                    ingested = catch_up.sample(samples, "drift_rows_ingested_total",
                                               model) or math.nan
                    break
                time.sleep(interval)
            else:
                raise TimeoutError(f"no statistics of the last window within {deadline_s} s")
            if py_spy is not None:  # the exporter is py-spy's child
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                pid = int(children[0]) if children else pid
            cpu = catch_up.cpu_seconds(pid)
            rss = catch_up.peak_rss(pid)
        finally:
            if py_spy is not None and pid != proc.pid:
                os.kill(pid, signal.SIGTERM)  # py-spy writes its file when its child ends
                proc.wait(timeout=60)
            catch_up.stop(proc)
    return published, ready, cpu, ingested, rss


def run(interval: float = 0.05, runs: int = 3, deadline_s: float = 300.0,
        py_spy: Path | None = None, data_dir: Path = generate.DATA_DIR,
        base: tuple[str, float, dict[str, float]] | None = None,
        no_alarm: bool = False) -> RestartResult:
    """The whole measurement: baseline (unless given), then ``runs`` restarts (best counts)."""
    generate.generate(data_dir)
    source = data_dir / generate.LOG_NAME
    load_before = os.getloadavg()[0]
    if base is None:
        print("baseline: parsing the file with pyarrow and polars (best of 3 each)...",
              file=sys.stderr)
        (t_arrow, _), (t_polars, _), expected = catch_up.baseline(source)
        base = (("pyarrow.json.read_json", t_arrow, expected) if t_arrow <= t_polars
                else ("polars.read_ndjson", t_polars, expected))
    base_name, base_s, expected = base
    work = catch_up.work_directory("restart")
    config = catch_up.config_for(data_dir, None, work)
    os.link(source, work / generate.LOG_DIR_NAME / generate.LOG_NAME)
    figures = []
    try:
        for k in range(runs):
            spy = py_spy if k == runs - 1 else None
            figures.append(one_restart(config, interval, deadline_s, expected, spy,
                                       no_alarm))
            print(f"restart {k + 1}: published after {figures[-1][0]:.2f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = min(figures, key=lambda f: f[0])
    published, ready, cpu, ingested, _ = best
    ratio = published / base_s
    return RestartResult(
        rows=generate.LOG_ROWS, window_rows=generate.WINDOW_ROWS, baseline_s=base_s,
        baseline_name=base_name, runs=runs, published_s=published,
        published_all_s=[f[0] for f in figures], ready_s=ready, exporter_cpu_s=cpu,
        ratio=ratio, target=TARGET_RATIO, passed=ratio <= TARGET_RATIO, ingested=ingested,
        peak_rss_bytes=max(f[4] for f in figures), load_before=load_before,
        load_after=os.getloadavg()[0])


def report(r: RestartResult) -> str:
    """Human-readable lines."""
    return "\n".join([
        f"restart on a present log of {r.rows} records (window {r.window_rows} rows)",
        f"  baseline (fastest bare parse, {r.baseline_name}): {r.baseline_s:.2f} s",
        f"  spawn -> last window published: {r.published_s:.2f} s (best of {r.runs}: "
        + ", ".join(f"{s:.2f}" for s in r.published_all_s) + ")",
        f"  spawn -> /-/ready:              {r.ready_s:.2f} s",
        f"  ratio published / baseline:     {r.ratio:.2f} x   (target <= {r.target} x: "
        f"{'PASS' if r.passed else 'FAIL'})",
        f"  exporter CPU seconds until published: {r.exporter_cpu_s:.2f} s",
        f"  records read and counted: {r.ingested:.0f}",
        f"  exporter peak RSS (VmHWM): {r.peak_rss_bytes / 2**20:.0f} MiB",
        f"  1-min load average before / after: {r.load_before:.2f} / {r.load_after:.2f} "
        f"(on {os.cpu_count()} cores)",
    ])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between scrapes")
    parser.add_argument("--runs", type=int, default=3, help="restarts; the fastest counts")
    parser.add_argument("--deadline", type=float, default=300.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--py-spy", type=Path,
                        help="record the last restart with py-spy (raw), start-up included")
    parser.add_argument("--no-alarm", action="store_true",
                        help="diagnostic: the exporter's drift alarm fed nothing")
    args = parser.parse_args(argv)
    result = run(args.interval, args.runs, args.deadline, args.py_spy, no_alarm=args.no_alarm)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
