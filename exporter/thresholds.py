"""Thresholds in force per column: the configured number, or ``auto`` calibrated per window size."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

from exporter.config import StatisticConfig
from exporter.reference import ColumnReference
from exporter.stats import calibration, registry

_CACHE_SIZE = 512
# Calibrations are shared by window sizes within 2%: each is calibrated at the grid size just
# below it, whose threshold is the higher (distances shrink as the window grows), so a growing
# window calibrates about 35 times per doubling instead of at every size.
_SIZE_STEP = 1.02


def is_p_value(statistic: str) -> bool:
    """p-value statistics drift when the score falls below the threshold; distances above."""
    return registry.get(statistic).p_value


def crosses(statistic: str, score: float, threshold: float) -> bool:
    """Whether a score crosses its threshold (SPEC 6.1)."""
    return registry.get(statistic).crosses(score, threshold)


def calibration_size(n: int) -> int:
    """The size a window of n usable values is calibrated at: the grid size at or below n."""
    size = int(_SIZE_STEP ** math.floor(math.log(max(n, 1)) / math.log(_SIZE_STEP)))
    return max(1, min(size, n))


class Thresholds:
    """Calibrated thresholds, cached per (model, column, statistic, size)."""

    def __init__(self, model: str, reference_rows: int) -> None:
        self.model = model
        self.reference_rows = reference_rows
        self._cache: OrderedDict[tuple[str, str, int], float] = OrderedDict()
        self._lock = threading.Lock()
        self.calibrations = 0  # simulations run so far (the cache's misses)

    def threshold(self, column: ColumnReference, config: StatisticConfig, n: int) -> float:
        """The threshold for this column's statistic with n usable window values."""
        if config.threshold is not None:
            return config.threshold
        auto = registry.get(config.statistic).auto
        if not callable(auto):  # a fixed level: nothing to calibrate or cache
            return auto
        size = calibration_size(n)
        key = (column.name, config.statistic, size)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = self._calibrate(column, config.statistic, size)
        with self._lock:
            self.calibrations += 1
            self._cache[key] = value
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return value

    def _calibrate(self, column: ColumnReference, statistic: str, n: int) -> float:
        auto = registry.get(statistic).auto
        assert callable(auto)
        return auto(column.inputs, n,
                    calibration.seed_for(self.model, column.name, statistic, n))
