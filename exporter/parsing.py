"""Bytes of complete JSONL lines, or a Parquet file, to a columnar ``Batch``.

The fast path hands a whole block to polars' NDJSON reader with an explicit schema (numbers as
Float64; when that fails on a wrong type, such as a numeric string or a boolean, once more with
numbers as text, cast and counted). When polars rejects a block (a malformed line, NaN tokens, a
BOM...), the block is split in halves and retried, down to small pieces that go through
``json.loads`` line by line; so the cost of a bad line is bounded and every line is accounted for
exactly once. The line-by-line path is the reference: wherever polars would read a line
differently (a nested value or ``-0.0`` in a categorical column, a lone surrogate escape,
duplicated keys), either the fast path gives the block up or the slow path follows polars, so
both build the same batch (tests/property/test_parsing_properties.py checks this).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from exporter.values import (
    INVALID,
    Invalid,
    first_key_wins,
    to_category,
    to_number,
)

log = logging.getLogger(__name__)

NUMBER = "number"
CATEGORY = "category"
TIME = "time"

SLOW_PATH_LINES = 32  # pieces of at most this many lines and ...
SLOW_PATH_BYTES = 4096  # ... fewer bytes go line by line through json.loads
FloatArray = NDArray[np.float64]
ObjectArray = NDArray[np.object_]


@dataclass(frozen=True)
class ColumnSpec:
    """One log column the model reads and what its values are."""

    name: str
    kind: str  # NUMBER | CATEGORY | TIME


@dataclass(frozen=True)
class Coded:
    """A categorical column as it was dictionary-encoded: row ``i`` is ``dictionary[codes[i]]``,
    code -1 is missing.

    Consumers map the few distinct values once instead of hashing every row (the reference's
    ``CategoricalReference.encode``, the fast path's check of suspicious text)."""

    codes: NDArray[np.int32]
    dictionary: tuple[str, ...]

    def values(self) -> ObjectArray:
        """The object array ``dictionary[codes]``: one Python str per distinct value, None
        where the code is -1."""
        lookup = np.empty(len(self.dictionary) + 1, dtype=object)
        lookup[: len(self.dictionary)] = self.dictionary
        values: ObjectArray = lookup[self.codes]  # -1 picks the trailing None
        return values


@dataclass(frozen=True)
class Batch:
    """Parsed records: numbers as float64 (NaN = missing or invalid), categories as str/None.

    ``coded`` holds, for the categorical columns that were read dictionary-encoded (the
    columnar JSONL path), the codes and dictionary ``categories`` was built from; a column
    without an entry has only its values. Whatever builds a batch from other batches (a
    concatenation, a selection of rows) leaves ``coded`` out unless it rebuilds the codes, so
    they always describe ``categories`` exactly."""

    rows: int
    numbers: Mapping[str, FloatArray]
    categories: Mapping[str, ObjectArray]
    invalid: Mapping[str, int] = field(default_factory=dict)
    rejected: Mapping[str, int] = field(default_factory=dict)
    coded: Mapping[str, Coded] = field(default_factory=dict)


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
        return Batch(p.rows, p.numbers, p.categories, invalid, rejected, p.coded)
    # the pieces' codes index different dictionaries: the concatenation has values only
    numbers = {name: np.concatenate([p.numbers[name] for p in pieces])
               for name in pieces[0].numbers}
    categories = {name: np.concatenate([p.categories[name] for p in pieces])
                  for name in pieces[0].categories}
    return Batch(sum(p.rows for p in pieces), numbers, categories, invalid, rejected)


# ---------------------------------------------------------------------------------------------
# JSONL


def parse_jsonl(data: bytes, columns: Sequence[ColumnSpec], *, first_line: int = 1,
                max_line_bytes: int = 1 << 20,
                newlines: int | None = None) -> tuple[Batch, list[Rejection]]:
    """Parse complete ``\\n``-terminated lines; returns the batch and the rejected lines.

    ``newlines``, when the caller already counted them, is ``data.count(b"\\n")``: it saves
    a scan of the whole block."""
    if data and not data.endswith(b"\n"):
        data += b"\n"  # callers pass complete lines; an unterminated tail still is one line
        newlines = None
    builder = _Builder(columns)
    for start, end, line_no, too_long in _split_too_long(data, first_line, max_line_bytes):
        if too_long:
            builder.rejections.append(Rejection(line_no, "too_long", f"{end - start} bytes"))
        else:
            whole = (start, end) == (0, len(data))
            _parse_block(data if whole else data[start:end], line_no, builder,
                         newlines if whole else None)
    return builder.build(), builder.rejections


# A column no log has: parsing with it alone only tells which lines are records.
_PROBE = (ColumnSpec("\x00record-probe", CATEGORY),)


def record_lines(data: bytes, *, max_line_bytes: int = 1 << 20) -> NDArray[np.bool_]:
    """For each complete line of ``data``, whether ``parse_jsonl`` reads a record from it.

    Blank, malformed and too long lines hold none. Start-up uses this to read back exactly the
    newest N records of a log, so a rebuilt window equals one filled while following.
    """
    if data and not data.endswith(b"\n"):
        data += b"\n"
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    flags = ~blank_lines(data, newlines)
    if not flags.shape[0]:
        return flags
    _, rejections = parse_jsonl(data, _PROBE, first_line=0, max_line_bytes=max_line_bytes)
    if rejections:
        flags[np.asarray([r.line for r in rejections])] = False
    return flags


def _split_too_long(data: bytes, first_line: int,
                    limit: int) -> list[tuple[int, int, int, bool]]:
    """Segments (start, end, first line number, is_too_long) covering ``data``."""
    half = max(limit // 2, 1)
    # A line longer than ``limit`` holds a newline-free stretch of ``half`` bytes starting at a
    # multiple of ``half``; without one, no line can be too long and nothing is split.
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


def _parse_block(block: bytes, first_line: int, builder: _Builder,
                 newlines: int | None = None) -> None:
    """Fast path over a block; on failure bisect, and go line by line for small pieces."""
    if len(block) < SLOW_PATH_BYTES and block.count(b"\n") <= SLOW_PATH_LINES:
        _parse_lines_slowly(block, first_line, builder)
        return
    piece = _parse_fast(block, builder.columns, newlines)
    if piece is None:
        _bisect(block, first_line, builder)
    else:
        builder.pieces.append(piece)


def _parse_fast(block: bytes, columns: Sequence[ColumnSpec],
                newlines: int | None = None) -> Batch | None:
    """The block through polars, or None when only the line-by-line path can read it exactly.

    Numbers are read as Float64; when polars refuses (a numeric string, a boolean, a nested
    value...) the numerical columns are read again as text and cast, so wrong types are counted
    without leaving the columnar path. Syntax errors fail both reads.
    """
    numbers_as_text = False
    try:
        frame = _read_ndjson(block, _polars_schema(columns, False))
    except Exception:  # noqa: BLE001 - any polars failure means "try as text, then smaller"
        if not any(c.kind == NUMBER for c in columns):
            return None
        try:
            frame = _read_ndjson(block, _polars_schema(columns, True))
        except Exception:  # noqa: BLE001 - a syntax error: bisect
            return None
        numbers_as_text = True
    if newlines is None:
        newlines = block.count(b"\n")
    if frame.height != newlines and frame.height != _record_lines(block, newlines):
        return None  # polars read a line differently from json.loads; let json.loads decide
    if _lone_surrogate(block):
        return None
    batch = _from_frame(frame, columns, numbers_as_text)
    if _stringified_values(block, batch, columns):
        return None
    return batch


PARALLEL_PIECE_BYTES = 1 << 20  # blocks of at least two such pieces are read by threads
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _read_ndjson(block: bytes, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``pl.read_ndjson`` over the block, split at newlines into pieces read in parallel.

    Given ``bytes`` (not a file object) polars reads without holding the GIL, but a block of a
    few MiB on one thread only; pieces on a thread each use every core. Any piece failing
    fails the whole read, as one read would."""
    pieces = min(os.cpu_count() or 1, 4, len(block) // PARALLEL_PIECE_BYTES)
    if pieces < 2:
        return pl.read_ndjson(block, schema=schema)
    bounds = [0]
    for k in range(1, pieces):
        cut = block.find(b"\n", max(len(block) * k // pieces, bounds[-1]))
        if cut < 0 or cut + 1 >= len(block):
            break
        bounds.append(cut + 1)
    bounds.append(len(block))
    parts = [block[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    frames = list(_executor().map(lambda part: pl.read_ndjson(part, schema=schema), parts))
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def _executor() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 4),
                                       thread_name_prefix="parse")
        return _pool


def _polars_schema(columns: Sequence[ColumnSpec], numbers_as_text: bool) -> dict[str, pl.DataType]:
    return {c.name: (pl.Float64() if c.kind == NUMBER and not numbers_as_text else pl.String())
            for c in columns}


_LINE_SPACE = np.array([ord(c) for c in " \t\r\n"], dtype=np.uint8)  # JSON whitespace
# A \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one: polars reads it as "\x00",
# json.loads as an unencodable str; such a line is rejected on the line-by-line path.
_LONE_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def blank_lines(data: bytes, newlines: NDArray[np.intp]) -> NDArray[np.bool_]:
    """For each line of ``data`` (ending at the offsets ``newlines``), whether it is blank
    (JSON whitespace only), as polars and json.loads both skip.

    Only lines that start with whitespace can be blank: those few are looked at one by one
    (a regex over every line start costs ~7 ms per MiB, more than parsing the lines)."""
    blank = np.zeros(newlines.shape[0], dtype=bool)
    if not newlines.shape[0]:
        return blank
    starts = np.concatenate(([0], newlines[:-1] + 1))
    first = np.frombuffer(data, dtype=np.uint8)[starts]
    for i in np.flatnonzero(np.isin(first, _LINE_SPACE)).tolist():
        blank[i] = not data[int(starts[i]):int(newlines[i])].strip(b" \t\r")
    return blank


def _record_lines(block: bytes, newlines: int) -> int:
    """Lines that are not blank (JSON whitespace only), as polars and json.loads both skip."""
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    return newlines - int(np.count_nonzero(blank_lines(block, ends)))


def _lone_surrogate(block: bytes) -> bool:
    # a one-byte search (memchr: backslashes are rare in logs) before the regex
    return block.find(b"\\") >= 0 and bool(_LONE_SURROGATE.search(block))


def _stringified_values(block: bytes, batch: Batch, columns: Sequence[ColumnSpec]) -> bool:
    """Whether polars may have turned a nested value or ``-0.0`` into category text.

    Polars reads ``[1, 2]`` into a String column as the text ``"[1, 2]"`` and ``-0.0`` as
    ``"-0"``; json.loads makes them an invalid value and the category ``0``. A float with 16 or
    more significant digits may be a tie between two shortest round-trip texts, which polars
    and Python break differently (562949953421312.25: ``...312.3`` and ``...312.2``). Each
    column's distinct texts are checked (one regex search, not a polars query);
    only when such text occurs, the raw bytes are searched for the key followed by ``[``,
    ``{``, ``-`` or a digit (a JSON number, not a string).
    """
    for col in columns:
        if col.kind != CATEGORY:
            continue
        coded = batch.coded.get(col.name)
        if coded is None or not _SUSPICIOUS_TEXT.search("\n".join(coded.dictionary)):
            continue
        key = re.escape(json.dumps(col.name, ensure_ascii=False).encode("utf-8"))
        if re.search(key + rb"\s*:\s*[-\[{0-9]", block):
            return True
    return False


LONG_FLOAT_TEXT = 17  # 16 significant digits and a point: where round-trip ties can occur
# One search over a column's distinct texts joined by newlines (in C, whatever their number):
# a text starting with [ or {, the text -0, or a float text (a fraction; long integers such as
# snowflake ids have no ties) of at least LONG_FLOAT_TEXT characters. A text holding a newline
# can only make it match more often, which sends the block to json.loads: slower, still exact.
_SUSPICIOUS_TEXT = re.compile(
    rf"^(?:[\[{{]|-0$|(?=[^\n]{{{LONG_FLOAT_TEXT}}})-?[0-9]+\.[0-9]+$)", re.MULTILINE)


def _bisect(block: bytes, first_line: int, builder: _Builder) -> None:
    total = block.count(b"\n")
    if total <= max(SLOW_PATH_LINES, 1):
        _parse_lines_slowly(block, first_line, builder)
        return
    cut = block.find(b"\n", len(block) // 2)
    if cut < 0 or cut == len(block) - 1:
        cut = block.rfind(b"\n", 0, len(block) - 1)
    left = block[: cut + 1]
    _parse_block(left, first_line, builder)
    _parse_block(block[cut + 1:], first_line + left.count(b"\n"), builder)


def _from_frame(frame: pl.DataFrame, columns: Sequence[ColumnSpec],
                numbers_as_text: bool) -> Batch:
    numbers: dict[str, FloatArray] = {}
    categories: dict[str, ObjectArray] = {}
    coded: dict[str, Coded] = {}
    invalid: dict[str, int] = {}
    # column by column: no query to plan (a select costs ~0.1-0.25 ms even for 500 rows);
    # renamed before Arrow, which refuses a name holding NUL (polars panics)
    for col in columns:
        series = frame.get_column(col.name).alias("value")
        if col.kind == NUMBER and numbers_as_text:
            numbers[col.name], invalid[col.name] = numbers_from_text(series)
        elif col.kind == NUMBER:
            numbers[col.name] = series.to_numpy().astype(np.float64, copy=False)
        elif col.kind == TIME:
            numbers[col.name], invalid[col.name] = parse_timestamps(series.to_arrow())
        else:
            coded[col.name] = _coded_strings(series.to_arrow())
            categories[col.name] = coded[col.name].values()
    return Batch(frame.height, numbers, categories,
                 {k: v for k, v in invalid.items() if v}, coded=coded)


def _coded_strings(text: pa.Array | pa.ChunkedArray) -> Coded:
    """A String column dictionary-encoded: each distinct string becomes one Python object,
    and encoding against the reference maps only those."""
    if isinstance(text, pa.ChunkedArray):  # one dictionary for the whole column
        text = text.chunk(0) if text.num_chunks == 1 else text.combine_chunks()
    encoded = pc.dictionary_encode(text)
    indices = encoded.indices
    codes = np.asarray(plain_numpy(indices, null=-1), dtype=np.int32)
    return Coded(codes, tuple(encoded.dictionary.to_pylist()))


_NUMPY_TYPES = {pa.float64(): np.float64, pa.int64(): np.int64, pa.int32(): np.int32,
                pa.int16(): np.int16, pa.int8(): np.int8}


def plain_numpy(array: pa.Array | pa.ChunkedArray, null: float | None = None) -> NDArray[Any]:
    """A float64 or integer Arrow array as numpy, read from its buffers; nulls become ``null``
    (an array with nulls and no ``null`` is refused).

    pyarrow's own ``to_numpy`` (and ``fill_null``, through ``pa.scalar``) go through its pandas
    conversion, which imports pandas (~31 MiB of resident memory) even for a float array."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    dtype = np.dtype(_NUMPY_TYPES[array.type])
    parts = []
    for chunk in chunks:
        validity, data = chunk.buffers()[:2]
        values = np.empty(0, dtype) if data is None else np.frombuffer(
            data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)
        if chunk.null_count:
            if null is None:
                raise ValueError("plain_numpy: the array has nulls")
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
            values = np.where(bits[chunk.offset: chunk.offset + len(chunk)].astype(bool),
                              values, null)
        parts.append(values)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def _float_numpy(array: pa.Array | pa.ChunkedArray) -> FloatArray:
    """Float64 values of a numeric Arrow array, nulls as NaN (integers beyond 2^53 rounded)."""
    result: FloatArray = plain_numpy(pc.cast(array, pa.float64(), safe=False), null=np.nan)
    return result


def numbers_from_text(series: pl.Series) -> tuple[FloatArray, int]:
    """Float64 values of numeric strings (``values.NUMERIC_STRING``); other text is invalid."""
    out = series.cast(pl.Float64, strict=False).to_numpy().astype(np.float64, copy=True)
    bad = series.is_not_null().to_numpy() & ~np.isfinite(out)
    out[bad] = np.nan  # "nan", "inf" and overflowing text are invalid, as in to_number
    return out, int(np.count_nonzero(bad))


def _encodable(obj: object) -> bool:
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def decode_record(line: bytes) -> dict[str, object] | str:
    """One non-blank JSONL line as the record it holds, or why it is malformed.

    The one rule for a line (``check`` samples logs with it too): UTF-8 with an optional byte
    order mark, a JSON object, the first of duplicated keys wins, no lone UTF-16 surrogate, and
    nesting too deep for ``json.loads`` (about 1,000 levels) makes the line malformed."""
    try:
        obj = json.loads(line.decode("utf-8").lstrip("\ufeff"),
                         object_pairs_hook=first_key_wins)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return str(exc)[:200] or type(exc).__name__
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {json_kind(obj)}"
    if _SURROGATE.search(line) and not _encodable(obj):
        return "a lone UTF-16 surrogate"
    return obj


def _parse_lines_slowly(raw: bytes, first_line: int, builder: _Builder) -> None:
    records: list[dict[str, object]] = []
    for offset, line in enumerate(raw.split(b"\n")[:-1]):
        if not line.strip(b" \t\r"):
            continue  # blank lines carry no record
        obj = decode_record(line)
        if isinstance(obj, str):
            builder.rejections.append(Rejection(first_line + offset, "malformed", obj))
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
            text = pa.array([_time_text(v) for v in raw], pa.string())
            numbers[col.name], invalid[col.name] = parse_timestamps(text)
        else:
            categories[col.name], invalid[col.name] = _categories(raw)
    return Batch(len(records), numbers, categories, {k: v for k, v in invalid.items() if v})


def _time_text(value: object) -> str | None:
    """The text ``parse_timestamps`` reads, as polars would write the JSON value into a String."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "\x00invalid"
    number = to_number(value)
    if number is None:
        return None  # a NaN token is missing, as in every other column
    return "\x00invalid" if isinstance(number, Invalid) else repr(number)


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
        # RFC 3339 allows a lower-case "t" and "z"; pandas' ISO 8601 parser wants upper case
        pending = text.filter(pl.Series(need)).str.to_uppercase()
        import pandas as pd  # only for text timestamps

        parsed = pd.to_datetime(pd.Series(pending.to_list(), dtype=object),
                                utc=True, format="ISO8601", errors="coerce")
        seconds = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        out[need] = seconds.to_numpy(dtype=np.float64, na_value=np.nan)
    return out, int(np.count_nonzero(present & np.isnan(out)))


# ---------------------------------------------------------------------------------------------
# Parquet


def parse_parquet(path: str, columns: Sequence[ColumnSpec]) -> Batch:
    """Read the configured columns of one complete Parquet file (raises on a corrupt file)."""
    return batch_from_table(read_parquet_table(path, [c.name for c in columns]), columns)


def read_parquet_table(path: str | os.PathLike[str], names: Sequence[str]) -> pa.Table:
    """The named columns a Parquet file has, as Arrow (raises on a corrupt file).

    Through ``ParquetFile``: ``pq.read_table`` goes through pyarrow.dataset, which imports
    pandas (~31 MiB of resident memory)."""
    file = pq.ParquetFile(path)
    wanted = set(names)
    return file.read(columns=[n for n in file.schema_arrow.names if n in wanted])


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
    if pa.types.is_dictionary(kind):  # a pandas categorical, say
        return arrow_numbers(pc.cast(array, kind.value_type))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = _float_numpy(array)
        infinite = np.isinf(values)
        values = np.where(infinite, np.nan, values)
        return values, int(infinite.sum())
    if _is_text(kind):
        return numbers_from_text(pl.Series(array))
    if pa.types.is_null(kind):
        return np.full(len(array), np.nan), 0
    return np.full(len(array), np.nan), len(array) - array.null_count


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or getattr(pa.types, "is_string_view", lambda _: False)(kind))


def arrow_categories(array: pa.ChunkedArray) -> tuple[ObjectArray, int]:
    """Canonical category strings, converting each distinct value once."""
    if pa.types.is_null(array.type):
        return np.full(len(array), None, dtype=object), 0
    try:
        encoded = pc.dictionary_encode(array).combine_chunks()
    except pa.ArrowNotImplementedError:  # nested values (lists, structs) are never categories
        return np.full(len(array), None, dtype=object), len(array) - array.null_count
    values = encoded.dictionary
    if pa.types.is_float16(values.type) or pa.types.is_float32(values.type):
        # keep the stored precision: to_pylist() would widen float32 0.1 to 0.10000000149...
        dictionary: list[object] = list(values.to_numpy(zero_copy_only=False))
    else:
        dictionary = values.to_pylist()
    canonical = [to_category(v) for v in dictionary]
    bad = [c is INVALID for c in canonical]
    lookup = np.array([None if c is INVALID else c for c in canonical] + [None], dtype=object)
    indices = plain_numpy(encoded.indices, null=len(dictionary))
    invalid = int(np.sum(np.array([*bad, False])[indices])) if any(bad) else 0
    return lookup[indices], invalid


_UNIT_SECONDS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def arrow_timestamps(array: pa.ChunkedArray) -> tuple[FloatArray, int]:
    """Epoch seconds from an Arrow timestamp, number or text column."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return arrow_timestamps(pc.cast(array, kind.value_type))
    if pa.types.is_timestamp(kind):
        # the stored integers count units since the epoch in UTC, whatever the time zone; no
        # conversion to nanoseconds, which would overflow after the year 2262
        values = _float_numpy(pc.cast(array, pa.int64())) / _UNIT_SECONDS[kind.unit]
        return values, 0
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return arrow_numbers(array)
    if not (_is_text(kind) or pa.types.is_date(kind) or pa.types.is_null(kind)):
        return np.full(len(array), np.nan), len(array) - array.null_count
    return parse_timestamps(array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array)


_JSON_KINDS: dict[type, str] = {list: "an array", str: "a string", int: "a number",
                                float: "a number", bool: "a boolean", type(None): "null"}


def json_kind(value: object) -> str:
    """What a decoded JSON value is, in JSON's words ("an array", "null"), for messages."""
    return _JSON_KINDS.get(type(value), "a value")
