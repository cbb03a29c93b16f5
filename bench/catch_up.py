"""Benchmark (a): catch-up. How long the exporter takes to ingest a 1,000,000-row JSONL file that
appears at once, and to publish statistics covering it, against the fastest bare parse of the
same file on this machine.

Steps:

1. Baseline: ``pyarrow.json.read_json(path)`` and ``polars.read_ndjson(path)``, each best of 3
   (default arguments: every column, schema inferred). The faster of the two is the baseline.
   These runs also leave the file in the page cache, so the exporter reads it warm too.
2. Start ``drift-exporter run`` on the generated config, whose log directory is empty, and wait
   for ``/-/ready``.
3. Hard-link the generated file into a staging directory beside the log directory, then
   ``os.rename`` it into the log directory (atomic: the exporter never sees a partial file).
   The clock starts just before the rename.
4. Poll ``/metrics`` every ``--interval`` seconds (0.2 s: each scrape costs the exporter some
   milliseconds of CPU, so polling much faster would slow down what it measures) until
   ``drift_rows_ingested_total`` reaches 1,000,000 (the moment ingestion finished is the end of
   that scrape) and then until
   ``drift_window_rows == 100000`` and the published ``drift_feature_mean`` of a few features
   equals the mean of the file's last 100,000 rows (the statistics cover the file's end; the
   recomputation may even finish before the scrape that first sees every row).
5. Peak RSS of the exporter: ``VmHWM`` from ``/proc/PID/status``.
6. The naive pipeline, once: ``pandas.read_json(lines=True)`` and scipy per column on the last
   window (``--no-naive`` skips it); the exporter should be at least 5x faster.

    python bench/catch_up.py [--interval 0.2] [--deadline 600] [--json OUT] [--py-spy OUT.txt]
                             [--no-naive] [--no-alarm]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate

TARGET_RATIO = 1.25
TARGET_NAIVE_SPEEDUP = 5.0  # at least this much faster than pandas read_json + scipy
CHECKED_FEATURES = ("norm_1", "lognorm_3", "int_pois_1", "unif_3")  # means compared at the end
REL_TOLERANCE = 1e-9
CONTENT_GRACE_S = 30.0  # how long published means may disagree with the file before failing


@dataclass
class CatchUpResult:
    """Figures of one catch-up run (seconds, bytes)."""

    rows: int
    file_bytes: int
    baseline_pyarrow_s: float
    baseline_polars_s: float
    baseline_s: float
    baseline_name: str
    baseline_cpu_s: float
    exporter_cpu_s: float
    exporter_ready_s: float
    ingested_s: float
    published_s: float
    ratio: float
    target: float
    passed: bool
    peak_rss_bytes: int
    scrapes: int
    mean_scrape_s: float
    content_checked: bool
    load_before: float
    load_after: float
    naive_s: float = math.nan
    naive_speedup: float = math.nan
    naive_target: float = TARGET_NAIVE_SPEEDUP
    naive_passed: bool = False
    notes: list[str] = field(default_factory=list)


def best_of(runs: int, func: object) -> tuple[float, float]:
    """Fastest wall time of ``runs`` calls (garbage collected between them), and the CPU time
    (all threads) of that fastest call."""
    assert callable(func)
    best, cpu = math.inf, math.nan
    for _ in range(runs):
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = func()
        wall = time.perf_counter() - started
        if wall < best:
            best, cpu = wall, time.process_time() - cpu_started
        del result
    gc.collect()
    return best, cpu


def baseline(path: Path, runs: int = 3) -> tuple[tuple[float, float], tuple[float, float],
                                                 dict[str, float]]:
    """Best-of (wall, CPU) of pyarrow and polars full parses, and the last-window means."""
    import polars as pl
    import pyarrow.json as pj

    t_arrow = best_of(runs, lambda: pj.read_json(path))
    t_polars = best_of(runs, lambda: pl.read_ndjson(path))
    tail = pl.read_ndjson(path).tail(generate.WINDOW_ROWS)
    means = {name: float(tail.get_column(name).cast(pl.Float64).to_numpy().mean())
             for name in CHECKED_FEATURES}
    del tail
    gc.collect()
    return t_arrow, t_polars, means


def naive_pipeline(path: Path, reference_path: Path) -> float:
    """Seconds of the naive pipeline: ``pandas.read_json(lines=True)``, then scipy per column
    on the last window against the reference (KS for numbers, chi-squared for categories).
    Run once: it takes about a minute."""
    import pandas as pd
    from scipy import stats

    gc.collect()
    started = time.perf_counter()
    frame = pd.read_json(path, lines=True)
    reference = pd.read_parquet(reference_path)
    window = frame.tail(generate.WINDOW_ROWS)
    for name in window.columns:
        if name in ("request_id", "timestamp") or name not in reference.columns:
            continue
        if pd.api.types.is_numeric_dtype(window[name]):
            stats.ks_2samp(reference[name].dropna().to_numpy(float),
                           window[name].dropna().to_numpy(float))
        else:
            table = pd.crosstab(pd.concat([reference[name], window[name]]),
                                np.repeat([0, 1], [len(reference), len(window)]))
            stats.chi2_contingency(table.to_numpy())
    elapsed = time.perf_counter() - started
    del frame, window, reference
    gc.collect()
    return elapsed


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str, model: str) -> Samples:
    """The samples of the model's series, keyed by name and label set (in any label order)."""
    out: Samples = {}
    needle = f'model="{model}"'
    for line in text.splitlines():
        if not line or line[0] == "#" or needle not in line:
            continue
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        try:
            out[(name, frozenset(_LABEL.findall(labels)))] = float(value)
        except ValueError:
            continue
    return out


