"""Replay (SPEC 7): the history ``run`` would have published, from the logs as they are.

Each model's logs are read once, in the order ``run`` reads them (files by modification time,
then name; lines in order), in the bounded batches the reader gives. A model's virtual clock is
the running maximum of its records' timestamps: it never goes backwards, so a record stamped
earlier than one before it enters at the current clock (keeping its own timestamp as its record
time, as ``run`` would), and a record without a valid timestamp (unparseable, or more than
``MAX_FUTURE_SECONDS`` ahead of the wall clock, which ``run`` would have refused too) is counted
as invalid and takes the current clock. Batches are cut at step boundaries, so that before step
``t`` is written exactly the records whose clock is ``<= t`` have been added, each slice with its
last record's clock as ``now``. Then each model is recomputed at ``t`` if ``run``'s scheduler
would have recomputed it (new records and ``update_interval`` elapsed, or a duration window),
and every model's state is written as one timestamped step of the history (``history``).

Feedback labels carry no time: a feedback file's labels enter at the file's modification time
(never before the labels read before them), between the predictions around that time.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from exporter.collector import DriftCollector
from exporter.config import Config, ModelConfig
from exporter.counters import ModelCounters
from exporter.errors import ConfigError, ExporterError
from exporter.history import HistoryWriter
from exporter.parsing import TIME, Batch, ColumnSpec
from exporter.pipeline import ModelPipeline
from exporter.reader import LogReader
from exporter.reference import load_reference
from exporter.sources import ModelSource
from exporter.stats.allocator import limit_arenas, release_free_memory, use_system_arrow_pool
from exporter.window import MAX_FUTURE_SECONDS

log = logging.getLogger(__name__)

PROGRESS_LOG_SECONDS = 5.0  # a progress log line this often when stderr is not a terminal
PROGRESS_TERMINAL_SECONDS = 0.5  # the terminal's progress line is redrawn this often


@dataclass(frozen=True)
class Span:
    """The steps of a replay: ``start``, ``start + step``, ... up to ``end`` included."""

    start: float
    end: float
    step: float

    @property
    def steps(self) -> int:
        """How many steps the span holds."""
        # a step within a microsecond of ``end`` counts: epoch seconds near 1.7e9 are only
        # exact to a quarter of a microsecond, and decimal steps are inexact in binary
        return math.floor((self.end - self.start + 1e-6) / self.step) + 1

    def times(self) -> Iterator[float]:
        """The step times, computed from the start (no accumulated rounding)."""
        for index in range(self.steps):
            yield self.start + index * self.step


@dataclass(frozen=True)
class ReplayResult:
    """What a replay wrote."""

    output: Path | None
    steps: int
    records: int
    complete: bool  # False when stopped by a signal: the file covers the steps written
    last_step: float | None


def parse_time(text: str, flag: str) -> float:
    """A ``--from``/``--to`` value: epoch seconds or an RFC 3339 time with its offset."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(text.replace("z", "Z"))
            if moment.tzinfo is not None and "T" in text.upper():
                value = moment.timestamp()
    if not math.isfinite(value):
        msg = (f"{flag}={text!r}: expected epoch seconds or an RFC 3339 time such as "
               "2026-11-30T08:00:00Z")
        raise ExporterError(msg)
    return value


def require_timestamps(config: Config) -> None:
    """Replay needs every model's ``timestamp_column``; names each model without one."""
    problems = [f"models[{index}] ({model.name}): replay needs timestamp_column (the clock of "
                "a replay is the records' own timestamps)"
                for index, model in enumerate(config.models) if not model.timestamp_column]
    if problems:
        raise ConfigError(problems)


def default_step(config: Config) -> float:
    """The smallest ``update_interval`` of the models: no model is written less often than
    ``run`` would have recomputed it."""
    return min(model.update_interval for model in config.models)


def future_limit() -> float:
    """Record timestamps beyond this are invalid, as ``run`` would have found them."""
    return time.time() + MAX_FUTURE_SECONDS


def record_range(config: Config, limit: float) -> tuple[float, float] | None:
    """The first and last valid record timestamps over every model's logs (one pass reading
    the timestamp column only, a batch at a time); None when there is none."""
    low, high = math.inf, -math.inf
    quiet = logging.getLogger("exporter.reader")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # bad lines are named once, by the replay itself
    try:
        for model in config.models:
            column = model.timestamp_column
            assert column is not None
            reader = LogReader(model.name, model.logs.path, model.logs.format,
                               model.logs.max_line_bytes, [ColumnSpec(column, TIME)],
                               ModelCounters([column], []))
            try:
                reader.follower.start(None, None)
                for batch in reader.batches():
                    times = batch.numbers[column]
                    valid = times[times <= limit]  # NaN compares False
                    if valid.shape[0]:
                        low = min(low, float(valid.min()))
                        high = max(high, float(valid.max()))
            finally:
                reader.close()
    finally:
        quiet.setLevel(level)
    return (low, high) if low <= high else None


