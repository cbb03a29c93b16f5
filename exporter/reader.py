"""Reading one glob of logs into parsed batches, counting and logging what is rejected."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from exporter.counters import ModelCounters
from exporter.parsing import (
    Batch,
    ColumnSpec,
    Rejection,
    parse_jsonl,
    parse_parquet,
    record_lines,
)
from exporter.tail_gzip import COMPRESSED_SUFFIX, GzipFormat, Incomplete
from exporter.tail_jsonl import JsonlFormat
from exporter.tail_parquet import ParquetFormat
from exporter.tailing import (
    CorruptFile,
    Event,
    FileCorrupt,
    FileFormat,
    FileReady,
    Follower,
    LineChunk,
    LongLine,
    Readable,
    Truncated,
    Unreadable,
)

log = logging.getLogger(__name__)

LOGGED_REJECTIONS_PER_POLL = 10  # bad lines named individually per poll; the rest are summed
_prefetch_pool: ThreadPoolExecutor | None = None
_prefetch_lock = threading.Lock()


@dataclass(frozen=True)
class Parsed:
    """A block of lines parsed: the batch, its rejected lines and where they came from."""

    path: str
    line_unknown: bool  # the block's line numbers are not known (read back at start-up)
    batch: Batch
    rejections: list[Rejection]


def _prefetcher() -> ThreadPoolExecutor:
    """The one thread that parses the next block of a catch-up (made on first use)."""
    global _prefetch_pool  # noqa: PLW0603 - one per process, shared by every reader
    with _prefetch_lock:
        if _prefetch_pool is None:
            _prefetch_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        return _prefetch_pool


def file_format(fmt: str, max_line_bytes: int) -> FileFormat:
    """How the follower reads a log format: JSONL is told which lines the parser reads a
    record from (to read back the newest records at start-up), Parquet files are read once."""
    if fmt == "parquet":
        return ParquetFormat()
    return JsonlFormat(max_line_bytes, _record_lines)


def compressed_formats(fmt: str, max_line_bytes: int) -> tuple[tuple[str, FileFormat], ...]:
    """The formats of a glob's compressed files, by the end of their name: JSONL logs may be
    rotated into gzip files, read once when complete."""
    if fmt == "parquet":
        return ()
    return ((COMPRESSED_SUFFIX, GzipFormat(max_line_bytes, _record_lines)),)


def _record_lines(data: bytes, limit: int) -> NDArray[np.bool_]:
    return record_lines(data, max_line_bytes=limit)


class LogReader:
    """Follows a glob and turns what is new into batches; faults go to the model's counters."""

    def __init__(self, model: str, pattern: str, fmt: str, max_line_bytes: int,
                 columns: Sequence[ColumnSpec], counters: ModelCounters) -> None:
        self.model = model
        self.columns = list(columns)
        self.counters = counters
        self.max_line_bytes = max_line_bytes
        self.follower = Follower(pattern, file_format(fmt, max_line_bytes),
                                 by_suffix=compressed_formats(fmt, max_line_bytes))
        self._logged = 0

    def batches(self) -> Iterator[Batch]:
        """Parsed batches of everything new (rejections are counted in the batches)."""
        for _, batch in self.file_batches():
            yield batch

    def file_batches(self) -> Iterator[tuple[str, Batch]]:
        """Like ``batches``, each batch with the path of the file it was read from.

        While blocks of lines follow each other (catching up), the next block is parsed on
        the prefetch thread while the caller consumes this one: polars parses without the GIL,
        so the parse overlaps the caller's work (encoding, window, alarm). A single block (the
        steady state) is parsed on the calling thread, with no hand-off. Batches, counts and
        log lines keep the order of the file."""
        self._logged = 0
        pending: LineChunk | Future[Parsed] | None = None
        for event in self.follower.poll():
            if isinstance(event, LineChunk):
                if pending is not None:
                    parsed = self._parsed(pending)
                    pending = _prefetcher().submit(self._parse, event)
                    yield self._report(parsed)
                else:
                    pending = event  # parsed when the next event comes, or at the end
                continue
            if pending is not None:
                parsed, pending = self._parsed(pending), None
                yield self._report(parsed)
            yield from self._read(event)
        if pending is not None:
            yield self._report(self._parsed(pending))
        if self._logged > LOGGED_REJECTIONS_PER_POLL:
            log.warning("more records rejected", extra={
                "model": self.model, "count": self._logged - LOGGED_REJECTIONS_PER_POLL})

    def _parse(self, chunk: LineChunk) -> Parsed:
        """Parse a block of lines (on the calling thread or the prefetch thread)."""
        batch, rejections = parse_jsonl(chunk.data, self.columns,
                                        first_line=chunk.first_line or 0,
                                        max_line_bytes=self.max_line_bytes,
                                        newlines=chunk.newlines)
        return Parsed(chunk.path, chunk.first_line is None, batch, rejections)

    def _parsed(self, pending: LineChunk | Future[Parsed]) -> Parsed:
        return self._parse(pending) if isinstance(pending, LineChunk) else pending.result()

    def _report(self, parsed: Parsed) -> tuple[str, Batch]:
        """Log a parsed block's rejected lines (on the calling thread, in file order)."""
        for rejection in parsed.rejections:
            self._log(parsed.path, rejection, parsed.line_unknown)
        return parsed.path, parsed.batch

    def _read(self, event: Event) -> Iterator[tuple[str, Batch]]:
        if isinstance(event, LineChunk):
            yield self._report(self._parse(event))
        elif isinstance(event, LongLine):
            self._log(event.path, Rejection(event.line or 0, "too_long",
                                            f"{event.length} bytes"), event.line is None)
            self.counters.add_batch(0, {"too_long": 1}, {}, None)
        elif isinstance(event, FileReady):
            fmt = self.follower.format_for(event.path)
            if isinstance(fmt, GzipFormat):
                yield from self._compressed(fmt, event)
            else:
                batch_or_none = self._parquet(event.path)
                if batch_or_none is not None:
                    yield event.path, batch_or_none
        elif isinstance(event, FileCorrupt):
            log.warning("log file rejected", extra={"model": self.model, "file": event.path,
                                                    "reason": event.reason})
            self.counters.file_rejected(event.reason)
        elif isinstance(event, Truncated):
            self.counters.truncated()
        elif isinstance(event, Unreadable):
            log.warning("log file unreadable; retried at every poll", extra={
                "model": self.model, "file": event.path, "error": event.error})
            self.counters.file_rejected("unreadable")
        elif isinstance(event, Readable):
            log.info("log file readable again", extra={"model": self.model,
                                                        "file": event.path})

    def _compressed(self, fmt: GzipFormat, ready: FileReady) -> Iterator[tuple[str, Batch]]:
        """The records of a complete gzip file, from where the file it was compressed from was
        read up to; one that changed since it was found complete is counted corrupt (what was
        read of it stays read)."""
        try:
            for chunk in fmt.chunks(ready.path, ready.offset, ready.line):
                yield from self._read(chunk)
        except (OSError, CorruptFile, Incomplete) as exc:
            log.warning("log file rejected", extra={"model": self.model, "file": ready.path,
                                                    "reason": "corrupt",
                                                    "error": str(exc)[:200] or "truncated"})
            self.counters.file_rejected("corrupt")

    def _parquet(self, path: str) -> Batch | None:
        try:
            return parse_parquet(path, self.columns)
        except Exception as exc:  # noqa: BLE001 - any read failure means a corrupt file
            log.warning("parquet file rejected", extra={"file": path, "reason": "corrupt",
                                                         "error": str(exc)[:200]})
            self.counters.file_rejected("corrupt")
            return None

    def _log(self, path: str, rejection: Rejection, line_unknown: bool) -> None:
        self._logged += 1
        if self._logged <= LOGGED_REJECTIONS_PER_POLL:
            where = {"model": self.model, "file": path, "reason": rejection.reason,
                     "detail": rejection.detail}
            if not line_unknown and rejection.line:
                where["line"] = str(rejection.line)
            log.warning("record rejected", extra=where)

    def close(self) -> None:
        """Release the follower's descriptors."""
        self.follower.close()
