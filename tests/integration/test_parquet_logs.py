"""Parquet prediction logs (SPEC 2): complete files read once; corrupt files counted once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import spec_stats
from harness import Exporter, Mismatches, model_config, value, wait_until
from logdata import FEATURES, PREDICTION, live_columns, reference_frame, write_reference

MODEL = "loans"
ExporterFactory = Callable[..., Exporter]


def log_table(columns: dict[str, np.ndarray]) -> pa.Table:
    """A log file's table: floats, an integer column, an id the config does not name."""
    n = len(columns["gauss"])
    return pa.table({
        "request_id": [f"r{i}" for i in range(n)],
        "gauss": columns["gauss"],
        "skewed": columns["skewed"],
        "counts": columns["counts"].astype(np.int64),
        PREDICTION: columns[PREDICTION],
    })


def write_renamed(table: pa.Table, directory: Path, name: str) -> Path:
    """Write ``name.tmp`` then rename it, as SPEC 2 asks writers to."""
    tmp = directory / f"{name}.tmp"
    pq.write_table(table, tmp)
    final = directory / name
    os.rename(tmp, final)
    return final


def start(tmp_path: Path, exporter: ExporterFactory) -> tuple[Exporter, Path, np.ndarray]:
    """An exporter following logs/*.parquet; returns it, the log folder and the reference."""
    reference = reference_frame()
    ref_path = write_reference(reference, tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = model_config(MODEL, logs / "*.parquet", ref_path,
                       [{"name": f, "type": "numerical"} for f in FEATURES],
                       prediction={"column": PREDICTION}, window={"rows": 1000},
                       drift={"min_rows": 50})
    return exporter({"models": [cfg]}), logs, reference["gauss"].to_numpy(float)


def ingested(process: Exporter) -> float | None:
    """drift_rows_ingested_total of the model."""
    return value(process.scrape(), "drift_rows_ingested_total", model=MODEL)


def test_a_parquet_file_renamed_into_the_glob_is_read_once(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    process, logs, reference = start(tmp_path, exporter)
    rng = np.random.default_rng(21)
    first = live_columns(rng, 200)
    write_renamed(log_table(first), logs, "part-0001.parquet")
    # Names a writer uses while writing are never read, even when complete.
    pq.write_table(log_table(live_columns(rng, 10)), logs / "part-0002.parquet.tmp")
    pq.write_table(log_table(live_columns(rng, 10)), logs / ".part-0003.parquet")
    pq.write_table(log_table(live_columns(rng, 10)), logs / "_part-0004.parquet")
    process.wait_for_window(MODEL, 200, 200)

    second = live_columns(rng, 50)
    write_renamed(log_table(second), logs, "part-0005.parquet")
    process.wait_for_window(MODEL, 250, 250)
    # A barrier: when a later file has been read, every earlier one was scanned again since.
    third = live_columns(rng, 5)
    write_renamed(log_table(third), logs, "part-0006.parquet")
    samples = process.wait_for_window(MODEL, 255, 255)
    check = Mismatches(samples)
    check.expect("drift_rows_ingested_total", {"model": MODEL}, 255)
    window = np.concatenate((first["gauss"], second["gauss"], third["gauss"]))
    expected = spec_stats.numerical(reference, window)
    labels = {"model": MODEL, "feature": "gauss"}
    check.expect("drift_feature_mean", labels, expected["mean"])
    check.expect("drift_feature_ks_statistic", labels, expected["ks_statistic"], rel=0.0,
                 abs_tol=1e-9)
    check.expect("drift_files_rejected_total", {"model": MODEL, "reason": "corrupt"}, 0)
    check.verify()


def corrupt_bytes(valid: bytes) -> dict[str, bytes]:
    """Two corrupt files that look complete: magic at both ends, garbage inside."""
    garbage = b"PAR1" + os.urandom(4096) + b"PAR1"
    footer_len = int.from_bytes(valid[-8:-4], "little")
    start = len(valid) - 8 - footer_len
    damaged = valid[:start] + b"\xff" * footer_len + valid[-8:]
    return {"garbage.parquet": garbage, "bad-footer.parquet": damaged}


def test_a_corrupt_parquet_file_is_counted_once_and_the_exporter_keeps_serving(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    process, logs, _ = start(tmp_path, exporter)
    rng = np.random.default_rng(22)
    good = write_renamed(log_table(live_columns(rng, 100)), logs, "part-0001.parquet")
    process.wait_for_window(MODEL, 100, 100)

    bad = corrupt_bytes(good.read_bytes())
    for name, data in bad.items():
        tmp = logs / f"{name}.tmp"
        tmp.write_bytes(data)
        os.rename(tmp, logs / name)
    rejected = {"model": MODEL, "reason": "corrupt"}
    wait_until(lambda: value(process.scrape(), "drift_files_rejected_total", **rejected)
               == len(bad), 10.0, what=f"drift_files_rejected_total == {len(bad)}")

    # Good files after the corrupt ones (barriers): by the time the last is read, every file
    # was scanned again at least twice, and a retried corrupt file would be counted again.
    write_renamed(log_table(live_columns(rng, 100)), logs, "part-0002.parquet")
    process.wait_for_window(MODEL, 200, 200)
    write_renamed(log_table(live_columns(rng, 5)), logs, "part-0003.parquet")
    check = Mismatches(process.wait_for_window(MODEL, 205, 205))
    check.expect("drift_files_rejected_total", rejected, len(bad))
    check.expect("drift_rows_ingested_total", {"model": MODEL}, 205)
    check.verify()
    assert process.get("/-/healthy").status_code == 200
    assert process.get("/-/ready").status_code == 200
    assert process.proc.poll() is None