def sample(samples: Samples, name: str, model: str, **labels: str) -> float | None:
    """One sample by name and labels."""
    return samples.get((name, frozenset({"model": model, **labels}.items())))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss(pid: int) -> int:
    """VmHWM of a process in bytes (0 if unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def wait_ready(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Poll /-/ready until 200; fail if the exporter exits or the deadline passes."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exporter exited early with code {proc.returncode}")
        try:
            if requests.get(f"{base}/-/ready", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError("exporter not ready before the deadline")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not stop within 10 s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Progress:
    """What the scrapes after the rename saw (wall-clock times, seconds since the epoch)."""

    ingested_at: float | None = None
    published_at: float | None = None
    published_cpu: float = math.nan  # the exporter's CPU seconds when published was seen
    content_ok: bool = False
    mismatch_since: float | None = None
    scrapes: int = 0
    scrape_time: float = 0.0
    last: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def check_scrape(p: Progress, samples: Samples, after: float,
                 expected_means: dict[str, float]) -> bool:
    """Update the progress with one scrape; True once the statistics cover the whole file."""
    model, rows = generate.MODEL_NAME, generate.LOG_ROWS
    p.last = {n: sample(samples, n, model) for n in (
        "drift_rows_ingested_total", "drift_window_rows", "drift_last_update_timestamp_seconds")}
    ingested = p.last["drift_rows_ingested_total"]
    if p.ingested_at is None and ingested is not None and ingested >= rows:
        p.ingested_at = after
        if ingested > rows:
            p.notes.append(f"ingested {ingested:.0f} rows, more than the file's {rows}")
    if p.ingested_at is None:
        return False
    updated = p.last["drift_last_update_timestamp_seconds"]
    # No "updated after ingested_at" test: a recomputation may finish between the last batch
    # and the scrape that first sees every row (then nothing recomputes again: no new rows).
    # The content check below tells a snapshot of the whole file from an earlier one.
    if p.last["drift_window_rows"] != generate.WINDOW_ROWS or updated is None:
        return False
    seen = {f: sample(samples, "drift_feature_mean", model, feature=f) for f in expected_means}
    p.content_ok = all(math.isclose(seen[f] or math.nan, m, rel_tol=REL_TOLERANCE)
                       for f, m in expected_means.items())
    if p.content_ok:
        p.published_at = after
        return True
    if p.mismatch_since is None:
        p.mismatch_since = after
        p.notes.append("the first statistics published after ingestion did not cover the "
                       "file's last rows (computed from an earlier window); waited for the next")
    elif after - p.mismatch_since > CONTENT_GRACE_S:
        raise RuntimeError(f"published means {seen} never matched the file's last window "
                           f"{expected_means}")
    return False


def watch(base: str, proc: subprocess.Popen[bytes], interval: float, deadline_s: float,
          expected_means: dict[str, float]) -> Progress:
    """Scrape /metrics every ``interval`` s until the statistics cover the file, or fail."""
    session = requests.Session()
    progress = Progress()
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exporter exited with code {proc.returncode}")
        before = time.time()
        text = session.get(f"{base}/metrics", timeout=30).text
        after = time.time()
        progress.scrapes += 1
        progress.scrape_time += after - before
        if check_scrape(progress, parse_metrics(text, generate.MODEL_NAME), after,
                        expected_means):
            progress.published_cpu = cpu_seconds(proc.pid)
            return progress
        time.sleep(interval)
    raise TimeoutError(f"not caught up within {deadline_s} s; last seen {progress.last}, "
                       f"ingestion finished at {progress.ingested_at}")


def start_py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording every thread of the exporter (raw collapsed stacks, 100 Hz)."""
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--threads", "--rate", "100",
                            "--format", "raw", "--output", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # let py-spy attach before the clock starts
    return spy


