"""Bad input in a followed log (issue 4, scenario 9; SPEC 2), through a real exporter process.

Every kind of bad line is accounted for as SPEC 2 says (a rejected record with its reason, or a
record with invalid values counted per column), the exporter names the file and line of each
rejected record in its log, and the good records after them are read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from harness import Exporter, Mismatches, append_lines, jsonl_line, model_config, value
from logdata import (
    FEATURES,
    PREDICTION,
    clean_lines,
    live_columns,
    reference_frame,
    write_reference,
)
from reliability_helpers import MIB

MODEL = "bad"
ExporterFactory = Callable[..., Exporter]


def setup(tmp_path: Path) -> tuple[dict[str, object], Path]:
    """A config following logs/*.jsonl with the logdata features and the default line limit."""
    ref = write_reference(reference_frame(), tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = model_config(MODEL, logs / "*.jsonl", ref,
                       [{"name": f, "type": "numerical"} for f in FEATURES],
                       prediction={"column": PREDICTION}, window={"rows": 1000},
                       drift={"min_rows": 5})
    return {"models": [cfg]}, logs


def bad_lines() -> list[tuple[str, bytes, str | None, dict[str, float]]]:
    """(what, raw line without newline, rejection reason or None, meaning of each column).

    The meaning is the number the exporter must see, NaN for missing or invalid; invalid values
    are listed separately by ``INVALID``.
    """
    nan = math.nan
    good = {"gauss": 50.5, "skewed": 1.5, "counts": 3.0, PREDICTION: 0.25}
    return [
        ("truncated JSON", b'{"gauss": 1.0, "skewed": ', "malformed", {}),
        ("a JSON array", b"[1.0, 2.0, 3.0]", "malformed", {}),
        ("a JSON string", b'"gauss"', "malformed", {}),
        ("two objects on one line", b'{"gauss": 1}{"gauss": 2}', "malformed", {}),
        ("wrong types", json.dumps({"gauss": "abc", "skewed": True, "counts": [1],
                                    PREDICTION: {"x": 1}}).encode(),
         None, {"gauss": nan, "skewed": nan, "counts": nan, PREDICTION: nan}),
        ("NaN and infinities", b'{"gauss": NaN, "skewed": Infinity, "counts": -Infinity, '
                               b'"score": 0.5}',
         None, {"gauss": nan, "skewed": nan, "counts": nan, PREDICTION: 0.5}),
        ("numeric strings", b'{"gauss": "42.5", "skewed": "-1e-1", "counts": " 3", '
                            b'"score": "nan"}',
         None, {"gauss": 42.5, "skewed": -0.1, "counts": nan, PREDICTION: nan}),
        ("a byte order mark", b"\xef\xbb\xbf" + json.dumps(good).encode(), None, good),
        ("invalid UTF-8", b'{"gauss": 1.0, "note": "\xff\xfe\xc3("}', "malformed", {}),
        ("a lone surrogate escape", b'{"gauss": 2.0, "note": "\\ud800"}', "malformed", {}),
        ("a NUL byte", b'{"gauss": 3.0}\x00', "malformed", {}),
        ("a blank line", b"  \t", "blank", {}),
    ]


# Invalid values per column that the lines above hold (SPEC 2): strings that are no numbers,
# booleans, nested values and infinities.
INVALID = {"gauss": 1, "skewed": 2, "counts": 3, PREDICTION: 2}


def test_every_kind_of_bad_line_is_counted_as_spec_2_says_and_the_file_goes_on(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs = setup(tmp_path)
    process = exporter(cfg)
    log = logs / "app.jsonl"
    rng = np.random.default_rng(91)
    before, after = live_columns(rng, 20), live_columns(rng, 200)
    cases = bad_lines()
    lines = [line.encode() for line in clean_lines(before)]
    where: dict[str, int] = {}
    for what, raw, _, _ in cases:
        lines.append(raw)
        where[what] = len(lines)  # 1-based line number of the case
    huge_line = len(lines) + 1
    with log.open("ab") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))
        # a 50 MB line, written in pieces as a logger flushing its buffer would
        piece = b'{"gauss": 1.0, "padding": "' + b"x" * (MIB - 27)
        for _ in range(50):
            handle.write(piece)
            handle.flush()
        handle.write(b'"}\n')
    append_lines(log, clean_lines(after, start=20))

    records = [meaning for _, _, reason, meaning in cases if reason is None]
    ingested = len(before["gauss"]) + len(records) + len(after["gauss"])
    samples = process.wait_for_window(MODEL, ingested, ingested, timeout=60)
    check = Mismatches(samples)
    malformed = sum(1 for _, _, reason, _ in cases if reason == "malformed")
    check.expect("drift_rows_rejected_total", {"model": MODEL, "reason": "malformed"}, malformed)
    check.expect("drift_rows_rejected_total", {"model": MODEL, "reason": "too_long"}, 1)
    for column, count in INVALID.items():
        check.expect("drift_values_invalid_total", {"model": MODEL, "feature": column}, count)
    for column in (*FEATURES, PREDICTION):
        seen = np.concatenate((before[column], [m[column] for m in records], after[column]))
        usable = seen[~np.isnan(seen)]
        name = "drift_prediction_mean" if column == PREDICTION else "drift_feature_mean"
        labels = {"model": MODEL} if column == PREDICTION else {"model": MODEL,
                                                                  "feature": column}
        check.expect(name, labels, float(np.mean(usable)))
        missing = name.replace("_mean", "_missing_ratio")
        check.expect(missing, labels, 1.0 - usable.shape[0] / seen.shape[0], abs_tol=1e-12)
    check.verify()

    # The log names the file and the line of each rejected record.
    stderr = process.stderr()
    for what, _, reason, _ in cases:
        if reason == "malformed":
            assert rejection_logged(stderr, log, where[what], "malformed"), (
                f"no log line names {log.name} line {where[what]} ({what}):\n{stderr[-3000:]}")
    assert rejection_logged(stderr, log, huge_line, "too_long"), stderr[-3000:]
    assert value(process.scrape(), "drift_window_rows", model=MODEL) == ingested


def rejection_logged(stderr: str, path: Path, line: int, reason: str) -> bool:
    """Whether a logfmt 'record rejected' line names this file, line and reason."""
    for entry in stderr.splitlines():
        if "record rejected" not in entry:
            continue
        fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', entry))
        values = {k: json.loads(v) if v.startswith('"') else v for k, v in fields.items()}
        if (values.get("file") == str(path) and values.get("line") == str(line)
                and values.get("reason") == reason):
            return True
    return False


def test_a_bad_line_in_a_block_of_good_ones_costs_only_itself(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    """Bad lines in the middle of a large block (the columnar fast path) are found exactly."""
    cfg, logs = setup(tmp_path)
    process = exporter(cfg)
    rng = np.random.default_rng(92)
    columns = live_columns(rng, 5000)
    lines = clean_lines(columns)
    for at in (17, 1234, 3333, 4999):
        lines[at] = lines[at][:-1]  # drop the closing brace: malformed
    lines.insert(2500, "\ufeff" + jsonl_line({"gauss": 7.0}))  # BOM mid-file: still a record
    append_lines(logs / "app.jsonl", lines)
    samples = process.wait_for_window(MODEL, 5000 - 4 + 1, 1000, timeout=60)
    check = Mismatches(samples)
    check.expect("drift_rows_rejected_total", {"model": MODEL, "reason": "malformed"}, 4)
    kept = np.delete(columns["gauss"], [17, 1234, 3333, 4999])
    check.expect("drift_feature_mean", {"model": MODEL, "feature": "gauss"},
                 float(np.mean(kept[-1000:])))
    check.verify()
