"""Restarts (issue 4, scenario 11): the window is rebuilt from the logs.

An exporter killed with SIGKILL in the middle of a large file and started again must publish
the same window and the same gauges as one that ran without interruption over the same data;
and start-up on a 2 GB log reads only what the window needs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import (
    Exporter,
    Mismatches,
    append_lines,
    jsonl_line,
    model_config,
    value,
    wait_until,
)
from logdata import (
    FEATURES,
    MALFORMED_LINES,
    PREDICTION,
    live_columns,
    messy_log,
    reference_frame,
    write_reference,
)
from reliability_helpers import (
    MIB,
    comparable,
    differences,
    lines_block,
    settled,
    write_repeated,
)

MODEL = "restart"
WINDOW = 5000
SEGMENTS = ("a", "b", "c", "d")
ExporterFactory = Callable[..., Exporter]


@pytest.fixture
def big_files() -> Iterator[list[Path]]:
    """Paths of large files to delete after the test (pytest keeps old tmp_paths)."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        path.unlink(missing_ok=True)


def reference(tmp_path: Path) -> Path:
    """The numerical reference of logdata plus a categorical ``segment``."""
    frame = reference_frame()
    rng = np.random.default_rng(3)
    frame["segment"] = rng.choice(SEGMENTS, len(frame), p=[0.4, 0.3, 0.2, 0.1])
    return write_reference(frame, tmp_path / "reference.parquet")


def config(logs: Path, ref: Path, window: int = WINDOW) -> dict[str, Any]:
    """Numerical features, a categorical one and the prediction, over logs/*.jsonl."""
    features: list[dict[str, Any]] = [{"name": f, "type": "numerical"} for f in FEATURES]
    features.append({"name": "segment", "type": "categorical"})
    # psi and wasserstein on some features so every statistic family is compared
    features[1]["statistic"] = "psi"
    features[2]["statistic"] = "wasserstein"
    return {"models": [model_config(MODEL, logs / "*.jsonl", ref, features,
                                    prediction={"column": PREDICTION},
                                    window={"rows": window}, update_interval="100ms")]}


def messy_lines(seed: int, records: int) -> tuple[list[str], int]:
    """Messy records (logdata) with a ``segment``, malformed and blank lines among them.

    Returns the lines and how many of them are records.
    """
    rng = np.random.default_rng(seed)
    log = messy_log(rng, live_columns(rng, records), integral=("counts",), malformed_every=37)
    lines = []
    for i, line in enumerate(log.lines):
        if line in MALFORMED_LINES:
            lines.append(line)
            continue
        record = json.loads(line)
        roll = rng.random()
        if roll < 0.9:
            record["segment"] = str(rng.choice([*SEGMENTS, "unseen"]))
        elif roll < 0.95:
            record["segment"] = int(rng.integers(3))  # a number: the category "0", "1", "2"
        lines.append(jsonl_line(record))
        if i % 101 == 50:
            lines.append("   ")  # blank lines carry no record
    return lines, log.records


def bulk_block(seed: int, records: int) -> bytes:
    """Plain lines (fast to repeat into a big file)."""
    rng = np.random.default_rng(seed)
    cols = live_columns(rng, records)
    segments = rng.choice(SEGMENTS, records)
    return lines_block(
        jsonl_line({**{k: float(v[i]) for k, v in cols.items()}, "segment": str(segments[i])})
        for i in range(records))


