"""Segments (SPEC 6.11) on a real exporter: every segment window's statistics against scipy on
that segment's records and its slice of the reference; ``__other__``; the bounded label values;
a change of segment mix alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import spec_stats
from harness import Exporter, Mismatches, Samples, append_lines, jsonl_line, model_config, run_cli
from harness import write_config as write_config_file

MODEL = "shop"
SEGMENT = "country"
MAX_SEGMENTS = 3
MIN_ROWS = 100
WINDOW = 400
P_VALUE_ALPHA = 0.001  # ks with threshold auto: a fixed level
COLOURS = ("red", "green", "blue", "grey")
# Reference mix: a, b and c get their own windows; d, e and missing values are __other__.
REFERENCE_MIX = {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.05, "e": 0.04, None: 0.01}
SHIFT = {"a": 0.0, "b": 2.0, "c": -1.0, "d": 4.0, "e": 4.0, None: 4.0}

ExporterFactory = Callable[..., Exporter]


def rows(rng: np.random.Generator, segments: list[str | None], shift: float = 0.0,
         ) -> list[dict[str, Any]]:
    """Records whose x, colour and score depend on their segment (``shift`` drifts x)."""
    result = []
    for segment in segments:
        centre = SHIFT.get(segment, 0.0)
        colours = np.roll(np.array([0.4, 0.3, 0.2, 0.1]), COLOURS.index("red") + int(centre))
        record: dict[str, Any] = {
            "x": float(rng.normal(centre + shift, 1.0)),
            "colour": str(rng.choice(COLOURS, p=colours)),
            "score": float(rng.beta(2 + centre, 3)),
        }
        if segment is not None:
            record[SEGMENT] = segment
        result.append(record)
    return result


def draw(rng: np.random.Generator, mix: dict[str | None, float], n: int) -> list[str | None]:
    keys = list(mix)
    picked = rng.choice(len(keys), p=np.array(list(mix.values())) / sum(mix.values()), size=n)
    return [keys[i] for i in picked]


def config(logs: Path, reference: Path, **extra: Any) -> dict[str, Any]:
    entry = model_config(MODEL, logs / "*.jsonl", reference,
                         [{"name": "x", "type": "numerical"},
                          {"name": "colour", "type": "categorical"}],
                         prediction={"column": "score", "type": "numerical"},
                         window={"rows": WINDOW}, drift={"min_rows": MIN_ROWS},
                         segments={"column": SEGMENT, "max_segments": MAX_SEGMENTS})
    entry.update(extra)
    return {"models": [entry]}


def segment_of(record: dict[str, Any]) -> str:
    """The segment label value a record's window has (SPEC 6.11, docs/segments.md)."""
    value = record.get(SEGMENT)
    return value if value in ("a", "b", "c") else "__other__"


def jensen_shannon(reference: pd.Series, window: list[str]) -> float:
    """JS distance over the whole reference's categories plus the unseen bin."""
    categories = sorted(set(reference.dropna()))
    ref = [int((reference == c).sum()) for c in categories] + [0]
    win = [sum(1 for w in window if w == c) for c in categories]
    win.append(len(window) - sum(win))
    return spec_stats.jensen_shannon(np.array(ref) / sum(ref), np.array(win) / sum(win))


def check_window(check: Mismatches, labels: dict[str, str], reference: pd.DataFrame,
                 window: list[dict[str, Any]]) -> None:
    """Every drift statistic of one window against scipy on its records and reference rows."""
    for column, kind, extra in (("x", "feature", {"feature": "x"}),
                                ("score", "prediction", {})):
        expected = spec_stats.numerical(reference[column].to_numpy(float),
                                        np.array([r[column] for r in window], dtype=float))
        for suffix, value in expected.items():
            rel, abs_tol = spec_stats.tolerance(suffix)
            check.expect(f"drift_{kind}_{suffix}", {**labels, **extra}, value, rel=rel,
                         abs_tol=abs_tol)
        check.expect(f"drift_{kind}_drift_detected", {**labels, **extra},
                     float(expected["ks_pvalue"] < P_VALUE_ALPHA))
    check.expect("drift_feature_jensen_shannon_distance", {**labels, "feature": "colour"},
                 jensen_shannon(reference["colour"], [r["colour"] for r in window]),
                 rel=0.0, abs_tol=1e-9)
    check.expect("drift_window_rows", labels, len(window))
    check.expect("drift_reference_rows", labels, len(reference))
    check.present("drift_alarm", labels)


def segment_labels(samples: Samples) -> set[str]:
    return {dict(labels).get("segment") for _, labels in samples
            if dict(labels).get("model") == MODEL} - {None}


def wait_settled(process: Exporter, records: int) -> Samples:
    return process.wait_for_window(MODEL, records, min(records, WINDOW))


