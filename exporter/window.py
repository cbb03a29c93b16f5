"""A bounded sliding window of recent records: the last N rows, or the rows of the last D seconds.

Columns live in preallocated ring buffers (float64 numbers, int32 category codes, float64 record
times), so memory is fixed by the window size, whatever the log volume. A duration window grows
its rings by doubling up to ``DURATION_MAX_ROWS`` and then keeps the newest rows. Rows leave a
duration window when a view is taken: the leading (oldest arrived) rows older than ``now - D`` are
dropped from the rings; when record times arrive out of order, older rows behind a newer one stay
in the rings until it leaves too, but are never part of a view.

A record's time is its own timestamp unless that is missing, invalid, or more than
``MAX_FUTURE_SECONDS`` ahead of the clock when it is read (``record_times``): then it is the time
it was read. A record stamped in the future would otherwise stay in a duration window until that
future and hold ``drift_last_record_timestamp_seconds`` up there (one record at ``1e300`` would
keep a staleness alert silent for ever). Old timestamps are kept: replaying history needs them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

DURATION_MAX_ROWS = 1_000_000
# How far ahead of the reading clock a record's own timestamp may be: clocks of hosts kept by NTP
# agree far better; Loki and Mimir accept samples up to 10 minutes ahead (creation_grace_period).
MAX_FUTURE_SECONDS = 600.0
_INITIAL_CAPACITY = 4096


@dataclass(frozen=True)
class Records:
    """Encoded records ready for the window: numbers, category codes and record times."""

    rows: int
    numbers: Mapping[str, NDArray[np.float64]]
    codes: Mapping[str, NDArray[np.int32]]
    times: NDArray[np.float64]  # the record's own timestamp, else when it was read
    # by column name: ids, categorical labels, a categorical prediction's text (for quality)
    objects: Mapping[str, NDArray[np.object_]] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowView:
    """An immutable copy of the window's rows, oldest first."""

    rows: int
    numbers: Mapping[str, NDArray[np.float64]]
    codes: Mapping[str, NDArray[np.int32]]
    times: NDArray[np.float64]
    objects: Mapping[str, NDArray[np.object_]] = field(default_factory=dict)
    # Which rows these are, so that the statistics can update what they derived from the last
    # view instead of starting over: the sequence number of the first row (rows are numbered
    # as they are appended; -1 when the view is not one run of consecutive rows, i.e. a duration
    # window left out older rows behind newer ones), and how often each column's values were
    # changed in place (``Window.assign``) so far.
    first: int = -1
    edits: Mapping[str, int] = field(default_factory=dict)


def record_times(own: NDArray[np.float64] | None, rows: int,
                 now: float) -> tuple[NDArray[np.float64], int]:
    """Each record's time (its own timestamp, else ``now``) and how many were too far ahead.

    ``now`` is the clock the records are read by: the wall clock when following, the replayed
    time when replaying."""
    if own is None:
        return np.full(rows, now), 0
    future = own > now + MAX_FUTURE_SECONDS  # NaN (missing or invalid) compares False
    times = np.where(np.isnan(own) | future, now, own)
    return times, int(np.count_nonzero(future))


class _Ring:
    """One column's ring buffer."""

    def __init__(self, capacity: int, dtype: type[np.generic]) -> None:
        self.data: NDArray[Any] = np.empty(capacity, dtype=dtype)

    def write(self, start: int, values: NDArray[Any]) -> None:
        cap = self.data.shape[0]
        first = min(cap - start, values.shape[0])
        self.data[start:start + first] = values[:first]
        if first < values.shape[0]:
            self.data[: values.shape[0] - first] = values[first:]

    def read(self, start: int, count: int) -> NDArray[Any]:
        cap = self.data.shape[0]
        end = start + count
        if end <= cap:
            return self.data[start:end].copy()
        return np.concatenate((self.data[start:], self.data[: end - cap]))

    def resize(self, start: int, count: int, capacity: int) -> None:
        kept = self.read(start, count)
        self.data = np.empty(capacity, dtype=self.data.dtype)
        self.data[:count] = kept


