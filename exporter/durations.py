"""Prometheus duration syntax: `500ms`, `30s`, `5m`, `1h30m`, `1d`, `1w`, `1y`.

A duration is one or more `<integer><unit>` terms with units taken largest first, each at most
once: y (365 days), w, d, h, m, s, ms. A bare `0` is zero. Like Prometheus, fractions (`1.5h`),
spaces, signs and bare numbers other than `0` are rejected.
"""

from __future__ import annotations

import math
import re

_UNIT_MS: dict[str, int] = {
    "y": 365 * 24 * 3_600_000,
    "w": 7 * 24 * 3_600_000,
    "d": 24 * 3_600_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}

_DURATION_RE = re.compile(
    r"(?:(?P<y>[0-9]+)y)?(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?"
    r"(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?"
)

_HINT = (
    "expected a Prometheus duration such as 500ms, 30s, 5m, 1h30m or 1d "
    "(units y, w, d, h, m, s, ms, largest first)"
)


def parse_duration(text: str) -> float:
    """Return the number of seconds in a Prometheus duration such as `1h30m`."""
    if not isinstance(text, str):
        msg = f"invalid duration {text!r}: expected a string, got {type(text).__name__}"
        raise TypeError(msg)
    if text == "0":
        return 0.0
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        msg = f"invalid duration {text!r}: {_HINT}"
        raise ValueError(msg)
    total_ms = sum(
        int(count) * _UNIT_MS[unit] for unit, count in match.groupdict().items() if count
    )
    return total_ms / 1000


def format_duration(seconds: float) -> str:
    """Return the Prometheus spelling of `seconds`, rounded to milliseconds (5400 -> `1h30m`)."""
    if not math.isfinite(seconds) or seconds < 0:
        msg = f"cannot format {seconds!r} as a duration: expected a finite number >= 0"
        raise ValueError(msg)
    remaining = round(seconds * 1000)
    if remaining == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _UNIT_MS.items():
        # As in Prometheus: years and weeks only when they divide exactly (90d beats 12w6d).
        if unit in ("y", "w") and remaining % size != 0:
            continue
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
