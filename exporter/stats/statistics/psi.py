"""Population stability index over the reference bins (numerical) or categories."""

from __future__ import annotations

from exporter.stats.calibration import binned_threshold
from exporter.stats.divergence import PSI, psi
from exporter.stats.statistic import ColumnInputs, Gauge, ReferenceInputs, Statistic


def _psi(inputs: ColumnInputs) -> float:
    return psi(inputs.reference.bin_proportions, inputs.window_proportions)


def _calibrate(reference: ReferenceInputs, window_n: int, seed: int) -> float:
    # For categories, the unseen bin has reference share 0 and is never drawn.
    return binned_threshold(PSI, reference.bin_proportions, window_n, reference.size, seed)


STATISTIC = Statistic(
    name="psi",
    kinds=frozenset({"numerical", "categorical"}),
    p_value=False,
    compute=_psi,
    auto=_calibrate,
    gauges=(Gauge("drift_feature_psi", "drift_prediction_psi",
                  "Population stability index over the reference bins."),),
)
