"""Chi-square test of homogeneity on categorical columns: its p-value is the score."""

from __future__ import annotations

from exporter.stats.calibration import P_VALUE_ALPHA
from exporter.stats.chi2 import chi2_pvalue
from exporter.stats.statistic import ColumnInputs, Gauge, Statistic, p_value_range


def _pvalue(inputs: ColumnInputs) -> float:
    assert inputs.reference.counts is not None
    assert inputs.window_counts is not None
    return chi2_pvalue(inputs.reference.counts, inputs.window_counts)


STATISTIC = Statistic(
    name="chi2",
    kinds=frozenset({"categorical"}),
    p_value=True,
    compute=_pvalue,
    auto=P_VALUE_ALPHA,
    # Per feature only: SPEC 6.1 lists drift_feature_chi2_pvalue, 6.3 no prediction twin.
    gauges=(Gauge("drift_feature_chi2_pvalue", None,
                  "Chi-square test p-value over the categories, reference vs window."),),
    threshold_range=p_value_range("chi2"),
)
