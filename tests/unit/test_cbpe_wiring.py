"""The label-free performance estimate (SPEC 6.10) through config, reference, snapshot,
collector and check: where it applies, what it publishes, and why it is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_models import NOW, batch
from prometheus_client import CollectorRegistry

from exporter.checking import estimate_status
from exporter.collector import DriftCollector
from exporter.config import ModelConfig, parse_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.stats import cbpe

REF_N = 2000
ESTIMATED = ("drift_model_estimated_accuracy", "drift_model_estimated_f1",
             "drift_model_estimated_roc_auc")


def _reference(tmp_path: Path, *, label: bool = True) -> None:
    """Scores calibrated by construction: y ~ Bernoulli(score)."""
    rng = np.random.default_rng(1)
    score = rng.random(REF_N)
    frame = pd.DataFrame({"x": rng.normal(size=REF_N), "score": score,
                          "cls": np.where(score >= 0.5, "yes", "no")})
    if label:
        frame["y"] = np.where(rng.random(REF_N) < score, "1", "0")
    frame.to_parquet(tmp_path / "ref.parquet", index=False)


def _model(tmp_path: Path, *, label: dict[str, object] | None = None, reference_label: bool = True,
           **extra: object) -> ModelConfig:
    _reference(tmp_path, label=reference_label)
    entry: dict[str, object] = {
        "name": "m", "logs": {"path": str(tmp_path / "logs" / "*.jsonl")},
        "reference": {"path": str(tmp_path / "ref.parquet")},
        "features": [{"name": "x", "type": "numerical"}],
        "prediction": {"column": "score", "type": "numerical"},
        "label": {"column": "y", "task": "classification"} if label is None else label,
        "window": {"rows": 1000}, "drift": {"min_rows": 50}}
    entry.update(extra)
    return parse_config({"models": [entry]}, base_dir=tmp_path).models[0]


def _records(n: int, seed: int = 2, **fields: object) -> list[dict[str, object]]:
    """Unlabelled window records with uniform scores."""
    rng = np.random.default_rng(seed)
    return [{"x": float(rng.normal()), "score": float(s), **fields} for s in rng.random(n)]


def _registry(core: ModelPipeline) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(DriftCollector(lambda: [core.state()]))
    return registry


class TestReferenceSide:
    """Prepared once at reference load, or the reason why not."""

    def test_a_classifier_with_a_score_and_a_labelled_reference_gets_the_reference_side(
            self, tmp_path: Path) -> None:
        profile = load_reference(_model(tmp_path))
        assert profile.cbpe is not None
        assert profile.cbpe.rows == REF_N
        assert profile.cbpe.threshold == 0.5

    @pytest.mark.parametrize(("label", "extra", "reference_label", "reason"), [
        ({"column": "y", "task": "regression"}, {}, True, "label.task is not classification"),
        ({"column": "y", "task": "classification"},
         {"prediction": {"column": "cls", "type": "categorical"}}, True,
         "the prediction is not a numerical score"),
        ({"column": "y", "task": "classification"}, {}, False,
         "the reference has no label column"),
        ({"column": "y", "task": "classification", "estimate": "none"}, {}, True,
         "label.estimate is none"),
    ], ids=["regression", "categorical-prediction", "unlabelled-reference", "estimate-none"])
    def test_where_it_cannot_apply_the_profile_keeps_the_reason(
            self, tmp_path: Path, label: dict[str, object], extra: dict[str, object],
            reference_label: bool, reason: str) -> None:
        profile = load_reference(_model(tmp_path, label=label, reference_label=reference_label,
                                        **extra))
        assert profile.cbpe is None
        assert profile.cbpe_reason == reason


class TestConfig:
    """label.estimate: cbpe (the default) or none."""

    def test_the_default_is_cbpe_and_not_marked_as_given(self, tmp_path: Path) -> None:
        label = _model(tmp_path).label
        assert label is not None
        assert (label.estimate, label.estimate_given) == ("cbpe", False)

    def test_an_unknown_estimate_is_a_config_error(self, tmp_path: Path) -> None:
        from exporter.errors import ConfigError
        with pytest.raises(ConfigError, match=r"label\.estimate: expected"):
            _model(tmp_path, label={"column": "y", "task": "classification",
                                    "estimate": "nannyml"})


class TestCheckStatus:
    """check and run say whether the estimate applies and why not; a warning only when
    `estimate: cbpe` was set explicitly."""

    def test_the_default_on_a_regression_model_is_an_info_naming_the_reason(
            self, tmp_path: Path) -> None:
        model = _model(tmp_path, label={"column": "y", "task": "regression"})
        status = estimate_status(model, load_reference(model))
        assert status is not None
        assert not status.warning
        assert status.message == ("performance estimation: not applicable: label.task is not "
                                  "classification")

    def test_an_explicit_cbpe_that_cannot_apply_is_a_warning(self, tmp_path: Path) -> None:
        model = _model(tmp_path, label={"column": "y", "task": "classification",
                                        "estimate": "cbpe"}, reference_label=False)
        status = estimate_status(model, load_reference(model))
        assert status is not None
        assert status.warning
        assert "the reference has no label column" in status.message

    def test_a_model_without_a_label_says_nothing(self, tmp_path: Path) -> None:
        model = _model(tmp_path, label={"column": "y", "task": "classification"})
        unlabelled = parse_config({"models": [{
            "name": "m", "logs": {"path": str(tmp_path / "*.jsonl")},
            "reference": {"path": str(tmp_path / "ref.parquet")},
            "features": [{"name": "x", "type": "numerical"}]}]}, base_dir=tmp_path).models[0]
        assert estimate_status(unlabelled, load_reference(model)) is None


class TestSnapshotAndCollector:
    """The estimate over every window record, rendered with its sampling errors."""

    def test_the_snapshot_estimates_over_every_record_without_any_label(
            self, tmp_path: Path) -> None:
        core = ModelPipeline(model := _model(tmp_path), load_reference(model))
        records = _records(400)
        core.add(batch(core, records), NOW)
        snap = core.recompute(NOW)[0]
        assert snap.quality is not None
        assert snap.quality.labeled == 0
        assert snap.estimate is not None
        assert snap.estimate.rows == 400
        reference = core.profile.cbpe
        assert reference is not None
        scores = np.array([r["score"] for r in records], dtype=float)
        expected = cbpe.estimate_window(reference, scores)
        assert snap.estimate == expected

    def test_the_collector_renders_estimates_errors_and_reference_twins(
            self, tmp_path: Path) -> None:
        core = ModelPipeline(model := _model(tmp_path), load_reference(model))
        core.add(batch(core, _records(400)), NOW)
        snap = core.recompute(NOW)[0]
        assert snap.estimate is not None
        get = _registry(core).get_sample_value
        labels = {"model": "m"}
        metrics, errors = snap.estimate.estimate.metrics, snap.estimate.sampling_errors
        assert get("drift_model_estimated_accuracy", labels) == metrics.accuracy
        assert get("drift_model_estimated_f1", labels) == metrics.f1
        assert get("drift_model_estimated_roc_auc", labels) == metrics.roc_auc
        assert get("drift_model_estimated_accuracy_sampling_error", labels) == errors.accuracy
        assert get("drift_model_estimated_f1_sampling_error", labels) == errors.f1
        assert get("drift_model_estimated_roc_auc_sampling_error", labels) == errors.roc_auc
        assert get("drift_model_estimated_outside_reference_ratio",
                   labels) == snap.estimate.outside_share
        reference = core.profile.cbpe
        assert reference is not None
        assert get("drift_reference_model_estimated_accuracy",
                   labels) == reference.estimated.accuracy
        assert get("drift_model_estimation_calibrated", labels) in (0.0, 1.0)

    def test_the_estimate_is_absent_below_min_rows_but_the_reference_twins_stay(
            self, tmp_path: Path) -> None:
        core = ModelPipeline(model := _model(tmp_path), load_reference(model))
        core.add(batch(core, _records(49)), NOW)
        snap = core.recompute(NOW)[0]
        assert snap.estimate is None
        get = _registry(core).get_sample_value
        for name in ESTIMATED:
            assert get(name, {"model": "m"}) is None
            assert get(f"{name}_sampling_error", {"model": "m"}) is None
        assert get("drift_model_estimated_outside_reference_ratio", {"model": "m"}) is None
        assert get("drift_reference_model_estimated_accuracy", {"model": "m"}) is not None

    def test_non_finite_scores_do_not_count_towards_min_rows(self, tmp_path: Path) -> None:
        core = ModelPipeline(model := _model(tmp_path), load_reference(model))
        core.add(batch(core, _records(49) + [{"x": 0.0, "score": None}] * 10), NOW)
        assert core.recompute(NOW)[0].estimate is None

    @pytest.mark.parametrize("label", [{"column": "y", "task": "regression"},
                                       {"column": "y", "task": "classification",
                                        "estimate": "none"}], ids=["regression", "none"])
    def test_no_estimate_family_exists_where_it_does_not_apply(
            self, tmp_path: Path, label: dict[str, object]) -> None:
        core = ModelPipeline(model := _model(tmp_path, label=label), load_reference(model))
        core.add(batch(core, [{**r, "y": 0.5} for r in _records(400)]), NOW)
        assert core.recompute(NOW)[0].estimate is None
        names = {m.name for m in _registry(core).collect()}
        assert not {n for n in names if "estimat" in n}, names

    def test_each_model_version_gets_its_own_estimate(self, tmp_path: Path) -> None:
        core = ModelPipeline(model := _model(tmp_path, version_column="v"),
                             load_reference(model))
        low = [{**r, "score": float(r["score"]) * 0.5} for r in _records(300, v="v1")]
        core.add(batch(core, low + _records(300, seed=3, v="v2")), NOW)
        snaps = {s.version: s for s in core.recompute(NOW)}
        get = _registry(core).get_sample_value
        for version in ("v1", "v2"):
            estimate = snaps[version].estimate
            assert estimate is not None
            assert get("drift_model_estimated_accuracy",
                       {"model": "m", "model_version": version}) == (
                estimate.estimate.metrics.accuracy)
        assert snaps["v1"].estimate != snaps["v2"].estimate
