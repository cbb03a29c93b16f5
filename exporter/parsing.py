"""Bytes of complete JSONL lines, or a Parquet file, to a columnar ``Batch``.

The fast path hands a whole block to polars' NDJSON reader with an explicit schema. When polars
rejects a block (a malformed line, a numeric string, NaN tokens, a BOM...), the block is split in
halves and retried, down to small pieces that go through ``json.loads`` line by line; so the cost
of a bad line is bounded and every line is accounted for exactly once.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from exporter.values import INVALID, Invalid, to_category, to_number

log = logging.getLogger(__name__)

NUMBER = "number"
CATEGORY = "category"
TIME = "time"

SLOW_PATH_LINES = 32  # pieces at most this small go line by line through json.loads
FloatArray = NDArray[np.float64]
ObjectArray = NDArray[np.object_]


@dataclass(frozen=True)
class ColumnSpec:
    """One log column the model reads and what its values are."""

    name: str
    kind: str  # NUMBER | CATEGORY | TIME


@dataclass(frozen=True)
class Batch:
    """Parsed records: numbers as float64 (NaN = missing or invalid), categories as str/None."""

    rows: int
    numbers: Mapping[str, FloatArray]
    categories: Mapping[str, ObjectArray]
    invalid: Mapping[str, int] = field(default_factory=dict)
    rejected: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """A line that was not read, where it was, and why."""

    line: int
    reason: str
    detail: str


class _Builder:
    """Accumulates parsed pieces in order and concatenates them once."""

    def __init__(self, columns: Sequence[ColumnSpec]) -> None:
        self.columns = columns
        self.pieces: list[Batch] = []
        self.rejections: list[Rejection] = []

    def build(self) -> Batch:
        return concat_batches(self.columns, self.pieces, self.rejections)


def empty_batch(columns: Sequence[ColumnSpec]) -> Batch:
    """A batch with no rows and the given columns."""
    numbers = {c.name: np.empty(0, np.float64) for c in columns if c.kind != CATEGORY}
    categories = {c.name: np.empty(0, object) for c in columns if c.kind == CATEGORY}
    return Batch(0, numbers, categories)


def concat_batches(columns: Sequence[ColumnSpec], pieces: Sequence[Batch],
                   rejections: Sequence[Rejection] = ()) -> Batch:
    """Concatenate batches column by column and add up their counts."""
    rejected: dict[str, int] = {}
    for r in rejections:
        rejected[r.reason] = rejected.get(r.reason, 0) + 1
    invalid: dict[str, int] = {}
    for piece in pieces:
        for key, count in piece.invalid.items():
            invalid[key] = invalid.get(key, 0) + count
        for key, count in piece.rejected.items():
            rejected[key] = rejected.get(key, 0) + count
    if not pieces:
        base = empty_batch(columns)
        return Batch(0, base.numbers, base.categories, invalid, rejected)
    if len(pieces) == 1:
        p = pieces[0]
        return Batch(p.rows, p.numbers, p.categories, invalid, rejected)
    numbers = {name: np.concatenate([p.numbers[name] for p in pieces])
               for name in pieces[0].numbers}
    categories = {name: np.concatenate([p.categories[name] for p in pieces])
                  for name in pieces[0].categories}
    return Batch(sum(p.rows for p in pieces), numbers, categories, invalid, rejected)


# ---------------------------------------------------------------------------------------------
# JSONL


def _polars_schema(columns: Sequence[ColumnSpec]) -> dict[str, pl.DataType]:
    return {c.name: (pl.Float64() if c.kind == NUMBER else pl.String()) for c in columns}


def parse_jsonl(data: bytes, columns: Sequence[ColumnSpec], *, first_line: int = 1,
                max_line_bytes: int = 1 << 20) -> tuple[Batch, list[Rejection]]:
    """Parse complete ``\\n``-terminated lines; returns the batch and the rejected lines."""
    builder = _Builder(columns)
    for start, end, line_no, too_long in _split_too_long(data, first_line, max_line_bytes):
        if too_long:
            builder.rejections.append(Rejection(line_no, "too_long", f"{end - start} bytes"))
        else:
            _parse_block(memoryview(data)[start:end], line_no, builder)
    return builder.build(), builder.rejections


def _split_too_long(data: bytes, first_line: int,
                    limit: int) -> list[tuple[int, int, int, bool]]:
    """Segments (start, end, first line number, is_too_long) covering ``data``."""
    half = max(limit // 2, 1)
    suspicious = any(data.find(b"\n", p, p + half) < 0 for p in range(0, len(data), half))
    if not suspicious:
        return [(0, len(data), first_line, False)]
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    starts = np.concatenate(([0], ends[:-1]))
    lengths = ends - starts - 1  # without the newline
    long_lines = np.flatnonzero(lengths > limit)
    segments: list[tuple[int, int, int, bool]] = []
    cursor_line = 0
    for idx in long_lines:
        if idx > cursor_line:
            segments.append((int(starts[cursor_line]), int(starts[idx]),
                             first_line + cursor_line, False))
        segments.append((int(starts[idx]), int(ends[idx]), first_line + int(idx), True))
        cursor_line = int(idx) + 1
    if cursor_line < len(starts):
        segments.append((int(starts[cursor_line]), len(data), first_line + cursor_line, False))
    return segments


def _parse_block(block: memoryview, first_line: int, builder: _Builder) -> None:
    """Fast path over a block; on failure bisect, and go line by line for small pieces."""
    lines = block.tobytes().count(b"\n") if len(block) < 4096 else None
    if lines is not None and lines <= SLOW_PATH_LINES:
        _parse_lines_slowly(block.tobytes(), first_line, builder)
        return
    try:
        frame = pl.read_ndjson(io.BytesIO(block), schema=_polars_schema(builder.columns))
    except Exception:  # noqa: BLE001 - any polars failure means "retry smaller"
        _bisect(block, first_line, builder)
        return
    builder.pieces.append(_from_frame(frame, builder.columns))


def _bisect(block: memoryview, first_line: int, builder: _Builder) -> None:
    raw = block.tobytes()
    total = raw.count(b"\n")
    if total <= SLOW_PATH_LINES:
        _parse_lines_slowly(raw, first_line, builder)
        return
    cut = raw.find(b"\n", len(raw) // 2)
    if cut < 0 or cut == len(raw) - 1:
        cut = raw.rfind(b"\n", 0, len(raw) - 1)
    left = raw[: cut + 1]
    _parse_block(memoryview(left), first_line, builder)
    _parse_block(memoryview(raw[cut + 1:]), first_line + left.count(b"\n"), builder)


def _from_frame(frame: pl.DataFrame, columns: Sequence[ColumnSpec]) -> Batch:
    numbers: dict[str, FloatArray] = {}
    categories: dict[str, ObjectArray] = {}
    invalid: dict[str, int] = {}
    for col in columns:
        series = frame.get_column(col.name)
        if col.kind == NUMBER:
            numbers[col.name] = series.to_numpy(allow_copy=True).astype(np.float64, copy=False)
        elif col.kind == TIME:
            numbers[col.name], invalid[col.name] = parse_timestamps(series.to_arrow())
        else:
            categories[col.name] = series.to_numpy(allow_copy=True).astype(object, copy=False)
    return Batch(frame.height, numbers, categories,
                 {k: v for k, v in invalid.items() if v})


def _parse_lines_slowly(raw: bytes, first_line: int, builder: _Builder) -> None:
    records: list[dict[str, object]] = []
    for offset, line in enumerate(raw.split(b"\n")[:-1]):
        line_no = first_line + offset
        if not line.strip():
            continue  # blank lines carry no record
        try:
            obj = json.loads(line.decode("utf-8").lstrip("\ufeff"))
        except (UnicodeDecodeError, ValueError) as exc:
            builder.rejections.append(Rejection(line_no, "malformed", str(exc)[:200]))
            continue
        if not isinstance(obj, dict):
            builder.rejections.append(
                Rejection(line_no, "malformed", f"a JSON {type(obj).__name__}, not an object"))
            continue
        records.append(obj)
    if records:
        builder.pieces.append(batch_from_records(records, builder.columns))


def batch_from_records(records: Sequence[Mapping[str, object]],
                       columns: Sequence[ColumnSpec]) -> Batch:
    """Convert Python records (already decoded JSON objects) into a batch."""
    numbers: dict[str, FloatArray] = {}
    categories: dict[str, ObjectArray] = {}
    invalid: dict[str, int] = {}
    for col in columns:
        raw = [r.get(col.name) for r in records]
        if col.kind == NUMBER:
            numbers[col.name], invalid[col.name] = _numbers(raw)
        elif col.kind == TIME:
            text = pa.array([None if v is None else _time_text(v) for v in raw], pa.string())
            numbers[col.name], invalid[col.name] = parse_timestamps(text)
        else:
            categories[col.name], invalid[col.name] = _categories(raw)
    return Batch(len(records), numbers, categories, {k: v for k, v in invalid.items() if v})


def _time_text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return "\x00invalid"
    return value if isinstance(value, str) else repr(float(value))


def _numbers(raw: Sequence[object]) -> tuple[FloatArray, int]:
    out = np.full(len(raw), np.nan)
    bad = 0
    for i, value in enumerate(raw):
        number = to_number(value)
        if isinstance(number, Invalid):
            bad += 1
        elif number is not None:
            out[i] = number
    return out, bad


def _categories(raw: Sequence[object]) -> tuple[ObjectArray, int]:
    out = np.empty(len(raw), dtype=object)
    bad = 0
    for i, value in enumerate(raw):
        category = to_category(value)
        if category is INVALID:
            bad += 1
            category = None
        out[i] = category
    return out, bad


def parse_timestamps(values: pa.Array | pa.ChunkedArray) -> tuple[FloatArray, int]:
    """Epoch seconds from epoch-number text or RFC 3339 text; NaN (and counted) if neither."""
    text = pl.Series(values).cast(pl.String)
    present = text.is_not_null().to_numpy()
    out = text.cast(pl.Float64, strict=False).to_numpy().astype(np.float64, copy=True)
    out[~np.isfinite(out)] = np.nan
    need = present & np.isnan(out)
    if need.any():
        parsed = pd.to_datetime(pd.Series(text.filter(pl.Series(need)).to_list(), dtype=object),
                                utc=True, format="ISO8601", errors="coerce")
        seconds = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        out[need] = seconds.to_numpy(dtype=np.float64, na_value=np.nan)
    return out, int(np.count_nonzero(present & np.isnan(out)))


# ---------------------------------------------------------------------------------------------
# Parquet


def parse_parquet(path: str, columns: Sequence[ColumnSpec]) -> Batch:
    """Read the configured columns of one complete Parquet file (raises on a corrupt file)."""
    file = pq.ParquetFile(path)
    present = [c for c in columns if c.name in file.schema_arrow.names]
    table = file.read(columns=[c.name for c in present])
    return batch_from_table(table, columns)


def batch_from_table(table: pa.Table, columns: Sequence[ColumnSpec]) -> Batch:
    """Convert an Arrow table (Parquet, or a reference) into a batch; absent columns are missing."""
    rows = table.num_rows
    numbers: dict[str, FloatArray] = {}
    categories: dict[str, ObjectArray] = {}
    invalid: dict[str, int] = {}
    for col in columns:
        if col.name not in table.column_names:
            if col.kind == CATEGORY:
                categories[col.name] = np.full(rows, None, dtype=object)
            else:
                numbers[col.name] = np.full(rows, np.nan)
            continue
        array = table.column(col.name)
        if col.kind == NUMBER:
            numbers[col.name], invalid[col.name] = arrow_numbers(array)
        elif col.kind == TIME:
            numbers[col.name], invalid[col.name] = arrow_timestamps(array)
        else:
            categories[col.name], invalid[col.name] = arrow_categories(array)
    return Batch(rows, numbers, categories, {k: v for k, v in invalid.items() if v})


def arrow_numbers(array: pa.ChunkedArray) -> tuple[FloatArray, int]:
    """Float64 values of a numeric column; strings are parsed, anything else is invalid."""
    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        values = np.asarray(values, dtype=np.float64)
        infinite = np.isinf(values)
        values = np.where(infinite, np.nan, values)
        return values, int(infinite.sum())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _numbers(array.to_pylist())
    if pa.types.is_null(kind):
        return np.full(len(array), np.nan), 0
    nulls = array.null_count
    return np.full(len(array), np.nan), len(array) - nulls


def arrow_categories(array: pa.ChunkedArray) -> tuple[ObjectArray, int]:
    """Canonical category strings, converting each distinct value once."""
    encoded = pc.dictionary_encode(array).combine_chunks()
    dictionary = encoded.dictionary.to_pylist()
    canonical = [to_category(v) for v in dictionary]
    bad = [c is INVALID for c in canonical]
    lookup = np.array([None if c is INVALID else c for c in canonical] + [None], dtype=object)
    indices = encoded.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
    invalid = int(np.sum(np.array(bad + [False])[indices])) if any(bad) else 0
    return lookup[indices], invalid


def arrow_timestamps(array: pa.ChunkedArray) -> tuple[FloatArray, int]:
    """Epoch seconds from an Arrow timestamp, number or text column."""
    if pa.types.is_timestamp(array.type):
        ints = pc.cast(pc.cast(array, pa.timestamp("ns", tz="UTC")), pa.int64())
        values = ints.to_numpy(zero_copy_only=False).astype(np.float64) / 1e9
        return np.asarray(values, dtype=np.float64), 0
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        return arrow_numbers(array)
    return parse_timestamps(array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array)
