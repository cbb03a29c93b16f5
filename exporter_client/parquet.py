"""Parquet prediction logs: records buffered and written in batches, each batch one file
written under a temporary name and renamed once complete (the exporter ignores ``*.tmp``)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from exporter_client.naming import LogFileNamer, check_rollover
from exporter_client.records import check_record, normalize_value

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_BATCH_ROWS = 1000
DEFAULT_MAX_AGE = 60.0


class ParquetLogWriter:
    """Thread-safe Parquet writer: ``write(record)`` buffers; full batches become files.

    A batch is written when it holds ``batch_rows`` records, when its oldest record is
    ``max_age`` seconds old (checked on each ``write`` and, unless ``background=False``, by a
    small daemon thread so a quiet app still flushes), on ``flush()`` and on ``close()``.
    Each batch goes to ``{prefix}-{UTC time}-{sequence}.parquet.tmp``, is fsynced and renamed
    to ``....parquet``, so the exporter only ever sees complete files. Column types are inferred
    per batch unless ``schema`` (a ``pyarrow.Schema``) is given; a column whose values pyarrow
    cannot put in one type (say numbers and free text) is written as text, which the exporter
    reads like JSON numeric strings.
    """

    suffix = ".parquet"

    def __init__(self, directory: str | os.PathLike[str], *, prefix: str = "predictions",
                 batch_rows: int = DEFAULT_BATCH_ROWS, max_age: float = DEFAULT_MAX_AGE,
                 keep_files: int | None = None, schema: pa.Schema | None = None,
                 compression: str = "snappy", background: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        import pyarrow  # noqa: F401  # fail at construction, not at the first flush

        if batch_rows < 1:
            msg = f"batch_rows: expected at least 1, got {batch_rows!r}"
            raise ValueError(msg)
        check_rollover(max_age, keep_files)
        self.batch_rows = batch_rows
        self.max_age = max_age
        self.keep_files = keep_files
        self.schema = schema
        self.compression = compression
        self._clock = clock
        self._namer = LogFileNamer(directory, prefix, self.suffix, clock)
        self._lock = threading.Lock()  # guards the buffer
        self._write_lock = threading.Lock()  # one batch file at a time, in order
        self._buffer: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._closed = False
        self._stop = threading.Event()
        self.records_written = 0
        self.files_written: list[Path] = []
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._flush_loop, name="parquet-log-flush",
                                            daemon=True)
            self._thread.start()

    def write(self, record: Mapping[str, Any]) -> None:
        """Buffer one record; write the batch if it is full or too old."""
        row = {k: normalize_value(v) for k, v in check_record(record).items()}
        with self._lock:
            if self._closed:
                msg = "write() on a closed ParquetLogWriter"
                raise ValueError(msg)
            if not self._buffer:
                self._oldest = self._clock()
            self._buffer.append(row)
            due = len(self._buffer) >= self.batch_rows or self._age_due()
            batch = self._take() if due else None
        if batch:
            self._write_batch(batch)

    def flush(self) -> Path | None:
        """Write whatever is buffered now; return the new file (None when nothing was)."""
        with self._lock:
            batch = self._take()
        return self._write_batch(batch) if batch else None

    def flush_if_due(self) -> Path | None:
        """Write the buffer if its oldest record is ``max_age`` seconds old."""
        with self._lock:
            batch = self._take() if self._buffer and self._age_due() else None
        return self._write_batch(batch) if batch else None

    def _age_due(self) -> bool:
        return self._clock() - self._oldest >= self.max_age

    def _take(self) -> list[dict[str, Any]]:
        batch, self._buffer = self._buffer, []
        return batch

    def _flush_loop(self) -> None:
        tick = min(1.0, self.max_age / 4)
        while not self._stop.wait(tick):
            self.flush_if_due()

    def _write_batch(self, batch: list[dict[str, Any]]) -> Path:
        import pyarrow.parquet as pq

        table = _table(batch, self.schema)
        with self._write_lock:
            path = self._namer.next_path()
            tmp = path.with_name(path.name + ".tmp")
            try:
                pq.write_table(table, tmp, compression=self.compression)
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self.records_written += len(batch)
            self.files_written.append(path)
            if self.keep_files is not None:
                self._namer.prune(self.keep_files)
        return path

    def close(self) -> None:
        """Stop the flush thread and write the last partial batch. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def __enter__(self) -> ParquetLogWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _table(rows: list[dict[str, Any]], schema: pa.Schema | None) -> pa.Table:
    """Rows -> a table; columns pyarrow cannot type as one become text (None stays null)."""
    import pyarrow as pa

    if schema is not None:
        return pa.Table.from_pylist(rows, schema=schema)
    names = list(dict.fromkeys(k for row in rows for k in row))
    arrays = []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            arrays.append(pa.array([None if v is None else _as_text(v) for v in values],
                                   type=pa.string()))
    return pa.Table.from_arrays(arrays, names=names)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
