"""Parquet logs for the follower: complete files read once, when their footer is written."""

from __future__ import annotations

import hashlib
import os

from exporter.tailing import ReadOnce

PARQUET_MAGIC = b"PAR1"
FOOTER_PROBE = 4096  # bytes compared at the end of a Parquet file without a valid footer
MAX_FOOTER = 16 << 20  # a footer is compared up to this size


class ParquetFormat(ReadOnce):
    """A Parquet file is complete once it starts and ends with its magic bytes."""

    def is_complete(self, fd: int, size: int) -> bool:
        """Whether the file has its header and footer magic."""
        return (size >= 12 and os.pread(fd, 4, 0) == PARQUET_MAGIC
                and os.pread(fd, 4, size - 4) == PARQUET_MAGIC)

    def identity(self, fd: int, size: int) -> bytes:
        """A digest of the footer (its metadata: row groups, offsets, statistics), or of the
        last bytes of a file that has none (a corrupt file)."""
        length = FOOTER_PROBE
        if size >= 12:
            tail = os.pread(fd, 8, size - 8)
            if len(tail) == 8 and tail[4:] == PARQUET_MAGIC:
                length = int.from_bytes(tail[:4], "little") + 8
        start = max(size - min(length, MAX_FOOTER), 0)
        return hashlib.blake2b(os.pread(fd, size - start, start), digest_size=16).digest()

    def records(self, path: str) -> int | None:
        """The row count in the footer (None while it cannot be read)."""
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception:  # noqa: BLE001 - unreadable now; poll() decides
            return None
