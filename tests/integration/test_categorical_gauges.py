"""Categorical feature and prediction gauges (SPEC 2, 6.1, 6.3, 6.5) against scipy on the same rows.

One reference, written as Parquet, CSV (where pandas reads booleans and small integers as such)
and JSONL (each value in a random one of its equal spellings), is the reference of three models
that follow one JSONL log. It holds four categorical features: ``region`` with rare categories
and a frequency tie at the ``max_categories`` boundary, ``tier`` with the numbers 1 and 2,
``flag`` with booleans, ``grade`` with floats, and a categorical prediction ``decision``. The
log writes each value in one of the ways SPEC 2 makes equal (``1``, ``1.0``, ``"1"``; ``true``,
``"true"``), with missing values (absent key, null, NaN), unseen categories (including the
string ``"1.0"``, which is not the number 1) and nested values (invalid). Every gauge is
compared with values computed by ``test_categorical_expected`` from the raw values written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from harness import Exporter, Mismatches, Samples, append_lines, model_config, value, wait_until
from test_categorical_expected import (
    OTHER,
    Expected,
    bin_counts,
    expect,
    invalid_count,
    label_ratios,
    reference_order,
    usable,
)

ExporterFactory = Callable[..., Exporter]

MODEL = "cats"
WINDOW = 300
MAX_CATEGORIES = 4
CLEAN_RECORDS = 150  # no NaN token, no nested value: read by the columnar (polars) path
MESSY_RECORDS = 250  # everything: read line by line where polars cannot

ABSENT = "<absent>"  # generation markers, never written as such
MISSING = "<missing>"
NESTED = "<nested>"

FEATURES = ("region", "tier", "flag", "grade")
PREDICTION = "decision"
COLUMNS = (*FEATURES, PREDICTION)

# Exact reference counts per value (None = missing); "wales" and "west" tie for 4th place.
REFERENCE_COUNTS: dict[str, dict[Any, int]] = {
    "region": {"north": 620, "south": 480, "east": 260, "wales": 200, "west": 200, "isle": 40,
               "arctic": 20, "moon": 8, None: 172},
    "tier": {1: 1300, 2: 700},
    "flag": {True: 1500, False: 500},
    "grade": {1.0: 900, 2.5: 600, 3.0: 400, None: 100},
    "decision": {"approve": 1100, "reject": 600, "review": 300},
}
REFERENCE_ROWS = 2000

# Window distributions: drifted, with unseen values ("atlantis", "North", 3, the string "1.0",
# 4.75, "escalate"), an exposed category never seen in the window ("wales") and invalid values.
WINDOW_PROBABILITIES: dict[str, dict[Any, float]] = {
    "region": {"north": .30, "south": .22, "east": .15, "west": .10, "isle": .06, "moon": .02,
               "atlantis": .05, "North": .02, MISSING: .05, NESTED: .03},
    "tier": {1: .50, 2: .35, 3: .05, "1.0": .03, MISSING: .04, NESTED: .03},
    "flag": {True: .60, False: .32, MISSING: .05, NESTED: .03},
    "grade": {1.0: .30, 2.5: .30, 3.0: .25, 4.75: .05, MISSING: .07, NESTED: .03},
    "decision": {"approve": .45, "reject": .30, "review": .12, "escalate": .06, MISSING: .05,
                 NESTED: .02},
}

# The ways SPEC 2 allows to write one category in JSON, per column: in one dict True, 1 and
# 1.0 would be a single key, the very confusion the exporter must avoid.
FORMS: dict[str, dict[Any, tuple[Any, ...]]] = {
    "tier": {1: (1, 1.0, "1"), 2: (2, 2.0, "2"), 3: (3, 3.0)},
    "flag": {True: (True, "true"), False: (False, "false")},
    "grade": {1.0: (1, 1.0, "1"), 2.5: (2.5, "2.5"), 3.0: (3, 3.0, "3"), 4.75: (4.75, "4.75")},
}


def written_form(rng: np.random.Generator, column: str, meaning: Any, *, messy: bool) -> Any:
    """A raw JSON value for ``meaning``, or ABSENT for a key left out."""
    if meaning is MISSING or meaning is None:
        forms: tuple[Any, ...] = (ABSENT, None, math.nan) if messy else (ABSENT, None)
    elif meaning is NESTED:
        forms = ([1], {"v": "north"}) if messy else (None,)
    elif isinstance(meaning, str):
        return meaning
    else:
        forms = FORMS[column][meaning]
    return forms[int(rng.integers(len(forms)))]


def reference_columns(rng: np.random.Generator) -> dict[str, list[Any]]:
    """The reference's values per column, shuffled (None = missing)."""
    columns: dict[str, list[Any]] = {}
    for name, counts in REFERENCE_COUNTS.items():
        values = [v for v, n in counts.items() for _ in range(n)]
        assert len(values) == REFERENCE_ROWS
        order = rng.permutation(REFERENCE_ROWS)
        columns[name] = [values[i] for i in order]
    return columns


