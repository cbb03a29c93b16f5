"""Live counters of one model, updated by ingestion and read by the collector under a lock."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

KNOWN_ROW_REASONS = ("malformed", "too_long")
KNOWN_FILE_REASONS = ("corrupt", "unreadable")


@dataclass(frozen=True)
class CounterValues:
    """A consistent copy of a model's counters."""

    rows_ingested: int
    rows_rejected: Mapping[str, int]
    values_invalid: Mapping[str, int]
    files_rejected: Mapping[str, int]
    # (model_version, feature) -> transitions; (model_version, feature, segment) per segment
    detections: Mapping[tuple[str, ...], int]
    truncations: int
    last_record_timestamp: float | None
    feedback_matched: int | None = None  # None when no feedback is configured
    feedback_unmatched: int | None = None


def detection_key(version: str, feature: str, segment: str = "") -> tuple[str, ...]:
    """The key of a window's feature in ``CounterValues.detections``."""
    return (version, feature, segment) if segment else (version, feature)


class ModelCounters:
    """Counters of one model; every known label is present at 0 from the start."""

    def __init__(self, columns: Iterable[str], features: Iterable[str], *,
                 versioned: bool = False, feedback: bool = False) -> None:
        self._lock = threading.Lock()
        self._ingested = 0
        reasons = KNOWN_ROW_REASONS + (("old_version",) if versioned else ())
        self._rejected = dict.fromkeys(reasons, 0)
        self._invalid = dict.fromkeys(columns, 0)
        self._files = dict.fromkeys(KNOWN_FILE_REASONS, 0)
        self._features = tuple(features)
        self._detections: dict[tuple[str, ...], int] = {}
        if not versioned:
            self._detections = {("", f): 0 for f in self._features}
        self._detected: dict[tuple[str, ...], bool] = {}
        self._truncations = 0
        self._last_record: float | None = None
        self._feedback = feedback
        self._matched = 0
        self._unmatched = 0

    def add_batch(self, rows: int, rejected: Mapping[str, int], invalid: Mapping[str, int],
                  newest: float | None) -> None:
        """Count one parsed batch."""
        with self._lock:
            self._ingested += rows
            for reason, count in rejected.items():
                self._rejected[reason] = self._rejected.get(reason, 0) + count
            for column, count in invalid.items():
                self._invalid[column] = self._invalid.get(column, 0) + count
            if newest is not None and (self._last_record is None or newest > self._last_record):
                self._last_record = newest

    def file_rejected(self, reason: str) -> None:
        """Count a file that could not be read."""
        with self._lock:
            self._files[reason] = self._files.get(reason, 0) + 1

    def truncated(self) -> None:
        """Count a file that was truncated or replaced under the reader."""
        with self._lock:
            self._truncations += 1

    def add_feedback(self, matched: int) -> None:
        """Count feedback labels joined to window records."""
        with self._lock:
            self._matched += matched

    def feedback_unmatched(self, count: int) -> None:
        """Count feedback labels dropped without ever meeting their prediction."""
        with self._lock:
            self._unmatched += count

    def observe_detection(self, feature: str, detected: bool | None, version: str = "",
                          segment: str = "") -> None:
        """Count not-drifted -> drifted transitions of a feature (per model version and
        segment)."""
        key = detection_key(version, feature, segment)
        with self._lock:
            self._detections.setdefault(key, 0)
            if detected is None:
                return
            if detected and not self._detected.get(key, False):
                self._detections[key] += 1
            self._detected[key] = detected

    def values(self) -> CounterValues:
        """A consistent copy for rendering."""
        with self._lock:
            return CounterValues(self._ingested, dict(self._rejected), dict(self._invalid),
                                 dict(self._files), dict(self._detections), self._truncations,
                                 self._last_record,
                                 self._matched if self._feedback else None,
                                 self._unmatched if self._feedback else None)
