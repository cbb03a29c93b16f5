"""Bounded and well-formed ``category`` labels (SPEC 3 ``max_categories``, 5, 6.1).

A column that suddenly carries a unique value per row must not add series: only the
``max_categories`` most frequent reference categories get a label, everything else is
``category="__other__"``. Category text with quotes, backslashes, newlines and non-ASCII
characters must come out escaped so that a Prometheus parser reads back the exact text.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from harness import (
    Exporter,
    Mismatches,
    Samples,
    append_lines,
    model_config,
    value,
    wait_until,
)
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from test_categorical_expected import OTHER, expect

ExporterFactory = Callable[..., Exporter]

MAX_CATEGORIES = 5
CITIES = {"paris": 500, "berlin": 400, "rome": 300, "madrid": 250, "vienna": 200, "oslo": 150,
          "lisbon": 120, "dublin": 80}
SEGMENTS = {"a": 600, "b": 500, "c": 300, "d": 200, "e": 150, "f": 150, "g": 100}
UNIQUE_ROWS = 3000
UNIQUE_BATCH = 1000
WINDOW = 1000

# Category text that the exposition format must escape (\\, \", \n) or carry as UTF-8.
AWKWARD = {
    'say "hi"': 300,
    "back\\slash": 250,
    "C:\\temp\\": 200,  # a trailing backslash, right before the closing quote
    "two\nlines": 150,
    "Zürich": 120,
    "東京": 100,
    "🚀 launch": 80,
    "tab\tand\rreturn": 60,
    "\\n is not a newline": 50,
    'slash-quote \\"': 40,
    "{braces}=,commas": 30,
    "e\u0301 combining": 20,
}
UNSEEN_AWKWARD = 'never "seen"\\\n東'


def shuffled(counts: dict[str, int], rng: np.random.Generator) -> list[str]:
    """Every category repeated by its count, in random order."""
    values = [c for c, n in counts.items() for _ in range(n)]
    return [values[i] for i in rng.permutation(len(values))]


def promtool_findings(exposition: str) -> str:
    """What ``promtool check metrics`` says about an exposition ('' when clean)."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not on PATH"
    result = subprocess.run([promtool, "check", "metrics"], input=exposition,
                            capture_output=True, text=True, timeout=30, check=False)
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 or findings, "promtool failed without saying why"
    return findings


def scrape_once_ingested(process: Exporter, model: str, rows: int) -> Samples | None:
    """A scrape, once ``rows`` records have been read."""
    samples = process.scrape()
    return samples if value(samples, "drift_rows_ingested_total", model=model) == rows else None


def class_series(samples: Samples, name: str) -> dict[str, float]:
    """``class`` label -> value of one prediction metric."""
    return {dict(lbl)["class"]: v for (n, lbl), v in samples.items() if n == name}