def clock_batch(batch: Batch, column: str, clock: float,
                limit: float) -> tuple[Batch, NDArray[np.float64]]:
    """The batch with each record's time settled, and the clock after each record.

    The clock is the running maximum of the valid timestamps, from ``clock``; a record without
    a valid timestamp takes the clock (timestamps beyond ``limit`` are counted as invalid
    here, unparseable ones were counted by the parser)."""
    own = batch.numbers[column]
    future = own > limit
    valid = ~np.isnan(own) & ~future
    clocks = np.maximum.accumulate(np.where(valid, own, clock)) if batch.rows else own.copy()
    clocks = np.maximum(clocks, clock)
    times = np.where(valid, own, clocks)
    invalid = dict(batch.invalid)
    ahead = int(np.count_nonzero(future))
    if ahead:
        invalid[column] = invalid.get(column, 0) + ahead
    return replace(batch, numbers={**batch.numbers, column: times}, invalid=invalid), clocks


def slice_batch(batch: Batch, start: int, stop: int) -> Batch:
    """Rows ``start:stop`` of a batch; the first slice carries the batch's counts (rejected
    lines and invalid values are not tied to rows that could be cut)."""
    counts = start == 0
    return Batch(stop - start, {k: v[start:stop] for k, v in batch.numbers.items()},
                 {k: v[start:stop] for k, v in batch.categories.items()},
                 dict(batch.invalid) if counts else {}, dict(batch.rejected) if counts else {},
                 {k: replace(c, codes=c.codes[start:stop]) for k, c in batch.coded.items()})


class PredictionStream:
    """One model's prediction records in reading order, handed out up to a clock."""

    def __init__(self, reader: LogReader, column: str, clock: float, limit: float) -> None:
        self.column = column
        self.clock = clock
        self.limit = limit
        self._batches = reader.batches()
        self._batch: Batch | None = None
        self._clocks: NDArray[np.float64] = np.empty(0)
        self._at = 0
        self.exhausted = False

    def _next(self) -> bool:
        while self._batch is None or self._at >= self._batch.rows:
            batch = next(self._batches, None)
            if batch is None:
                self.exhausted = True
                self._batch = None
                return False
            self._batch, self._clocks = clock_batch(batch, self.column, self.clock, self.limit)
            self._at = 0
            if batch.rows == 0:  # only counts (rejected lines): they enter at the clock
                return True
        return True

    def until(self, moment: float) -> Iterator[tuple[Batch, float]]:
        """Slices of the records whose clock is at most ``moment``, each with its clock."""
        while not self.exhausted and self._next():
            batch = self._batch
            assert batch is not None
            if batch.rows == 0:
                self._batch = None
                yield batch, self.clock
                continue
            stop = int(np.searchsorted(self._clocks, moment, side="right"))
            if stop <= self._at:
                return
            part = batch if self._at == 0 and stop == batch.rows else slice_batch(
                batch, self._at, stop)
            self._at = stop
            self.clock = float(self._clocks[stop - 1])
            yield part, self.clock
            if stop < batch.rows:
                return


class FeedbackStream:
    """One model's feedback labels in reading order, each batch at its file's modification
    time (never before the labels read before it)."""

    def __init__(self, reader: LogReader) -> None:
        self._batches = reader.file_batches()
        self._next: tuple[float, Batch] | None = None
        self.clock = -math.inf
        self._pull()

    def _pull(self) -> None:
        item = next(self._batches, None)
        if item is None:
            self._next = None
            return
        path, batch = item
        try:
            modified = os.stat(path).st_mtime
        except OSError:
            modified = self.clock
        self.clock = max(self.clock, modified)
        self._next = (self.clock, batch)

    def peek(self) -> float | None:
        """When the next feedback batch enters (None when all were read)."""
        return None if self._next is None else self._next[0]

    def take(self) -> Batch:
        """The next feedback batch."""
        assert self._next is not None
        batch = self._next[1]
        self._pull()
        return batch


