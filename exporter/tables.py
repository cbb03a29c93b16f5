"""Read reference data files into pandas DataFrames, chosen by file extension.

Supported: `.parquet` (pyarrow), `.csv` (pandas' default type inference) and `.jsonl`/`.ndjson`
(one JSON object per line, each read by the logs' rule, ``parsing.decode_record``: `NaN` and
`Infinity` tokens are accepted, blank lines skipped, of keys duplicated in one object the first
wins, a byte order mark is skipped, a lone UTF-16 surrogate is an error). Every read failure
becomes a ReferenceDataError naming the file, and the line for JSONL.

Parquet columns are taken as stored: pandas metadata is ignored, so a named index written by
`DataFrame.to_parquet` comes back as an ordinary column, and unnamed index columns
(`__index_level_N__`) are dropped. `read_column_names` follows the same rule, so it always agrees
with the columns of `read_table`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from exporter.errors import ReferenceDataError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pandas as pd

TABLE_EXTENSIONS = (".parquet", ".csv", ".jsonl", ".ndjson")

_PANDAS_INDEX_RE = re.compile(r"__index_level_\d+__")

def table_format(path: str | Path) -> str | None:
    """Return `parquet`, `csv` or `jsonl` for a supported file name, else None."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_EXTENSIONS:
        return None
    return "jsonl" if suffix == ".ndjson" else suffix[1:]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a whole reference file into a DataFrame."""
    import pandas as pd  # CSV and JSONL references (and read_table's callers) need it

    fmt = _require_format(path)
    try:
        if fmt == "parquet":
            frame: pd.DataFrame = pq.read_table(path).to_pandas(ignore_metadata=True)
            return frame.drop(columns=[c for c in frame.columns if _is_index_column(c)])
        if fmt == "csv":
            return pd.read_csv(path)
        return pd.DataFrame.from_records(list(_jsonl_records(path)))
    except ReferenceDataError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        msg = f"cannot read {path}: {_reason(exc)}"
        raise ReferenceDataError(msg) from exc


def read_parquet_columns(path: str | Path, names: Sequence[str]) -> pa.Table:
    """The named columns of a Parquet file that it has (index columns never), as Arrow.

    The reference's own reader: only the monitored columns are read, and they stay columnar
    (measured on the benchmark's 100,000-row, 29-column reference: the peak RSS of loading it
    went from 290 MiB through ``read_table`` and pandas to 273 MiB)."""
    from exporter.parsing import read_parquet_table  # here: parsing imports polars

    try:
        table: pa.Table = read_parquet_table(
            path, [n for n in names if not _is_index_column(n)])
    except (OSError, ValueError, pa.ArrowException) as exc:
        msg = f"cannot read {path}: {_reason(exc)}"
        raise ReferenceDataError(msg) from exc
    return table


def read_column_names(path: str | Path) -> list[str]:
    """Return the column names of a reference file, reading as little of it as the format allows."""
    fmt = _require_format(path)
    try:
        if fmt == "parquet":
            return [n for n in pq.read_schema(path).names if not _is_index_column(n)]
        if fmt == "csv":
            import pandas as pd

            return [str(name) for name in pd.read_csv(path, nrows=0).columns]
        names: dict[str, None] = {}
        for record in _jsonl_records(path):
            names.update(dict.fromkeys(record))
        return list(names)
    except ReferenceDataError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        msg = f"cannot read {path}: {_reason(exc)}"
        raise ReferenceDataError(msg) from exc


def _require_format(path: str | Path) -> str:
    fmt = table_format(path)
    if fmt is None:
        supported = ", ".join(TABLE_EXTENSIONS)
        msg = f"cannot read {path}: unsupported file extension (expected one of {supported})"
        raise ReferenceDataError(msg)
    return fmt


def _jsonl_records(path: str | Path) -> Iterator[dict[str, object]]:
    """Yield each record of a JSONL file, naming the line of any bad one.

    A line is read by the logs' rule (``parsing.decode_record``; SPEC 2 reads references and
    logs alike): blank lines hold no record, and a line the logs would reject as malformed is
    an error here."""
    from exporter.parsing import decode_record  # here: parsing imports polars

    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if not line.strip(b" \t\r"):
                continue  # blank lines carry no record, as in the logs
            record = decode_record(line)
            if isinstance(record, str):
                msg = f"cannot read {path}, line {number}: {record}"
                raise ReferenceDataError(msg)
            yield record


def _is_index_column(name: object) -> bool:
    return isinstance(name, str) and _PANDAS_INDEX_RE.fullmatch(name) is not None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
