"""How one log or reference value becomes a number or a category (SPEC 2).

Numbers: JSON numbers or numeric strings; null/NaN is missing; infinities, booleans, other
strings and nested values are invalid. A numeric string is ASCII decimal text (``"1.5"``,
``"-2e3"``, ``".5"``), exactly what polars' string-to-float cast accepts apart from ``nan`` and
``inf``, so the columnar paths and this one agree. Categories are compared as strings: booleans
become ``true``/``false``, floats use the shortest round-trip positional form, so whole-number
floats lose their fraction (``1.0`` -> ``1``, ``1e23`` -> ``100000000000000000000000``) and
small ones are written out (``1e-07`` -> ``0.0000001``), as polars' JSON reader does; ``-0.0`` is
``0``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

MISSING: Final = None


def missing_objects(values: NDArray[Any]) -> NDArray[np.bool_]:
    """Which values are missing: None or a float NaN (``pandas.isna`` on the parsers' objects)."""
    if values.dtype != object:
        return np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    # elementwise in C: str == None and str != str are False; only NaN differs from itself
    result: NDArray[np.bool_] = (values == None) | (values != values)  # noqa: E711, PLR0124
    return result

NUMERIC_STRING: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def first_key_wins(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``object_pairs_hook`` for ``json.loads``: of keys duplicated in one JSON object the first
    wins, in logs and JSONL references alike.

    polars' NDJSON reader, which reads the logs, keeps the first; ``json.loads`` alone would
    keep the last. Making polars keep the last would need a search of every block for each
    configured key (measured: twice the time of the read itself for 20 columns)."""
    record = dict(pairs)
    if len(record) == len(pairs):
        return record
    record = {}
    for key, value in pairs:
        record.setdefault(key, value)
    return record


class Invalid:
    """Marker for a value of the wrong type (counted, then treated as missing)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = Invalid()


def _float_of(value: object) -> float | None:
    """The float a number or numeric string stands for (inf if it overflows), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, str):
        return float(value) if NUMERIC_STRING.fullmatch(value) else None
    if isinstance(value, (int, float, Decimal, np.integer, np.floating)):
        try:
            return float(value)
        except (OverflowError, ValueError):  # an int beyond the float range, Decimal('sNaN')
            return math.inf
    return None


def to_number(value: object) -> float | Invalid | None:
    """A finite float, None for missing, or INVALID."""
    if value is None:
        return None
    number = _float_of(value)
    if number is None or math.isinf(number):
        return INVALID
    return None if math.isnan(number) else number


def format_float(value: float | np.floating[Any]) -> str:
    """Canonical category text of a finite float: the shortest round-trip positional text in
    the value's own precision (a float32 0.1 is "0.1", not its float64 widening)."""
    if value == 0:
        return "0"  # -0.0 and 0.0 are one number, so one category
    return np.format_float_positional(value, trim="-")


def to_category(value: object) -> str | Invalid | None:
    """Canonical category string, None for missing, or INVALID (nested values, infinities)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return _float_category(value)


def _float_category(value: object) -> str | Invalid | None:
    number: float | np.floating[Any] | None
    if isinstance(value, (np.float16, np.float32)):
        number = value  # formatted in its own precision
    elif isinstance(value, (float, Decimal, np.floating)):
        number = _float_of(value)
    else:
        number = None
    if number is None or np.isinf(number):
        return INVALID
    return None if np.isnan(number) else format_float(number)
