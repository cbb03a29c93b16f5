"""Jensen-Shannon distance (base 2) over the reference bins (numerical) or categories."""

from __future__ import annotations

from exporter.stats.calibration import binned_threshold
from exporter.stats.divergence import JENSEN_SHANNON, jensen_shannon
from exporter.stats.statistic import (
    ColumnInputs,
    Gauge,
    ReferenceInputs,
    Statistic,
    ThresholdRange,
)


def _distance(inputs: ColumnInputs) -> float:
    return jensen_shannon(inputs.reference.bin_proportions, inputs.window_proportions)


def _calibrate(reference: ReferenceInputs, window_n: int, seed: int) -> float:
    # For categories, the unseen bin has reference share 0 and is never drawn.
    return binned_threshold(JENSEN_SHANNON, reference.bin_proportions, window_n,
                            reference.size, seed)


STATISTIC = Statistic(
    name="jensen_shannon",
    kinds=frozenset({"numerical", "categorical"}),
    p_value=False,
    compute=_distance,
    auto=_calibrate,
    gauges=(Gauge("drift_feature_jensen_shannon_distance",
                  "drift_prediction_jensen_shannon_distance",
                  "Jensen-Shannon distance (base 2) over the reference bins."),),
    threshold_range=ThresholdRange(1.0, inclusive=True,
                                   why="a jensen_shannon distance is at most 1"),
)
