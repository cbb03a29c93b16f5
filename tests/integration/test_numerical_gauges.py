"""Numerical drift gauges (SPEC 6.1-6.3, 6.6) against scipy/numpy on the same rows.

The exporter follows a messy JSONL log (missing keys, nulls, NaN tokens, numeric strings,
invalid values, malformed lines) written in batches; every gauge is then compared with values
computed here, independently, from the last N records (the rows window).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spec_stats
from harness import (
    Exporter,
    Mismatches,
    Samples,
    append_lines,
    jsonl_line,
    model_config,
    run_cli,
    value,
    wait_until,
    write_config,
)
from logdata import (
    FEATURES,
    PREDICTION,
    REFERENCE_ROWS,
    MessyLog,
    clean_lines,
    live_columns,
    messy_log,
    reference_frame,
    write_reference,
)

MODEL = "loans"
WINDOW = 300
BATCHES = (160, 160, 130)
P_VALUE_ALPHA = 0.001  # ks with threshold auto: a fixed level (docs/statistics.md)
DRIFT_GAUGES = ("ks_statistic", "ks_pvalue", "wasserstein_normed", "psi",
                "jensen_shannon_distance", "drift_score", "drift_threshold", "drift_detected")
WINDOW_STATS = ("mean", "stddev", "missing_ratio", "ks_statistic", "ks_pvalue",
                "wasserstein_normed", "psi", "jensen_shannon_distance")

ExporterFactory = Callable[..., Exporter]


def config(logs: Path, reference: Path, **extra: Any) -> dict[str, Any]:
    """A one-model config with the three features and the numerical prediction."""
    entry = model_config(MODEL, logs / "*.jsonl", reference,
                         [{"name": f, "type": "numerical"} for f in FEATURES],
                         prediction={"column": PREDICTION, "type": "numerical"},
                         window={"rows": WINDOW}, drift={"min_rows": 100})
    entry.update(extra)
    return {"models": [entry]}


def feed_in_batches(process: Exporter, path: Path, batches: list[list[str]],
                    records_per_batch: list[int]) -> float:
    """Append each batch and wait until the exporter has ingested it, before the next.

    Returns the time just before the last batch was written.
    """
    total = 0
    written = time.time()
    for lines, records in zip(batches, records_per_batch, strict=True):
        written = time.time()
        append_lines(path, lines)
        total += records
        wait_until(lambda n=total: value(process.scrape(), "drift_rows_ingested_total",
                                         model=MODEL) == n, 10.0,
                   what=f"drift_rows_ingested_total == {total}")
    return written


def write_messy_batches(rng: np.random.Generator) -> tuple[MessyLog, list[list[str]], list[int]]:
    """Three batches of messy records, each with a malformed line in it."""
    log = MessyLog()
    batches, sizes = [], []
    for size in BATCHES:
        first = len(log.lines)
        messy_log(rng, live_columns(rng, size), integral=("counts",), malformed_every=size,
                  log=log)
        batches.append(log.lines[first:])
        sizes.append(size)
    return log, batches, sizes


def check_column(check: Mismatches, kind: str, labels: dict[str, str],
                 reference: np.ndarray, window: np.ndarray) -> dict[str, float]:
    """Window gauges and reference twins of one column; returns the expected statistics."""
    expected = spec_stats.numerical(reference, window)
    for suffix in WINDOW_STATS:
        rel, abs_tol = spec_stats.tolerance(suffix)
        check.expect(f"drift_{kind}_{suffix}", labels, expected[suffix], rel=rel, abs_tol=abs_tol)
    for suffix, twin in spec_stats.describe(reference).items():
        rel, abs_tol = spec_stats.tolerance(suffix)
        check.expect(f"drift_reference_{kind}_{suffix}", labels, twin, rel=rel, abs_tol=abs_tol)
    # threshold: auto with ks is the fixed p-value level; the score is the p-value itself.
    check.expect(f"drift_{kind}_drift_score", labels, expected["ks_pvalue"], rel=0.0,
                 abs_tol=1e-6)
    check.expect(f"drift_{kind}_drift_threshold", labels, P_VALUE_ALPHA)
    check.expect(f"drift_{kind}_drift_detected", labels,
                 float(expected["ks_pvalue"] < P_VALUE_ALPHA))
    return expected


def check_start(samples: Samples) -> None:
    """Before any record: reference gauges and zero counters present, window gauges absent."""
    check = Mismatches(samples)
    check.expect("drift_window_rows", {"model": MODEL}, 0)
    check.expect("drift_reference_rows", {"model": MODEL}, REFERENCE_ROWS)
    check.expect("drift_rows_ingested_total", {"model": MODEL}, 0)
    check.absent("drift_last_record_timestamp_seconds", {"model": MODEL})
    check.absent("drift_dataset_drift_share", {"model": MODEL})
    for feature in FEATURES:
        labels = {"model": MODEL, "feature": feature}
        check.expect("drift_detections_total", labels, 0)
        check.present("drift_reference_feature_mean", labels)
        for suffix in ("mean", "stddev", "missing_ratio", *DRIFT_GAUGES):
            check.absent(f"drift_feature_{suffix}", labels)
    check.verify()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_every_numerical_gauge_matches_scipy_on_the_last_n_records(
        tmp_path: Path, exporter: ExporterFactory, fmt: str) -> None:
    reference = reference_frame()
    ref_path = write_reference(reference, tmp_path / f"reference.{fmt}")
    logs = tmp_path / "logs"
    logs.mkdir()
    log_file = logs / "predictions.jsonl"
    log_file.touch()
    process = exporter(config(logs, ref_path))
    check_start(process.scrape())

    log, batches, sizes = write_messy_batches(np.random.default_rng(7))
    last_write = feed_in_batches(process, log_file, batches, sizes)
    samples = process.wait_for_window(MODEL, log.records, WINDOW)
    scraped_at = time.time()

    check = Mismatches(samples)
    m = {"model": MODEL}
    check.expect("drift_window_rows", m, WINDOW)
    check.expect("drift_reference_rows", m, REFERENCE_ROWS)
    check.expect("drift_rows_ingested_total", m, log.records)
    check.expect("drift_rows_rejected_total", {**m, "reason": "malformed"}, log.malformed)
    for column in (*FEATURES, PREDICTION):
        check.expect("drift_values_invalid_total", {**m, "feature": column}, log.invalid[column])

    detected = []
    for feature in FEATURES:
        labels = {**m, "feature": feature}
        expected = check_column(check, "feature", labels, reference[feature].to_numpy(float),
                                log.window(feature, WINDOW))
        detected.append(expected["ks_pvalue"] < P_VALUE_ALPHA)
        if detected[-1]:
            got = check.present("drift_detections_total", labels)
            check.require(got is not None and got >= 1,
                          f"drift_detections_total{{feature={feature}}} = {got}; expected >= 1")
        else:
            check.present("drift_detections_total", labels)
    share = sum(detected) / len(FEATURES)
    check.expect("drift_dataset_drift_share", m, share)
    check.expect("drift_dataset_drift_detected", m, float(share >= 0.5))

    predictions = log.window(PREDICTION, WINDOW)
    check_column(check, "prediction", m, reference[PREDICTION].to_numpy(float), predictions)
    for q, expected_q in spec_stats.prediction_quantiles(predictions).items():
        check.expect("drift_prediction_quantile", {**m, "q": q}, expected_q)

    newest = check.present("drift_last_record_timestamp_seconds", m)
    check.require(newest is None or last_write <= newest <= scraped_at,
                  f"drift_last_record_timestamp_seconds = {newest}; expected when the last "
                  f"batch was read, in [{last_write}, {scraped_at}]")
    updated = check.present("drift_last_update_timestamp_seconds", m)
    check.require(updated is None or last_write <= updated <= scraped_at,
                  f"drift_last_update_timestamp_seconds = {updated}; expected in "
                  f"[{last_write}, {scraped_at}]")
    count = check.present("drift_update_duration_seconds_count", m)
    check.require(count is not None and count >= 1, "no recomputation counted")
    check.expect("drift_update_duration_seconds_bucket", {**m, "le": "+Inf"}, count or 0)
    check.present("drift_update_duration_seconds_sum", m)
    check.expect("drift_exporter_build_info", {"version": version("drift-exporter")}, 1)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_start_time_seconds"):
        check.present(name, {})
    check.require(any(n == "python_info" for n, _ in samples), "python_info is absent")
    check.verify()


def test_drift_gauges_are_absent_until_min_rows_usable_values(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    reference = reference_frame()
    ref_path = write_reference(reference, tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    log_file = logs / "predictions.jsonl"
    process = exporter(config(logs, ref_path, drift={"min_rows": 50}))
    rng = np.random.default_rng(11)
    m = {"model": MODEL}

    first = live_columns(rng, 30)
    append_lines(log_file, clean_lines(first))
    check = Mismatches(process.wait_for_window(MODEL, 30, 30))
    for feature in FEATURES:
        labels = {**m, "feature": feature}
        check.expect("drift_feature_mean", labels, float(np.mean(first[feature])))
        for suffix in DRIFT_GAUGES:
            check.absent(f"drift_feature_{suffix}", labels)
    for suffix in DRIFT_GAUGES:
        check.absent(f"drift_prediction_{suffix}", m)
    check.absent("drift_dataset_drift_share", m)
    check.absent("drift_dataset_drift_detected", m)
    check.verify()

    # 60 more records without "counts": 90 usable values for the others, 30 for counts.
    second = live_columns(rng, 60)
    del second["counts"]
    append_lines(log_file, clean_lines(second, start=30))
    samples = process.wait_for_window(MODEL, 90, 90)
    check = Mismatches(samples)
    detected = []
    for feature in ("gauss", "skewed"):
        window = np.concatenate((first[feature], second[feature]))
        expected = spec_stats.numerical(reference[feature].to_numpy(float), window)
        labels = {**m, "feature": feature}
        check.expect("drift_feature_ks_statistic", labels, expected["ks_statistic"],
                     rel=0.0, abs_tol=1e-9)
        for suffix in DRIFT_GAUGES:
            check.present(f"drift_feature_{suffix}", labels)
        detected.append(expected["ks_pvalue"] < P_VALUE_ALPHA)
    counts = {**m, "feature": "counts"}
    check.expect("drift_feature_missing_ratio", counts, 60 / 90)
    check.expect("drift_feature_mean", counts, float(np.mean(first["counts"])))
    for suffix in DRIFT_GAUGES:
        check.absent(f"drift_feature_{suffix}", counts)
    for suffix in DRIFT_GAUGES:
        check.present(f"drift_prediction_{suffix}", m)
    # Only the two scored features count toward the share.
    check.expect("drift_dataset_drift_share", m, sum(detected) / 2)
    check.verify()


def test_a_configured_statistic_replaces_the_drift_score_and_threshold(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    reference = reference_frame()
    ref_path = write_reference(reference, tmp_path / "reference.jsonl")
    logs = tmp_path / "logs"
    logs.mkdir()
    overrides = {
        "gauss": ("psi", 0.1),
        "skewed": ("jensen_shannon", 0.05),
        "counts": ("wasserstein", 0.2),
    }
    features = [{"name": f, "type": "numerical", "statistic": s, "threshold": t}
                for f, (s, t) in overrides.items()]
    cfg = config(logs, ref_path, features=features,
                 prediction={"column": PREDICTION, "type": "numerical", "statistic": "ks",
                             "threshold": 0.2})
    process = exporter(cfg)
    columns = live_columns(np.random.default_rng(5), WINDOW)
    append_lines(logs / "predictions.jsonl", clean_lines(columns))
    check = Mismatches(process.wait_for_window(MODEL, WINDOW, WINDOW))
    score_key = {"psi": "psi", "jensen_shannon": "jensen_shannon_distance",
                 "wasserstein": "wasserstein_normed"}
    detected = []
    for feature, (statistic, threshold) in overrides.items():
        labels = {"model": MODEL, "feature": feature}
        expected = spec_stats.numerical(reference[feature].to_numpy(float), columns[feature])
        score = expected[score_key[statistic]]
        check.expect("drift_feature_drift_score", labels, score, rel=1e-9, abs_tol=1e-9)
        check.expect("drift_feature_drift_threshold", labels, threshold)
        check.expect("drift_feature_drift_detected", labels, float(score >= threshold))
        detected.append(score >= threshold)
    expected = spec_stats.numerical(reference[PREDICTION].to_numpy(float), columns[PREDICTION])
    m = {"model": MODEL}
    check.expect("drift_prediction_drift_score", m, expected["ks_pvalue"], rel=0.0, abs_tol=1e-6)
    check.expect("drift_prediction_drift_threshold", m, 0.2)
    check.expect("drift_prediction_drift_detected", m, float(expected["ks_pvalue"] < 0.2))
    check.expect("drift_dataset_drift_share", m, sum(detected) / len(overrides))
    check.verify()


def test_ks_matches_scipy_when_the_reference_is_too_large_for_the_exact_distribution(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    # Beyond 10000 values scipy's ks_2samp (method="auto") switches to the asymptotic p-value.
    rows = 20000
    reference = reference_frame(seed=3, rows=rows)
    ref_path = write_reference(reference, tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    process = exporter(config(logs, ref_path))
    columns = live_columns(np.random.default_rng(9), WINDOW, gauss_mean=52.5, skewed_scale=2.25,
                           counts_mean=3.25, score_a=2.15)
    append_lines(logs / "predictions.jsonl", clean_lines(columns))
    check = Mismatches(process.wait_for_window(MODEL, WINDOW, WINDOW))
    check.expect("drift_reference_rows", {"model": MODEL}, rows)
    for column in (*FEATURES, PREDICTION):
        kind, labels = (("prediction", {"model": MODEL}) if column == PREDICTION
                        else ("feature", {"model": MODEL, "feature": column}))
        expected = spec_stats.numerical(reference[column].to_numpy(float), columns[column])
        for suffix in WINDOW_STATS:
            rel, abs_tol = spec_stats.tolerance(suffix)
            check.expect(f"drift_{kind}_{suffix}", labels, expected[suffix], rel=rel,
                         abs_tol=abs_tol)
    check.verify()


def test_a_jsonl_reference_reads_numbers_the_way_the_logs_do(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    # SPEC 2: numbers may be JSON numbers or numeric strings, anything else is invalid and
    # counts as missing; the reference's gauges (6.1) count "missing or invalid" alike.
    rng = np.random.default_rng(13)
    frame = reference_frame(seed=13, rows=1000).fillna(0.0)
    ref_log = messy_log(rng, {c: frame[c].to_numpy() for c in (*FEATURES, PREDICTION)},
                        integral=("counts",))
    ref_path = tmp_path / "reference.jsonl"
    ref_path.write_text("".join(f"{line}\n" for line in ref_log.lines))
    logs = tmp_path / "logs"
    logs.mkdir()
    process = exporter(config(logs, ref_path))
    columns = live_columns(np.random.default_rng(14), WINDOW)
    append_lines(logs / "predictions.jsonl", clean_lines(columns))
    check = Mismatches(process.wait_for_window(MODEL, WINDOW, WINDOW))
    check.expect("drift_reference_rows", {"model": MODEL}, ref_log.records)
    for column in (*FEATURES, PREDICTION):
        kind, labels = (("prediction", {"model": MODEL}) if column == PREDICTION
                        else ("feature", {"model": MODEL, "feature": column}))
        check_column(check, kind, labels, ref_log.column(column), columns[column])
    check.verify()


def test_booleans_in_a_numerical_reference_column_are_invalid_not_numbers(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    # SPEC 2: in a numerical column only numbers and numeric strings are numbers; a boolean
    # is invalid, so it is missing for the statistics (and in the missing ratio). The first
    # row holds a number (with a boolean first the exporter crashes at start instead).
    first = 5
    rng = np.random.default_rng(15)
    frame = reference_frame(seed=15, rows=400).fillna(1.0)
    gauss = frame["gauss"].to_numpy()
    ref_path = tmp_path / "reference.jsonl"
    with ref_path.open("w") as handle:
        for i in range(len(frame)):
            row = {c: float(frame[c].iloc[i]) for c in (*FEATURES, PREDICTION)}
            if i % 10 == first:
                row["gauss"] = bool(i % 20 == first)  # alternately true and false
            handle.write(jsonl_line(row) + "\n")
    meaning = np.where(np.arange(len(frame)) % 10 == first, np.nan, gauss)
    logs = tmp_path / "logs"
    logs.mkdir()
    process = exporter(config(logs, ref_path))
    columns = live_columns(rng, WINDOW)
    append_lines(logs / "predictions.jsonl", clean_lines(columns))
    check = Mismatches(process.wait_for_window(MODEL, WINDOW, WINDOW))
    check_column(check, "feature", {"model": MODEL, "feature": "gauss"}, meaning,
                 columns["gauss"])
    check.verify()


def test_check_accepts_a_jsonl_reference_with_numeric_strings(tmp_path: Path) -> None:
    ref_path = tmp_path / "reference.jsonl"
    rows = [{"gauss": 50.5, "skewed": 1.5, "counts": 3, PREDICTION: 0.25},
            {"gauss": "48.25", "skewed": 2.5, "counts": "2", PREDICTION: "0.5"},
            {"gauss": 51.0, "skewed": "abc", "counts": 4, PREDICTION: 0.75}]
    ref_path.write_text("".join(jsonl_line(r) + "\n" for r in rows))
    logs = tmp_path / "logs"
    logs.mkdir()
    config_path = write_config(tmp_path, config(logs, ref_path))
    result = run_cli("check", f"--config.file={config_path}")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
