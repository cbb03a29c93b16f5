"""One model's pipeline core: a state machine driven by batches and a clock.

``add(batch, now)`` encodes a batch (``encoding``), routes its rows to the window of their key
(``routing``), counts them (counters, fleet counts) and tells the scheduler; ``add_feedback``
joins late labels (``feedback``); ``due(now)`` and ``recompute(now)`` turn windows into
snapshots when the ``scheduling`` rule says so; ``state()`` is what the collector renders.

The core reads no files, starts no threads and never reads the wall clock: the caller gives
``now``. ``app.py`` feeds it from the log files (``sources``) with the wall clock, on its ingest
thread, and recomputes on its compute thread; a replay drives the same core with the records'
own timestamps as the clock.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from exporter.alarming import WindowAlarms
from exporter.checking import estimate_status, reference_warnings
from exporter.config import ModelConfig
from exporter.counters import ModelCounters
from exporter.encoding import Encoder
from exporter.feedback import FeedbackJoiner, feedback_columns
from exporter.fleet import FleetCounts
from exporter.parsing import Batch, ColumnSpec
from exporter.reference import NumericalReference, ReferenceProfile
from exporter.routing import WindowKey, WindowRouter
from exporter.scheduling import Scheduler
from exporter.snapshot import ModelSnapshot, SortedWindow, compute_sorted
from exporter.state import ModelState, VersionState
from exporter.thresholds import Thresholds
from exporter.window import Records, Window

log = logging.getLogger(__name__)


class ModelPipeline:
    """Ingestion and statistics of one model (``add`` on one thread, ``recompute`` on another)."""

    def __init__(self, config: ModelConfig, profile: ReferenceProfile) -> None:
        self.config = config
        self.profile = profile
        self.encoder = Encoder(config, profile)
        self.columns = self.encoder.columns  # the log columns a source reads for this model
        self.feedback_columns = feedback_columns(config)
        self.counters = ModelCounters([c.name for c in self.columns],
                                      [f.name for f in config.features],
                                      versioned=config.version_column is not None,
                                      feedback=config.label is not None
                                      and config.label.feedback is not None)
        # One calibration cache per segment: a threshold depends on the reference compared with.
        self.thresholds = {segment: Thresholds(config.name, profile.for_segment(segment).rows)
                           for segment in ("", *profile.segments)}
        self.fleet = fleet_counts(profile, self.encoder.monitored, config)
        self.scheduler = Scheduler(config.update_interval,
                                   ages=config.window.duration is not None)
        self.alarms = WindowAlarms(config, profile)
        self.router = WindowRouter(config.name, config.version_column, config.max_versions,
                                   self.encoder.new_window, on_evict=self._evicted,
                                   on_admit=self.alarms.admit,
                                   segmentation=profile.segmentation)
        # Each window's numerical columns as sorted at its last recomputation: the next one
        # sorts in only the rows that entered and left since (snapshot.compute_sorted).
        self._sorted: dict[WindowKey, SortedWindow] = {}
        self.joiner = (FeedbackJoiner(config, self.counters)
                       if self.feedback_columns is not None else None)
        for warning in reference_warnings(config, profile):
            log.warning("reference too small", extra={"model": config.name, "detail": warning})
        estimate = estimate_status(config, profile)
        if estimate is not None:  # once per model and (re)load: whether CBPE applies, and why
            (log.warning if estimate.warning else log.info)(
                "performance estimation", extra={"model": config.name,
                                                 "detail": estimate.message})

    # -- ingestion (ingest thread) ------------------------------------------------------------

    def add(self, batch: Batch, now: float) -> int:
        """Add a batch of prediction records read at ``now``; returns the records ingested
        (records of a retired version are counted as rejected, ``reason="old_version"``)."""
        encoded = self.encoder.encode(batch, now)
        records = encoded.records
        if self.joiner is not None:
            self.joiner.fill(records)
        retired = 0
        for key, rows in self.router.split(batch):
            window = self.router.window(key)
            if window is None:
                retired += 0 if key.segment else int(rows.sum())
                continue
            part = records if rows.all() else _select(records, rows)
            window.append(part)
            self.alarms.add(key, part)
            if not key.segment:  # counted once, in the version's whole-model window
                self.fleet.add(part.numbers, part.codes)
            self.scheduler.added(key, part.rows)
        rejected = dict(batch.rejected)
        if retired:
            rejected["old_version"] = rejected.get("old_version", 0) + retired
        self.counters.add_batch(batch.rows - retired, rejected, encoded.invalid, encoded.newest)
        return batch.rows - retired

    def _evicted(self, key: WindowKey) -> None:
        self.scheduler.forget(key)
        self._sorted.pop(key, None)
        self.alarms.forget(key)

    def add_feedback(self, batch: Batch, now: float) -> None:
        """Join a batch of feedback labels (read at ``now``) to the window records by id."""
        del now  # labels carry no time of their own; kept for one signature per input
        if self.joiner is None:
            raise ValueError(f"model {self.config.name} has no label feedback configured")
        for key, joined in self.joiner.join(batch, self.router.windows()):
            self.scheduler.added(key, joined)

    def set_catching_up(self, catching_up: bool) -> None:
        """Whether the caller is still catching up with its input (statistics wait)."""
        self.scheduler.catching_up = catching_up

    # -- statistics (compute thread) -----------------------------------------------------------

    def due(self, now: float) -> bool:
        """Whether some window has new records (or ages) and its update_interval elapsed."""
        return self.scheduler.any_due((key for key, _ in self.router.windows()), now)

    def recompute(self, now: float, *, force: bool = True) -> list[ModelSnapshot]:
        """Compute new snapshots at ``now`` (of every window, or only those due), publish
        them and return them."""
        results = []
        self.alarms.flush()  # the alarm tests what the snapshot covers (alarming.py)
        for key, window in self.router.windows():
            if not force and not self.scheduler.due(key, now):
                continue
            self.scheduler.begin(key, now)
            snapshot, self._sorted[key] = compute_sorted(
                window.view(now), self.profile.for_segment(key.segment), self.config,
                self.thresholds[key.segment], self._sorted.pop(key, None), now=now,
                version=key.version)  # popped: compute_sorted lets its arrays go as it goes
            for feature in snapshot.features:
                self.counters.observe_detection(feature.name, feature.detected, key.version,
                                                key.segment)
            if self.router.publish(key, snapshot):
                self.scheduler.done(key)
            else:  # evicted while computing
                self.scheduler.forget(key)
                self._sorted.pop(key, None)
            results.append(snapshot)
        return results

    @property
    def window(self) -> Window:
        """The window of an unversioned model (of the first version otherwise)."""
        return self.router.windows()[0][1]

    def state(self) -> ModelState:
        """Immutable view for the collector."""
        versions = tuple(VersionState(key.version, snapshot, self.alarms.state(key), key.segment,
                                      self.profile.for_segment(key.segment))
                         for key, snapshot in self.router.snapshots())
        return ModelState(self.config.name, self.profile,
                          tuple(f.name for f in self.config.features),
                          self.config.prediction.column if self.config.prediction else None,
                          versions, self.counters.values(),
                          self.config.version_column is not None, self.fleet.values(),
                          self.alarms.column_names, self.config.alarm.false_alarm_every)


def fleet_counts(profile: ReferenceProfile, monitored: list[ColumnSpec],
                 config: ModelConfig) -> FleetCounts:
    """Mergeable counts of the numerical features and prediction, and categorical features."""
    numerical = {}
    categorical = {}
    features = {f.name for f in config.features}
    for spec in monitored:
        ref = profile.columns[spec.name]
        if isinstance(ref, NumericalReference):
            numerical[spec.name] = ref.fleet
        elif spec.name in features:  # SPEC 6.8 counts categorical features, not the prediction
            categorical[spec.name] = ref.fleet_slots()
    return FleetCounts(numerical, categorical)


def _select(records: Records, rows: NDArray[np.bool_]) -> Records:
    return Records(int(rows.sum()), {k: v[rows] for k, v in records.numbers.items()},
                   {k: v[rows] for k, v in records.codes.items()}, records.times[rows],
                   {k: v[rows] for k, v in records.objects.items()})
