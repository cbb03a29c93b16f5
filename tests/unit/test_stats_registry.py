"""The statistics registry: each statistic is declared once, and the config, thresholds,
snapshot and collector follow the declarations (a toy statistic module proves it)."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from exporter.collector import DriftCollector
from exporter.config import ModelConfig, parse_config, statistics_for
from exporter.errors import ConfigError
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.stats import registry
from exporter.stats.statistic import KINDS, Gauge, Statistic, ThresholdRange, the_score
from exporter.stats.statistics import MODULES
from exporter.thresholds import Thresholds, calibration_size, crosses, is_p_value
from exporter.window import Records

TOY_MODULE = '''
"""A toy statistic: how far the window's mean moved, in reference standard deviations."""

from __future__ import annotations

import math

import numpy as np

from exporter.stats.statistic import (
    ColumnInputs, Gauge, ReferenceInputs, Statistic, ThresholdRange)


def _shift(inputs: ColumnInputs) -> float:
    assert inputs.window_sorted is not None and inputs.reference.sample is not None
    moved = np.mean(inputs.window_sorted) - np.mean(inputs.reference.sample.values)
    return float(abs(moved)) / inputs.reference.norm


def _calibrate(reference: ReferenceInputs, window_n: int, seed: int) -> float:
    return 4.0 / math.sqrt(window_n)  # four standard errors of the mean


