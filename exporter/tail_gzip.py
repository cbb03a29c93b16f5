"""Gzip-compressed JSONL logs for the follower: complete files read once (logrotate's
``compress``).

A file is complete when its gzip stream (every member of it) ends with its trailer, whose CRC
and length zlib checks; a stream that is not gzip or whose data or trailer is wrong is corrupt
(``CorruptFile``) at once, one that stops early is incomplete until the follower gives up on it.
Everything is decompressed in a stream, at most OUT_BLOCK bytes at a time, so a large file is
never held in memory. Its records are read as the lines of an appended JSONL file would be
(``LineChunk``/``LongLine``), from an offset when the follower knows the start was read already
from the file it was compressed from.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator

from exporter.tail_jsonl import RecordLines
from exporter.tailing import CorruptFile, LineChunk, LongLine, ReadOnce

COMPRESSED_SUFFIX = ".gz"  # a JSONL glob's gzip files: x.jsonl.gz, logrotate's x.jsonl.1.gz
READ_BLOCK = 1 << 20  # compressed bytes read at once
OUT_BLOCK = 8 << 20  # decompressed bytes produced at once (memory bound of a read)
TRAILER_PROBE = 4096  # bytes at the end of the file its identity is a digest of
_GZIP = 16 + zlib.MAX_WBITS  # zlib's window bits for a gzip header and trailer


class Incomplete(Exception):  # noqa: N818 - a state of a file, not a programming error
    """The gzip stream stops before its trailer: still being written, or truncated."""


def decompressed(fd: int, size: int) -> Iterator[bytes]:
    """The decompressed content of the first ``size`` bytes of a gzip file, in blocks of at
    most OUT_BLOCK bytes; raises ``CorruptFile`` or, at its end, ``Incomplete``."""
    inflater = zlib.decompressobj(_GZIP)
    pos, data, full = 0, b"", False
    while True:
        if not data and not full:
            if pos >= size:
                break
            data = os.pread(fd, min(READ_BLOCK, size - pos), pos)
            if not data:
                break
            pos += len(data)
        if inflater.eof:
            if not data.strip(b"\0"):  # zero padding after the last member is allowed
                data = b""
                continue
            if data[0] == 0:
                msg = "data after the zero padding of the gzip stream"
                raise CorruptFile("corrupt", msg)
            inflater = zlib.decompressobj(_GZIP)  # another member (``cat a.gz b.gz``)
        try:
            out = inflater.decompress(data, OUT_BLOCK)
        except zlib.error as exc:
            raise CorruptFile("corrupt", str(exc)) from exc
        # output held back by the OUT_BLOCK bound must be asked for even without more input
        full = len(out) == OUT_BLOCK and not inflater.eof
        data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        if out:
            yield out
    if not inflater.eof:
        raise Incomplete


class GzipFormat(ReadOnce):
    """A gzip-compressed JSONL file, read once when its stream is complete."""

    def __init__(self, max_line_bytes: int, record_lines: RecordLines) -> None:
        self.max_line_bytes = max_line_bytes
        self.record_lines = record_lines

    def is_complete(self, fd: int, size: int) -> bool:
        """Whether the whole stream decompresses and ends with its trailer (checked CRC and
        length); raises ``CorruptFile`` when it is no valid gzip stream."""
        try:
            for _ in decompressed(fd, size):
                pass
        except Incomplete:
            return False
        return True

    def identity(self, fd: int, size: int) -> bytes:
        """A digest of the file's end (its trailer holds the content's CRC and length)."""
        start = max(size - TRAILER_PROBE, 0)
        return hashlib.blake2b(os.pread(fd, size - start, start), digest_size=16).digest()

    def records(self, path: str) -> int | None:
        """The number of records, decompressing and classifying every line (None when the
        file cannot be read whole now)."""
        try:
            count = 0
            for chunk in self.chunks(path):
                if isinstance(chunk, LineChunk):
                    count += int(self.record_lines(chunk.data, self.max_line_bytes).sum())
        except (OSError, CorruptFile, Incomplete):
            return None
        return count

    def content(self, fd: int, size: int, start: int, length: int) -> bytes:
        """Decompressed bytes ``start`` to ``start + length`` (fewer past the end), to tell the
        file it was compressed from; decompresses up to there."""
        found, pos = b"", 0
        try:
            for block in decompressed(fd, size):
                if pos + len(block) > start:
                    found += block[max(start - pos, 0): start + length - pos]
                pos += len(block)
                if pos >= start + length:
                    break
        except (CorruptFile, Incomplete):
            return b""
        return found

    def chunks(self, path: str, offset: int = 0,
               line: int | None = 1) -> Iterator[LineChunk | LongLine]:
        """The lines of the decompressed file from ``offset`` (where a line starts), as the
        follower reports those of an appended file; the last line counts even without its
        ``\\n``, since the file is complete. Raises ``CorruptFile``, ``Incomplete``,
        ``OSError`` when the file changed since it was found complete."""
        limit = self.max_line_bytes
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            pos = 0  # decompressed bytes consumed so far
            carry = b""  # the start of a line not complete yet
            skipping = 0  # bytes of a too-long line dropped so far
            for raw in decompressed(fd, size):
                if pos + len(raw) <= offset:
                    pos += len(raw)
                    continue
                block = raw
                if pos < offset:
                    block, pos = block[offset - pos:], offset
                start = pos - len(carry) - skipping
                pos += len(block)
                if skipping:
                    cut = block.find(b"\n")
                    if cut < 0:
                        skipping += len(block)
                        continue
                    yield LongLine(path, line, skipping + cut)
                    line = None if line is None else line + 1
                    start += skipping + cut + 1
                    block, skipping = block[cut + 1:], 0
                data = carry + block
                cut = data.rfind(b"\n")
                whole, carry = data[: cut + 1], data[cut + 1:]
                if whole:
                    newlines = whole.count(b"\n")
                    yield LineChunk(path, whole, line, start, newlines)
                    line = None if line is None else line + newlines
                if len(carry) > limit:
                    skipping, carry = len(carry), b""
            if skipping:
                yield LongLine(path, line, skipping)
            elif carry:
                yield LineChunk(path, carry + b"\n", line, pos - len(carry), 1)
        finally:
            os.close(fd)
