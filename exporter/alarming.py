"""Each window's drift alarm (SPEC 6.9): one ``alarm.AlarmDetector`` per ``WindowKey``.

The detector (``exporter/alarm.py``, docs/alarms.md) consumes the records of its window's key in
arrival order with their times; this module builds its reference columns from the profile
(features in config order, then the prediction as ``__prediction__``), feeds it the encoded
records (numbers as float64 with NaN for missing, categories as the reference's codes, so both
sides share one code space) and publishes its ``AlarmState`` by one reference assignment, so a
scrape reads a consistent state without computing anything.

Records are queued per key and tested when the pipeline takes a snapshot (``flush``, at the
statistics' cadence, so the alarm and the gauges beside it describe the same records) or when
``FLUSH_RECORDS`` are queued (bounded memory). The detector's results do not depend on how
records are split into calls, so this only changes when a raise is published, not whether or
for which record; what it saves is the detector's fixed cost per call (a steady 5,000
records/s in batches of 50 costs ~2.5x less, bench/alarm_cost.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading

import numpy as np

from exporter.alarm import (
    AlarmDetector,
    AlarmState,
    PreparedReference,
    ReferenceColumn,
    prepare_reference,
)
from exporter.config import ModelConfig
from exporter.reference import CategoricalReference, NumericalReference, ReferenceProfile
from exporter.routing import WindowKey
from exporter.window import Records

FLUSH_RECORDS = 4096  # a key's queued records are tested at the latest when this many are queued
PREDICTION = "__prediction__"  # the prediction's column name in the alarm (SPEC 6.9)
MISSING_CODE = -1  # CategoricalReference.encode's code of a missing value


def alarm_columns(config: ModelConfig) -> list[tuple[str, str]]:
    """(alarm column name, log column) of the model: features in order, then the prediction."""
    columns = [(f.name, f.name) for f in config.features]
    if config.prediction is not None:
        columns.append((PREDICTION, config.prediction.column))
    return columns


def alarm_reference(config: ModelConfig, profile: ReferenceProfile) -> list[ReferenceColumn]:
    """The reference as the detector reads it, rebuilt from the profile.

    The detector needs every reference row's value, not its order: numerical columns are the
    sorted usable values followed by one NaN per missing row, categorical ones each category's
    code repeated by its count, then ``MISSING_CODE`` per missing row (the encoder's codes)."""
    result = []
    for name, column in alarm_columns(config):
        ref = profile.columns[column]
        if isinstance(ref, NumericalReference):
            usable = ref.sample.values.astype(np.float64)
            missing = np.full(profile.rows - usable.shape[0], np.nan)
            result.append(ReferenceColumn(name, "numerical", np.concatenate((usable, missing))))
        else:
            assert isinstance(ref, CategoricalReference)
            seen = ref.counts[:-1]  # the last bin (unseen values) is empty in the reference
            codes = np.repeat(np.arange(seen.shape[0], dtype=np.int64), seen)
            missing = np.full(profile.rows - codes.shape[0], MISSING_CODE, dtype=np.int64)
            result.append(ReferenceColumn(name, "categorical", np.concatenate((codes, missing))))
    return result


def alarm_seed(model: str, key: WindowKey) -> int:
    """A seed fixed by the model's name and the window key (the same in every run and replay)."""
    # Whole-model windows keep the seed they had before segments existed (same alarms).
    parts = dataclasses.astuple(key) if key.segment else (key.version,)
    text = repr((model, parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


class WindowAlarms:
    """The alarm detectors of one model's windows (ingest thread adds, scrapes read states)."""

    def __init__(self, config: ModelConfig, profile: ReferenceProfile) -> None:
        self.config = config
        self._profile = profile
        self._columns = alarm_columns(config)
        self._numerical = tuple(isinstance(profile.columns[column], NumericalReference)
                                for _, column in self._columns)
        # One prepared reference per slice (SPEC 6.11: a segment's window is compared with its
        # slice), shared by every key of that slice: model versions differ only in their
        # records' tie-breaks (their seeds), not in a copy of the reference each.
        self._prepared: dict[str, PreparedReference] = {}
        self._detectors: dict[WindowKey, AlarmDetector] = {}
        self._states: dict[WindowKey, AlarmState] = {}
        self._lock = threading.Lock()
        # Queued records per key: column arrays and times of each batch, in arrival order.
        self._queued: dict[WindowKey, list[tuple[list[np.ndarray], np.ndarray]]] = {}
        self._queued_rows: dict[WindowKey, int] = {}
        # Feeding is serialised (the ingest thread when a queue is full, the compute thread at
        # a snapshot): a key's records reach its detector in arrival order.
        self._feeding = threading.Lock()

    def prepared(self, segment: str) -> PreparedReference:
        """The slice's reference as the detectors read it, prepared on first use."""
        prepared = self._prepared.get(segment)
        if prepared is None:
            # The seed of the slice's key without a version: an unversioned model's detectors
            # draw exactly what they drew when each prepared its own reference.
            prepared = prepare_reference(
                alarm_reference(self.config, self._profile.for_segment(segment)),
                alarm_seed(self.config.name, WindowKey(segment=segment)))
            self._prepared[segment] = prepared
        return prepared

    def admit(self, key: WindowKey) -> None:
        """A detector for a newly admitted key (its state at 0 from the start)."""
        detector = AlarmDetector(self.prepared(key.segment), self.config.alarm,
                                 seed=alarm_seed(self.config.name, key))
        with self._lock:
            self._detectors[key] = detector
            self._states[key] = detector.state()

    def forget(self, key: WindowKey) -> None:
        """Drop the detector of an evicted key (and its queued records)."""
        with self._lock:
            self._detectors.pop(key, None)
            self._states.pop(key, None)
            self._queued.pop(key, None)
            self._queued_rows.pop(key, None)

    def add(self, key: WindowKey, records: Records) -> None:
        """Queue a key's records, in arrival order: tested at the next ``flush`` (or now, when
        ``FLUSH_RECORDS`` are queued)."""
        if records.rows == 0:
            return
        values = [records.numbers[column] if numerical
                  else records.codes[column].astype(np.int64)
                  for (_, column), numerical in zip(self._columns, self._numerical, strict=True)]
        with self._lock:
            if key not in self._detectors:
                return
            self._queued.setdefault(key, []).append((values, records.times))
            queued = self._queued_rows.get(key, 0) + records.rows
            self._queued_rows[key] = queued
        if queued >= FLUSH_RECORDS:
            self._feed(key)

    def flush(self) -> None:
        """Test every key's queued records and publish the new states (before a snapshot)."""
        with self._lock:
            keys = list(self._queued)
        for key in keys:
            self._feed(key)

    def _feed(self, key: WindowKey) -> None:
        with self._feeding:
            with self._lock:
                batches = self._queued.pop(key, [])
                self._queued_rows.pop(key, None)
                detector = self._detectors.get(key)
            if detector is None or not batches:
                return
            if len(batches) == 1:
                values, times = batches[0]
            else:
                values = [np.concatenate([b[0][j] for b in batches])
                          for j in range(len(self._columns))]
                times = np.concatenate([b[1] for b in batches])
            detector.add(values, times)
            state = detector.state()
        with self._lock:
            if key in self._detectors:  # not evicted meanwhile
                self._states[key] = state

    def detector(self, key: WindowKey) -> AlarmDetector | None:
        """The key's detector (None for a key without one)."""
        with self._lock:
            return self._detectors.get(key)

    def state(self, key: WindowKey) -> AlarmState | None:
        """The key's latest published state (None for a key without a detector)."""
        with self._lock:
            return self._states.get(key)

    @property
    def column_names(self) -> tuple[str, ...]:
        """The alarm's columns: the features, then ``__prediction__`` when configured."""
        return tuple(name for name, _ in self._columns)
