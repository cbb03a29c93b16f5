"""Helpers for the reliability tests: what /proc says about a running exporter, comparable
scrapes, and fast writers of big logs.

Shared helpers live in harness.py and logdata.py; these are used by test_reliability_*.py only.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

from harness import Exporter, Samples, value, wait_until

MIB = 1 << 20

# Samples that legitimately differ between two exporters that read the same data: counters
# (a restarted exporter did not read the old records), times, the process itself.
VOLATILE_PREFIXES = ("process_", "python_", "drift_exporter_build_info",
                     "drift_update_duration_seconds",
                     # fleet histograms count every record read since start (counters)
                     "drift_feature_values_", "drift_prediction_values_")
VOLATILE_NAMES = ("drift_last_record_timestamp_seconds", "drift_last_update_timestamp_seconds",
                  "drift_config_last_reload_success_timestamp_seconds")


def proc_status(pid: int) -> dict[str, int]:
    """Memory figures of /proc/PID/status in bytes (VmRSS, VmHWM, ...) and Threads."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.startswith("Vm") and len(fields) == 2 and fields[1] == "kB":
            out[name] = int(fields[0]) * 1024
        elif name == "Threads":
            out[name] = int(fields[0])
    return out


def fds_on(pid: int, path: Path | str) -> list[int]:
    """Descriptors of the process open on ``path`` (also once it was deleted)."""
    wanted = str(path)
    found = []
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue  # closed meanwhile
        if target in (wanted, f"{wanted} (deleted)"):
            found.append(int(entry.name))
    return found


def fds_under(pid: int, directory: Path) -> dict[int, str]:
    """Descriptors of the process open on files below ``directory``: fd -> target."""
    prefix = f"{directory}{os.sep}"
    found = {}
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith(prefix):
            found[int(entry.name)] = target
    return found


def fd_flags(pid: int, fd: int) -> int:
    """The open flags of a descriptor (``flags:`` of /proc/PID/fdinfo/FD, octal)."""
    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    msg = f"no flags in /proc/{pid}/fdinfo/{fd}"
    raise AssertionError(msg)


def comparable(samples: Samples) -> Samples:
    """Every sample that depends only on the window and the reference (no counters, times)."""
    return {k: v for k, v in samples.items()
            if not k[0].endswith(("_total", "_created"))
            and not k[0].startswith(VOLATILE_PREFIXES) and k[0] not in VOLATILE_NAMES}


def differences(a: Samples, b: Samples, *, rel: float = 1e-12) -> list[str]:
    """Samples present in only one of two scrapes, or with different values."""
    problems = []
    for k in sorted(a.keys() | b.keys()):
        shown = f"{k[0]}{dict(sorted(k[1]))}"
        if k not in a or k not in b:
            problems.append(f"{shown}: only in {'the first' if k in a else 'the second'}")
        elif not (math.isclose(a[k], b[k], rel_tol=rel, abs_tol=1e-15)
                  or (math.isnan(a[k]) and math.isnan(b[k]))):
            problems.append(f"{shown}: {a[k]!r} != {b[k]!r}")
    return problems


def settled(process: Exporter, model: str, window_rows: int, *, quiet: float = 0.8,
            timeout: float = 30.0) -> Samples:
    """Wait for a window of ``window_rows`` rows and no recomputation for ``quiet`` seconds.

    Unlike ``Exporter.wait_for_window`` the number of records read is not required (a restarted
    exporter reads only what its window needs).
    """
    deadline = time.monotonic() + timeout
    rows: list[float | None] = []

    def full() -> bool:
        rows.append(value(process.scrape(), "drift_window_rows", model=model))
        return rows[-1] == window_rows

    try:
        wait_until(full, timeout, what=f"drift_window_rows == {window_rows}")
    except AssertionError as exc:
        msg = f"{exc} (drift_window_rows was {rows[-1]!r})"
        raise AssertionError(msg) from None
    samples = process.scrape()
    count, since = process.update_count(samples, model), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            msg = f"the statistics of model {model} never settled"
            raise AssertionError(msg)
        time.sleep(0.05)
        samples = process.scrape()
        now = process.update_count(samples, model)
        if now != count:
            count, since = now, time.monotonic()
    return samples


def write_repeated(path: Path, block: bytes, total_bytes: int, tail: bytes = b"") -> int:
    """Write ``block`` again and again to at least ``total_bytes``, then ``tail``; return the
    number of times ``block`` was written. Only whole blocks are written (whole lines)."""
    times = max(-(-total_bytes // len(block)), 1)  # at least total_bytes
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(times):
            os.write(fd, block)
        if tail:
            os.write(fd, tail)
    finally:
        os.close(fd)
    return times


def lines_block(lines: Iterable[str]) -> bytes:
    """Complete lines as bytes."""
    return "".join(f"{line}\n" for line in lines).encode()
