"""Soak test (not run in CI): millions of records with rotations while the exporter follows them.

A writer appends ``--records`` JSONL records (10 million by default) to ``logs/app.jsonl`` at a
steady rate over about ``--minutes`` minutes, in writes cut at random byte offsets (so lines are
split anywhere, as a buffered logger does), with one malformed line every ``--malformed-every``
records. Every ``--rotate-every`` records it rotates the log the way logrotate's ``rename``
mode does: ``app.jsonl`` -> ``app.jsonl.K`` (out of the glob ``*.jsonl``), then a new
``app.jsonl``; rotated files beyond the newest ``--keep`` are deleted (possibly while the
exporter still drains them). Meanwhile ``drift-exporter run`` follows ``logs/*.jsonl``.

At the end the script waits until the exporter has accounted for every line and reports:
records written, records counted (``drift_rows_ingested_total``), records rejected
(``drift_rows_rejected_total``), the exporter's RSS at start and end (``VmRSS``) and its peak
(``VmHWM``), the descriptors it holds, the slowest scrape, and whether every invariant held:
counted == written, rejected == malformed lines written, descriptors released.

    python bench/soak.py [--records 10000000] [--minutes 4] [--rotate-every 500000]
                         [--keep 2] [--json bench/results/soak.json]

Exit code 0 when every invariant held, 1 when one did not, 2 when the run could not happen.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
MODEL = "soak"
NUMERICAL = ("amount", "rate", "age", "visits")
CATEGORIES = ("web", "app", "store", "phone", "partner")
BLOCK_RECORDS = 50_000  # records per pre-built block (8 distinct blocks are cycled)
BLOCKS = 8
WRITE_BYTES = 1 << 20  # average size of one write(); actual cuts are random
LATE_RECORDS = 1000  # records written to a log after it was renamed away
RELEASE_WAIT_S = 45.0  # rotated files are released 30 s after their last change


@dataclass
class RssSample:
    """One reading of the exporter's memory and descriptors."""

    t: float
    vm_rss_bytes: int
    vm_hwm_bytes: int
    fds: int
    ingested: float | None


@dataclass
class SoakResult:
    """Figures of one soak run."""

    records_written: int = 0
    malformed_written: int = 0
    rotations: int = 0
    deleted_files: int = 0
    bytes_written: int = 0
    write_seconds: float = 0.0
    catch_up_seconds: float = 0.0
    counted: float = 0.0
    rejected: dict[str, float] = field(default_factory=dict)
    truncations: float = 0.0
    window_rows: float = 0.0
    rss_start_bytes: int = 0
    rss_end_bytes: int = 0
    hwm_start_bytes: int = 0
    hwm_end_bytes: int = 0
    rss_max_bytes: int = 0
    fds_start: int = 0
    fds_end: int = 0
    log_fds_end: int = 0
    slowest_scrape_s: float = 0.0
    scrapes: int = 0
    exit_code: int | None = None
    passed: bool = False
    problems: list[str] = field(default_factory=list)
    samples: list[RssSample] = field(default_factory=list)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            out[name] = int(rest.split()[0]) * 1024
    return out


def open_fds(pid: int, under: Path | None = None) -> int:
    """Descriptors the process holds (only those on files below ``under`` when given)."""
    count = 0
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if under is None or target.startswith(str(under)):
            count += 1
    return count


def scrape(base: str) -> tuple[dict[tuple[str, frozenset[tuple[str, str]]], float], float]:
    """/metrics parsed into samples, and how long the scrape took."""
    started = time.monotonic()
    text = requests.get(f"{base}/metrics", timeout=10).text
    took = time.monotonic() - started
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = float(s.value)
    return samples, took


def sample_value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
                 **labels: str) -> float | None:
    """One sample's value, or None when absent."""
    return samples.get((name, frozenset({"model": MODEL, **labels}.items())))


