"""Ground truth through the real exporter process (SPEC 6.4, 6.7): quality gauges equal
scikit-learn on the window's labelled records; labels arriving later in feedback files (out of
order, duplicated, for unknown ids, even before their prediction) are joined by id; each model
version gets its own window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness import append_lines, jsonl_line, model_config, value, wait_until, with_labels
from sklearn import metrics

WINDOW = 300


def _reference(tmp_path: Path, rng: np.random.Generator, n: int = 2000) -> Path:
    x = rng.normal(size=n)
    score = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < score).astype(int)
    frame = pd.DataFrame({"x": x, "p": score, "y": y, "target": 3 * x + rng.normal(size=n),
                          "yhat": 3 * x, "klass": np.where(x > 0.5, "b", np.where(x < -0.5,
                                                                                   "a", "c"))})
    frame["pred_class"] = np.where(x + rng.normal(0, 0.5, n) > 0.5, "b", "a")
    path = tmp_path / "ref.parquet"
    frame.to_parquet(path, index=False)
    return path


def _classification_records(rng: np.random.Generator, n: int, start: int = 0,
                            shift: float = 0.0) -> list[dict[str, Any]]:
    x = rng.normal(shift, 1, n)
    score = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < score).astype(int)
    return [{"id": f"r{start + i}", "x": float(x[i]), "p": float(score[i]), "y": int(y[i])}
            for i in range(n)]


def _wait_rows(exporter: Any, model: str, ingested: int) -> dict[Any, float]:
    def done() -> dict[Any, float] | None:
        samples = exporter.scrape()
        count = exporter.update_count(samples, model)
        ok = value(samples, "drift_rows_ingested_total", model=model) == ingested
        return samples if ok and count > 0 else None

    wait_until(done, 20, what=f"{ingested} records in {model}")
    return exporter.wait_for_window(model, ingested, min(ingested, WINDOW))


class TestInlineLabels:
    """The label column in the prediction log itself (null until known)."""

    def test_binary_classification_quality_equals_sklearn(self, tmp_path: Path,
                                                          exporter: Any) -> None:
        rng = np.random.default_rng(1)
        ref = _reference(tmp_path, rng)
        (tmp_path / "logs").mkdir()
        records = _classification_records(rng, 420)
        for i, r in enumerate(records):
            if i % 3 == 0:
                r["y"] = None  # not labelled yet
        config = {"models": [model_config(
            "clf", tmp_path / "logs" / "*.jsonl", ref, [{"name": "x", "type": "numerical"}],
            prediction={"column": "p", "type": "numerical"},
            label={"column": "y", "task": "classification", "threshold": 0.5},
            id_column="id", drift={"min_rows": 20})]}
        running = exporter(config)
        append_lines(tmp_path / "logs" / "a.jsonl", [jsonl_line(r) for r in records])
        samples = _wait_rows(running, "clf", 420)
        window = pd.DataFrame(records[-WINDOW:])
        labelled = window.dropna(subset=["y"])
        y, p = labelled["y"].astype(int), labelled["p"]
        accuracy = metrics.accuracy_score(y, p >= 0.5)
        assert value(samples, "drift_model_accuracy", model="clf") == pytest.approx(accuracy)
        assert value(samples, "drift_model_f1", model="clf") == pytest.approx(
            metrics.f1_score(y, p >= 0.5, average="macro"))
        assert value(samples, "drift_model_roc_auc", model="clf") == pytest.approx(
            metrics.roc_auc_score(y, p))
        assert value(samples, "drift_model_labeled_ratio", model="clf") == pytest.approx(
            len(labelled) / WINDOW)
        reference = pd.read_parquet(ref)
        ref_accuracy = metrics.accuracy_score(reference["y"], reference["p"] >= 0.5)
        assert value(samples, "drift_reference_model_accuracy", model="clf") == pytest.approx(
            ref_accuracy)
        assert value(samples, "drift_reference_model_roc_auc", model="clf") == pytest.approx(
            metrics.roc_auc_score(reference["y"], reference["p"]))
        expected_change = ((1 - accuracy) - (1 - ref_accuracy)) / (1 - ref_accuracy)
        assert value(samples, "drift_model_error_change_ratio", model="clf") == pytest.approx(
            expected_change)
        assert value(samples, "drift_model_mae", model="clf") is None

    def test_regression_quality_equals_sklearn(self, tmp_path: Path, exporter: Any) -> None:
        rng = np.random.default_rng(2)
        ref = _reference(tmp_path, rng)
        (tmp_path / "logs").mkdir()
        x = rng.normal(size=350)
        records = [{"x": float(v), "yhat": float(3 * v),
                    "target": None if i % 4 == 0 else float(3 * v + rng.normal(0, 1.5))}
                   for i, v in enumerate(x)]
        config = {"models": [model_config(
            "reg", tmp_path / "logs" / "*.jsonl", ref, [{"name": "x", "type": "numerical"}],
            prediction={"column": "yhat", "type": "numerical"},
            label={"column": "target", "task": "regression"}, drift={"min_rows": 20})]}
        running = exporter(config)
        append_lines(tmp_path / "logs" / "a.jsonl", [jsonl_line(r) for r in records])
        samples = _wait_rows(running, "reg", 350)
        window = pd.DataFrame(records[-WINDOW:]).dropna(subset=["target"])
        mae = metrics.mean_absolute_error(window["target"], window["yhat"])
        rmse = float(np.sqrt(metrics.mean_squared_error(window["target"], window["yhat"])))
        assert value(samples, "drift_model_mae", model="reg") == pytest.approx(mae)
        assert value(samples, "drift_model_rmse", model="reg") == pytest.approx(rmse)
        reference = pd.read_parquet(ref)
        ref_rmse = float(np.sqrt(metrics.mean_squared_error(reference["target"],
                                                            reference["yhat"])))
        assert value(samples, "drift_reference_model_rmse", model="reg") == pytest.approx(
            ref_rmse)
        assert value(samples, "drift_model_error_change_ratio", model="reg") == pytest.approx(
            (rmse - ref_rmse) / ref_rmse)
        assert value(samples, "drift_model_accuracy", model="reg") is None

    def test_multiclass_categorical_prediction_quality_equals_sklearn(
            self, tmp_path: Path, exporter: Any) -> None:
        rng = np.random.default_rng(3)
        ref = _reference(tmp_path, rng)
        (tmp_path / "logs").mkdir()
        truth = rng.choice(["a", "b", "c"], 330)
        guess = np.where(rng.random(330) < 0.7, truth, rng.choice(["a", "b", "c", "d"], 330))
        records = [{"x": float(rng.normal()), "pred_class": str(g), "klass": str(t)}
                   for t, g in zip(truth, guess, strict=True)]
        config = {"models": [model_config(
            "multi", tmp_path / "logs" / "*.jsonl", ref, [{"name": "x", "type": "numerical"}],
            prediction={"column": "pred_class", "type": "categorical"},
            label={"column": "klass", "task": "classification"}, drift={"min_rows": 20})]}
        running = exporter(config)
        append_lines(tmp_path / "logs" / "a.jsonl", [jsonl_line(r) for r in records])
        samples = _wait_rows(running, "multi", 330)
        window = pd.DataFrame(records[-WINDOW:])
        assert value(samples, "drift_model_accuracy", model="multi") == pytest.approx(
            metrics.accuracy_score(window["klass"], window["pred_class"]))
        assert value(samples, "drift_model_f1", model="multi") == pytest.approx(
            metrics.f1_score(window["klass"], window["pred_class"], average="macro"))
        assert value(samples, "drift_model_roc_auc", model="multi") is None


class TestDelayedFeedback:
    """Labels in separate feedback files, joined to window records by id."""

    def test_late_out_of_order_duplicated_and_early_labels_are_joined_by_id(
            self, tmp_path: Path, exporter: Any) -> None:
        rng = np.random.default_rng(4)
        ref = _reference(tmp_path, rng)
        (tmp_path / "logs").mkdir()
        (tmp_path / "feedback").mkdir()
        records = _classification_records(rng, 250)
        truth = {r["id"]: r.pop("y") for r in records}
        config = {"models": [model_config(
            "fb", tmp_path / "logs" / "*.jsonl", ref, [{"name": "x", "type": "numerical"}],
            prediction={"column": "p", "type": "numerical"},
            label={"column": "y", "task": "classification",
                   "feedback": {"path": str(tmp_path / "feedback" / "*.jsonl")}},
            id_column="id", drift={"min_rows": 20})]}
        running = exporter(config)
        append_lines(tmp_path / "logs" / "a.jsonl", [jsonl_line(r) for r in records])
        samples = _wait_rows(running, "fb", 250)
        assert value(samples, "drift_model_labeled_ratio", model="fb") == 0.0
        assert value(samples, "drift_model_accuracy", model="fb") is None
        # Labels for every other record, in shuffled order; some sent twice (the second wins:
        # first a wrong label, then the right one); plus labels for ids nobody predicted.
        ids = [r["id"] for r in records][::2]
        order = rng.permutation(len(ids))
        feedback = [{"id": ids[i], "y": truth[ids[i]]} for i in order]
        duplicates = [ids[i] for i in order[:15]]
        wrong_then_right = [{"id": d, "y": 1 - truth[d]} for d in duplicates] + [
            {"id": d, "y": truth[d]} for d in duplicates]
        unknown = [{"id": f"ghost{i}", "y": 1} for i in range(320)]
        append_lines(tmp_path / "feedback" / "f1.jsonl",
                     [jsonl_line(r) for r in feedback[:60] + unknown])
        append_lines(tmp_path / "feedback" / "f2.jsonl",
                     [jsonl_line(r) for r in feedback[60:] + wrong_then_right])
        # Labels that arrive before their predictions.
        early = _classification_records(rng, 20, start=10_000)
        append_lines(tmp_path / "feedback" / "f3.jsonl",
                     [jsonl_line({"id": r["id"], "y": r["y"]}) for r in early])

        def labelled() -> dict[Any, float] | None:
            samples = running.scrape()
            ratio = value(samples, "drift_model_labeled_ratio", model="fb")
            return samples if ratio is not None and ratio >= len(ids) / 250 else None

        wait_until(labelled, 20, what="feedback joined")
        for r in early:
            truth[r["id"]] = r.pop("y")
        append_lines(tmp_path / "logs" / "a.jsonl", [jsonl_line(r) for r in early])
        samples = running.wait_for_window("fb", 270, 270)
        window = pd.DataFrame(records + early)
        labelled_ids = set(ids) | {r["id"] for r in early}
        window["y"] = [truth[i] if i in labelled_ids else None for i in window["id"]]
        window = window.dropna(subset=["y"])
        y, p = window["y"].astype(int), window["p"]
        assert value(samples, "drift_model_labeled_ratio", model="fb") == pytest.approx(
            len(window) / 270)
        assert value(samples, "drift_model_accuracy", model="fb") == pytest.approx(
            metrics.accuracy_score(y, p >= 0.5))
        assert value(samples, "drift_model_roc_auc", model="fb") == pytest.approx(
            metrics.roc_auc_score(y, p))
        unmatched = value(samples, "drift_feedback_unmatched_total", model="fb")
        assert unmatched is not None
        assert unmatched >= 320 + 20 - WINDOW  # the pending buffer holds at most WINDOW labels


class TestModelVersions:
    """version_column: one window per version, at most max_versions kept."""

    def test_a_rollout_keeps_versions_apart_and_retires_the_oldest(self, tmp_path: Path,
                                                                  exporter: Any) -> None:
        rng = np.random.default_rng(5)
        ref = _reference(tmp_path, rng)
        (tmp_path / "logs").mkdir()
        log = tmp_path / "logs" / "a.jsonl"
        v1 = [{"x": float(v), "model_version": "v1"} for v in rng.normal(0, 1, 200)]
        v2 = [{"x": float(v), "model_version": "v2"} for v in rng.normal(2, 1, 150)]
        mixed = v1 + v2
        config = {"models": [model_config(
            "ver", tmp_path / "logs" / "*.jsonl", ref, [{"name": "x", "type": "numerical"}],
            version_column="model_version", max_versions=2, drift={"min_rows": 20})]}
        running = exporter(config)
        append_lines(log, [jsonl_line(r) for r in mixed])

        def rows(samples: dict[Any, float], version: str) -> float | None:
            return value(samples, "drift_window_rows", model="ver", model_version=version)

        def both() -> dict[Any, float] | None:
            s = running.scrape()
            return s if rows(s, "v1") == 200 and rows(s, "v2") == 150 else None

        samples = wait_until(both, 20, what="two versions")
        for version, data in (("v1", v1), ("v2", v2)):
            mean = value(samples, "drift_feature_mean", model="ver", model_version=version,
                         feature="x")
            assert mean == pytest.approx(np.mean([r["x"] for r in data]))
            assert value(samples, "drift_reference_rows", model="ver",
                         model_version=version) == 2000
        assert value(samples, "drift_feature_drift_detected", model="ver", model_version="v2",
                     feature="x") == 1.0
        assert value(samples, "drift_feature_drift_detected", model="ver", model_version="v1",
                     feature="x") == 0.0
        # A third version retires v1; later v1 records are counted as rejected and dropped.
        append_lines(log, [jsonl_line({"x": 0.0, "model_version": "v3"})] * 30
                     + [jsonl_line({"x": 0.0, "model_version": "v1"})] * 7)

        def retired() -> dict[Any, float] | None:
            s = running.scrape()
            done = rows(s, "v3") == 30 and rows(s, "v1") is None
            return s if done else None

        samples = wait_until(retired, 20, what="v1 retired")
        assert value(samples, "drift_rows_rejected_total", model="ver",
                     reason="old_version") == 7
        assert value(samples, "drift_rows_ingested_total", model="ver") == 350 + 30
        assert not with_labels(samples, "drift_feature_mean", model_version="v1")