def stop_py_spy(spy: subprocess.Popen[bytes] | None) -> None:
    """Make py-spy write its file and exit."""
    if spy is None:
        return
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()


def config_for(data_dir: Path, update_interval: str | None,
               work_dir: Path | None = None) -> Path:
    """The generated config, or a variant with another update_interval; with ``work_dir``, a
    copy there that follows ``work_dir/logs/*.jsonl`` and reads the reference by its absolute
    path (the data directory may be shared by benchmarks running at the same time)."""
    config = data_dir / generate.CONFIG_NAME
    if update_interval is None and work_dir is None:
        return config
    text = config.read_text()
    if update_interval is not None:
        text = text.replace("update_interval: 1s", f"update_interval: {update_interval}")
    if work_dir is None:
        variant = data_dir / f"bench-update-{update_interval}.yaml"
    else:
        reference = (data_dir / generate.REFERENCE_NAME).resolve()
        text = text.replace(f"path: {generate.REFERENCE_NAME}", f"path: {reference}")
        variant = work_dir / generate.CONFIG_NAME
    variant.write_text(text)
    return variant


# Diagnostic: the exporter with its drift alarm fed nothing, to measure the rest of the path.
_NO_ALARM = ("import sys; import exporter.alarming as a; "
             "a.WindowAlarms.add = lambda self, key, records: None; "
             "from exporter.cli import main; sys.exit(main(sys.argv[1:]))")


def exporter_command(no_alarm: bool = False) -> list[str]:
    """How to start the exporter: its console script, or (``no_alarm``, a diagnostic) the same
    entry point with ``WindowAlarms.add`` doing nothing."""
    return [sys.executable, "-c", _NO_ALARM] if no_alarm else ["drift-exporter"]


def work_directory(name: str) -> Path:
    """A directory of this worktree's own for one benchmark's logs (under bench/results, on the
    data's file system so that the file can be hard-linked), emptied."""
    work = (Path(__file__).resolve().parent / "results" / f"{name}-work").resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / generate.LOG_DIR_NAME).mkdir(parents=True)
    (work / "staging").mkdir()
    return work


