"""What the pipeline offers the collector at scrape time: immutable states of each model.

The producer (``pipeline.py``) builds these; the collector and the landing page only read them,
so the renderer depends on the pipeline's types and never the other way round."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.alarm import AlarmState
from exporter.counters import CounterValues
from exporter.fleet import FleetValues
from exporter.reference import ReferenceProfile
from exporter.snapshot import ModelSnapshot


@dataclass(frozen=True)
class VersionState:
    """The latest snapshot and alarm of one window: a model version ("" when the model is not
    versioned) and a segment of it ("" for the whole model), compared with ``profile``."""

    name: str
    snapshot: ModelSnapshot | None
    alarm: AlarmState | None = None
    segment: str = ""
    profile: ReferenceProfile | None = None  # None: the model's whole reference


@dataclass(frozen=True)
class ModelState:
    """What one model offers the collector at scrape time (all immutable copies)."""

    name: str
    profile: ReferenceProfile
    feature_names: tuple[str, ...]
    prediction_column: str | None
    versions: tuple[VersionState, ...]
    counters: CounterValues
    versioned: bool = False
    fleet: FleetValues | None = None
    alarm_columns: tuple[str, ...] = ()  # features, then __prediction__ (SPEC 6.9)
    false_alarm_every: float | None = None  # alarm.false_alarm_every, seconds

    @property
    def snapshot(self) -> ModelSnapshot | None:
        """The snapshot of an unversioned model (first version otherwise), whole model."""
        return self.versions[0].snapshot if self.versions else None
