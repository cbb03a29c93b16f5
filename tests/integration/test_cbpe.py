"""The label-free performance estimate (SPEC 6.10) through the real exporter process: a
covariate shift lowers accuracy and the served estimate follows the realized metrics within
3 sampling errors, over every window record (a third of them unlabelled); the served numbers
equal an independent computation with scikit-learn's isotonic regression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness import append_lines, jsonl_line, model_config, run_cli, value, write_config
from sklearn import metrics
from sklearn.isotonic import IsotonicRegression

WINDOW = 2000
REFERENCE_ROWS = 5000
THRESHOLD = 0.5
ESTIMATED = ("accuracy", "f1", "roc_auc")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _data(rng: np.random.Generator, n: int, spread: float) -> pd.DataFrame:
    """True P(y=1 | x) = sigmoid(2x); the model's score sigmoid(4x) is overconfident, so the
    reference's isotonic calibration is needed. A smaller ``spread`` puts more records near
    the decision boundary: a covariate shift that lowers accuracy, the concept unchanged."""
    x = rng.normal(0, spread, n)
    return pd.DataFrame({"x": x, "p": _sigmoid(4 * x),
                         "y": (rng.random(n) < _sigmoid(2 * x)).astype(int)})


def _expected_metrics(probabilities: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """CBPE written out independently: expected confusion matrix, and the area under the
    expected ROC curve (NannyML's estimate) swept over the sorted scores."""
    predicted = scores >= THRESHOLD
    tp, fp = probabilities[predicted].sum(), (1 - probabilities[predicted]).sum()
    fn, tn = probabilities[~predicted].sum(), (1 - probabilities[~predicted]).sum()
    f1 = np.mean([2 * tp / (2 * tp + fp + fn), 2 * tn / (2 * tn + fn + fp)])
    order = np.argsort(-scores, kind="stable")
    tpr = np.concatenate(([0.0], np.cumsum(probabilities[order]) / probabilities.sum()))
    fpr = np.concatenate(([0.0], np.cumsum(1 - probabilities[order]) / (1 - probabilities).sum()))
    return {"accuracy": float((tp + tn) / scores.shape[0]), "f1": float(f1),
            "roc_auc": float(np.trapezoid(tpr, fpr))}


@pytest.fixture
def scenario(tmp_path: Path) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    reference = _data(rng, REFERENCE_ROWS, spread=1.5)
    reference.to_parquet(tmp_path / "ref.parquet", index=False)
    window = _data(rng, WINDOW, spread=0.5)
    config = {"models": [model_config(
        "clf", tmp_path / "logs" / "*.jsonl", tmp_path / "ref.parquet",
        [{"name": "x", "type": "numerical"}],
        prediction={"column": "p", "type": "numerical"},
        label={"column": "y", "task": "classification", "threshold": THRESHOLD},
        window={"rows": WINDOW}, drift={"min_rows": 100})]}
    return {"reference": reference, "window": window, "config": config, "dir": tmp_path}


class TestEstimateThroughTheExporter:
    """A real `drift-exporter run` on synthetic data whose truth the test knows."""

    def test_the_estimate_follows_a_covariate_shift_within_3_sampling_errors(
            self, scenario: dict[str, Any], exporter: Any) -> None:
        window: pd.DataFrame = scenario["window"]
        logs = scenario["dir"] / "logs"
        logs.mkdir()
        running = exporter(scenario["config"])
        records = [{"x": float(r.x), "p": float(r.p), "y": None if i % 3 == 0 else int(r.y)}
                   for i, r in enumerate(window.itertuples())]
        append_lines(logs / "a.jsonl", [jsonl_line(r) for r in records])
        samples = running.wait_for_window("clf", WINDOW, WINDOW)

        y, p = window["y"].to_numpy(), window["p"].to_numpy()
        realized = {"accuracy": metrics.accuracy_score(y, p >= THRESHOLD),
                    "f1": metrics.f1_score(y, p >= THRESHOLD, average="macro"),
                    "roc_auc": metrics.roc_auc_score(y, p)}
        for name in ESTIMATED:
            estimate = value(samples, f"drift_model_estimated_{name}", model="clf")
            error = value(samples, f"drift_model_estimated_{name}_sampling_error", model="clf")
            reference = value(samples, f"drift_reference_model_estimated_{name}", model="clf")
            assert estimate is not None
            assert error is not None
            assert reference is not None
            assert abs(estimate - realized[name]) <= 3 * error, (name, estimate, realized[name])
            # the shift is a real drop, and the estimate shows it beyond its band
            assert reference - estimate > 3 * error, (name, reference, estimate)
        labelled = window.iloc[[i for i in range(WINDOW) if i % 3]]
        assert value(samples, "drift_model_accuracy", model="clf") == pytest.approx(
            metrics.accuracy_score(labelled["y"], labelled["p"] >= THRESHOLD))

    def test_the_served_estimate_equals_an_independent_sklearn_computation(
            self, scenario: dict[str, Any], exporter: Any) -> None:
        reference: pd.DataFrame = scenario["reference"]
        window: pd.DataFrame = scenario["window"]
        logs = scenario["dir"] / "logs"
        logs.mkdir()
        running = exporter(scenario["config"])
        # no label in the log at all: the estimate needs none
        append_lines(logs / "a.jsonl", [jsonl_line({"x": float(r.x), "p": float(r.p)})
                                        for r in window.itertuples()])
        samples = running.wait_for_window("clf", WINDOW, WINDOW)

        assert value(samples, "drift_model_estimation_calibrated", model="clf") == 1.0
        isotonic = IsotonicRegression(out_of_bounds="clip").fit(reference["p"], reference["y"])
        scores = window["p"].to_numpy()
        expected = _expected_metrics(isotonic.predict(scores), scores)
        ref_scores = reference["p"].to_numpy()
        expected_reference = _expected_metrics(isotonic.predict(ref_scores), ref_scores)
        for name in ESTIMATED:
            served = value(samples, f"drift_model_estimated_{name}", model="clf")
            # the ROC AUC estimate leaves out self-pairs: O(1/n) from the swept curve's area
            tolerance = 1e-3 if name == "roc_auc" else 1e-9
            assert served == pytest.approx(expected[name], abs=tolerance), name
            assert value(samples, f"drift_reference_model_estimated_{name}",
                         model="clf") == pytest.approx(expected_reference[name], abs=tolerance)
        outside = np.mean((scores < ref_scores.min()) | (scores > ref_scores.max()))
        assert value(samples, "drift_model_estimated_outside_reference_ratio",
                     model="clf") == pytest.approx(outside)
        assert value(samples, "drift_model_labeled_ratio", model="clf") == 0.0
        assert value(samples, "drift_model_accuracy", model="clf") is None
        logged = [line for line in running.stderr().splitlines()
                  if "performance estimation" in line]
        assert len(logged) == 1, logged  # run says once that it applies, and how
        assert "cbpe (isotonic calibration, 5000 labelled reference rows)" in logged[0]


class TestCheckSaysWhy:
    """`drift-exporter check` names whether the estimate applies, and why not."""

    def test_check_names_the_reason_for_a_regression_model_and_warns_on_an_explicit_cbpe(
            self, scenario: dict[str, Any]) -> None:
        config = scenario["config"]
        config["models"][0]["label"] = {"column": "y", "task": "regression"}
        explicit = {**config["models"][0], "name": "explicit",
                    "label": {"column": "y", "task": "regression", "estimate": "cbpe"}}
        config["models"].append(explicit)
        (scenario["dir"] / "logs").mkdir()
        path = write_config(scenario["dir"], config)
        result = run_cli("check", f"--config.file={path}")
        assert result.returncode == 0, result.stderr
        assert ("model clf: performance estimation: not applicable: label.task is not "
                "classification") in result.stdout
        assert ("warning: models[1].label.estimate: cbpe cannot apply: "
                "label.task is not classification") in result.stderr