def write_reference(columns: Mapping[str, list[Any]], path: Path,
                    rng: np.random.Generator) -> dict[str, list[Any]]:
    """Write the reference; returns the raw values as stored (for JSONL, as written)."""
    if path.suffix == ".jsonl":
        stored: dict[str, list[Any]] = {name: [] for name in columns}
        with path.open("w") as handle:
            for i in range(REFERENCE_ROWS):
                record = {}
                for name, values in columns.items():
                    meaning = values[i]
                    if meaning is None and name == "region" and i % 40 == 0:
                        meaning = NESTED  # invalid in the reference: missing for the statistics
                    raw = written_form(rng, name, meaning, messy=True)
                    if raw is not ABSENT:
                        record[name] = raw
                    stored[name].append(None if raw is ABSENT else raw)
                handle.write(json.dumps(record) + "\n")
        return stored
    frame = pd.DataFrame({
        "region": pd.Series(columns["region"], dtype=object),
        "tier": np.array(columns["tier"], dtype=np.int64),
        "flag": np.array(columns["flag"], dtype=bool),
        "grade": np.array([math.nan if v is None else v for v in columns["grade"]]),
        "decision": pd.Series(columns["decision"], dtype=object),
    })
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
        # The point of the CSV variant: pandas reads booleans and small integers as such.
        read = pd.read_csv(path)
        assert read["flag"].dtype == bool
        assert read["tier"].dtype == np.int64
    return {name: list(values) for name, values in columns.items()}


@dataclass
class Log:
    """Lines written and the raw value of every cell (None for an absent key)."""

    lines: list[str] = field(default_factory=list)
    raw: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in COLUMNS})


def write_records(rng: np.random.Generator, log: Log, count: int, *, messy: bool) -> list[str]:
    """Append ``count`` records to ``log``; returns their lines."""
    first = len(log.lines)
    for i in range(count):
        record: dict[str, Any] = {"request_id": f"r{len(log.lines)}", "unused": {"k": [i]}}
        for name in COLUMNS:
            choices = list(WINDOW_PROBABILITIES[name].items())
            pick = int(rng.choice(len(choices), p=[p for _, p in choices]))
            raw = written_form(rng, name, choices[pick][0], messy=messy)
            if raw is not ABSENT:
                record[name] = raw
            log.raw[name].append(None if raw is ABSENT else raw)
        log.lines.append(json.dumps(record, allow_nan=True))
    return log.lines[first:]


def check_column(check: Mismatches, kind: str, labels: dict[str, str], expected: Expected,
                 *, ratio_name: str, ratio_label: str) -> None:
    """Window and reference gauges of one categorical column."""
    check.expect(f"drift_{kind}_missing_ratio", labels, expected.missing_ratio, abs_tol=1e-12)
    check.expect(f"drift_reference_{kind}_missing_ratio", labels,
                 expected.reference_missing_ratio, abs_tol=1e-12)
    check.expect(f"drift_{kind}_jensen_shannon_distance", labels,
                 expected.jensen_shannon_distance, rel=0.0, abs_tol=1e-9)
    check.expect(f"drift_{kind}_psi", labels, expected.psi, rel=1e-9, abs_tol=1e-12)
    for twin, ratios in ((f"drift_{kind}_{ratio_name}", expected.ratios),
                         (f"drift_reference_{kind}_{ratio_name}", expected.reference_ratios)):
        for category, share in ratios.items():
            check.expect(twin, {**labels, ratio_label: category}, share, abs_tol=1e-12)
        exposed = {dict(lbl)[ratio_label] for (n, lbl) in check.samples
                   if n == twin and set(labels.items()) <= lbl}
        check.require(exposed == set(ratios), f"{twin}{labels}: {ratio_label} labels "
                      f"{sorted(exposed)}; expected {sorted(ratios)}")
    # Default statistic: jensen_shannon with a calibrated threshold (a distance: score >= t).
    check.expect(f"drift_{kind}_drift_score", labels, expected.jensen_shannon_distance,
                 rel=0.0, abs_tol=1e-9)
    threshold = check.present(f"drift_{kind}_drift_threshold", labels)
    detected = check.present(f"drift_{kind}_drift_detected", labels)
    score = value(check.samples, f"drift_{kind}_drift_score", **labels)
    if threshold is not None:
        check.require(0 < threshold <= 1, f"drift_{kind}_drift_threshold{labels} = "
                      f"{threshold}; expected a calibrated distance in (0, 1]")
    if threshold is not None and detected is not None and score is not None:
        check.require(detected == float(score >= threshold),
                      f"drift_{kind}_drift_detected{labels} = {detected} with score {score} "
                      f"and threshold {threshold}")
    for numeric_only in ("mean", "stddev", "ks_statistic", "ks_pvalue", "wasserstein_normed"):
        check.absent(f"drift_{kind}_{numeric_only}", labels)
        check.absent(f"drift_reference_{kind}_{numeric_only}", labels)