def series_of(samples: Samples, feature: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """Every sample key that carries ``feature=<feature>``."""
    return {k for k in samples if ("feature", feature) in k[1]}


def category_series(samples: Samples, name: str, feature: str) -> dict[str, float]:
    """``category`` label -> value of one metric for one feature."""
    return {dict(lbl)["category"]: v for (n, lbl), v in samples.items()
            if n == name and ("feature", feature) in lbl}


def test_a_column_with_a_unique_value_per_row_adds_no_series(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    rng = np.random.default_rng(61)
    reference = shuffled(CITIES, rng)
    segments = shuffled(SEGMENTS, rng)
    ref_path = tmp_path / "reference.parquet"
    pd.DataFrame({"city": reference, "segment": segments}).to_parquet(ref_path, index=False)
    log_file = tmp_path / "predictions.jsonl"
    log_file.touch()
    model = "geo"
    process = exporter({"models": [model_config(
        model, log_file, ref_path, [{"name": "city", "type": "categorical"}],
        prediction={"column": "segment", "type": "categorical"},
        window={"rows": WINDOW}, max_categories=MAX_CATEGORIES)]})

    normal = reference[:300]
    append_lines(log_file, [json.dumps({"city": c, "segment": s})
                            for c, s in zip(normal, segments, strict=False)])
    before = process.wait_for_window(model, len(normal), len(normal), quiet=0.3)
    ratios = category_series(before, "drift_feature_category_ratio", "city")
    exposed = ["paris", "berlin", "rome", "madrid", "vienna"]
    assert set(ratios) == {*exposed, OTHER}, sorted(ratios)

    # From now on every row carries a value nobody has seen before.
    ingested = len(normal)
    for start in range(0, UNIQUE_ROWS, UNIQUE_BATCH):
        append_lines(log_file, [json.dumps({"city": f"user-{i:06d}-{rng.integers(1 << 30)}",
                                            "segment": f"s{i}"})
                                for i in range(start, start + UNIQUE_BATCH)])
        ingested += UNIQUE_BATCH
        samples = wait_until(lambda n=ingested: scrape_once_ingested(process, model, n), 10.0,
                             what=f"{ingested} records ingested")
        for name in ("drift_feature_category_ratio", "drift_reference_feature_category_ratio"):
            count = len(category_series(samples, name, "city"))
            assert count <= MAX_CATEGORIES + 1, f"{name} has {count} series for city"
        for name in ("drift_prediction_class_ratio", "drift_reference_prediction_class_ratio"):
            count = len(class_series(samples, name))
            assert count <= MAX_CATEGORIES + 1, f"{name} has {count} series"
    after = process.wait_for_window(model, ingested, WINDOW)

    assert series_of(after, "city") == series_of(before, "city"), (
        sorted(series_of(after, "city") ^ series_of(before, "city")))
    assert set(class_series(after, "drift_prediction_class_ratio")) == set(
        class_series(before, "drift_prediction_class_ratio"))
    assert len(after) < len(before) + 50, f"{len(after) - len(before)} more series"
    check = Mismatches(after)
    city = {"model": model, "feature": "city"}
    for category in exposed:
        check.expect("drift_feature_category_ratio", {**city, "category": category}, 0.0)
    check.expect("drift_feature_category_ratio", {**city, "category": OTHER}, 1.0)
    check.expect("drift_feature_unseen_ratio", city, 1.0)
    check.expect("drift_feature_jensen_shannon_distance", city, 1.0, abs_tol=1e-9)
    check.expect("drift_feature_drift_detected", city, 1.0)
    check.expect("drift_prediction_class_ratio", {"model": model, "class": OTHER}, 1.0)
    expected = expect(reference, reference[:1], MAX_CATEGORIES)  # the reference side only
    for category, share in expected.reference_ratios.items():
        check.expect("drift_reference_feature_category_ratio", {**city, "category": category},
                     share, abs_tol=1e-12)
    check.verify()
    findings = promtool_findings(process.scrape_text())
    assert findings == "", f"promtool check metrics reported:\n{findings}"


def test_awkward_category_text_is_escaped_and_reads_back_exactly(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    rng = np.random.default_rng(62)
    reference = shuffled(AWKWARD, rng)
    ref_path = tmp_path / "reference.parquet"
    pd.DataFrame({"note": reference}).to_parquet(ref_path, index=False)
    log_file = tmp_path / "predictions.jsonl"
    model = "text"
    process = exporter({"models": [model_config(
        model, log_file, ref_path, [{"name": "note", "type": "categorical"}],
        window={"rows": 300})]})

    window = [*reference[:290], *[UNSEEN_AWKWARD] * 10]
    window = [window[i] for i in rng.permutation(len(window))]
    # Half the lines escape non-ASCII text (\u00fc), half carry it as UTF-8.
    lines = [json.dumps({"note": c}, ensure_ascii=bool(i % 2)) for i, c in enumerate(window)]
    append_lines(log_file, lines)
    process.wait_for_window(model, len(window), len(window))

    expected = expect(reference, window, 20)
    assert OTHER in expected.ratios
    text = process.scrape_text()
    openmetrics = process.get("/metrics", headers={
        "Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"})
    assert openmetrics.status_code == 200, openmetrics.text
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    for fmt, families in (("text", text_string_to_metric_families(text)),
                          ("openmetrics", openmetrics_families(openmetrics.text))):
        window_ratios: dict[str, float] = {}
        reference_ratios: dict[str, float] = {}
        for family in families:
            for s in family.samples:
                if s.labels.get("feature") != "note":
                    continue
                if s.name == "drift_feature_category_ratio":
                    window_ratios[s.labels["category"]] = s.value
                elif s.name == "drift_reference_feature_category_ratio":
                    reference_ratios[s.labels["category"]] = s.value
        assert window_ratios == expected.ratios, fmt
        assert reference_ratios == expected.reference_ratios, fmt
    findings = promtool_findings(text)
    assert findings == "", f"promtool check metrics reported:\n{findings}"


def test_a_reference_category_named_like_the_rest_bucket_does_not_collide_with_it(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    # "__other__" is ordinary text in the data; with more categories than max_categories the
    # summed rest is labelled "__other__" too. Two series with one label set are invalid
    # exposition (Prometheus rejects the duplicate), and shares must still add up to 1.
    rng = np.random.default_rng(63)
    counts = {OTHER: 400, "a": 300, "b": 250, "c": 200, "d": 150, "e": 100, "f": 50}
    reference = shuffled(counts, rng)
    ref_path = tmp_path / "reference.parquet"
    pd.DataFrame({"kind": reference}).to_parquet(ref_path, index=False)
    log_file = tmp_path / "predictions.jsonl"
    model = "clash"
    process = exporter({"models": [model_config(
        model, log_file, ref_path, [{"name": "kind", "type": "categorical"}],
        window={"rows": 200}, max_categories=MAX_CATEGORIES)]})
    append_lines(log_file, [json.dumps({"kind": c}) for c in reference[:200]])
    text = wait_until(lambda: settled_text(process, model, 200), 10.0,
                      what="200 records in the window")

    ratios = [(s.name, s.labels["category"], s.value)
              for family in text_string_to_metric_families(text) for s in family.samples
              if s.name.endswith("_category_ratio") and s.labels.get("feature") == "kind"]
    for name in ("drift_feature_category_ratio", "drift_reference_feature_category_ratio"):
        labels = [c for n, c, _ in ratios if n == name]
        assert len(labels) == len(set(labels)), f"{name}: duplicate series {sorted(labels)}"
        shares = [v for n, _, v in ratios if n == name]
        assert len(shares) <= MAX_CATEGORIES + 1, labels
        assert abs(sum(shares) - 1.0) < 1e-9, (name, ratios)
    findings = promtool_findings(text)
    assert findings == "", f"promtool check metrics reported:\n{findings}"


def settled_text(process: Exporter, model: str, rows: int) -> str | None:
    """The exposition once it shows ``rows`` records read and a window of that many rows.

    Parsed without ``harness.parse_metrics``, which stops at the first duplicate sample.
    """
    text = process.scrape_text()
    wanted = {("drift_rows_ingested_total", float(rows)), ("drift_window_rows", float(rows))}
    seen = {(s.name, s.value) for family in text_string_to_metric_families(text)
            for s in family.samples if s.labels.get("model") == model}
    return text if wanted <= seen else None
