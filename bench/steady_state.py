"""Benchmark (c): steady state. An appender writes 5,000 records/s in batches of 50 (one batch
every 10 ms) for 60 s to a log the exporter follows: what share of one core does the exporter
use, and how long after a batch is appended is it counted in ``/metrics``?

1. ``bench/results/steady-work/`` gets the benchmark config (same model, reference and 100,000-row
   window as ``bench.yaml``; ``update_interval`` the exporter's default 5s unless
   ``--update-interval``) following ``logs/*.jsonl``. The log is pre-filled with 100,000 records
   so the window is full from the start (the start-up backfill reads them).
2. ``drift-exporter run`` starts; once ``/-/ready`` and the backfill is counted, the clock
   starts. Records are lines of ``predictions.jsonl`` (cycled).
3. The appender ``write()``s each batch of 50 lines at once (``O_APPEND``) on a fixed schedule
   and notes the time after the write. A scraper thread GETs ``/metrics`` every ``--interval``
   (0.1 s) and notes ``drift_rows_ingested_total`` and the time the response arrived.
   **Append-to-counted delay** of a batch = arrival of the first scrape counting it - its write
   time: an upper bound, up to one scrape interval (plus the scrape's own time) too high.
4. **CPU share** = exporter CPU seconds (user + system, all threads, ``/proc/PID/stat``) over
   the 60 s / 60 s. The benchmark's own scrapes cost the exporter CPU too: after the run, 50
   back-to-back scrapes measure the CPU of one, and the share without them is shown as well
   (Prometheus scrapes every 15 to 60 s, not 10 times a second).

    python bench/steady_state.py [--rate 5000] [--batch 50] [--seconds 60] [--interval 0.1]
                                 [--update-interval 5s] [--json OUT] [--py-spy OUT.txt]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate
from catch_up import (
    cpu_seconds,
    exporter_command,
    free_port,
    parse_metrics,
    peak_rss,
    sample,
    start_py_spy,
    stop,
    stop_py_spy,
    wait_ready,
)

TARGET_CPU_SHARE = 0.05
TARGET_P99_S = 0.25
PREFILL = 100_000


@dataclass
class SteadyResult:
    """Figures of one steady-state run."""

    rate: int
    batch: int
    seconds: float
    update_interval: str
    records_written: int
    records_counted: int
    cpu_s: float
    cpu_share: float
    scrape_cpu_s: float
    scrapes: int
    cpu_share_without_scrapes: float
    delay_p50_s: float
    delay_p99_s: float
    delay_max_s: float
    scrape_interval_s: float
    peak_rss_bytes: int
    cpu_passed: bool
    delay_passed: bool
    passed: bool
    load_before: float
    load_after: float


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) per thread name of a process, from /proc/PID/task."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def write_config(base: Path, update_interval: str) -> Path:
    """The benchmark config, pointed at ``base/logs`` and the generated reference."""
    text = (generate.DATA_DIR / generate.CONFIG_NAME).read_text()
    text = text.replace("path: reference.parquet",
                        f"path: {generate.DATA_DIR / generate.REFERENCE_NAME}")
    text = text.replace("update_interval: 1s", f"update_interval: {update_interval}")
    config = base / "steady.yaml"
    config.write_text(text)
    return config


def source_lines(count: int) -> list[bytes]:
    """The first ``count`` lines of the generated log."""
    out = []
    with (generate.DATA_DIR / generate.LOG_NAME).open("rb") as f:
        for line in itertools.islice(f, count):
            out.append(line)
    return out


class Scraper(threading.Thread):
    """GET /metrics every ``interval`` s; keeps (arrival time, rows counted)."""

    def __init__(self, base: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.base, self.interval = base, interval
        self.samples: list[tuple[float, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        next_at = time.monotonic()
        while not self.halt.is_set():
            text = session.get(f"{self.base}/metrics", timeout=30).text
            arrived = time.time()
            count = sample(parse_metrics(text, generate.MODEL_NAME),
                           "drift_rows_ingested_total", generate.MODEL_NAME)
            self.samples.append((arrived, count or 0.0))
            next_at += self.interval
            time.sleep(max(next_at - time.monotonic(), 0.0))


def counted(base: str) -> float:
    """drift_rows_ingested_total now."""
    text = requests.get(f"{base}/metrics", timeout=30).text
    return sample(parse_metrics(text, generate.MODEL_NAME), "drift_rows_ingested_total",
                  generate.MODEL_NAME) or 0.0


def append(path: Path, feed: list[bytes], batch: int, rate: int,
           total: int) -> list[tuple[float, int]]:
    """Write ``total`` lines in batches on a fixed schedule; (time after write, lines so far)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    writes: list[tuple[float, int]] = []
    cycle = itertools.cycle(range(0, len(feed) - batch + 1, batch))
    period = batch / rate
    start = time.monotonic()
    written = 0
    try:
        for i in range(total // batch):
            delay = start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            at = next(cycle)
            os.write(fd, b"".join(feed[at:at + batch]))
            written += batch
            writes.append((time.time(), written))
    finally:
        os.close(fd)
    return writes


def delays(samples: list[tuple[float, float]],
           writes: list[tuple[float, int]]) -> np.ndarray:
    """Per batch: arrival of the first scrape counting it - its write time (inf if none)."""
    arrivals = np.array([s[0] for s in samples])
    counts = np.maximum.accumulate(np.array([s[1] for s in samples]))
    out = []
    for when, cumulative in writes:
        j = int(np.searchsorted(counts, PREFILL + cumulative, side="left"))
        out.append(arrivals[j] - when if j < len(arrivals) else np.inf)
    return np.array(out)


def run(rate: int = 5000, batch: int = 50, seconds: float = 60.0, interval: float = 0.1,  # noqa: PLR0915
        update_interval: str = "5s", py_spy: Path | None = None,
        no_alarm: bool = False) -> SteadyResult:
    """Run the whole steady-state measurement and return its figures."""
    generate.generate(generate.DATA_DIR)
    # a directory of this worktree's own: the data directory may be shared by benchmarks
    # running at the same time
    base_dir = Path(__file__).resolve().parent / "results" / "steady-work"
    shutil.rmtree(base_dir, ignore_errors=True)
    (base_dir / "logs").mkdir(parents=True)
    config = write_config(base_dir, update_interval)
    total = int(rate * seconds)
    lines = source_lines(PREFILL + min(total, 200_000))
    log_path = base_dir / "logs" / "app.jsonl"
    log_path.write_bytes(b"".join(lines[:PREFILL]))
    feed = lines[PREFILL:]
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    load_before = os.getloadavg()[0]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exporter_log = (results_dir / "steady_state_exporter.log").open("wb")
    proc = subprocess.Popen(
        [*exporter_command(no_alarm), "run", f"--config.file={config}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=exporter_log, stderr=subprocess.STDOUT)
    spy = None
    try:
        wait_ready(base, proc, time.monotonic() + 120)
        deadline = time.monotonic() + 60
        while counted(base) < PREFILL and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2 * float(update_interval.rstrip("s")) if update_interval.endswith("s")
                   and update_interval[:-1].replace(".", "").isdigit() else 2.0)
        if py_spy is not None:
            spy = start_py_spy(proc.pid, py_spy)
        scraper = Scraper(base, interval)
        cpu0 = cpu_seconds(proc.pid)
        threads0 = thread_cpu(proc.pid)
        scraper.start()
        start = time.monotonic()
        writes = append(log_path, feed, batch, rate, total)
        written = writes[-1][1]
        elapsed = time.monotonic() - start
        cpu = cpu_seconds(proc.pid) - cpu0
        by_thread = thread_cpu(proc.pid)
        print("  CPU by thread while appending (s):", ", ".join(
            f"{name} {by_thread[name] - threads0.get(name, 0.0):.2f}"
            for name in sorted(by_thread, key=lambda n: threads0.get(n, 0.0) - by_thread[n])[:8]))
        settle = time.monotonic() + 10
        while (not scraper.samples or scraper.samples[-1][1] < PREFILL + written) and (
                time.monotonic() < settle):
            time.sleep(0.05)
        scraper.halt.set()
        scraper.join()
        stop_py_spy(spy)
        spy = None
        # CPU of one scrape, measured back-to-back once the appender stopped
        time.sleep(1.0)
        session = requests.Session()
        c0 = cpu_seconds(proc.pid)
        for _ in range(50):
            session.get(f"{base}/metrics", timeout=30)
        scrape_cpu = (cpu_seconds(proc.pid) - c0) / 50
        rss = peak_rss(proc.pid)
        final = counted(base)
    finally:
        stop_py_spy(spy)
        stop(proc)
        exporter_log.close()
        shutil.rmtree(base_dir / "logs", ignore_errors=True)
    d = delays(scraper.samples, writes)
    scrapes_during = sum(1 for s in scraper.samples if s[0] <= writes[-1][0])
    share = cpu / elapsed
    share_wo = max(cpu - scrapes_during * scrape_cpu, 0.0) / elapsed
    p50, p99 = float(np.percentile(d, 50)), float(np.percentile(d, 99))
    cpu_ok, delay_ok = share_wo < TARGET_CPU_SHARE, p99 < TARGET_P99_S
    return SteadyResult(
        rate=rate, batch=batch, seconds=elapsed, update_interval=update_interval,
        records_written=written, records_counted=int(final - PREFILL), cpu_s=cpu,
        cpu_share=share, scrape_cpu_s=scrape_cpu, scrapes=scrapes_during,
        cpu_share_without_scrapes=share_wo, delay_p50_s=p50, delay_p99_s=p99,
        delay_max_s=float(d.max()), scrape_interval_s=interval, peak_rss_bytes=rss,
        cpu_passed=cpu_ok, delay_passed=delay_ok, passed=cpu_ok and delay_ok,
        load_before=load_before, load_after=os.getloadavg()[0])


def report(r: SteadyResult) -> str:
    """Human-readable lines."""
    return "\n".join([
        f"steady state: {r.rate} records/s in batches of {r.batch} for {r.seconds:.1f} s "
        f"(update_interval {r.update_interval}, window full from the start)",
        f"  records written / counted:       {r.records_written} / {r.records_counted}",
        f"  exporter CPU:                    {r.cpu_s:.2f} s = {r.cpu_share * 100:.1f}% of one "
        f"core (with {r.scrapes} bench scrapes at {r.scrape_cpu_s * 1000:.1f} ms CPU each)",
        f"  CPU share without bench scrapes: {r.cpu_share_without_scrapes * 100:.1f}%  "
        f"(target < {TARGET_CPU_SHARE * 100:.0f}%: {'PASS' if r.cpu_passed else 'FAIL'})",
        f"  append -> counted delay p50 / p99 / max: {r.delay_p50_s * 1000:.0f} / "
        f"{r.delay_p99_s * 1000:.0f} / {r.delay_max_s * 1000:.0f} ms  (upper bounds, scrape "
        f"every {r.scrape_interval_s * 1000:.0f} ms; target p99 < {TARGET_P99_S * 1000:.0f} ms:"
        f" {'PASS' if r.delay_passed else 'FAIL'})",
        f"  exporter peak RSS (VmHWM):       {r.peak_rss_bytes / 2**20:.0f} MiB",
        f"  1-min load average before / after: {r.load_before:.2f} / {r.load_after:.2f}",
    ])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between scrapes")
    parser.add_argument("--update-interval", default="5s")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--py-spy", type=Path)
    parser.add_argument("--no-alarm", action="store_true",
                        help="diagnostic: the exporter's drift alarm fed nothing")
    args = parser.parse_args(argv)
    result = run(args.rate, args.batch, args.seconds, args.interval, args.update_interval,
                 args.py_spy, no_alarm=args.no_alarm)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
