"""How one log or reference value becomes a number or a category (SPEC 2).

Numbers: JSON numbers or numeric strings; null/NaN is missing; infinities, booleans, other
strings and nested values are invalid. Categories are compared as strings: booleans become
``true``/``false``, whole-number floats lose their fraction (``1.0`` -> ``1``), other floats use
the shortest round-trip positional form (``1e-07`` -> ``0.0000001``, as the fast JSON path does).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

MISSING: Final = None


class Invalid:
    """Marker for a value of the wrong type (counted, then treated as missing)."""


INVALID: Final = Invalid()


def to_number(value: object) -> float | None | Invalid:
    """A finite float, None for missing, or INVALID."""
    if value is None:
        return None
    if isinstance(value, bool):
        return INVALID
    if isinstance(value, (int, float)):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**1023 else math.inf
        if math.isnan(number):
            return None
        return number if math.isfinite(number) else INVALID
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return INVALID
        return number if math.isfinite(number) else INVALID
    return INVALID


def format_float(value: float) -> str:
    """Canonical category text of a finite float."""
    if value.is_integer():
        return str(int(value))
    return np.format_float_positional(value, trim="-")


def to_category(value: object) -> str | None | Invalid:
    """Canonical category string, None for missing, or INVALID (nested values, infinities)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isinf(number):
            return INVALID
        return format_float(number)
    return INVALID