def set_mtime(path: Path, seconds_ago: float) -> None:
    """Make the file look last written that long ago."""
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_a_killed_exporter_restarts_with_the_window_and_gauges_of_an_uninterrupted_run(
        tmp_path: Path, exporter: ExporterFactory, big_files: list[Path]) -> None:
    ref = reference(tmp_path)
    logs, staging = tmp_path / "logs", tmp_path / "staging"
    logs.mkdir()
    staging.mkdir()
    cfg = config(logs, ref)

    first_lines, first_records = messy_lines(1, 3000)
    append_lines(logs / "app-1.jsonl", first_lines)
    set_mtime(logs / "app-1.jsonl", 300)
    steady = exporter(cfg)  # runs through everything
    killed = exporter(cfg)  # killed in the middle of the big file

    # ~64 MB: repeated plain lines, then messy lines (malformed and blank ones among them) so
    # that the newest WINDOW records are not simply the last WINDOW lines.
    big = staging / "app-2.jsonl"
    big_files.append(logs / "app-2.jsonl")
    block = bulk_block(2, 20_000)
    repeats = write_repeated(big, block, 64 * MIB)
    tail_lines, tail_records = messy_lines(3, 4000)
    append_lines(big, tail_lines)
    set_mtime(big, 200)
    big_records = repeats * 20_000 + tail_records
    os.rename(big, logs / "app-2.jsonl")  # appears at once, as a rotated-in file does

    def mid_read() -> float | None:
        got = value(killed.scrape(), "drift_rows_ingested_total", model=MODEL)
        return got if got is not None and first_records < got else None

    read_before_kill = wait_until(mid_read, 30, what="the killed exporter to start reading",
                                  interval=0.01) - first_records
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.wait(5)
    killed.death_reported = True  # killed on purpose: the teardown must not report its exit
    assert read_before_kill < big_records, (
        f"the exporter had read all {big_records} records before SIGKILL: not mid-file")

    last_lines, last_records = messy_lines(4, 2000)
    append_lines(logs / "app-3.jsonl", last_lines)
    total = first_records + big_records + last_records
    wait_until(lambda: value(steady.scrape(), "drift_rows_ingested_total", model=MODEL) == total,
               60, what=f"{total} records read by the uninterrupted exporter")

    restarted = exporter(cfg)
    want = settled(steady, MODEL, WINDOW)
    got = settled(restarted, MODEL, WINDOW)
    compared = comparable(want)
    assert len(compared) > 60, f"only {len(compared)} samples to compare"
    problems = differences(compared, comparable(got))
    assert not problems, (f"{len(problems)} differences between the uninterrupted and the "
                          f"restarted exporter:\n  " + "\n  ".join(problems[:40]))
    # It read only what the window needs, not the 60 MB again.
    assert value(got, "drift_rows_ingested_total", model=MODEL) == WINDOW
    assert value(want, "drift_feature_mean", model=MODEL, feature="gauss") is not None


def test_start_up_on_a_2_gb_log_is_ready_within_10_s_with_the_newest_records(
        tmp_path: Path, exporter: ExporterFactory, big_files: list[Path]) -> None:
    free = shutil.disk_usage(tmp_path).free
    if free < 4 * 2**30:  # the log itself is 2 GiB; keep room for everything else
        pytest.skip(f"needs 4 GiB free under {tmp_path}, has {free / 2**30:.1f} GiB")
    ref = reference(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    window = 300
    cfg = config(logs, ref, window)
    big = logs / "app.jsonl"
    big_files.append(big)
    rng = np.random.default_rng(5)
    newest = live_columns(rng, window, gauss_mean=500.0)  # far from the bulk: any mix shows
    tail = lines_block(jsonl_line({k: float(v[i]) for k, v in newest.items()})
                       for i in range(window))
    write_repeated(big, bulk_block(6, 7000), 2048 * MIB, tail)
    assert big.stat().st_size >= 2 << 30

    started = time.monotonic()
    process = exporter(cfg, wait=False)
    process.wait_ready(timeout=10.0)
    took = time.monotonic() - started
    assert took < 10.0, f"/-/ready after {took:.1f}s"

    samples = process.scrape()  # ready means the existing logs were read and computed
    check = Mismatches(samples)
    check.expect("drift_window_rows", {"model": MODEL}, window)
    check.expect("drift_rows_ingested_total", {"model": MODEL}, window)
    for feature in FEATURES:
        check.expect("drift_feature_mean", {"model": MODEL, "feature": feature},
                     float(np.mean(newest[feature])))
    check.verify()

    # The file goes on being followed past 2 GB (line numbers unknown there, offsets exact).
    more = live_columns(rng, 10, gauss_mean=500.0)
    append_lines(big, [jsonl_line({k: float(v[i]) for k, v in more.items()})
                       for i in range(10)])
    samples = process.wait_for_window(MODEL, window + 10, window)
    check = Mismatches(samples)
    expected = np.concatenate((newest["gauss"], more["gauss"]))[-window:]
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "gauss"},
                 float(np.mean(expected)))
    check.verify()

