"""Compressed prediction logs (SPEC 2): complete gzip files read once, corrupt and truncated
ones counted and skipped, logrotate's ``compress`` never counting a record twice."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from harness import Exporter, Mismatches, append_lines, jsonl_line, model_config, value, wait_until

MODEL = "rotated"
ExporterFactory = Callable[..., Exporter]


def records(first: int, count: int) -> list[str]:
    """Records whose feature ``a`` is their number, so the window's mean tells which it holds."""
    return [jsonl_line({"a": float(i)}) for i in range(first, first + count)]


def config(tmp_path: Path, rows: int = 1000) -> dict[str, object]:
    """One model following logs/*.jsonl* (JSONL and its compressed rotations)."""
    reference = tmp_path / "reference.parquet"
    pd.DataFrame({"a": np.arange(200.0)}).to_parquet(reference, index=False)
    (tmp_path / "logs").mkdir(exist_ok=True)
    entry = model_config(MODEL, tmp_path / "logs" / "*.jsonl*", reference,
                         [{"name": "a", "type": "numerical"}], window={"rows": rows},
                         drift={"min_rows": 10})
    entry["logs"] = {"path": str(tmp_path / "logs" / "*.jsonl*"), "format": "jsonl"}
    return {"models": [entry]}


def gzip_lines(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress("".join(f"{line}\n" for line in lines).encode()))
    return path


def age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_logrotate_compress_counts_every_record_exactly_once(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    process = exporter(config(tmp_path))
    log = tmp_path / "logs" / "x.jsonl"
    append_lines(log, records(0, 100))
    process.wait_for_window(MODEL, 100, 100)

    # logrotate with `compress`: rename, create, compress the renamed file, delete it.
    append_lines(log, records(100, 20))  # written just before the rotation
    rotated = tmp_path / "logs" / "x.jsonl.1"
    log.rename(rotated)
    append_lines(log, records(1000, 30))
    (tmp_path / "logs" / "x.jsonl.1.gz").write_bytes(gzip.compress(rotated.read_bytes()))
    rotated.unlink()
    process.wait_for_window(MODEL, 150, 150)

    # A barrier: by the time these are read, the compressed file was listed again and again.
    append_lines(log, records(2000, 5))
    samples = process.wait_for_window(MODEL, 155, 155)
    check = Mismatches(samples)
    check.expect("drift_rows_ingested_total", {"model": MODEL}, 155)
    expected = np.concatenate((np.arange(120.0), np.arange(1000.0, 1030.0),
                               np.arange(2000.0, 2005.0)))
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "a"}, float(expected.mean()))
    check.verify()
    assert value(samples, "drift_files_rejected_total", model=MODEL, reason="corrupt") in (None,
                                                                                         0.0)


def test_corrupt_and_truncated_gzip_files_are_counted_once_and_the_exporter_keeps_serving(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    process = exporter(config(tmp_path))
    log = tmp_path / "logs" / "x.jsonl"
    append_lines(log, records(0, 50))
    process.wait_for_window(MODEL, 50, 50)

    whole = gzip.compress("".join(f"{line}\n" for line in records(100, 200)).encode())
    truncated = tmp_path / "logs" / "x.jsonl.2.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    age(truncated, 120)  # unchanged for longer than a writer would pause: truncated
    damaged = bytearray(whole)
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / "logs" / "x.jsonl.3.gz").write_bytes(bytes(damaged))
    rejected = {"model": MODEL, "reason": "corrupt"}
    wait_until(lambda: value(process.scrape(), "drift_files_rejected_total", **rejected) == 2,
               10.0, what="drift_files_rejected_total == 2")

    # Barriers: every file is listed again before each is read; a retried file would count.
    append_lines(log, records(50, 10))
    process.wait_for_window(MODEL, 60, 60)
    append_lines(log, records(60, 5))
    check = Mismatches(process.wait_for_window(MODEL, 65, 65))
    check.expect("drift_files_rejected_total", rejected, 2)
    check.expect("drift_rows_ingested_total", {"model": MODEL}, 65)
    check.verify()
    assert process.get("/-/healthy").status_code == 200
    assert process.proc.poll() is None
    assert "x.jsonl.3.gz" in process.stderr()


def test_a_gzip_file_present_at_start_up_fills_the_window_it_is_needed_for(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg = config(tmp_path, rows=60)
    oldest = gzip_lines(tmp_path / "logs" / "x.jsonl.2.gz", records(0, 20))
    older = gzip_lines(tmp_path / "logs" / "x.jsonl.1.gz", records(20, 30))
    log = tmp_path / "logs" / "x.jsonl"
    append_lines(log, records(50, 40))
    for path, ago in ((oldest, 300), (older, 200), (log, 100)):
        age(path, ago)
    process = exporter(cfg)
    # The window needs 20 records beyond x.jsonl's 40: x.jsonl.1.gz is read, x.jsonl.2.gz not.
    samples = process.wait_for_window(MODEL, 70, 60)
    check = Mismatches(samples)
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "a"},
                 float(np.arange(30.0, 90.0).mean()))
    check.verify()