def run(interval: float = 0.2, deadline_s: float = 600.0, py_spy: Path | None = None,
        data_dir: Path = generate.DATA_DIR, update_interval: str | None = None,
        naive: bool = True, no_alarm: bool = False) -> CatchUpResult:
    """Run the whole catch-up measurement and return its figures."""
    generate.generate(data_dir)
    source = data_dir / generate.LOG_NAME
    work = work_directory("catch_up")
    log_dir, staging = work / generate.LOG_DIR_NAME, work / "staging"
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    load_before = os.getloadavg()[0]

    print("baseline: parsing the file with pyarrow and polars (best of 3 each)...",
          file=sys.stderr)
    (t_arrow, cpu_arrow), (t_polars, cpu_polars), expected_means = baseline(source)
    base_name, base_s, base_cpu = (
        ("pyarrow.json.read_json", t_arrow, cpu_arrow) if t_arrow <= t_polars
        else ("polars.read_ndjson", t_polars, cpu_polars))
    naive_s = math.nan
    if naive:
        print("naive baseline: pandas.read_json(lines=True) + scipy per column (once)...",
              file=sys.stderr)
        naive_s = naive_pipeline(source, data_dir / generate.REFERENCE_NAME)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exporter_log = (results_dir / "catch_up_exporter.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [*exporter_command(no_alarm), "run",
         f"--config.file={config_for(data_dir, update_interval, work)}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=exporter_log, stderr=subprocess.STDOUT)
    spy: subprocess.Popen[bytes] | None = None
    try:
        wait_ready(base, proc, started + 120)
        ready_s = time.monotonic() - started
        link = staging / generate.LOG_NAME
        os.link(source, link)
        if py_spy is not None:
            spy = start_py_spy(proc.pid, py_spy)
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.time()
        os.rename(link, log_dir / generate.LOG_NAME)
        progress = watch(base, proc, interval, deadline_s, expected_means)
        rss = peak_rss(proc.pid)
    finally:
        stop_py_spy(spy)
        stop(proc)
        exporter_log.close()
        shutil.rmtree(work, ignore_errors=True)
    assert progress.ingested_at is not None
    assert progress.published_at is not None
    published_s = progress.published_at - t0
    ratio = published_s / base_s
    return CatchUpResult(
        rows=generate.LOG_ROWS, file_bytes=source.stat().st_size, baseline_pyarrow_s=t_arrow,
        baseline_polars_s=t_polars, baseline_s=base_s, baseline_name=base_name,
        baseline_cpu_s=base_cpu, exporter_cpu_s=progress.published_cpu - cpu0,
        exporter_ready_s=ready_s, ingested_s=progress.ingested_at - t0,
        published_s=published_s, ratio=ratio, target=TARGET_RATIO,
        passed=ratio <= TARGET_RATIO, peak_rss_bytes=rss, scrapes=progress.scrapes,
        mean_scrape_s=progress.scrape_time / max(progress.scrapes, 1),
        content_checked=progress.content_ok, load_before=load_before,
        load_after=os.getloadavg()[0], naive_s=naive_s, naive_speedup=naive_s / published_s,
        naive_passed=naive_s / published_s >= TARGET_NAIVE_SPEEDUP, notes=progress.notes)


def report(r: CatchUpResult) -> str:
    """Human-readable lines."""
    lines = [
        f"catch-up of {r.rows} rows ({r.file_bytes / 1e6:.0f} MB JSONL)",
        f"  baseline pyarrow.json.read_json  best of 3: {r.baseline_pyarrow_s:8.2f} s",
        f"  baseline polars.read_ndjson      best of 3: {r.baseline_polars_s:8.2f} s",
        f"  baseline (faster: {r.baseline_name}): {r.baseline_s:.2f} s",
        f"  exporter start -> /-/ready:  {r.exporter_ready_s:8.2f} s",
        f"  rename -> all rows ingested: {r.ingested_s:8.2f} s",
        f"  rename -> stats published:   {r.published_s:8.2f} s",
        f"  ratio published / baseline:  {r.ratio:8.2f} x   (target <= {r.target} x: "
        f"{'PASS' if r.passed else 'FAIL'})",
        f"  CPU seconds, all threads: exporter rename -> published {r.exporter_cpu_s:.2f} s, "
        f"baseline parse {r.baseline_cpu_s:.2f} s "
        f"(ratio {r.exporter_cpu_s / r.baseline_cpu_s:.2f} x; less sensitive to other load)",
        f"  naive pandas.read_json + scipy: {r.naive_s:8.2f} s; speed-up naive / published "
        f"{r.naive_speedup:.2f} x (target >= {r.naive_target} x: "
        f"{'PASS' if r.naive_passed else 'FAIL'})",
        f"  exporter peak RSS (VmHWM):   {r.peak_rss_bytes / 2**20:8.0f} MiB",
        f"  /metrics scrapes: {r.scrapes}, mean {r.mean_scrape_s * 1000:.1f} ms each",
        f"  published means match the file's last window: {r.content_checked}",
        f"  1-min load average before / after: {r.load_before:.2f} / {r.load_after:.2f} "
        f"(on {os.cpu_count()} cores; other processes skew both figures)",
    ]
    lines += [f"  note: {n}" for n in r.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between scrapes")
    parser.add_argument("--deadline", type=float, default=600.0, help="give up after (s)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--py-spy", type=Path, help="record the exporter with py-spy (raw)")
    parser.add_argument("--no-naive", action="store_true",
                        help="skip the naive pandas + scipy baseline (about a minute)")
    parser.add_argument("--no-alarm", action="store_true",
                        help="diagnostic: the exporter's drift alarm fed nothing (the rest of "
                             "the path)")
    parser.add_argument("--update-interval",
                        help="diagnostic: run with this update_interval instead of 1s")
    args = parser.parse_args(argv)
    result = run(args.interval, args.deadline, args.py_spy, update_interval=args.update_interval,
                 naive=not args.no_naive, no_alarm=args.no_alarm)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
