"""What a drift statistic declares, once, in its own module under ``exporter/stats/statistics/``.

Config validation, thresholds, the snapshot and the collector all read these declarations
through ``exporter.stats.registry``; none of them names a statistic. Pure data and numpy:
no import of the config or of the reference loader, so the config can import the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exporter.stats.binning import IntArray
from exporter.stats.ecdf import FloatArray, SortedSample

KINDS: tuple[str, ...] = ("numerical", "categorical")


@dataclass(frozen=True)
class ReferenceInputs:
    """What statistics and their calibration read from one reference column."""

    size: int  # usable reference values
    bin_proportions: FloatArray  # share per bin (numerical) or category (+ the unseen bin, 0)
    sample: SortedSample | None = None  # numerical: the sorted usable values
    norm: float = 1.0  # numerical: the Wasserstein divisor max(stddev, 0.001)
    counts: IntArray | None = None  # categorical: count per category (+ the unseen bin, 0)


@dataclass(frozen=True)
class ColumnInputs:
    """One column's window against its reference, computed once per recomputation and read by
    every statistic of its kind: passes shared by several statistics (the merged KS and
    Wasserstein pass, the binned proportions) run once."""

    kind: str  # "numerical" or "categorical"
    reference: ReferenceInputs
    n: int  # usable window values
    window_proportions: FloatArray  # the window's share per reference bin or category
    window_sorted: FloatArray | None = None  # numerical: the sorted usable values
    window_counts: IntArray | None = None  # categorical: count per category (+ unseen)
    ks_statistic: float | None = None  # numerical: from the merged pass
    wasserstein_normed: float | None = None  # numerical: from the merged pass


ComputeFunction = Callable[[ColumnInputs], float]
# (reference, window size, seed) -> the threshold for windows of that size
CalibrateFunction = Callable[[ReferenceInputs, int, int], float]
GaugeValue = Callable[[ColumnInputs, float], float]


def the_score(inputs: ColumnInputs, score: float) -> float:
    """A gauge that shows the statistic's score itself."""
    return score


@dataclass(frozen=True)
class Gauge:
    """A per-column gauge, its metric names spelled out so that they can be grepped:
    ``drift_feature_<suffix>`` and ``drift_prediction_<suffix>`` (or None: features only)."""

    feature_metric: str
    prediction_metric: str | None
    help: str
    value: GaugeValue = the_score  # from the column's inputs and its score

    @property
    def suffix(self) -> str:
        """The name after ``drift_feature_``: the gauge's key in ``ColumnSnapshot.gauges``."""
        return self.feature_metric.removeprefix("drift_feature_")


@dataclass(frozen=True)
class ThresholdRange:
    """Configured thresholds a statistic accepts: > 0, and below ``upper`` when it is set."""

    upper: float | None = None
    inclusive: bool = False  # upper itself is accepted
    why: str = ""  # the reason for the bound, shown in the error

    @property
    def bound(self) -> str:
        """The upper bound as text ("< 1", "<= 1"), "" without one."""
        if self.upper is None:
            return ""
        return f"{'<=' if self.inclusive else '<'} {self.upper:g}"

    def accepts(self, value: float) -> bool:
        """Whether a configured threshold is in range."""
        if not value > 0:  # written so that NaN is refused
            return False
        if self.upper is None:
            return True
        return value <= self.upper if self.inclusive else value < self.upper

    def expected(self) -> str:
        """What a config error says was expected."""
        if self.upper is None:
            return "'auto' or a number > 0"
        return f"'auto' or a number > 0 and {self.bound} ({self.why})"


def p_value_range(name: str) -> ThresholdRange:
    """The range of a p-value's threshold: in (0, 1)."""
    return ThresholdRange(1.0, False, f"{name} is a p-value")


@dataclass(frozen=True)
class Statistic:
    """One drift statistic: everything the exporter knows about it."""

    name: str  # as written in the config
    kinds: frozenset[str]  # column kinds it applies to (KINDS)
    p_value: bool  # drift when the score falls below the threshold; else at or above it
    compute: ComputeFunction  # the score of a window
    # ``threshold: auto``: a fixed level (p-values), or a calibration per window size
    auto: float | CalibrateFunction
    gauges: tuple[Gauge, ...]  # in exposition order; one shows the score
    threshold_range: ThresholdRange = ThresholdRange()

    def crosses(self, score: float, threshold: float) -> bool:
        """Whether a score crosses its threshold (SPEC 6.1)."""
        return score < threshold if self.p_value else score >= threshold