def write_reference(directory: Path, frame: pd.DataFrame) -> Path:
    path = directory / "reference.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_each_segment_window_matches_scipy_on_its_records_and_its_reference_slice(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    rng = np.random.default_rng(11)
    reference = pd.DataFrame(rows(rng, draw(rng, REFERENCE_MIX, 4000)))
    ref_path = write_reference(tmp_path, reference)
    logs = tmp_path / "logs"
    logs.mkdir()
    # The live mix: unseen (zz) and missing values go to __other__; b drifts.
    live_mix = {"a": 0.3, "b": 0.3, "c": 0.15, "d": 0.1, "zz": 0.1, None: 0.05}
    segments = draw(rng, live_mix, 1500)
    records = [r | ({"x": r["x"] + 0.8} if s == "b" else {})
               for r, s in zip(rows(rng, segments), segments, strict=True)]
    append_lines(logs / "predictions.jsonl", [jsonl_line(r) for r in records])
    process = exporter(config(logs, ref_path))
    samples = wait_settled(process, len(records))

    check = Mismatches(samples)
    m = {"model": MODEL}
    check_window(check, m, reference, records[-WINDOW:])  # the whole model, as before
    reference_segment = reference[SEGMENT].where(reference[SEGMENT].isin(["a", "b", "c"]),
                                                 "__other__")
    for segment in ("a", "b", "c", "__other__"):
        window = [r for r in records if segment_of(r) == segment][-WINDOW:]
        check_window(check, {**m, "segment": segment}, reference[reference_segment == segment],
                     window)
    check.require(segment_labels(samples) == {"a", "b", "c", "__other__"},
                  f"segment label values {segment_labels(samples)}")
    check.expect("drift_rows_ingested_total", m, len(records))
    check.absent("drift_rows_ingested_total", {**m, "segment": "a"})
    check.verify()


def test_segment_label_values_never_exceed_max_segments_plus_one(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(rows(rng, draw(rng, REFERENCE_MIX, 2000)))
    ref_path = write_reference(tmp_path, reference)
    logs = tmp_path / "logs"
    logs.mkdir()
    segments: list[str | None] = [f"tenant-{i}" for i in range(300)]
    records = rows(rng, segments)
    append_lines(logs / "predictions.jsonl", [jsonl_line(r) for r in records])
    process = exporter(config(logs, ref_path))
    samples = wait_settled(process, len(records))
    labels = segment_labels(samples)
    assert labels == {"a", "b", "c", "__other__"}
    assert len(labels) <= MAX_SEGMENTS + 1
    check = Mismatches(samples)
    check.expect("drift_window_rows", {"model": MODEL, "segment": "__other__"}, len(records))
    check.expect("drift_window_rows", {"model": MODEL, "segment": "a"}, 0)
    check.verify()


def test_a_change_of_segment_mix_alone_shows_in_the_whole_model_and_not_per_segment(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    rng = np.random.default_rng(5)
    mix: dict[str | None, float] = {"a": 0.5, "b": 0.5}
    reference = pd.DataFrame(rows(rng, draw(rng, mix, 4000)))
    ref_path = write_reference(tmp_path, reference)
    logs = tmp_path / "logs"
    logs.mkdir()
    # Every segment keeps its reference distribution; only the mix moves (a: 50% -> 90%).
    records = rows(rng, draw(rng, {"a": 0.9, "b": 0.1}, 2000))
    append_lines(logs / "predictions.jsonl", [jsonl_line(r) for r in records])
    entry = config(logs, ref_path, window={"rows": 2000})
    process = exporter(entry)
    samples = process.wait_for_window(MODEL, len(records), len(records))
    check = Mismatches(samples)
    whole = {"model": MODEL, "feature": "x"}
    check.expect("drift_feature_drift_detected", whole, 1.0)
    check.expect("drift_dataset_drift_detected", {"model": MODEL}, 1.0)
    for segment in ("a", "b"):
        labels = {**whole, "segment": segment}
        check.expect("drift_feature_drift_detected", labels, 0.0)
        check.expect("drift_dataset_drift_detected", {"model": MODEL, "segment": segment}, 0.0)
    check.verify()


def test_check_prints_the_segments_and_their_reference_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame(rows(rng, ["a"] * 500 + ["b"] * 300 + ["c"] * 50 + ["d"] * 150))
    ref_path = write_reference(tmp_path, reference)
    logs = tmp_path / "logs"
    logs.mkdir()
    path = write_config_file(tmp_path, config(logs, ref_path))
    done = run_cli("check", f"--config.file={path}")
    assert done.returncode == 0, done.stderr
    assert "segment 'a': reference 500 rows" in done.stdout
    assert "segment 'b': reference 300 rows" in done.stdout
    assert "segment 'd': reference 150 rows" in done.stdout
    assert "segment '__other__': reference 50 rows, fewer than drift.min_rows (100)" in (
        done.stdout)
