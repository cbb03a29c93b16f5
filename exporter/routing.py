"""Which window a record goes to: one window per ``WindowKey`` (SPEC 6.7).

Without ``version_column`` a model has one window (the key ``WindowKey()``). With it, every
model version gets its own window: a new version is admitted when it first appears, evicting
the version that first appeared longest ago beyond ``max_versions``; later records of an
evicted (retired) version are refused, so a rollout never mixes versions in one window. The
router also holds each window's latest snapshot, replaced by one reference assignment so a
scrape sees the old snapshot or the new one.

A new dimension of the key (a segment, say) is a field of ``WindowKey`` and a column that
``split`` factorizes; admission, eviction and everything downstream work per key."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from exporter.parsing import Batch
from exporter.snapshot import ModelSnapshot
from exporter.window import Window

log = logging.getLogger(__name__)

UNKNOWN_VERSION = "unknown"  # model_version of records whose version column is missing
RETIRED_VERSIONS_KEPT = 1000  # names of evicted versions remembered (bounded)


@dataclass(frozen=True)
class WindowKey:
    """What one window holds: the records of one model version ("" without version_column)."""

    version: str = ""


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
                 on_admit: Callable[[WindowKey], None] = lambda key: None) -> None:
        self.model = model
        self.version_column = version_column
        self.max_versions = max_versions
        self._new_window = new_window
        self._on_evict = on_evict
        self._on_admit = on_admit
        self._routes: OrderedDict[WindowKey, _Route] = OrderedDict()
        self._retired: OrderedDict[WindowKey, None] = OrderedDict()
        self._lock = threading.Lock()
        if version_column is None:
            self.window(WindowKey())

    def split(self, batch: Batch) -> list[tuple[WindowKey, NDArray[np.bool_]]]:
        """The batch's rows by key, keys in order of first appearance."""
        if self.version_column is None or batch.rows == 0:
            return [(WindowKey(), np.ones(batch.rows, dtype=bool))]
        import pandas as pd  # only with a version_column

        series = pd.Series(batch.categories[self.version_column], dtype=object)
        codes, names = pd.factorize(series.fillna(UNKNOWN_VERSION).to_numpy())
        return [(WindowKey(str(name)), codes == i) for i, name in enumerate(names)]

    def window(self, key: WindowKey) -> Window | None:
        """The window of a key, admitting a new key (None for a retired one)."""
        evicted = []
        with self._lock:
            route = self._routes.get(key)
            if route is not None:
                return route.window
            if key in self._retired:
                return None
            while len(self._routes) >= self.max_versions:
                old, _ = self._routes.popitem(last=False)
                self._retired[old] = None
                while len(self._retired) > RETIRED_VERSIONS_KEPT:
                    self._retired.popitem(last=False)
                evicted.append(old)
            route = _Route(key, self._new_window())
            self._routes[key] = route
        for old in evicted:
            log.info("model version retired", extra={"model": self.model,
                                                     "model_version": old.version})
            self._on_evict(old)
        self._on_admit(key)  # after the evictions: the evicted keys' companions go first
        return route.window

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
