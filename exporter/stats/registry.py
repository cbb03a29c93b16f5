"""The drift statistics, each declared once in ``exporter/stats/statistics/<name>.py``.

Consumers look statistics up here at the time they need them (never copying the table at
import), so what is registered is what the config accepts, the thresholds calibrate, the
snapshot computes and the collector exposes.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from exporter.stats.statistic import KINDS, Gauge, Statistic
from exporter.stats.statistics import MODULES

_BY_NAME: dict[str, Statistic] = {}
REGISTRY: Mapping[str, Statistic] = MappingProxyType(_BY_NAME)  # read-only, in MODULES order


def register(statistic: Statistic, into: dict[str, Statistic] = _BY_NAME) -> Statistic:
    """Add a statistic after checking its declaration; each module's ``STATISTIC`` goes here."""
    problems = []
    if statistic.name in into:
        problems.append("a statistic of that name is already registered")
    if not statistic.kinds or not statistic.kinds <= set(KINDS):
        problems.append(f"kinds must be a non-empty subset of {KINDS}, got {set(statistic.kinds)}")
    if not statistic.gauges:
        problems.append("it declares no gauge")
    for gauge in statistic.gauges:
        if not gauge.feature_metric.startswith("drift_feature_") or gauge.prediction_metric not in (
                None, f"drift_prediction_{gauge.suffix}"):
            problems.append(f"gauge names must be drift_feature_X and drift_prediction_X (or "
                            f"None), got {gauge.feature_metric}, {gauge.prediction_metric}")
    taken = {g.suffix for s in into.values() for g in s.gauges}
    suffixes = [g.suffix for g in statistic.gauges]
    if len(set(suffixes)) < len(suffixes) or taken & set(suffixes):
        problems.append(f"gauge suffixes must be unique, got {suffixes}")
    if problems:
        raise ValueError(f"statistic {statistic.name!r}: {'; '.join(problems)}")
    into[statistic.name] = statistic
    return statistic


def get(name: str) -> Statistic:
    """The statistic of that name (KeyError naming the registered ones otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown statistic {name!r}; registered: {', '.join(REGISTRY)}") from None


def names(kind: str | None = None, first: str | None = None) -> tuple[str, ...]:
    """Names of the statistics for a column kind (all without one), ``first`` leading."""
    found = [s.name for s in REGISTRY.values() if kind is None or kind in s.kinds]
    if first in found:
        found.remove(first)
        found.insert(0, first)
    return tuple(found)


def for_kind(kind: str) -> tuple[Statistic, ...]:
    """The statistics computed for every column of this kind."""
    return tuple(s for s in REGISTRY.values() if kind in s.kinds)


def gauges() -> tuple[Gauge, ...]:
    """Every statistic's gauges in exposition order: those of numerical-only statistics, then
    of statistics of both kinds, then of categorical-only ones (registration order within)."""
    def group(statistic: Statistic) -> int:
        return 0 if "categorical" not in statistic.kinds else (
            1 if "numerical" in statistic.kinds else 2)

    ordered = sorted(REGISTRY.values(), key=group)  # stable: registration order within a group
    return tuple(g for s in ordered for g in s.gauges)


for _module in MODULES:
    register(importlib.import_module(f"exporter.stats.statistics.{_module}").STATISTIC)
