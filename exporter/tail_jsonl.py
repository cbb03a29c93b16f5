"""JSONL logs for the follower: appended files read up to their last complete line.

A last line without ``\\n`` waits for it; a line longer than ``max_line_bytes`` is skipped
without buffering it (``LongLine``). Which lines hold a record is not known here: start-up asks
the ``count_records`` function it is given (the parser's rule), so tailing imports no parser.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import NDArray

from exporter.tailing import Appended, Event, LineChunk, LongLine, Tracked

READ_CHUNK = 8 << 20  # 16 MiB blocks parse ~5% faster but hold ~50 MiB more at peak
TAIL_STEP = 64 << 10  # backward reads at start-up begin this small and double up to READ_CHUNK
COUNT_LINES_LIMIT = 256 << 20  # count lines of a skipped prefix only up to this size

# For each complete line of a block of whole lines, whether it holds a record
# (``parsing.record_lines``): blank, malformed and too long lines hold none.
RecordLines = Callable[[bytes, int], NDArray[np.bool_]]


class JsonlFormat(Appended):
    """One JSON object per ``\\n``-terminated line."""

    def __init__(self, max_line_bytes: int, record_lines: RecordLines) -> None:
        self.max_line_bytes = max_line_bytes
        self.record_lines = record_lines

    def complete_end(self, fd: int, size: int) -> int:
        """Offset just past the last complete line."""
        for start, block in _backward_blocks(fd, size):
            cut = block.rfind(b"\n")
            if cut >= 0:
                return start + cut + 1
        return 0

    def tail_start(self, fd: int, end: int, records: int) -> tuple[int, int]:
        """Offset where the last ``records`` records before ``end`` start, and how many exist.

        Blank, malformed and too long lines are no records: counting lines instead would leave a
        window rebuilt at start-up short of the records a following exporter holds. The file is
        read backwards once, each block's whole lines classified by ``record_lines``; a line
        longer than ``max_line_bytes`` is not kept in memory.
        """
        limit = self.max_line_bytes
        found = 0
        tail = b""  # the end of a line that starts before the bytes classified so far
        tail_long = False  # that line is longer than ``limit`` (its bytes were dropped)
        for start, block in _backward_blocks(fd, end):
            cut = -1 if start == 0 else block.find(b"\n")  # block[:cut + 1] ends an older line
            if cut < 0 and start > 0:  # the whole block lies inside one line
                tail, tail_long = _grow_tail(block, tail, tail_long, limit)
                continue
            whole, base = block[cut + 1:], start + cut + 1
            if tail_long:  # the last line of ``whole`` goes on into the dropped bytes: no record
                whole = whole[: whole.rfind(b"\n") + 1]
            else:
                whole += tail
            starts = self._record_starts(whole, base)
            need = records - found
            if starts.shape[0] >= need:
                return int(starts[-need]), records
            found += starts.shape[0]
            tail, tail_long = _grow_tail(block[: cut + 1], b"", False, limit)
        return 0, found

    def _record_starts(self, whole: bytes, base: int) -> NDArray[np.int64]:
        """Offsets of the lines of ``whole`` (whole lines, starting at ``base``) holding a
        record."""
        if not whole:
            return np.empty(0, dtype=np.int64)
        newlines = np.flatnonzero(np.frombuffer(whole, dtype=np.uint8) == 10)
        starts = base + np.concatenate(([0], newlines[:-1] + 1)).astype(np.int64)
        result: NDArray[np.int64] = starts[self.record_lines(whole, self.max_line_bytes)]
        return result

    def read(self, tracked: Tracked, size: int) -> Iterator[Event]:
        """Complete lines from ``tracked.offset`` up to ``size``, in blocks."""
        limit = self.max_line_bytes
        # a block must be able to hold a line of max_line_bytes, or such a line would wait forever
        chunk = max(READ_CHUNK, limit + 1)
        if not tracked.line_known and tracked.offset < size:
            tracked.line_known = True
            tracked.line = (_count_lines(tracked.fd, tracked.offset)
                            if tracked.offset <= COUNT_LINES_LIMIT else None)
        while tracked.offset < size:
            block = os.pread(tracked.fd, min(chunk, size - tracked.offset), tracked.offset)
            if not block:
                break
            if tracked.skipping:
                cut = block.find(b"\n")
                if cut < 0:
                    tracked.skipping += len(block)
                    tracked.advance(block)
                    continue
                yield LongLine(tracked.path, tracked.line, tracked.skipping + cut)
                tracked.advance(block[: cut + 1])
                tracked.skipping = 0
                tracked.line = None if tracked.line is None else tracked.line + 1
                continue
            cut = block.rfind(b"\n")
            if cut < 0:
                if len(block) > limit:
                    tracked.skipping = len(block)
                    tracked.advance(block)
                    continue
                break  # a partial last line waits for its newline
            data = block if cut == len(block) - 1 else block[: cut + 1]
            del block  # while the caller parses ``data``, its copy is all that is held
            newlines = data.count(b"\n")
            yield LineChunk(tracked.path, data, tracked.line, tracked.offset, newlines)
            tracked.advance(data)
            if tracked.line is not None:
                tracked.line += newlines

    def pending(self, tracked: Tracked) -> Iterator[Event]:
        """What is left when a file is released: the too-long line being skipped, if any."""
        if tracked.skipping:
            yield LongLine(tracked.path, tracked.line, tracked.skipping)


def _count_lines(fd: int, end: int) -> int:
    """1 + the number of newlines before ``end``."""
    count, pos = 1, 0
    while pos < end:
        block = os.pread(fd, min(READ_CHUNK, end - pos), pos)
        if not block:
            break
        count += block.count(b"\n")
        pos += len(block)
    return count


def _backward_blocks(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(start, block) before ``end``, newest first; blocks grow from TAIL_STEP to READ_CHUNK."""
    step = TAIL_STEP
    while end > 0:
        start = max(end - step, 0)
        yield start, os.pread(fd, end - start, start)
        end, step = start, min(step * 2, READ_CHUNK)


def _grow_tail(older: bytes, tail: bytes, long: bool, limit: int) -> tuple[bytes, bool]:
    """Prepend ``older`` to a partial line; drop its bytes once it is longer than ``limit``."""
    if long or len(older) + len(tail) > limit + 1:
        return b"", True
    return older + tail, False
