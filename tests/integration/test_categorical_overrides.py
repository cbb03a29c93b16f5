"""Per-feature statistics and thresholds, dataset drift and detection counting (SPEC 3, 6.1-6.3).

One model with categorical features on ``chi2`` (threshold 0.01), ``psi`` (0.2) and the default
``jensen_shannon`` (auto), numerical features on ``jensen_shannon`` (auto) and the default
``ks``, a sparse feature that never reaches ``min_rows`` and a categorical prediction. The log
goes through phases (stable, drifted, stable, drifted again), each filling the whole window,
and after each one the drift gauges, the dataset drift share and ``drift_detections_total``
are compared with what the phase's rows imply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import spec_stats
from harness import (
    Exporter,
    Mismatches,
    Samples,
    append_lines,
    model_config,
    value,
    wait_until,
)
from test_categorical_expected import expect

ExporterFactory = Callable[..., Exporter]

MODEL = "phases"
WINDOW = 300
REFERENCE_ROWS = 2000
DATASET_SHARE = 0.5
KS_ALPHA = 0.001  # threshold: auto for a p-value statistic (docs/statistics.md)

CATEGORIES = ("red", "green", "blue")
STABLE_SHARES = (0.5, 0.3, 0.2)
DRIFTED_SHARES = (0.2, 0.3, 0.5)
DECISIONS = ("yes", "no")
FEATURES: list[dict[str, Any]] = [
    {"name": "cat_chi2", "type": "categorical", "statistic": "chi2", "threshold": 0.01},
    {"name": "cat_psi", "type": "categorical", "statistic": "psi", "threshold": 0.2},
    {"name": "cat_js", "type": "categorical"},
    {"name": "num_js", "type": "numerical", "statistic": "jensen_shannon"},
    {"name": "num_ks", "type": "numerical"},
    {"name": "sparse", "type": "categorical"},  # 60 usable values per window: no score
]
NAMES = [f["name"] for f in FEATURES]
SCORED = NAMES[:-1]
SPARSE_EVERY = 5

# Which columns drift in each phase; everything else is drawn like the reference.
PHASES: list[tuple[str, set[str]]] = [
    ("stable", set()),
    ("two categorical features and the prediction drift", {"cat_chi2", "cat_psi", "decision"}),
    ("a numerical feature drifts too", {"cat_chi2", "cat_psi", "num_js", "decision"}),
    ("stable again", set()),
    ("one feature drifts again", {"cat_chi2"}),
]


def exact_sample(shares: tuple[float, ...], labels: tuple[str, ...], n: int,
                 rng: np.random.Generator) -> list[str]:
    """``n`` categories in exactly these proportions, shuffled."""
    values = [c for c, p in zip(labels, shares, strict=True) for _ in range(round(p * n))]
    assert len(values) == n
    return [values[i] for i in rng.permutation(n)]


def reference_frame(rng: np.random.Generator) -> pd.DataFrame:
    """The reference: categorical columns in the stable shares, N(0, 1) numbers."""
    frame = {name: exact_sample(STABLE_SHARES, CATEGORIES, REFERENCE_ROWS, rng)
             for name in ("cat_chi2", "cat_psi", "cat_js", "sparse")}
    return pd.DataFrame({
        **frame,
        "num_js": np.round(rng.normal(0.0, 1.0, REFERENCE_ROWS), 6),
        "num_ks": np.round(rng.normal(0.0, 1.0, REFERENCE_ROWS), 6),
        "decision": exact_sample((0.7, 0.3), DECISIONS, REFERENCE_ROWS, rng),
    })


def phase_rows(reference: pd.DataFrame, drifting: set[str],
               rng: np.random.Generator) -> dict[str, list[Any]]:
    """One window of rows: reference-like columns, and shifted ones for ``drifting``."""
    rows: dict[str, list[Any]] = {}
    for name in ("cat_chi2", "cat_psi", "cat_js", "sparse"):
        shares = DRIFTED_SHARES if name in drifting else STABLE_SHARES
        rows[name] = exact_sample(shares, CATEGORIES, WINDOW, rng)
    for name in ("num_js", "num_ks"):
        # Stable: reference values themselves (a subsample); drifted: moved by 1.5 sd.
        values = rng.choice(reference[name].to_numpy(), WINDOW, replace=False)
        rows[name] = list(values + (1.5 if name in drifting else 0.0))
    rows["decision"] = exact_sample((0.2, 0.8) if "decision" in drifting else (0.7, 0.3),
                                    DECISIONS, WINDOW, rng)
    rows["sparse"] = [v if i % SPARSE_EVERY == 0 else None for i, v in enumerate(rows["sparse"])]
    return rows


def lines_of(rows: dict[str, list[Any]]) -> list[str]:
    """JSONL records; a None is an absent key."""
    return [json.dumps({k: (float(v[i]) if isinstance(v[i], np.floating) else v[i])
                        for k, v in rows.items() if v[i] is not None})
            for i in range(WINDOW)]


def expected_scores(reference: pd.DataFrame, rows: dict[str, list[Any]]) -> dict[str, float]:
    """The configured statistic of each scored feature and of the prediction."""
    scores = {}
    for name in ("cat_chi2", "cat_psi", "cat_js"):
        e = expect(reference[name].tolist(), rows[name], 20)
        scores[name] = {"cat_chi2": e.chi2_pvalue, "cat_psi": e.psi,
                        "cat_js": e.jensen_shannon_distance}[name]
    ref_js = reference["num_js"].to_numpy(float)
    scores["num_js"] = spec_stats.numerical(ref_js, np.asarray(rows["num_js"]))[
        "jensen_shannon_distance"]
    ref_ks = reference["num_ks"].to_numpy(float)
    scores["num_ks"] = spec_stats.numerical(ref_ks, np.asarray(rows["num_ks"]))["ks_pvalue"]
    scores["decision"] = expect(reference["decision"].tolist(), rows["decision"],
                                20).jensen_shannon_distance
    return scores


def window_with_mean(process: Exporter, mean: float) -> Samples | None:
    """A scrape whose num_ks window mean is ``mean``, else None."""
    samples = process.scrape()
    got = value(samples, "drift_feature_mean", model=MODEL, feature="num_ks")
    return samples if got is not None and abs(got - mean) <= 1e-9 * max(1.0, abs(mean)) else None


def test_per_feature_statistics_drive_detection_dataset_share_and_detection_counts(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    rng = np.random.default_rng(77)
    reference = reference_frame(rng)
    ref_path = tmp_path / "reference.parquet"
    reference.to_parquet(ref_path, index=False)
    log_file = tmp_path / "predictions.jsonl"
    process = exporter({"models": [model_config(
        MODEL, log_file, ref_path, FEATURES,
        prediction={"column": "decision", "type": "categorical"},
        window={"rows": WINDOW}, drift={"min_rows": 100, "dataset_share": DATASET_SHARE})]})

    m = {"model": MODEL}
    check = Mismatches(process.scrape())
    for name in NAMES:
        check.expect("drift_detections_total", {**m, "feature": name}, 0)
    check.absent("drift_dataset_drift_share", m)
    check.verify()

    detections = dict.fromkeys(NAMES, 0)
    previously: dict[str, bool] = {}
    ingested = 0
    for phase, drifting in PHASES:
        rows = phase_rows(reference, drifting, rng)
        append_lines(log_file, lines_of(rows))
        ingested += WINDOW
        process.wait_for_window(MODEL, ingested, WINDOW)
        # The window mean identifies its content: no statistic below comes from a window that
        # still holds rows of the previous phase, however slow the machine.
        mean = float(np.mean(rows["num_ks"]))
        samples = wait_until(lambda m=mean: window_with_mean(process, m), 10.0,
                             what=f"a snapshot of the rows of phase '{phase}'")
        check = Mismatches(samples)
        scores = expected_scores(reference, rows)

        fixed = {"cat_chi2": (0.01, True), "cat_psi": (0.2, False), "num_ks": (KS_ALPHA, True)}
        detected_now = {}
        for name in SCORED:
            labels = {**m, "feature": name}
            tolerance = (0.0, 1e-6) if name == "num_ks" else (1e-9, 1e-9)
            check.expect("drift_feature_drift_score", labels, scores[name],
                         rel=tolerance[0], abs_tol=tolerance[1])
            if name in fixed:
                threshold, is_p_value = fixed[name]
                check.expect("drift_feature_drift_threshold", labels, threshold)
            else:  # jensen_shannon with threshold: auto
                got = check.present("drift_feature_drift_threshold", labels)
                threshold, is_p_value = got or float("nan"), False
                check.require(got is None or 0 < got <= 1,
                              f"{phase}: auto threshold of {name} = {got}")
            drifted = scores[name] < threshold if is_p_value else scores[name] >= threshold
            assert drifted == (name in drifting), (
                f"test data: {name} in phase '{phase}' scores {scores[name]} against "
                f"{threshold}")
            check.expect("drift_feature_drift_detected", labels, float(drifted))
            detected_now[name] = drifted
            if drifted and not previously.get(name, False):
                detections[name] += 1
            previously[name] = drifted

        sparse = {**m, "feature": "sparse"}
        for suffix in ("drift_score", "drift_threshold", "drift_detected", "chi2_pvalue",
                       "jensen_shannon_distance", "psi"):
            check.absent(f"drift_feature_{suffix}", sparse)
        check.expect("drift_feature_missing_ratio", sparse, 1 - 1 / SPARSE_EVERY)
        check.present("drift_feature_category_ratio", {**sparse, "category": "red"})

        for name in NAMES:
            check.expect("drift_detections_total", {**m, "feature": name}, detections[name])
        share = sum(detected_now.values()) / len(SCORED)  # prediction and sparse excluded
        check.expect("drift_dataset_drift_share", m, share)
        check.expect("drift_dataset_drift_detected", m, float(share >= DATASET_SHARE))
        check.expect("drift_prediction_drift_score", m, scores["decision"], rel=0.0,
                     abs_tol=1e-9)
        check.expect("drift_prediction_drift_detected", m, float("decision" in drifting))
        check.require(value(samples, "drift_detections_total", model=MODEL,
                            feature="decision") is None,
                      "the prediction has a drift_detections_total{feature=\"decision\"}")
        if check.problems:
            check.problems.insert(0, f"after phase '{phase}':")
        check.verify()
