"""App-side prediction-log writers for drift-exporter.

An inference app calls ``write(record)`` once per prediction; the writer appends it to files
that ``drift-exporter`` follows (SPEC 2):

- :class:`JsonlLogWriter`: one JSON object per line, each line written with a single
  ``write(2)`` on an ``O_APPEND`` descriptor, so a reader never sees half a record from us; a new
  file is started when the current one reaches ``max_bytes`` or is ``max_age`` seconds old.
- :class:`ParquetLogWriter`: records are buffered and written in batches of ``batch_rows``
  (or when the oldest buffered record is ``max_age`` seconds old), each batch to
  ``name.parquet.tmp`` and renamed to ``name.parquet`` once complete.

Both are thread-safe, usable as context managers, and can delete their oldest files beyond
``keep_files`` so a bounded volume (a Kubernetes ``emptyDir``) does not fill up.
"""

from __future__ import annotations

from exporter_client.jsonl import JsonlLogWriter
from exporter_client.naming import LogFileNamer
from exporter_client.parquet import ParquetLogWriter
from exporter_client.records import encode_record

__all__ = ["JsonlLogWriter", "LogFileNamer", "ParquetLogWriter", "encode_record"]
