"""Batch -> Records: what a model's window holds of each parsed record.

Categorical features become codes of their reference's categories, numbers stay float64, the
label (and a categorical prediction's text, for quality) ride along as objects or numbers, and
each record gets its time (``window.record_times``: its own timestamp unless missing or too far
ahead of the clock it was read by). The encoder also decides which log columns the model reads
and the layout of the window that holds its records."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from exporter.config import ModelConfig
from exporter.parsing import CATEGORY, NUMBER, TIME, Batch, ColumnSpec
from exporter.quality import label_is_number
from exporter.reference import CategoricalReference, ReferenceProfile, reference_columns
from exporter.window import MAX_FUTURE_SECONDS, Records, Window, record_times

log = logging.getLogger(__name__)

FUTURE_LOG_INTERVAL = 60.0  # seconds between warnings about timestamps in the future


@dataclass(frozen=True)
class Encoded:
    """A batch as window records, with its invalid values (timestamps too far ahead included)."""

    records: Records
    invalid: Mapping[str, int]
    newest: float | None  # the newest record time, None for an empty batch


def join_column(config: ModelConfig) -> str | None:
    """The id column, when feedback labels are joined by it (else ids are not even read: a
    unique string per record is the costliest column to parse)."""
    label = config.label
    return config.id_column if label is not None and label.feedback else None


class Encoder:
    """Encodes one model's batches against its reference (used by the ingest thread only)."""

    def __init__(self, config: ModelConfig, profile: ReferenceProfile) -> None:
        self.config = config
        self.profile = profile
        self.monitored = reference_columns(config)
        self.join_id = join_column(config)
        self.columns = self._log_columns()
        self._future_logged = -math.inf

    def _log_columns(self) -> list[ColumnSpec]:
        config = self.config
        columns = list(self.monitored)
        extra: list[ColumnSpec] = []
        if config.timestamp_column:
            extra.append(ColumnSpec(config.timestamp_column, TIME))
        if config.label is not None:
            extra.append(ColumnSpec(config.label.column,
                                    NUMBER if label_is_number(config) else CATEGORY))
        segment = config.segments.column if config.segments else None
        for name in (self.join_id, config.version_column, segment):
            if name:
                extra.append(ColumnSpec(name, CATEGORY))
        known = {c.name for c in columns}
        return columns + [c for c in extra if c.name not in known]

    def new_window(self) -> Window:
        """An empty window that holds what ``encode`` returns."""
        config = self.config
        numbers = [c.name for c in self.monitored if c.kind == NUMBER]
        codes = [c.name for c in self.monitored if c.kind == CATEGORY]
        objects: list[str] = []
        if self.join_id:
            objects.append(self.join_id)
        if config.label is not None:
            if label_is_number(config):
                numbers.append(config.label.column)
            else:
                objects.append(config.label.column)
            if config.prediction is not None and config.prediction.type == "categorical":
                objects.append(config.prediction.column)  # as text, for quality
        return Window(numbers, codes, rows=config.window.rows, duration=config.window.duration,
                      objects=tuple(dict.fromkeys(objects)))

    def encode(self, batch: Batch, now: float) -> Encoded:
        """The batch as window records; ``now`` is the clock the records are read by."""
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
        if self.join_id:
            objects[self.join_id] = batch.categories[self.join_id]
        if config.label is not None:
            column = config.label.column
            # copies: feedback labels are filled into them later (FeedbackJoiner.fill)
            if label_is_number(config):
                numbers[column] = batch.numbers[column].copy()
            else:
                objects[column] = batch.categories[column].copy()
            if config.prediction is not None and config.prediction.type == "categorical":
                objects[config.prediction.column] = batch.categories[config.prediction.column]
        own = batch.numbers[config.timestamp_column] if config.timestamp_column else None
        times, future = record_times(own, batch.rows, now)
        invalid = dict(batch.invalid)
        if future:
            assert config.timestamp_column is not None
            self._future_timestamps(batch, future, now)
            invalid[config.timestamp_column] = invalid.get(config.timestamp_column, 0) + future
        newest = float(np.nanmax(times)) if batch.rows else None
        return Encoded(Records(batch.rows, numbers, codes, times, objects), invalid, newest)

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
