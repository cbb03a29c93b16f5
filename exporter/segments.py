"""Which segment a record belongs to (SPEC 6.11, docs/segments.md).

The segments are chosen once, from the reference: the ``max_segments`` most frequent values of
``segments.column`` (ties by value), except values whose reference slice has fewer than
``drift.min_rows`` rows, which could not be compared with anything; every other value, a
missing one included, belongs to ``__other__``, compared with the rest of the reference, which
has a window only when that rest has at least ``drift.min_rows`` rows too. So a model has at
most ``max_segments + 1`` segment label values, whatever its logs hold."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from exporter.values import missing_objects

OTHER_SEGMENT = "__other__"
NO_SEGMENT = -1  # the code of a record whose segment has no window (a small __other__)
# Values never given a window of their own: "" reads as no label in Prometheus, and a value
# literally named like the bucket would collide with it.
_RESERVED = ("", OTHER_SEGMENT)


@dataclass(frozen=True)
class Segmentation:
    """The segments of one model, chosen from its reference."""

    column: str
    own: tuple[str, ...]  # values with their own window, most frequent first
    other: bool  # whether __other__ has a window (the rest of the reference has min_rows)
    sizes: Mapping[str, int]  # reference rows per candidate value, and of __other__
    small: tuple[str, ...] = ()  # frequent values below min_rows, counted in __other__

    @property
    def names(self) -> tuple[str, ...]:
        """The segment label values with a window: the own values, then ``__other__``."""
        return (*self.own, OTHER_SEGMENT) if self.other else self.own

    def codes(self, values: NDArray[np.object_]) -> NDArray[np.intp]:
        """Each value's index in ``names``; ``NO_SEGMENT`` when its segment has no window."""
        position: dict[object, int] = {name: i for i, name in enumerate(self.own)}
        other = len(self.own) if self.other else NO_SEGMENT
        # A missing value (None) or any value not among the own ones falls to ``other``.
        return np.fromiter((position.get(v, other) for v in values.tolist()), dtype=np.intp,
                           count=values.shape[0])


def choose(column: str, values: NDArray[np.object_], max_segments: int,
           min_rows: int) -> Segmentation:
    """The segments of a reference column (None = missing)."""
    present = values[~missing_objects(values)]
    counts = Counter(str(v) for v in present.tolist())
    order = sorted(((v, n) for v, n in counts.items() if v not in _RESERVED),
                   key=lambda vn: (-vn[1], vn[0]))[:max_segments]
    own = tuple(v for v, n in order if n >= min_rows)
    small = tuple(v for v, n in order if n < min_rows)
    rest = values.shape[0] - sum(counts[v] for v in own)
    sizes = {**dict(order), OTHER_SEGMENT: rest}
    return Segmentation(column, own, rest >= min_rows, MappingProxyType(sizes), small)
