"""Labels that arrive later, in other files, joined to window records by ``id_column``.

Feedback for ids not (yet) in a window waits in a bounded buffer, where a later prediction with
that id picks it up (``fill``); what leaves the buffer unmatched is counted in
``drift_feedback_unmatched_total``, what is joined in ``drift_feedback_matched_total``."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from exporter.config import ModelConfig
from exporter.counters import ModelCounters
from exporter.parsing import CATEGORY, NUMBER, Batch, ColumnSpec
from exporter.quality import label_is_number
from exporter.routing import WindowKey
from exporter.values import missing_objects
from exporter.window import Records, Window

DURATION_FEEDBACK_BUFFER = 100_000  # pending feedback kept for a duration window


def feedback_columns(config: ModelConfig) -> list[ColumnSpec] | None:
    """The columns read from feedback files (None when labels are not joined by id)."""
    label = config.label
    if label is None or label.feedback is None or config.id_column is None:
        return None
    return [ColumnSpec(config.id_column, CATEGORY),
            ColumnSpec(label.column, NUMBER if label_is_number(config) else CATEGORY)]


class FeedbackJoiner:
    """The pending-label buffer of one model and the join into its windows (ingest thread)."""

    def __init__(self, config: ModelConfig, counters: ModelCounters) -> None:
        assert config.label is not None
        assert config.id_column is not None
        self.id_column = config.id_column
        self.label_column = config.label.column
        self.numeric = label_is_number(config)
        self.limit = config.window.rows or DURATION_FEEDBACK_BUFFER
        self.counters = counters
        self._ids = np.empty(0, dtype=object)
        self._labels: NDArray[np.generic] = np.empty(
            0, dtype=np.float64 if self.numeric else np.object_)

    @property
    def pending(self) -> int:
        """Labels waiting for their prediction."""
        return int(self._ids.shape[0])

    def fill(self, records: Records) -> None:
        """Labels that arrived before their prediction fill the new records' missing labels
        (in place: the encoder gave the records their own copy of the label column)."""
        if not self._ids.shape[0] or not records.rows:
            return
        import pandas as pd  # only when labels arrive before their predictions

        ids = records.objects[self.id_column]
        target: NDArray[np.generic] = (records.numbers[self.label_column] if self.numeric
                                       else records.objects[self.label_column])
        missing = np.isnan(target) if self.numeric else missing_objects(target)
        pending = pd.Index(self._ids, dtype=object)
        newest = ~pending.duplicated(keep="last")
        where = pd.Index(self._ids[newest], dtype=object).get_indexer(
            pd.Index(ids, dtype=object))
        fill = (where >= 0) & missing
        target[fill] = self._labels[newest][where[fill]]
        used = np.isin(self._ids, ids[where >= 0])
        self._ids = self._ids[~used]
        self._labels = self._labels[~used]

    def join(self, batch: Batch, windows: list[tuple[WindowKey, Window]]
             ) -> list[tuple[WindowKey, int]]:
        """Join a feedback batch into the windows; returns the labels set per window key (the
        rest wait in the buffer)."""
        # Feedback lines that could not be read are counted apart from prediction records.
        rejected = {f"feedback_{reason}": count for reason, count in batch.rejected.items()}
        self.counters.add_batch(0, rejected, {}, None)
        ids = batch.categories[self.id_column]
        labels = (batch.numbers[self.label_column] if self.numeric
                  else batch.categories[self.label_column])
        usable = ~missing_objects(ids) & ~missing_objects(labels)
        ids, labels = ids[usable], labels[usable]
        matched = np.zeros(ids.shape[0], dtype=bool)
        joined = []
        for key, window in windows:
            found = window.assign(self.id_column, ids, self.label_column, labels)
            if found.any():
                joined.append((key, int(found.sum())))
            matched |= found
        self.counters.add_feedback(int(matched.sum()))
        self._keep(ids[~matched], labels[~matched])
        return joined

    def _keep(self, ids: NDArray[np.object_], labels: NDArray[np.generic]) -> None:
        self._ids = np.concatenate((self._ids, ids))
        self._labels = np.concatenate((self._labels, labels))
        overflow = self._ids.shape[0] - self.limit
        if overflow > 0:
            self._ids = self._ids[overflow:]
            self._labels = self._labels[overflow:]
            self.counters.feedback_unmatched(overflow)