def build_blocks(seed: int = 7) -> list[bytes]:
    """Distinct blocks of BLOCK_RECORDS JSONL records (built once, then cycled)."""
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(BLOCKS):
        n = BLOCK_RECORDS
        amount = np.round(rng.lognormal(8.0, 0.6, n), 2)
        rate = np.round(rng.beta(2.0, 8.0, n), 4)
        age = rng.integers(18, 90, n)
        visits = rng.poisson(4.0, n)
        channel = rng.choice(CATEGORIES, n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
        score = np.round(rng.beta(2.0, 5.0, n), 5)
        lines = [
            f'{{"amount": {amount[i]}, "rate": {rate[i]}, "age": {age[i]}, '
            f'"visits": {visits[i]}, "channel": "{channel[i]}", "score": {score[i]}}}\n'
            for i in range(n)
        ]
        blocks.append("".join(lines).encode())
    return blocks


def write_reference(path: Path, seed: int = 8, rows: int = 20_000) -> None:
    """A reference from the same distributions as the log (so nothing drifts)."""
    rng = np.random.default_rng(seed)
    pd.DataFrame({
        "amount": np.round(rng.lognormal(8.0, 0.6, rows), 2),
        "rate": np.round(rng.beta(2.0, 8.0, rows), 4),
        "age": rng.integers(18, 90, rows).astype(float),
        "visits": rng.poisson(4.0, rows).astype(float),
        "channel": rng.choice(CATEGORIES, rows, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
        "score": np.round(rng.beta(2.0, 5.0, rows), 5),
    }).to_parquet(path, index=False)


def write_config(directory: Path, window_rows: int, update_interval: str) -> Path:
    """The exporter's config for the soak model."""
    features = [{"name": n, "type": "numerical"} for n in NUMERICAL]
    features.append({"name": "channel", "type": "categorical"})
    config = {"models": [{
        "name": MODEL,
        "logs": {"path": str(directory / "logs" / "*.jsonl")},
        "reference": {"path": str(directory / "reference.parquet")},
        "features": features,
        "prediction": {"column": "score", "type": "numerical"},
        "window": {"rows": window_rows},
        "update_interval": update_interval,
    }]}
    path = directory / "soak.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


class Writer:
    """Appends records in randomly cut writes, rotating and deleting old files."""

    def __init__(self, logs: Path, args: argparse.Namespace, result: SoakResult) -> None:
        self.logs = logs
        self.args = args
        self.result = result
        self.rng = np.random.default_rng(11)
        self.current = logs / "app.jsonl"
        self.fd = os.open(self.current, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.in_file = 0
        self.rotated: list[Path] = []
        self.pending = b""  # bytes of a cut line not written yet

    def write(self, data: bytes) -> None:
        """Write ``data`` in pieces cut at random offsets (lines split anywhere)."""
        view = memoryview(data)
        while view:
            cut = int(self.rng.integers(1, 2 * WRITE_BYTES))
            os.write(self.fd, view[:cut])
            self.result.bytes_written += min(cut, len(view))
            view = view[cut:]

    def records(self, block: bytes, count: int) -> None:
        """Append the first ``count`` records of ``block`` (plus malformed lines), rotating."""
        every = self.args.malformed_every
        lines = block.splitlines(keepends=True)[:count]
        start = 0
        while start < len(lines):
            room = self.args.rotate_every - self.in_file
            upto = min(len(lines), start + room)
            chunk = lines[start:upto]
            if every:
                done = self.result.records_written
                marks = [i for i in range(len(chunk)) if (done + i) % every == every // 2]
                for offset, i in enumerate(marks):
                    chunk.insert(i + offset, b'{"amount": 12.5, "rate": \n')
                self.result.malformed_written += len(marks)
            self.result.records_written += upto - start
            self.in_file += upto - start
            start = upto
            if self.in_file < self.args.rotate_every:
                self.write(b"".join(chunk))
                continue
            # The writer notices the rotation a little late: its last records still go to
            # the renamed file, which the exporter must drain through its descriptor.
            late = min(LATE_RECORDS, len(chunk))
            self.write(b"".join(chunk[: len(chunk) - late]))
            self.rotate(b"".join(chunk[len(chunk) - late:]))

    def rotate(self, late: bytes) -> None:
        """logrotate's rename mode: app.jsonl -> app.jsonl.K, new app.jsonl, delete old ones.

        ``late`` is written to the renamed file before the writer reopens its log.
        """
        self.result.rotations += 1
        target = self.logs / f"app.jsonl.{self.result.rotations}"
        os.rename(self.current, target)
        self.write(late)
        os.close(self.fd)
        self.fd = os.open(self.current, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.in_file = 0
        self.rotated.append(target)
        while len(self.rotated) > self.args.keep:
            os.unlink(self.rotated.pop(0))
            self.result.deleted_files += 1

    def close(self) -> None:
        """Close the current file."""
        os.close(self.fd)


def start_exporter(directory: Path, config: Path, port: int) -> subprocess.Popen[bytes]:
    """``drift-exporter run`` with its log in the soak directory."""
    binary = shutil.which("drift-exporter")
    if binary is None:
        msg = "the drift-exporter console script is not on PATH (pip install -e .)"
        raise SystemExit(msg)
    log = (directory / "exporter.log").open("wb")
    return subprocess.Popen([binary, "run", f"--config.file={config}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Poll /-/ready until 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"the exporter exited with {proc.returncode} before it was ready"
            raise SystemExit(msg)
        try:
            if requests.get(f"{base}/-/ready", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    msg = "the exporter did not become ready"
    raise SystemExit(msg)


class Monitor:
    """Samples RSS, descriptors and scrapes about once a second."""

    def __init__(self, pid: int, base: str, logs: Path, result: SoakResult) -> None:
        self.pid, self.base, self.logs, self.result = pid, base, logs, result
        self.started = time.monotonic()
        self.next_at = 0.0
        self.last: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    def tick(self, force: bool = False) -> None:
        """Take one sample if a second has passed (or when forced)."""
        now = time.monotonic()
        if not force and now < self.next_at:
            return
        self.next_at = now + 1.0
        self.last, took = scrape(self.base)
        self.result.scrapes += 1
        self.result.slowest_scrape_s = max(self.result.slowest_scrape_s, took)
        status = proc_status(self.pid)
        self.result.samples.append(RssSample(
            round(now - self.started, 2), status["VmRSS"], status["VmHWM"],
            open_fds(self.pid), sample_value(self.last, "drift_rows_ingested_total")))
        self.result.rss_max_bytes = max(self.result.rss_max_bytes, status["VmRSS"])

    def accounted(self) -> float:
        """Lines counted so far: ingested plus rejected."""
        ingested = sample_value(self.last, "drift_rows_ingested_total") or 0.0
        rejected = sum(sample_value(self.last, "drift_rows_rejected_total", reason=r) or 0.0
                       for r in ("malformed", "too_long"))
        return ingested + rejected


def prepare(args: argparse.Namespace) -> tuple[Path, Path, list[bytes]]:
    """A fresh soak directory with reference, config and empty logs; the record blocks."""
    directory = Path(args.dir).resolve()
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "logs").mkdir(parents=True)
    write_reference(directory / "reference.parquet")
    config = write_config(directory, args.window_rows, args.update_interval)
    print(f"building {BLOCKS} blocks of {BLOCK_RECORDS} records ...", flush=True)
    return directory, config, build_blocks()


def write_all(args: argparse.Namespace, writer: Writer, monitor: Monitor,
              blocks: list[bytes]) -> None:
    """Write every record at a steady rate, sampling the exporter meanwhile."""
    result = writer.result
    rate = args.records / (args.minutes * 60.0)
    started = time.monotonic()
    index = 0
    while result.records_written < args.records:
        count = min(BLOCK_RECORDS, args.records - result.records_written)
        writer.records(blocks[index % BLOCKS], count)
        index += 1
        due = started + result.records_written / rate
        while time.monotonic() < due:
            monitor.tick()
            time.sleep(min(0.1, max(due - time.monotonic(), 0.0)))
        monitor.tick()
        if index % 20 == 0:
            print(f"  {result.records_written:>10,} written, "
                  f"{monitor.accounted():>12,.0f} accounted, "
                  f"RSS {result.samples[-1].vm_rss_bytes / 2**20:.0f} MiB", flush=True)
    writer.close()
    result.write_seconds = time.monotonic() - started


def settle(args: argparse.Namespace, monitor: Monitor) -> None:
    """Wait until every line is accounted for and the rotated files are released."""
    result = monitor.result
    total = result.records_written + result.malformed_written
    caught_up = time.monotonic()
    deadline = caught_up + args.catch_up_timeout
    while time.monotonic() < deadline:
        monitor.tick(force=True)
        if monitor.accounted() >= total:
            break
        time.sleep(0.5)
    result.catch_up_seconds = time.monotonic() - caught_up
    # Rotated files nobody writes any more are released RELEASE_AFTER_SECONDS (30 s) after
    # their last change, deleted ones at once: only the current log should stay open.
    release_deadline = time.monotonic() + RELEASE_WAIT_S
    while time.monotonic() < release_deadline and open_fds(monitor.pid, monitor.logs) > 1:
        time.sleep(1.0)
    monitor.tick(force=True)
    last = monitor.last
    result.counted = sample_value(last, "drift_rows_ingested_total") or 0.0
    result.rejected = {r: sample_value(last, "drift_rows_rejected_total", reason=r) or 0.0
                       for r in ("malformed", "too_long")}
    result.truncations = sample_value(last, "drift_log_truncations_total") or 0.0
    result.window_rows = sample_value(last, "drift_window_rows") or 0.0
    end = result.samples[-1]
    result.rss_end_bytes, result.hwm_end_bytes = end.vm_rss_bytes, end.vm_hwm_bytes
    result.fds_end, result.log_fds_end = end.fds, open_fds(monitor.pid, monitor.logs)


def stop(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM; the exit code, or None when it did not stop within 10 s (then SIGKILL)."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return None


def run(args: argparse.Namespace) -> SoakResult:
    """Prepare the data, run the exporter and the writer, collect the figures."""
    result = SoakResult()
    directory, config, blocks = prepare(args)
    logs = directory / "logs"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_exporter(directory, config, port)
    try:
        wait_ready(base, proc)
        monitor = Monitor(proc.pid, base, logs, result)
        monitor.tick(force=True)
        first = result.samples[0]
        result.rss_start_bytes, result.hwm_start_bytes = first.vm_rss_bytes, first.vm_hwm_bytes
        result.fds_start = first.fds
        write_all(args, Writer(logs, args, result), monitor, blocks)
        settle(args, monitor)
    finally:
        result.exit_code = stop(proc)
    judge(result, args)
    if not args.keep_data:
        shutil.rmtree(logs, ignore_errors=True)
    return result


def judge(result: SoakResult, args: argparse.Namespace) -> None:
    """Record every invariant that did not hold."""
    problems = result.problems
    if result.counted != result.records_written:
        problems.append(f"counted {result.counted:,.0f} != written {result.records_written:,}")
    if result.rejected.get("malformed") != result.malformed_written:
        problems.append(f"rejected {result.rejected} != malformed written "
                        f"{result.malformed_written}")
    if result.truncations:
        problems.append(f"{result.truncations:g} truncations reported; the writer never truncates")
    if result.window_rows != min(args.window_rows, result.records_written):
        problems.append(f"window holds {result.window_rows:g} rows")
    if result.exit_code != 0:
        problems.append(f"exit code {result.exit_code} after SIGTERM")
    if result.log_fds_end != 1:  # the current log; rotated ones were released
        problems.append(f"{result.log_fds_end} log descriptors open at the end (expected 1)")
    result.passed = not problems


def report(r: SoakResult) -> str:
    """The figures as a small table."""
    mib = 2**20

    def size(b: int) -> str:
        return f"{b / mib:,.0f} MiB"

    rows = [
        ("records written", f"{r.records_written:,} (+{r.malformed_written} malformed lines)"),
        ("bytes written", f"{r.bytes_written / 2**30:.2f} GiB in {r.write_seconds:.0f} s "
                          f"({r.records_written / max(r.write_seconds, 1e-9):,.0f} records/s)"),
        ("rotations / deleted files", f"{r.rotations} / {r.deleted_files}"),
        ("counted (rows_ingested_total)", f"{r.counted:,.0f}"),
        ("rejected (rows_rejected_total)", ", ".join(f"{k}={v:g}" for k, v in r.rejected.items())),
        ("truncations", f"{r.truncations:g}"),
        ("caught up after the last write", f"{r.catch_up_seconds:.1f} s"),
        ("RSS at start / end / max", f"{size(r.rss_start_bytes)} / {size(r.rss_end_bytes)} / "
                                     f"{size(r.rss_max_bytes)}"),
        ("peak RSS (VmHWM) at start / end", f"{size(r.hwm_start_bytes)} / "
                                            f"{size(r.hwm_end_bytes)}"),
        ("descriptors at start / end (log files)", f"{r.fds_start} / {r.fds_end} "
                                                   f"({r.log_fds_end})"),
        ("scrapes, slowest", f"{r.scrapes}, {r.slowest_scrape_s * 1000:.0f} ms"),
        ("exit code after SIGTERM", str(r.exit_code)),
        ("result", "PASS" if r.passed else "FAIL: " + "; ".join(r.problems)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--minutes", type=float, default=4.0,
                        help="spread the writes over about this long")
    parser.add_argument("--rotate-every", type=int, default=500_000)
    parser.add_argument("--keep", type=int, default=2, help="rotated files kept; older deleted")
    parser.add_argument("--malformed-every", type=int, default=100_000)
    parser.add_argument("--window-rows", type=int, default=50_000)
    parser.add_argument("--update-interval", default="5s")
    parser.add_argument("--catch-up-timeout", type=float, default=300.0)
    parser.add_argument("--dir", default=str(HERE / "results" / "soak-work"))
    parser.add_argument("--keep-data", action="store_true", help="leave the logs on disk")
    parser.add_argument("--json", default=str(HERE / "results" / "soak.json"))
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (OSError, requests.RequestException) as exc:
        print(f"soak: could not run: {exc}", file=sys.stderr)
        return 2
    print(report(result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(asdict(result), indent=1, default=float))
        print(f"figures and RSS samples: {out}")
    return 0 if result.passed and not math.isnan(result.counted) else 1


if __name__ == "__main__":
    raise SystemExit(main())