class Window:
    """The sliding window of one model (thread-safe: ingest appends, statistics read)."""

    def __init__(self, numbers: list[str], codes: list[str], *, rows: int | None,
                 duration: float | None, objects: tuple[str, ...] = ()) -> None:
        if (rows is None) == (duration is None):
            raise ValueError("a window has either rows or a duration")
        self.max_rows = rows if rows is not None else DURATION_MAX_ROWS
        self.duration = duration
        capacity = self.max_rows if rows is not None else min(_INITIAL_CAPACITY, self.max_rows)
        self._numbers = {n: _Ring(capacity, np.float64) for n in numbers}
        self._codes = {c: _Ring(capacity, np.int32) for c in codes}
        self._objects = {o: _Ring(capacity, np.object_) for o in objects}
        self._times = _Ring(capacity, np.float64)
        self._start = 0
        self._count = 0
        self._appended = 0  # rows ever appended: the next row's sequence number
        self._edits: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """Rows the rings can hold now."""
        return int(self._times.data.shape[0])

    def _rings(self) -> list[_Ring]:
        return [*self._numbers.values(), *self._codes.values(), *self._objects.values(),
                self._times]

    def append(self, records: Records) -> None:
        """Add records at the end, dropping the oldest beyond the window's bound."""
        if records.rows == 0:
            return
        skip = max(records.rows - self.max_rows, 0)
        n = records.rows - skip
        with self._lock:
            if self._count + n > self.capacity and self.capacity < self.max_rows:
                new_cap = min(max(self.capacity * 2, self._count + n), self.max_rows)
                for ring in self._rings():
                    ring.resize(self._start, self._count, new_cap)
                self._start = 0
            cap = self.capacity
            write_at = (self._start + self._count) % cap
            for name, ring in self._numbers.items():
                ring.write(write_at, records.numbers[name][skip:])
            for name, ring in self._codes.items():
                ring.write(write_at, records.codes[name][skip:])
            for name, ring in self._objects.items():
                ring.write(write_at, records.objects[name][skip:])
            self._times.write(write_at, records.times[skip:])
            overflow = max(self._count + n - cap, 0)
            self._start = (self._start + overflow) % cap
            self._count = min(self._count + n, cap)
            self._appended += records.rows

    def view(self, now: float) -> WindowView:
        """Copy the rows currently in the window (for a duration window: newer than now - D)."""
        with self._lock:
            times = self._times.read(self._start, self._count)
            keep = None
            if self.duration is not None and self._count:
                recent = times >= now - self.duration
                # rows arrive roughly in time order: drop the leading old ones from the rings
                old = int(np.argmax(recent)) if recent.any() else self._count
                self._start = (self._start + old) % self.capacity
                self._count -= old
                times = times[old:]
                if not recent[old:].all():  # out-of-order times: older rows behind newer ones
                    keep = recent[old:]
            numbers = {k: r.read(self._start, self._count) for k, r in self._numbers.items()}
            codes = {k: r.read(self._start, self._count) for k, r in self._codes.items()}
            objects = {k: r.read(self._start, self._count) for k, r in self._objects.items()}
            first = self._appended - self._count if keep is None else -1
            edits = dict(self._edits)
        if keep is not None:
            numbers = {k: v[keep] for k, v in numbers.items()}
            codes = {k: v[keep] for k, v in codes.items()}
            objects = {k: v[keep] for k, v in objects.items()}
            times = times[keep]
        return WindowView(int(times.shape[0]), numbers, codes, times, objects, first, edits)

    def assign(self, key: str, keys: NDArray[np.object_], column: str,
               values: NDArray[Any]) -> NDArray[np.bool_]:
        """Set ``column`` on the window rows whose ``key`` equals ``keys`` (the newest row of
        each key); returns which keys were found. Used to join late labels by id."""
        if keys.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        import pandas as pd  # only when feedback joins labels by id

        with self._lock:
            present = pd.Index(self._objects[key].read(self._start, self._count), dtype=object)
            newest = ~present.duplicated(keep="last")
            positions = np.flatnonzero(newest)
            found = pd.Index(present[newest], dtype=object).get_indexer(
                pd.Index(keys, dtype=object))
            matched: NDArray[np.bool_] = found >= 0
            slots = (self._start + positions[found[matched]]) % self.capacity
            target = self._numbers.get(column) or self._codes.get(column) or self._objects[column]
            target.data[slots] = values[matched]
            self._edits[column] = self._edits.get(column, 0) + 1
        return matched

    def __len__(self) -> int:
        with self._lock:
            return self._count

