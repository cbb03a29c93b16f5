"""One prediction record -> the bytes of one JSONL line, or plain values for Parquet."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
from collections.abc import Mapping
from typing import Any


def _datetime_text(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


def normalize_value(value: Any) -> Any:
    """A value the JSON and Parquet encoders understand (numpy scalars, datetimes, Decimals).

    Datetimes become RFC 3339 text (naive ones are taken as UTC), because the exporter reads a
    timestamp column as RFC 3339 text or epoch seconds.
    """
    result = value
    if isinstance(value, dt.datetime):
        result = _datetime_text(value)
    elif isinstance(value, dt.date):
        result = value.isoformat()
    elif isinstance(value, decimal.Decimal):
        result = float(value)
    elif isinstance(value, enum.Enum):
        result = normalize_value(value.value)
    elif callable(getattr(value, "item", None)) and getattr(value, "ndim", 0) == 0:
        result = value.item()  # numpy scalars and 0-d arrays, without importing numpy
    elif callable(getattr(value, "tolist", None)):
        result = value.tolist()  # numpy arrays: kept, though the exporter ignores them
    return result


def _default(value: Any) -> Any:
    normalized = normalize_value(value)
    if normalized is value:
        msg = f"cannot write a value of type {type(value).__name__} to a prediction log"
        raise TypeError(msg)
    return normalized


def check_record(record: object) -> Mapping[str, Any]:
    """The record itself, when it is a mapping with string keys; TypeError otherwise."""
    if not isinstance(record, Mapping):
        msg = f"a prediction record must be a mapping of column names, got {type(record).__name__}"
        raise TypeError(msg)
    bad = [k for k in record if not isinstance(k, str)]
    if bad:
        msg = f"prediction record keys must be strings, got {bad[0]!r}"
        raise TypeError(msg)
    return record


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One JSON object and its ``\\n``, UTF-8 (NaN tokens allowed: the exporter reads them)."""
    text = json.dumps(check_record(record), allow_nan=True, default=_default,
                      ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"
