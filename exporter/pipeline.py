"""One model's pipeline: reader -> encoder -> window(s) -> snapshot(s).

With ``version_column`` every model version gets its own window (SPEC 6.7): a new version is
admitted when it first appears, evicting the version that first appeared longest ago beyond
``max_versions``; later records of an evicted version are counted as rejected
(``reason="old_version"``) and dropped, so a rollout never mixes versions in one window.

With ``label.feedback``, labels that arrive later in other files are joined to window records by
``id_column``; feedback for ids not (yet) in a window waits in a bounded buffer, where a later
prediction with that id picks it up; what leaves the buffer unmatched is counted in
``drift_feedback_unmatched_total``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from exporter.checking import reference_warnings
from exporter.collector import ModelState, VersionState
from exporter.config import ModelConfig
from exporter.counters import ModelCounters
from exporter.fleet import FleetCounts
from exporter.parsing import CATEGORY, NUMBER, TIME, Batch, ColumnSpec
from exporter.quality import label_is_number
from exporter.reader import LogReader
from exporter.reference import (
    CategoricalReference,
    NumericalReference,
    ReferenceProfile,
    reference_columns,
)
from exporter.snapshot import ModelSnapshot, compute
from exporter.thresholds import Thresholds
from exporter.values import missing_objects
from exporter.watching import watch_root
from exporter.window import MAX_FUTURE_SECONDS, Records, Window, record_times

log = logging.getLogger(__name__)

UNKNOWN_VERSION = "unknown"  # model_version of records whose version column is missing
RETIRED_VERSIONS_KEPT = 1000  # names of evicted versions remembered (bounded)
DURATION_FEEDBACK_BUFFER = 100_000  # pending feedback kept for a duration window
FUTURE_LOG_INTERVAL = 60.0  # seconds between warnings about timestamps in the future


@dataclass
class _Version:
    """The window and latest snapshot of one model version."""

    name: str
    window: Window
    snapshot: ModelSnapshot | None = None
    pending: int = 0
    last_compute: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelPipeline:
    """Ingestion and statistics of one model (ingest and compute run on different threads)."""

    def __init__(self, config: ModelConfig, profile: ReferenceProfile) -> None:
        self.config = config
        self.profile = profile
        self.monitored = reference_columns(config)
        self.columns = self._log_columns()
        self.counters = ModelCounters([c.name for c in self.columns],
                                      [f.name for f in config.features],
                                      versioned=config.version_column is not None,
                                      feedback=config.label is not None
                                      and config.label.feedback is not None)
        self.reader = LogReader(config.name, config.logs.path, config.logs.format,
                                config.logs.max_line_bytes, self.columns, self.counters)
        self.feedback_reader = self._feedback_reader()
        self.thresholds = Thresholds(config.name, profile.rows)
        self.fleet = fleet_counts(profile, self.monitored, config)
        self._versions: OrderedDict[str, _Version] = OrderedDict()
        self._retired: OrderedDict[str, None] = OrderedDict()
        self._versions_lock = threading.Lock()
        self._pending_ids = np.empty(0, dtype=object)
        self._pending_labels: NDArray[np.generic] = np.empty(0, dtype=self._label_dtype())
        self._said_missing = False
        self._future_logged = -math.inf
        self.catching_up = False
        if config.version_column is None:
            self._version("")
        for warning in reference_warnings(config, profile):
            log.warning("reference too small", extra={"model": config.name, "detail": warning})

    # -- layout ---------------------------------------------------------------------------------

    def _log_columns(self) -> list[ColumnSpec]:
        config = self.config
        columns = list(self.monitored)
        extra: list[ColumnSpec] = []
        if config.timestamp_column:
            extra.append(ColumnSpec(config.timestamp_column, TIME))
        if config.label is not None:
            extra.append(ColumnSpec(config.label.column,
                                    NUMBER if label_is_number(config) else CATEGORY))
        for name in (self._join_id, config.version_column):
            if name:
                extra.append(ColumnSpec(name, CATEGORY))
        known = {c.name for c in columns}
        return columns + [c for c in extra if c.name not in known]

    @property
    def _join_id(self) -> str | None:
        """The id column, when feedback labels are joined by it (else ids are not even read:
        a unique string per record is the costliest column to parse)."""
        label = self.config.label
        return self.config.id_column if label is not None and label.feedback else None

    def _label_dtype(self) -> type[np.generic]:
        return np.float64 if label_is_number(self.config) else np.object_

    def _feedback_reader(self) -> LogReader | None:
        label = self.config.label
        if label is None or label.feedback is None or self.config.id_column is None:
            return None
        columns = [ColumnSpec(self.config.id_column, CATEGORY),
                   ColumnSpec(label.column, NUMBER if label_is_number(self.config) else CATEGORY)]
        return LogReader(self.config.name, label.feedback.path, label.feedback.format,
                         self.config.logs.max_line_bytes, columns, self.counters)

    def _new_window(self) -> Window:
        config = self.config
        numbers = [c.name for c in self.monitored if c.kind == NUMBER]
        codes = [c.name for c in self.monitored if c.kind == CATEGORY]
        objects: list[str] = []
        if self._join_id:
            objects.append(self._join_id)
        if config.label is not None:
            if label_is_number(config):
                numbers.append(config.label.column)
            else:
                objects.append(config.label.column)
            if config.prediction is not None and config.prediction.type == "categorical":
                objects.append(config.prediction.column)  # as text, for quality
        return Window(numbers, codes, rows=config.window.rows, duration=config.window.duration,
                      objects=tuple(dict.fromkeys(objects)))

    def _version(self, name: str) -> _Version | None:
        """The state of a version, admitting a new one (None for an evicted version)."""
        with self._versions_lock:
            if name in self._versions:
                return self._versions[name]
            if name in self._retired:
                return None
            while len(self._versions) >= self.config.max_versions:
                old, _ = self._versions.popitem(last=False)
                self._retired[old] = None
                while len(self._retired) > RETIRED_VERSIONS_KEPT:
                    self._retired.popitem(last=False)
                log.info("model version retired", extra={"model": self.config.name,
                                                         "model_version": old})
            state = _Version(name, self._new_window())
            self._versions[name] = state
            return state

    # -- ingestion (ingest thread) ------------------------------------------------------------

    def log_directory_present(self) -> bool:
        """Whether the fixed directory part of the log glob exists (logged while it does not)."""
        root, _ = watch_root(self.config.logs.path)
        present = os.path.isdir(root)
        if not present and not self._said_missing:
            log.warning("log directory does not exist yet; waiting for it",
                        extra={"model": self.config.name, "directory": root})
        elif present and self._said_missing:
            log.info("log directory appeared", extra={"model": self.config.name,
                                                      "directory": root})
        self._said_missing = not present
        return present

    def start(self, now: float | None = None) -> None:
        """Track existing files, reading only what the window needs (``now``: the clock the
        records are read by, the wall clock when None)."""
        newer = None
        if self.config.window.duration is not None:
            newer = (time.time() if now is None else now) - self.config.window.duration
        rows = self.config.window.rows
        if rows is not None and self.config.version_column is not None:
            rows *= self.config.max_versions  # each version has a window of its own
        self.reader.follower.start(rows, newer)
        if self.feedback_reader is not None:
            self.feedback_reader.follower.start(None, newer)

    def ingest(self, now: float | None = None) -> int:
        """Read everything new (predictions, then feedback); returns records added.

        ``now`` is the clock the records are read by (None: the wall clock at each batch).
        While more than one read-sized block is pending the model counts as catching up, and
        statistics wait: recomputing a window that is about to be replaced only takes CPU
        from ingestion."""
        added = 0
        try:
            for index, batch in enumerate(self.reader.batches()):
                self.catching_up = index >= 1
                added += self._add(batch, time.time() if now is None else now)
        finally:
            self.catching_up = False
        if self.feedback_reader is not None:
            for batch in self.feedback_reader.batches():
                self._feedback(batch)
        return added

    def _add(self, batch: Batch, now: float) -> int:
        records, future = self._encode(batch, now)
        newest = float(np.nanmax(records.times)) if records.rows else None
        invalid = dict(batch.invalid)
        if future:
            self._future_timestamps(batch, future, now)
            column = self.config.timestamp_column
            assert column is not None
            invalid[column] = invalid.get(column, 0) + future
        rejected = dict(batch.rejected)
        for version, rows in self._split_by_version(batch):
            state = self._version(version)
            if state is None:
                rejected["old_version"] = rejected.get("old_version", 0) + int(rows.sum())
                continue
            part = records if rows.all() else _select(records, rows)
            state.window.append(part)
            self.fleet.add(part.numbers, part.codes)
            with state.lock:
                state.pending += part.rows
        ingested = batch.rows - (rejected.get("old_version", 0)
                                 - batch.rejected.get("old_version", 0))
        self.counters.add_batch(ingested, rejected, invalid, newest)
        return ingested

    def _future_timestamps(self, batch: Batch, count: int, now: float) -> None:
        """Say (at most once a minute) that record timestamps were too far in the future."""
        if now - self._future_logged < FUTURE_LOG_INTERVAL:
            return
        self._future_logged = now
        column = self.config.timestamp_column
        assert column is not None
        log.warning("record timestamps in the future; using the time they were read", extra={
            "model": self.config.name, "column": column, "count": count,
            "newest": float(np.nanmax(batch.numbers[column])), "now": now,
            "max_future_seconds": MAX_FUTURE_SECONDS})

    def _split_by_version(self, batch: Batch) -> list[tuple[str, NDArray[np.bool_]]]:
        if self.config.version_column is None or batch.rows == 0:
            return [("", np.ones(batch.rows, dtype=bool))]
        import pandas as pd  # only with a version_column

        series = pd.Series(batch.categories[self.config.version_column], dtype=object)
        codes, names = pd.factorize(series.fillna(UNKNOWN_VERSION).to_numpy())
        return [(str(name), codes == i) for i, name in enumerate(names)]

    def _encode(self, batch: Batch, now: float) -> tuple[Records, int]:
        """The batch as window records, and how many timestamps were too far in the future."""
        codes = {}
        for spec in self.monitored:
            if spec.kind == CATEGORY:
                ref = self.profile.columns[spec.name]
                assert isinstance(ref, CategoricalReference)
                codes[spec.name] = ref.encode(batch.categories[spec.name],
                                              batch.coded.get(spec.name))
        numbers = {s.name: batch.numbers[s.name] for s in self.monitored if s.kind == NUMBER}
        objects: dict[str, NDArray[np.object_]] = {}
        config = self.config
        if self._join_id:
            objects[self._join_id] = batch.categories[self._join_id]
        if config.label is not None:
            self._encode_label(batch, numbers, objects)
        own = batch.numbers[config.timestamp_column] if config.timestamp_column else None
        times, future = record_times(own, batch.rows, now)
        return Records(batch.rows, numbers, codes, times, objects), future

    def _encode_label(self, batch: Batch, numbers: dict[str, NDArray[np.float64]],
                      objects: dict[str, NDArray[np.object_]]) -> None:
        config = self.config
        assert config.label is not None
        column = config.label.column
        if label_is_number(config):
            numbers[column] = batch.numbers[column].copy()
            target: NDArray[np.generic] = numbers[column]
            missing = np.isnan(numbers[column])
        else:
            objects[column] = batch.categories[column].copy()
            target = objects[column]
            missing = missing_objects(objects[column])
        if config.prediction is not None and config.prediction.type == "categorical":
            objects[config.prediction.column] = batch.categories[config.prediction.column]
        if self._pending_ids.shape[0] and self._join_id and batch.rows:
            self._take_pending(batch.categories[self._join_id], target, missing)

    def _take_pending(self, ids: NDArray[np.object_], target: NDArray[np.generic],
                      missing: NDArray[np.bool_]) -> None:
        """Labels that arrived before their prediction fill the new records' labels."""
        import pandas as pd  # only when labels arrive before their predictions

        pending = pd.Index(self._pending_ids, dtype=object)
        newest = ~pending.duplicated(keep="last")
        where = pd.Index(self._pending_ids[newest], dtype=object).get_indexer(
            pd.Index(ids, dtype=object))
        fill = (where >= 0) & missing
        target[fill] = self._pending_labels[newest][where[fill]]
        used = np.isin(self._pending_ids, ids[where >= 0])
        self._pending_ids = self._pending_ids[~used]
        self._pending_labels = self._pending_labels[~used]

    def _feedback(self, batch: Batch) -> None:
        config = self.config
        assert config.label is not None
        assert config.id_column is not None
        # Feedback lines that could not be read are counted apart from prediction records.
        rejected = {f"feedback_{reason}": count for reason, count in batch.rejected.items()}
        self.counters.add_batch(0, rejected, {}, None)
        ids = batch.categories[config.id_column]
        labels = (batch.numbers[config.label.column] if label_is_number(config)
                  else batch.categories[config.label.column])
        usable = ~missing_objects(ids) & ~missing_objects(labels)
        ids, labels = ids[usable], labels[usable]
        matched = np.zeros(ids.shape[0], dtype=bool)
        with self._versions_lock:
            states = list(self._versions.values())
        for state in states:
            found = state.window.assign(config.id_column, ids, config.label.column, labels)
            if found.any():
                with state.lock:
                    state.pending += int(found.sum())
            matched |= found
        self.counters.add_feedback(int(matched.sum()))
        self._keep_pending(ids[~matched], labels[~matched])

    def _keep_pending(self, ids: NDArray[np.object_], labels: NDArray[np.generic]) -> None:
        self._pending_ids = np.concatenate((self._pending_ids, ids))
        self._pending_labels = np.concatenate((self._pending_labels, labels))
        limit = self.config.window.rows or DURATION_FEEDBACK_BUFFER
        overflow = self._pending_ids.shape[0] - limit
        if overflow > 0:
            self._pending_ids = self._pending_ids[overflow:]
            self._pending_labels = self._pending_labels[overflow:]
            self.counters.feedback_unmatched(overflow)

    # -- statistics (compute thread) -----------------------------------------------------------

    def _states(self) -> list[_Version]:
        with self._versions_lock:
            return list(self._versions.values())

    def due(self, now: float) -> bool:
        """Whether some version has new records (or ages) and its update_interval elapsed."""
        if self.catching_up:
            return False
        return any(self._due(state, now) for state in self._states())

    def _due(self, state: _Version, now: float) -> bool:
        if state.snapshot is None:
            return True
        if now - state.last_compute < self.config.update_interval:
            return False
        return state.pending > 0 or self.config.window.duration is not None

    def recompute(self, now: float, *, force: bool = True) -> list[ModelSnapshot]:
        """Compute new snapshots (every version, or only those due) and publish them."""
        results = []
        for state in self._states():
            if not force and not self._due(state, now):
                continue
            with state.lock:
                state.pending = 0
            state.last_compute = now
            snapshot = compute(state.window.view(now), self.profile, self.config,
                               self.thresholds, version=state.name)
            for feature in snapshot.features:
                self.counters.observe_detection(feature.name, feature.detected, state.name)
            state.snapshot = snapshot  # one reference assignment: scrapes see old or new
            results.append(snapshot)
        return results

    @property
    def window(self) -> Window:
        """The window of an unversioned model."""
        return self._states()[0].window

    @property
    def snapshot(self) -> ModelSnapshot | None:
        """The latest snapshot of an unversioned model (of the first version otherwise)."""
        states = self._states()
        return states[0].snapshot if states else None

    def state(self) -> ModelState:
        """Immutable view for the collector."""
        versions = tuple(VersionState(s.name, s.snapshot) for s in self._states())
        return ModelState(self.config.name, self.profile,
                          tuple(f.name for f in self.config.features),
                          self.config.prediction.column if self.config.prediction else None,
                          versions, self.counters.values(),
                          self.config.version_column is not None, self.fleet.values())

    def close(self) -> None:
        """Release file descriptors."""
        self.reader.close()
        if self.feedback_reader is not None:
            self.feedback_reader.close()


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
