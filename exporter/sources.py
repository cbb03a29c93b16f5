"""The file side of one model: its prediction logs and feedback files, read into batches.

A ``ModelSource`` owns the model's ``LogReader``s; ``feed`` passes what it reads into the
model's ``ModelPipeline`` with the time each batch was read. The pipeline core never touches a
file; this module never computes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from exporter.config import ModelConfig
from exporter.counters import ModelCounters
from exporter.parsing import Batch, ColumnSpec
from exporter.pipeline import ModelPipeline
from exporter.reader import LogReader
from exporter.watching import watch_root

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
FEEDBACK = "feedback"


@dataclass(frozen=True)
class Read:
    """One batch read from a model's files."""

    kind: str  # PREDICTIONS | FEEDBACK
    batch: Batch
    # More than one read-sized block of predictions was pending: the model is catching up.
    behind: bool = False


class ModelSource:
    """Follows one model's log glob (and feedback glob) and yields what is new (ingest thread)."""

    def __init__(self, config: ModelConfig, columns: Sequence[ColumnSpec],
                 feedback_columns: Sequence[ColumnSpec] | None,
                 counters: ModelCounters) -> None:
        self.config = config
        self.reader = LogReader(config.name, config.logs.path, config.logs.format,
                                config.logs.max_line_bytes, columns, counters)
        self.feedback_reader: LogReader | None = None
        label = config.label
        if feedback_columns is not None and label is not None and label.feedback is not None:
            self.feedback_reader = LogReader(config.name, label.feedback.path,
                                             label.feedback.format, config.logs.max_line_bytes,
                                             feedback_columns, counters)
        self._said_missing = False

    @classmethod
    def of(cls, pipeline: ModelPipeline) -> ModelSource:
        """The source that reads the columns a pipeline encodes, counting into its counters."""
        return cls(pipeline.config, pipeline.columns, pipeline.feedback_columns,
                   pipeline.counters)

    def start(self, now: float) -> None:
        """Track existing files, reading back only what the window needs at ``now``: the last
        ``rows`` records (times ``max_versions`` when each version has a window, times
        ``max_segments + 1`` with segments: docs/segments.md), or the records newer than
        ``now - duration``."""
        window = self.config.window
        newer = None if window.duration is None else now - window.duration
        rows = window.rows
        if rows is not None and self.config.version_column is not None:
            rows *= self.config.max_versions  # each version has a window of its own
        if rows is not None and self.config.segments is not None:
            rows *= self.config.segments.max_segments + 1  # so has each segment (bounded)
        self.reader.follower.start(rows, newer)
        if self.feedback_reader is not None:
            self.feedback_reader.follower.start(None, newer)

    def read(self) -> Iterator[Read]:
        """Everything new: prediction batches, then feedback batches."""
        for index, batch in enumerate(self.reader.batches()):
            yield Read(PREDICTIONS, batch, behind=index >= 1)
        if self.feedback_reader is not None:
            for batch in self.feedback_reader.batches():
                yield Read(FEEDBACK, batch)

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

    def close(self) -> None:
        """Release file descriptors."""
        self.reader.close()
        if self.feedback_reader is not None:
            self.feedback_reader.close()


def feed(source: ModelSource, pipeline: ModelPipeline, clock: Callable[[], float]) -> int:
    """Pass everything new from ``source`` into ``pipeline``, each batch with ``clock()`` at
    the time it was read; returns the prediction records added.

    While more than one read-sized block is pending the pipeline counts as catching up and its
    statistics wait; it stops counting so once everything pending is read."""
    added = 0
    try:
        for read in source.read():
            if read.kind == PREDICTIONS:
                pipeline.set_catching_up(read.behind)
                added += pipeline.add(read.batch, clock())
            else:
                pipeline.set_catching_up(False)
                pipeline.add_feedback(read.batch, clock())
    finally:
        pipeline.set_catching_up(False)
    return added