class ModelReplay:
    """One model's pipeline fed from its logs by the virtual clock."""

    def __init__(self, config: ModelConfig, start: float, limit: float) -> None:
        self.pipeline = ModelPipeline(config, load_reference(config))
        self.source = ModelSource.of(self.pipeline)
        self.source.reader.follower.start(None, None)  # every record, from the first
        column = config.timestamp_column
        assert column is not None
        self.predictions = PredictionStream(self.source.reader, column, start, limit)
        self.feedback: FeedbackStream | None = None
        if self.source.feedback_reader is not None:
            self.source.feedback_reader.follower.start(None, None)
            self.feedback = FeedbackStream(self.source.feedback_reader)
        self.records = 0

    def advance(self, moment: float) -> None:
        """Add every record (and feedback label) whose clock is at most ``moment``."""
        if self.feedback is not None:
            entry = self.feedback.peek()
            while entry is not None and entry <= moment:
                self._add_until(entry)
                self.pipeline.add_feedback(self.feedback.take(), entry)
                entry = self.feedback.peek()
        self._add_until(moment)

    def _add_until(self, moment: float) -> None:
        for batch, clock in self.predictions.until(moment):
            self.records += self.pipeline.add(batch, clock)

    def evaluate(self, moment: float) -> None:
        """Recompute at ``moment`` when ``run``'s scheduler would have."""
        if self.pipeline.due(moment):
            self.pipeline.recompute(moment, force=False)

    def close(self) -> None:
        """Release the source's descriptors."""
        self.source.close()


class Progress:
    """Records read, steps written, rate and ETA: one redrawn line on a terminal, a log line
    every ``PROGRESS_LOG_SECONDS`` otherwise."""

    def __init__(self, steps: int, *, terminal: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.steps = steps
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._clock = clock
        self._started = clock()
        self._shown = self._started
        self._drawn = False

    def update(self, steps: int, records: int, *, final: bool = False) -> None:
        """Show progress when due (always when ``final``)."""
        now = self._clock()
        every = PROGRESS_TERMINAL_SECONDS if self.terminal else PROGRESS_LOG_SECONDS
        if not final and now - self._shown < every:
            return
        self._shown = now
        elapsed = max(now - self._started, 1e-9)
        rate = records / elapsed
        eta = (self.steps - steps) * elapsed / steps if steps else math.inf
        if self.terminal:
            sys.stderr.write(f"\rreplay: {records} records read, {steps}/{self.steps} steps "
                             f"written, {rate:,.0f} records/s, ETA {_clock_text(eta)}  ")
            if final:
                sys.stderr.write("\n")
            sys.stderr.flush()
            self._drawn = True
        elif not final:
            log.info("replay progress", extra={"records": records, "steps": steps,
                                               "of_steps": self.steps,
                                               "records_per_second": round(rate),
                                               "eta_seconds": round(eta)
                                               if math.isfinite(eta) else -1})


def _clock_text(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def plan(config: Config, start: float | None, end: float | None, step: float | None,
         limit: float) -> Span:
    """The replay's steps, the missing bounds taken from the logs (usage errors raised)."""
    require_timestamps(config)
    if step is not None and step <= 0:
        raise ExporterError(f"--step must be positive, got {step}s")
    if start is not None and end is not None and start > end:
        raise ExporterError(f"--from ({start}) is after --to ({end}): nothing to replay")
    if start is None or end is None:
        found = record_range(config, limit)
        if found is None:
            msg = ("no record with a valid timestamp in the models' logs: nothing to replay "
                   "(give --from and --to to write the empty history of a time range)")
            raise ExporterError(msg)
        start = found[0] if start is None else start
        end = found[1] if end is None else end
        if start > end:
            raise ExporterError(f"--from ({start}) is after the last record ({end}) "
                                "in the logs: nothing to replay")
    return Span(start, end, step if step is not None else default_step(config))


def replay(config: Config, output: str | os.PathLike[str], span: Span, limit: float, *,
           stop_requested: Callable[[], bool] = lambda: False,
           progress: Progress | None = None) -> ReplayResult:
    """Write the history of ``span`` to ``output``; stops cleanly (a valid partial file) when
    ``stop_requested()`` turns true between two steps."""
    limit_arenas()  # as run does: the same allocator settings, the same memory bounds
    use_system_arrow_pool()
    models = [ModelReplay(model, span.start, limit) for model in config.models]
    release_free_memory()  # what reading the references left behind
    collector = DriftCollector(lambda: [m.pipeline.state() for m in models])
    writer = HistoryWriter(output)
    progress = progress or Progress(span.steps)
    last: float | None = None
    records = 0
    try:
        for moment in span.times():
            if stop_requested():
                break
            for model in models:
                model.advance(moment)
                model.evaluate(moment)
            writer.write_step(collector, moment)
            last = moment
            records = sum(m.records for m in models)
            progress.update(writer.steps, records)
        progress.update(writer.steps, records, final=True)
        complete = writer.steps == span.steps
        path = writer.close() if writer.steps else None
        if not writer.steps:
            writer.abort()
    except BaseException:
        writer.abort()
        raise
    finally:
        for model in models:
            model.close()
    return ReplayResult(path, writer.steps, records, complete, last)
