"""Which window a record goes to: one window per ``WindowKey`` (SPEC 6.7).

Without ``version_column`` a model has one window (the key ``WindowKey()``). With it, every
model version gets its own window: a new version is admitted when it first appears, evicting
the version that first appeared longest ago beyond ``max_versions``; later records of an
evicted (retired) version are refused, so a rollout never mixes versions in one window. The
router also holds each window's latest snapshot, replaced by one reference assignment so a
scrape sees the old snapshot or the new one.

With ``segments`` (SPEC 6.11) a record goes to two windows: its version's whole-model window
(``segment=""``) and its version's segment window (``exporter/segments.py`` says which segment);
``max_versions`` counts versions, and a version is admitted and evicted with all its segment
windows, so a model holds at most ``max_versions * (max_segments + 2)`` windows.

A new dimension of the key is a field of ``WindowKey`` and a column that ``split`` factorizes;
admission, eviction and everything downstream work per key."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from exporter.parsing import Batch
from exporter.segments import Segmentation
from exporter.snapshot import ModelSnapshot
from exporter.window import Window

log = logging.getLogger(__name__)

UNKNOWN_VERSION = "unknown"  # model_version of records whose version column is missing
RETIRED_VERSIONS_KEPT = 1000  # names of evicted versions remembered (bounded)


@dataclass(frozen=True)
class WindowKey:
    """What one window holds: the records of one model version ("" without version_column)
    and of one segment of it ("" for all its records)."""

    version: str = ""
    segment: str = ""


class _Route:
    """The window of one key and its latest snapshot."""

    def __init__(self, key: WindowKey, window: Window) -> None:
        self.key = key
        self.window = window
        self.snapshot: ModelSnapshot | None = None


class WindowRouter:
    """The windows of one model by key (thread-safe: ingest admits, compute and scrapes read)."""

    def __init__(self, model: str, version_column: str | None, max_versions: int,
                 new_window: Callable[[], Window],
                 on_evict: Callable[[WindowKey], None] = lambda key: None,
                 on_admit: Callable[[WindowKey], None] = lambda key: None,
                 segmentation: Segmentation | None = None) -> None:
        self.model = model
        self.version_column = version_column
        self.max_versions = max_versions
        self.segmentation = segmentation
        self._new_window = new_window
        self._on_evict = on_evict
        self._on_admit = on_admit
        self._routes: OrderedDict[WindowKey, _Route] = OrderedDict()
        self._retired: OrderedDict[str, None] = OrderedDict()  # evicted versions
        self._lock = threading.Lock()
        if version_column is None:
            for key in self.keys(""):
                self.window(key)

    def keys(self, version: str) -> list[WindowKey]:
        """A version's keys: its whole-model window, then one per segment with a window."""
        names = self.segmentation.names if self.segmentation is not None else ()
        return [WindowKey(version), *(WindowKey(version, name) for name in names)]

    def split(self, batch: Batch) -> list[tuple[WindowKey, NDArray[np.bool_]]]:
        """The batch's rows by key, keys in order of first appearance (each version's
        whole-model key before its segment keys); with segments a row is under two keys."""
        if self.version_column is None or batch.rows == 0:
            versions = [(WindowKey(), np.ones(batch.rows, dtype=bool))]
        else:
            import pandas as pd  # only with a version_column

            series = pd.Series(batch.categories[self.version_column], dtype=object)
            codes, names = pd.factorize(series.fillna(UNKNOWN_VERSION).to_numpy())
            versions = [(WindowKey(str(name)), codes == i) for i, name in enumerate(names)]
        if self.segmentation is None or batch.rows == 0:
            return versions
        segments = self.segmentation.codes(batch.categories[self.segmentation.column])
        result = []
        for key, rows in versions:
            result.append((key, rows))
            for index, name in enumerate(self.segmentation.names):
                both = rows & (segments == index)
                if both.any():
                    result.append((WindowKey(key.version, name), both))
        return result

    def window(self, key: WindowKey) -> Window | None:
        """The window of a key, admitting a new version with all its keys (None for a retired
        version or a segment without a window)."""
        evicted: list[WindowKey] = []
        admitted: list[WindowKey] = []
        with self._lock:
            route = self._routes.get(key)
            if route is not None:
                return route.window
            if key.version in self._retired:
                return None
            versions = list(dict.fromkeys(k.version for k in self._routes))
            if key.version not in versions:
                while len(versions) >= self.max_versions:
                    oldest = versions.pop(0)
                    evicted += [k for k in self._routes if k.version == oldest]
                    for gone in evicted:
                        self._routes.pop(gone, None)
                    self._retired[oldest] = None
                    while len(self._retired) > RETIRED_VERSIONS_KEPT:
                        self._retired.popitem(last=False)
                for new in self.keys(key.version):
                    self._routes[new] = _Route(new, self._new_window())
                    admitted.append(new)
            route = self._routes.get(key)
        for old in evicted:
            if not old.segment:
                log.info("model version retired", extra={"model": self.model,
                                                         "model_version": old.version})
            self._on_evict(old)
        for new in admitted:  # after the evictions: the evicted keys' companions go first
            self._on_admit(new)
        return route.window if route is not None else None

    def windows(self) -> list[tuple[WindowKey, Window]]:
        """Every admitted key and its window, oldest first appearance first."""
        with self._lock:
            return [(r.key, r.window) for r in self._routes.values()]

    def publish(self, key: WindowKey, snapshot: ModelSnapshot) -> bool:
        """Make ``snapshot`` the key's latest; False (dropped) when the key was evicted
        meanwhile."""
        with self._lock:
            route = self._routes.get(key)
        if route is None:
            return False
        route.snapshot = snapshot  # one reference assignment: scrapes see old or new
        return True

    def snapshots(self) -> list[tuple[WindowKey, ModelSnapshot | None]]:
        """Every admitted key and its latest snapshot (None before the first computation)."""
        with self._lock:
            return [(r.key, r.snapshot) for r in self._routes.values()]
