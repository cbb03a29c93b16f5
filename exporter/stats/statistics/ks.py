"""Two-sample Kolmogorov-Smirnov test on numerical columns: its p-value is the score."""

from __future__ import annotations

from exporter.stats.calibration import P_VALUE_ALPHA
from exporter.stats.ks import ks_pvalue
from exporter.stats.statistic import ColumnInputs, Gauge, Statistic, p_value_range


def _pvalue(inputs: ColumnInputs) -> float:
    assert inputs.ks_statistic is not None
    return ks_pvalue(inputs.ks_statistic, inputs.reference.size, inputs.n)


def _statistic(inputs: ColumnInputs, score: float) -> float:
    assert inputs.ks_statistic is not None
    return inputs.ks_statistic


STATISTIC = Statistic(
    name="ks",
    kinds=frozenset({"numerical"}),
    p_value=True,
    compute=_pvalue,
    auto=P_VALUE_ALPHA,
    gauges=(
        # The statistic itself too: it says how far apart, the p-value only how surely.
        Gauge("drift_feature_ks_statistic", "drift_prediction_ks_statistic",
              "Two-sample KS statistic, reference vs window.", _statistic),
        Gauge("drift_feature_ks_pvalue", "drift_prediction_ks_pvalue",
              "Two-sample KS p-value, reference vs window."),
    ),
    threshold_range=p_value_range("ks"),
)