def check_start(samples: Samples, model: str, reference: Mapping[str, list[Any]]) -> None:
    """Before any record: reference gauges and zero counters present, window gauges absent."""
    check = Mismatches(samples)
    m = {"model": model}
    check.expect("drift_reference_rows", m, REFERENCE_ROWS)
    for name in COLUMNS:
        kind, labels, ratio_label = (("prediction", m, "class") if name == PREDICTION else
                                     ("feature", {**m, "feature": name}, "category"))
        ratio_name = f"{ratio_label}_ratio"
        order = reference_order(reference[name])
        counts = bin_counts(order, usable(reference[name]))
        for category, share in label_ratios(order, counts, MAX_CATEGORIES).items():
            check.expect(f"drift_reference_{kind}_{ratio_name}", {**labels, ratio_label: category},
                         share, abs_tol=1e-12)
        missing = 1.0 - len(usable(reference[name])) / REFERENCE_ROWS
        check.expect(f"drift_reference_{kind}_missing_ratio", labels, missing, abs_tol=1e-12)
        if kind == "feature":
            check.expect("drift_detections_total", labels, 0)
        for suffix in ("missing_ratio", "unseen_ratio", "chi2_pvalue", "jensen_shannon_distance",
                       "psi", "drift_score", "drift_threshold", "drift_detected"):
            check.absent(f"drift_{kind}_{suffix}", labels)
        check.require(not any(n == f"drift_{kind}_{ratio_name}" and set(labels.items()) <= lbl
                              for n, lbl in samples),
                      f"drift_{kind}_{ratio_name} of {model}/{name} exposed before any record")
    check.verify()


FORMATS = ("parquet", "csv", "jsonl")


