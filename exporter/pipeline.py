"""One model's pipeline: follower -> parser -> encoder -> window -> snapshot."""

from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np

from exporter.collector import ModelState
from exporter.config import ModelConfig
from exporter.counters import ModelCounters
from exporter.errors import ExporterError
from exporter.parsing import (
    CATEGORY,
    NUMBER,
    TIME,
    Batch,
    ColumnSpec,
    Rejection,
    parse_jsonl,
    parse_parquet,
)
from exporter.reference import CategoricalReference, ReferenceProfile, reference_columns
from exporter.snapshot import ModelSnapshot, compute
from exporter.tailing import (
    Follower,
    LineChunk,
    LongLine,
    ParquetCorrupt,
    ParquetReady,
    Truncated,
)
from exporter.thresholds import Thresholds
from exporter.watching import watch_root
from exporter.window import Records, Window

log = logging.getLogger(__name__)

LOGGED_REJECTIONS_PER_POLL = 10  # bad lines named individually per poll; the rest are summed


class ModelPipeline:
    """Ingestion and statistics of one model (ingest and compute run on different threads)."""

    def __init__(self, config: ModelConfig, profile: ReferenceProfile) -> None:
        self.config = config
        self.profile = profile
        self.monitored = reference_columns(config)
        self.columns = list(self.monitored)
        if config.timestamp_column:
            self.columns.append(ColumnSpec(config.timestamp_column, TIME))
        numbers = [c.name for c in self.monitored if c.kind == NUMBER]
        codes = [c.name for c in self.monitored if c.kind == CATEGORY]
        self.window = Window(numbers, codes, rows=config.window.rows,
                             duration=config.window.duration)
        self.follower = Follower(config.logs.path, config.logs.format, config.logs.max_line_bytes)
        self.counters = ModelCounters([c.name for c in self.columns],
                                      [f.name for f in config.features])
        self.thresholds = Thresholds(config.name, profile.rows)
        self.snapshot: ModelSnapshot | None = None
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._last_compute = 0.0
        self._logged = 0
        self._said_missing = False

    # -- ingestion (ingest thread) -------------------------------------------------------------

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

    def start(self) -> None:
        """Track existing files, reading only what the window needs."""
        newer = None
        if self.config.window.duration is not None:
            newer = time.time() - self.config.window.duration
        self.follower.start(self.config.window.rows, newer)

    def ingest(self) -> int:
        """Read everything new; returns the number of records added."""
        self._logged = 0
        added = 0
        for event in self.follower.poll():
            if isinstance(event, LineChunk):
                added += self._lines(event)
            elif isinstance(event, LongLine):
                self._reject(event.path, Rejection(event.line or 0, "too_long",
                                                   f"{event.length} bytes"))
                self.counters.add_batch(0, {"too_long": 1}, {}, None)
            elif isinstance(event, ParquetReady):
                added += self._parquet(event.path)
            elif isinstance(event, ParquetCorrupt):
                log.warning("parquet file rejected", extra={"file": event.path,
                                                             "reason": event.reason})
                self.counters.file_rejected(event.reason)
            elif isinstance(event, Truncated):
                self.counters.truncated()
        if self._logged > LOGGED_REJECTIONS_PER_POLL:
            log.warning("more records rejected", extra={
                "model": self.config.name, "count": self._logged - LOGGED_REJECTIONS_PER_POLL})
        return added

    def _lines(self, chunk: LineChunk) -> int:
        batch, rejections = parse_jsonl(chunk.data, self.columns,
                                        first_line=chunk.first_line or 0,
                                        max_line_bytes=self.config.logs.max_line_bytes)
        for rejection in rejections:
            self._reject(chunk.path, rejection, chunk.first_line is None)
        return self._add(batch)

    def _parquet(self, path: str) -> int:
        try:
            batch = parse_parquet(path, self.columns)
        except (OSError, ExporterError, Exception) as exc:  # noqa: BLE001 - any read failure
            log.warning("parquet file rejected", extra={"file": path, "reason": "corrupt",
                                                         "error": str(exc)[:200]})
            self.counters.file_rejected("corrupt")
            return 0
        return self._add(batch)

    def _reject(self, path: str, rejection: Rejection, line_unknown: bool = False) -> None:
        self._logged += 1
        if self._logged <= LOGGED_REJECTIONS_PER_POLL:
            where = {"file": path, "reason": rejection.reason, "detail": rejection.detail}
            if not line_unknown and rejection.line:
                where["line"] = str(rejection.line)
            log.warning("record rejected", extra=where)

    def _add(self, batch: Batch) -> int:
        now = time.time()
        records = self._encode(batch, now)
        self.window.append(records)
        newest = float(np.nanmax(records.times)) if records.rows else None
        self.counters.add_batch(batch.rows, batch.rejected, batch.invalid, newest)
        with self._pending_lock:
            self._pending += batch.rows
        return batch.rows

    def _encode(self, batch: Batch, now: float) -> Records:
        codes = {}
        for spec in self.monitored:
            if spec.kind == CATEGORY:
                ref = self.profile.columns[spec.name]
                assert isinstance(ref, CategoricalReference)
                codes[spec.name] = ref.encode(batch.categories[spec.name])
        numbers = {s.name: batch.numbers[s.name] for s in self.monitored if s.kind == NUMBER}
        times = np.full(batch.rows, now)
        if self.config.timestamp_column:
            own = batch.numbers[self.config.timestamp_column]
            times = np.where(np.isnan(own), now, own)
        return Records(batch.rows, numbers, codes, times)

    # -- statistics (compute thread) ------------------------------------------------------------

    def due(self, now: float) -> bool:
        """New records (or a duration window, whose content ages) and update_interval elapsed."""
        if self.snapshot is None:
            return True
        if now - self._last_compute < self.config.update_interval:
            return False
        return self._pending > 0 or self.config.window.duration is not None

    def recompute(self, now: float) -> ModelSnapshot:
        """Compute a new snapshot from the window and publish it atomically."""
        with self._pending_lock:
            self._pending = 0
        self._last_compute = now
        snapshot = compute(self.window.view(now), self.profile, self.config, self.thresholds)
        for feature in snapshot.features:
            self.counters.observe_detection(feature.name, feature.detected)
        self.snapshot = snapshot  # a single reference assignment: scrapes see old or new
        return snapshot

    def state(self) -> ModelState:
        """Immutable view for the collector."""
        return ModelState(self.config.name, self.profile,
                          tuple(f.name for f in self.config.features),
                          self.config.prediction.column if self.config.prediction else None,
                          self.snapshot, self.counters.values())

    def close(self) -> None:
        """Release file descriptors."""
        self.follower.close()
