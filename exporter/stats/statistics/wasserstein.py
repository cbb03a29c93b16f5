"""Wasserstein distance on numerical columns, divided by max(reference stddev, 0.001)."""

from __future__ import annotations

from exporter.stats.calibration import wasserstein_threshold
from exporter.stats.statistic import ColumnInputs, Gauge, ReferenceInputs, Statistic


def _normed(inputs: ColumnInputs) -> float:
    assert inputs.wasserstein_normed is not None
    return inputs.wasserstein_normed


def _calibrate(reference: ReferenceInputs, window_n: int, seed: int) -> float:
    assert reference.sample is not None
    return wasserstein_threshold(reference.sample, window_n, reference.norm, seed)


STATISTIC = Statistic(
    name="wasserstein",
    kinds=frozenset({"numerical"}),
    p_value=False,
    compute=_normed,
    auto=_calibrate,
    gauges=(Gauge("drift_feature_wasserstein_normed", "drift_prediction_wasserstein_normed",
                  "Wasserstein distance divided by max(reference stddev, 0.001)."),),
)