def test_every_categorical_gauge_matches_scipy_with_parquet_csv_and_jsonl_references(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    # One exporter, one log, three models: the same reference written in each format.
    rng = np.random.default_rng(2024)
    columns = reference_columns(rng)
    logs = tmp_path / "logs"
    logs.mkdir()
    log_file = logs / "predictions.jsonl"
    log_file.touch()
    references = {}
    models = []
    for fmt in FORMATS:
        ref_path = tmp_path / f"reference.{fmt}"
        references[fmt] = write_reference(columns, ref_path, rng)
        models.append(model_config(
            f"{MODEL}-{fmt}", log_file, ref_path,
            [{"name": f, "type": "categorical"} for f in FEATURES],
            prediction={"column": PREDICTION, "type": "categorical"},
            window={"rows": WINDOW}, max_categories=MAX_CATEGORIES))
    process = exporter({"models": models})
    start = process.scrape()
    for fmt in FORMATS:
        check_start(start, f"{MODEL}-{fmt}", references[fmt])

    log = Log()
    append_lines(log_file, write_records(rng, log, CLEAN_RECORDS, messy=False))
    wait_until(lambda: all(value(process.scrape(), "drift_rows_ingested_total",
                                 model=f"{MODEL}-{fmt}") == CLEAN_RECORDS for fmt in FORMATS),
               10.0, what=f"{CLEAN_RECORDS} records ingested")
    append_lines(log_file, write_records(rng, log, MESSY_RECORDS, messy=True))
    total = CLEAN_RECORDS + MESSY_RECORDS
    for fmt in FORMATS:
        samples = process.wait_for_window(f"{MODEL}-{fmt}", total, WINDOW)
    check = Mismatches(samples)  # the last one waited for has settled, and so have the others
    for fmt in FORMATS:
        check_model(check, f"{MODEL}-{fmt}", references[fmt], log, total)
    check.verify()

    # The data was built so that these cases are all exercised (a check of the test itself).
    region = expect(columns["region"], log.raw["region"][-WINDOW:], MAX_CATEGORIES)
    assert region.ratios["wales"] == 0.0  # exposed at 0
    assert "west" not in region.ratios  # lost the tie by name
    assert OTHER not in expect(columns["flag"], log.raw["flag"][-WINDOW:], 4).ratios
    assert OTHER in expect(columns["tier"], log.raw["tier"][-WINDOW:], 4).ratios


def check_model(check: Mismatches, model: str, reference: Mapping[str, list[Any]], log: Log,
                total: int) -> None:
    """Every gauge of one model against the values computed from the raw rows."""
    samples = check.samples
    m = {"model": model}
    check.expect("drift_window_rows", m, WINDOW)
    check.expect("drift_rows_ingested_total", m, total)
    for name in COLUMNS:
        check.expect("drift_values_invalid_total", {**m, "feature": name},
                     invalid_count(log.raw[name]))
    detected = []
    for name in FEATURES:
        labels = {**m, "feature": name}
        expected = expect(reference[name], log.raw[name][-WINDOW:], MAX_CATEGORIES)
        check_column(check, "feature", labels, expected, ratio_name="category_ratio",
                     ratio_label="category")
        check.expect("drift_feature_unseen_ratio", labels, expected.unseen_ratio, abs_tol=1e-12)
        check.expect("drift_feature_chi2_pvalue", labels, expected.chi2_pvalue, rel=1e-9,
                     abs_tol=1e-15)
        detected.append(value(samples, "drift_feature_drift_detected", **labels))
    if None not in detected:
        share = sum(d or 0.0 for d in detected) / len(FEATURES)
        check.expect("drift_dataset_drift_share", m, share)

    expected = expect(reference[PREDICTION], log.raw[PREDICTION][-WINDOW:], MAX_CATEGORIES)
    check_column(check, "prediction", m, expected, ratio_name="class_ratio", ratio_label="class")
    for feature_only in ("chi2_pvalue", "unseen_ratio", "quantile"):
        check.require(not any(n == f"drift_prediction_{feature_only}" and ("model", model) in lbl
                              for n, lbl in samples),
                      f"drift_prediction_{feature_only} is exposed for the categorical "
                      f"prediction of {model}")


def test_float32_reference_values_are_the_categories_the_log_writes(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    # A Parquet reference written from a float32 frame (a common memory saving) stores 0.1 as
    # the float32 nearest to it; its shortest round-trip text is "0.1", the category the JSON
    # log's 0.1 is. Widened to float64 first it would read 0.10000000149011612: every logged
    # value would be unseen.
    rng = np.random.default_rng(31)
    shares = {0.1: 0.5, 0.25: 0.3, 2.7: 0.2}
    reference = [v for v, p in shares.items() for _ in range(round(p * 1000))]
    ref_path = tmp_path / "reference.parquet"
    pd.DataFrame({"rate": np.array(reference, dtype=np.float32)}).to_parquet(ref_path,
                                                                             index=False)
    window = [reference[i] for i in rng.permutation(len(reference))[:200]]
    log_file = tmp_path / "predictions.jsonl"
    append_lines(log_file, [json.dumps({"rate": v if i % 2 else str(v)})
                            for i, v in enumerate(window)])
    model = "f32"
    process = exporter({"models": [model_config(
        model, log_file, ref_path, [{"name": "rate", "type": "categorical"}],
        window={"rows": 200})]})
    samples = process.wait_for_window(model, 200, 200)

    expected = expect(reference, window, 20)
    assert set(expected.reference_ratios) == {"0.1", "0.25", "2.7"}
    check = Mismatches(samples)
    labels = {"model": model, "feature": "rate"}
    check.expect("drift_feature_unseen_ratio", labels, 0.0)
    for category, share in expected.reference_ratios.items():
        check.expect("drift_reference_feature_category_ratio", {**labels, "category": category},
                     share, abs_tol=1e-12)
    for category, share in expected.ratios.items():
        check.expect("drift_feature_category_ratio", {**labels, "category": category}, share,
                     abs_tol=1e-12)
    check.expect("drift_feature_jensen_shannon_distance", labels,
                 expected.jensen_shannon_distance, rel=0.0, abs_tol=1e-9)
    check.verify()
