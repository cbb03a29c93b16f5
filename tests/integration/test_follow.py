"""Following JSONL logs (SPEC 2, 3): new lines, partial lines, new files, start-up backfill."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import spec_stats
from harness import Exporter, Mismatches, append_lines, model_config, value, wait_until
from logdata import (
    FEATURES,
    PREDICTION,
    clean_lines,
    live_columns,
    reference_frame,
    write_reference,
)

MODEL = "loans"
WINDOW = 300
FOLLOW_DEADLINE = 3.0  # "within a few seconds"
ExporterFactory = Callable[..., Exporter]


def setup(tmp_path: Path) -> tuple[dict[str, object], Path, np.ndarray]:
    """A config following logs/*.jsonl; returns it, the log folder and the gauss reference."""
    reference = reference_frame()
    ref_path = write_reference(reference, tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = model_config(MODEL, logs / "*.jsonl", ref_path,
                       [{"name": f, "type": "numerical"} for f in FEATURES],
                       prediction={"column": PREDICTION}, window={"rows": WINDOW},
                       drift={"min_rows": 5})
    return {"models": [cfg]}, logs, reference["gauss"].to_numpy(float)


def ingested(process: Exporter) -> float | None:
    """drift_rows_ingested_total of the model."""
    return value(process.scrape(), "drift_rows_ingested_total", model=MODEL)


def gauss_mean(process: Exporter) -> float | None:
    """drift_feature_mean of gauss."""
    return value(process.scrape(), "drift_feature_mean", model=MODEL, feature="gauss")


def test_appended_lines_reach_metrics_within_seconds(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs, _ = setup(tmp_path)
    rng = np.random.default_rng(31)
    first = live_columns(rng, 10)
    log_file = logs / "app.jsonl"
    append_lines(log_file, clean_lines(first))
    process = exporter(cfg)
    assert ingested(process) == 10

    second = live_columns(rng, 5)
    written = time.time()
    append_lines(log_file, clean_lines(second, start=10))
    expected = float(np.mean(np.concatenate((first["gauss"], second["gauss"]))))
    wait_until(lambda: spec_stats_close(gauss_mean(process), expected), FOLLOW_DEADLINE,
               what=f"drift_feature_mean{{feature=gauss}} == {expected} (15 records)")
    samples = process.scrape()
    newest = value(samples, "drift_last_record_timestamp_seconds", model=MODEL)
    assert newest is not None
    assert written <= newest <= time.time(), "no timestamp column: the time the record was read"
    assert value(samples, "drift_rows_ingested_total", model=MODEL) == 15


def spec_stats_close(got: float | None, expected: float) -> bool:
    """Equal within float noise."""
    return got is not None and abs(got - expected) <= 1e-9 * max(1.0, abs(expected))


def test_a_last_line_without_newline_waits_for_its_newline(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs, _ = setup(tmp_path)
    log_file = logs / "app.jsonl"
    first = live_columns(np.random.default_rng(32), 10)
    append_lines(log_file, clean_lines(first))
    process = exporter(cfg)
    record = json.dumps({"gauss": 123.25, "skewed": 1.0, "counts": 2, PREDICTION: 0.5})
    cut = len(record) // 2
    with log_file.open("ab") as handle:
        handle.write(record[:cut].encode())
    # Barrier: once a line in another file is read, the partial line was seen and held back.
    append_lines(logs / "other.jsonl", clean_lines({k: np.array([1.0]) for k in
                                                    (*FEATURES, PREDICTION)}))
    wait_until(lambda: ingested(process) == 11, FOLLOW_DEADLINE, what="the barrier record")
    check = Mismatches(process.scrape())
    check.expect("drift_rows_rejected_total", {"model": MODEL, "reason": "malformed"}, 0)
    check.verify()

    with log_file.open("ab") as handle:
        handle.write(f"{record[cut:]}\n".encode())
    wait_until(lambda: ingested(process) == 12, FOLLOW_DEADLINE, what="the completed line")
    samples = process.wait_for_window(MODEL, 12, 12)
    check = Mismatches(samples)
    check.expect("drift_rows_rejected_total", {"model": MODEL, "reason": "malformed"}, 0)
    expected = float(np.mean([*first["gauss"], 1.0, 123.25]))
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "gauss"}, expected)
    check.verify()


def test_a_file_created_later_in_the_glob_is_followed(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs, _ = setup(tmp_path)
    rng = np.random.default_rng(33)
    first = live_columns(rng, 20)
    append_lines(logs / "app-1.jsonl", clean_lines(first))
    process = exporter(cfg)
    assert ingested(process) == 20

    # Files outside the glob are not read.
    append_lines(logs / "notes.txt", clean_lines(live_columns(rng, 3)))
    second = live_columns(rng, 30)
    append_lines(logs / "app-2.jsonl", clean_lines(second, start=20))
    wait_until(lambda: ingested(process) == 50, FOLLOW_DEADLINE,
               what="the 30 records of app-2.jsonl")
    third = live_columns(rng, 7)
    append_lines(logs / "app-2.jsonl", clean_lines(third, start=50))
    samples = process.wait_for_window(MODEL, 57, 57)
    expected = float(np.mean(np.concatenate((first["gauss"], second["gauss"], third["gauss"]))))
    check = Mismatches(samples)
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "gauss"}, expected)
    check.verify()


def test_start_up_with_long_logs_reads_only_the_newest_window_of_records(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs, reference = setup(tmp_path)
    rng = np.random.default_rng(34)
    # Older records are far away from the newest ones, so any extra record read shows.
    old_far = live_columns(rng, 400, gauss_mean=-1000.0)
    old_near = live_columns(rng, 100)
    new = live_columns(rng, 200)
    old_file, new_file = logs / "app-1.jsonl", logs / "app-2.jsonl"
    append_lines(old_file, clean_lines(old_far) + clean_lines(old_near, start=400))
    append_lines(new_file, clean_lines(new, start=500))
    now = time.time()
    os.utime(old_file, (now - 120, now - 120))
    os.utime(new_file, (now - 60, now - 60))

    process = exporter(cfg)
    # Ready means the existing logs were read and the statistics computed: no waiting here.
    samples = process.scrape()
    window = {k: np.concatenate((old_near[k], new[k])) for k in (*FEATURES, PREDICTION)}
    check = Mismatches(samples)
    check.expect("drift_window_rows", {"model": MODEL}, WINDOW)
    check.expect("drift_rows_ingested_total", {"model": MODEL}, WINDOW)
    for feature in FEATURES:
        labels = {"model": MODEL, "feature": feature}
        check.expect("drift_feature_mean", labels, float(np.mean(window[feature])))
    expected = spec_stats.numerical(reference, window["gauss"])
    check.expect("drift_feature_ks_statistic", {"model": MODEL, "feature": "gauss"},
                 expected["ks_statistic"], rel=0.0, abs_tol=1e-9)
    check.verify()


def test_the_newest_record_timestamp_is_the_records_own_when_configured(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs, _ = setup(tmp_path)
    cfg["models"][0]["timestamp_column"] = "ts"  # type: ignore[index]
    process = exporter(cfg)
    base = {"gauss": 50.0, "skewed": 1.0, "counts": 3, PREDICTION: 0.3}
    stamps = [1767225600, 1767225601.25, "2026-01-01T00:00:05Z",
              "2026-01-01T02:00:07.5+02:00", "2025-12-31T23:00:00-01:00", 1767225606]
    # As epoch seconds: ..., 00:00:05, 00:00:07.5, 00:00:00, 00:00:06.
    append_lines(logs / "app.jsonl", [json.dumps({**base, "ts": ts}) for ts in stamps])
    samples = process.wait_for_window(MODEL, len(stamps), len(stamps))
    check = Mismatches(samples)
    check.expect("drift_last_record_timestamp_seconds", {"model": MODEL}, 1767225607.5)
    check.verify()


def test_a_line_over_max_line_bytes_is_rejected_and_the_file_goes_on(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs, _ = setup(tmp_path)
    cfg["models"][0]["logs"]["max_line_bytes"] = 1024  # type: ignore[index]
    process = exporter(cfg)
    rng = np.random.default_rng(35)
    before, after = live_columns(rng, 4), live_columns(rng, 6)
    huge = json.dumps({"gauss": 1e6, "padding": "x" * 5000})
    append_lines(logs / "app.jsonl",
                 [*clean_lines(before), huge, *clean_lines(after, start=4)])
    samples = process.wait_for_window(MODEL, 10, 10)
    check = Mismatches(samples)
    check.expect("drift_rows_rejected_total", {"model": MODEL, "reason": "too_long"}, 1)
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "gauss"},
                 float(np.mean(np.concatenate((before["gauss"], after["gauss"])))))
    check.verify()


def test_a_burst_larger_than_the_window_keeps_its_newest_records(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs, reference = setup(tmp_path)
    process = exporter(cfg)
    rng = np.random.default_rng(36)
    burst = {k: np.concatenate((a, b)) for (k, a), b in zip(
        live_columns(rng, 700, gauss_mean=-1000.0).items(),
        live_columns(rng, WINDOW).values(), strict=True)}
    append_lines(logs / "app.jsonl", clean_lines(burst))
    samples = process.wait_for_window(MODEL, 700 + WINDOW, WINDOW)
    expected = spec_stats.numerical(reference, burst["gauss"][-WINDOW:])
    check = Mismatches(samples)
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "gauss"}, expected["mean"])
    check.expect("drift_feature_ks_statistic", {"model": MODEL, "feature": "gauss"},
                 expected["ks_statistic"], rel=0.0, abs_tol=1e-9)
    check.verify()


@pytest.mark.parametrize("rotated_name", ["app-0001.jsonl", "app.jsonl.1"],
                         ids=["still_in_the_glob", "out_of_the_glob"])
def test_rename_rotation_neither_loses_nor_double_counts_records(
        tmp_path: Path, exporter: ExporterFactory, rotated_name: str) -> None:
    cfg, logs, _ = setup(tmp_path)
    current = logs / "app.jsonl"
    rng = np.random.default_rng(37)
    parts = [live_columns(rng, n) for n in (10, 5, 7, 3)]
    append_lines(current, clean_lines(parts[0]))
    process = exporter(cfg)
    assert ingested(process) == 10
    # Lines the exporter has not read yet when the file is renamed away must still count.
    append_lines(current, clean_lines(parts[1], start=10))
    os.rename(current, logs / rotated_name)
    append_lines(current, clean_lines(parts[2], start=15))
    wait_until(lambda: ingested(process) == 22, FOLLOW_DEADLINE, what="22 records")
    append_lines(logs / "barrier.jsonl", clean_lines(parts[3], start=22))
    samples = process.wait_for_window(MODEL, 25, 25)
    expected = float(np.mean(np.concatenate([p["gauss"] for p in parts])))
    check = Mismatches(samples)
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "gauss"}, expected)
    check.verify()


def test_copy_truncate_rereads_the_file_from_its_start(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs, _ = setup(tmp_path)
    current = logs / "app.jsonl"
    rng = np.random.default_rng(38)
    old, new = live_columns(rng, 10), live_columns(rng, 30)
    append_lines(current, clean_lines(old))
    process = exporter(cfg)
    assert ingested(process) == 10
    # logrotate's copytruncate: copy away (out of the glob), truncate, the app goes on
    # writing; the new content is longer than what had been read.
    (logs / "app.jsonl.1").write_bytes(current.read_bytes())
    with current.open("r+b") as handle:
        handle.truncate(0)
    append_lines(current, clean_lines(new, start=10))
    samples = process.wait_for_window(MODEL, 40, 40)
    expected = float(np.mean(np.concatenate((old["gauss"], new["gauss"]))))
    check = Mismatches(samples)
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "gauss"}, expected)
    check.verify()