STATISTIC = Statistic(
    name="mean_shift",
    kinds=frozenset({"numerical"}),
    p_value=False,
    compute=_shift,
    auto=_calibrate,
    gauges=(Gauge("drift_feature_mean_shift", "drift_prediction_mean_shift",
                  "Shift of the window mean, in reference stddevs."),),
    threshold_range=ThresholdRange(10.0, inclusive=True, why="10 stddevs is no drift threshold"),
)
'''

RNG = np.random.default_rng(7)
REF_N, WIN_N = 2000, 600


def _model_entry(tmp: Path, **feature: Any) -> dict[str, Any]:
    return {"name": "m", "logs": {"path": str(tmp / "*.jsonl")},
            "reference": {"path": str(tmp / "ref.parquet")},
            "features": [{"name": "x", "type": "numerical", **feature},
                         {"name": "c", "type": "categorical"}],
            "prediction": {"column": "p", "type": "numerical"},
            "window": {"rows": WIN_N}, "drift": {"min_rows": 50}}


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A directory with a reference of a numerical feature x, a categorical c and p."""
    pd.DataFrame({"x": RNG.normal(size=REF_N), "p": RNG.random(REF_N),
                  "c": RNG.choice(["a", "b", "c"], size=REF_N)}).to_parquet(
        tmp_path / "ref.parquet", index=False)
    return tmp_path


def _parse(base: Path, **feature: Any) -> ModelConfig:
    return parse_config({"models": [_model_entry(base, **feature)]}, base_dir=base).models[0]


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[Statistic]:
    """The toy statistic's module, written to a file of its own and registered while a test
    runs (what ``MODULES`` does for the real ones)."""
    path = tmp_path / "toy_mean_shift.py"
    path.write_text(TOY_MODULE)
    spec = importlib.util.spec_from_file_location("toy_mean_shift", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    statistic = registry.register(module.STATISTIC)
    try:
        yield statistic
    finally:
        del registry._BY_NAME[statistic.name]


class TestDeclarations:
    """Every registered statistic is declared completely and consistently."""

    def test_every_module_is_registered_once_in_module_order(self) -> None:
        assert len(set(MODULES)) == len(MODULES)
        assert tuple(registry.REGISTRY) == MODULES

    def test_every_statistic_has_valid_kinds_and_a_gauge_showing_its_score(self) -> None:
        for statistic in registry.REGISTRY.values():
            assert statistic.kinds
            assert statistic.kinds <= set(KINDS)
            assert any(g.value is the_score for g in statistic.gauges), statistic.name

    def test_gauge_names_are_unique_and_follow_the_feature_and_prediction_pattern(self) -> None:
        gauges = registry.gauges()
        assert len({g.suffix for g in gauges}) == len(gauges)
        for gauge in gauges:
            assert gauge.feature_metric == f"drift_feature_{gauge.suffix}"
            assert gauge.prediction_metric in (None, f"drift_prediction_{gauge.suffix}")

    def test_p_values_use_a_fixed_level_and_distances_a_calibration(self) -> None:
        for statistic in registry.REGISTRY.values():
            if statistic.p_value:
                assert not callable(statistic.auto)
                assert 0 < float(statistic.auto) < 1
                assert statistic.threshold_range == ThresholdRange(
                    1.0, False, f"{statistic.name} is a p-value")
            else:
                assert callable(statistic.auto), statistic.name

    def test_a_duplicate_name_or_an_unknown_kind_is_refused(self) -> None:
        ks = registry.get("ks")
        with pytest.raises(ValueError, match="already registered"):
            registry.register(ks, into=dict(registry.REGISTRY))
        odd = Statistic("odd", frozenset({"text"}), False, ks.compute, 0.5,
                        (Gauge("drift_feature_odd", None, "odd"),))
        with pytest.raises(ValueError, match="kinds must be"):
            registry.register(odd, into={})

    def test_an_unknown_name_lists_the_registered_ones(self) -> None:
        with pytest.raises(KeyError, match="registered: ks, psi"):
            registry.get("kl")


class TestConfigFollowsTheRegistry:
    """The config accepts exactly the registered statistics of each kind."""

    def test_each_kind_accepts_exactly_its_registered_statistics(self, base: Path) -> None:
        for kind in KINDS:
            for statistic in registry.REGISTRY.values():
                entry = _model_entry(base)
                entry["features"] = [{"name": "c" if kind == "categorical" else "x",
                                      "type": kind, "statistic": statistic.name}]
                if kind in statistic.kinds:
                    model = parse_config({"models": [entry]}, base_dir=base).models[0]
                    assert model.features[0].statistic.statistic == statistic.name
                else:
                    with pytest.raises(ConfigError, match="statistic: expected"):
                        parse_config({"models": [entry]}, base_dir=base)
            assert set(statistics_for(kind)) == {
                s.name for s in registry.REGISTRY.values() if kind in s.kinds}

    def test_a_threshold_outside_the_declared_range_is_refused(self, base: Path) -> None:
        for statistic in registry.for_kind("numerical"):
            upper = statistic.threshold_range.upper
            if upper is None:
                continue
            with pytest.raises(ConfigError, match=statistic.threshold_range.why):
                _parse(base, statistic=statistic.name, threshold=upper + 0.5)


class TestAToyStatisticNeedsNoOtherEdit:
    """A statistic module registered on its own reaches every stage."""

    def test_without_its_module_the_config_refuses_it(self, base: Path) -> None:
        with pytest.raises(ConfigError, match="mean_shift"):
            _parse(base, statistic="mean_shift")

    def test_the_config_accepts_it_for_its_kind_only_and_checks_its_range(
            self, base: Path, toy: Statistic) -> None:
        assert _parse(base, statistic="mean_shift").features[0].statistic.statistic == (
            "mean_shift")
        assert "mean_shift" in statistics_for("numerical")
        assert "mean_shift" not in statistics_for("categorical")
        entry = _model_entry(base)
        entry["features"][1]["statistic"] = "mean_shift"
        with pytest.raises(ConfigError, match="categorical"):
            parse_config({"models": [entry]}, base_dir=base)
        with pytest.raises(ConfigError, match="10 stddevs is no drift threshold"):
            _parse(base, statistic="mean_shift", threshold=11)

    def test_thresholds_calibrate_it_and_read_its_direction(
            self, base: Path, toy: Statistic) -> None:
        model = _parse(base, statistic="mean_shift")
        profile = load_reference(model)
        thresholds = Thresholds("m", profile.rows)
        got = thresholds.threshold(profile.columns["x"], model.features[0].statistic, 500)
        assert got == pytest.approx(4.0 / math.sqrt(calibration_size(500)))
        assert thresholds.calibrations == 1
        assert not is_p_value("mean_shift")
        assert crosses("mean_shift", got, got)

    def test_the_snapshot_scores_it_and_the_collector_exposes_it(
            self, base: Path, toy: Statistic) -> None:
        model = _parse(base, statistic="mean_shift")
        pipeline = ModelPipeline(model, load_reference(model))
        x = RNG.normal(0.5, 1.0, size=WIN_N)
        p = RNG.random(WIN_N)
        codes = {"c": pipeline.profile.columns["c"].encode(  # type: ignore[union-attr]
            RNG.choice(["a", "b"], size=WIN_N).astype(object))}
        pipeline.window.append(Records(WIN_N, {"x": x, "p": p}, codes, np.zeros(WIN_N)))
        snap = pipeline.recompute(0.0)[0]
        column = snap.features[0]
        reference = pd.read_parquet(base / "ref.parquet")["x"].to_numpy()
        expected = abs(x.mean() - reference.mean()) / reference.std(ddof=1)
        assert column.scores["mean_shift"] == pytest.approx(expected, rel=1e-9)
        assert column.score == column.scores["mean_shift"]
        assert column.detected  # a shift of half a stddev in 600 values
        assert "mean_shift" not in snap.features[1].scores  # categorical: not its kind
        collector = CollectorRegistry()
        collector.register(DriftCollector(lambda: [pipeline.state()]))
        assert collector.get_sample_value("drift_feature_mean_shift", {
            "model": "m", "feature": "x"}) == column.scores["mean_shift"]
        assert snap.prediction is not None
        assert collector.get_sample_value("drift_prediction_mean_shift", {"model": "m"}) == (
            snap.prediction.scores["mean_shift"])
