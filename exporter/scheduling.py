"""When a window's statistics are recomputed, by the clock the caller gives.

A window is due when it was never computed, or when ``update_interval`` has elapsed since its
last computation and it has new records (new rows or joined labels) or is a duration window
(whose records age out as the clock advances). While its logs are being caught up with (more
than one read-sized block pending), a model waits: recomputing a window that is about to be
replaced only takes CPU from ingestion."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from exporter.routing import WindowKey


class Scheduler:
    """Pending record counts and last computation times per window key (thread-safe: ingest
    counts, compute asks and starts)."""

    def __init__(self, update_interval: float, *, ages: bool) -> None:
        self.update_interval = update_interval
        self.ages = ages  # a duration window changes with the clock alone
        self.catching_up = False
        self._pending: dict[WindowKey, int] = {}
        self._last: dict[WindowKey, float] = {}
        self._computed: set[WindowKey] = set()
        self._lock = threading.Lock()

    def added(self, key: WindowKey, rows: int) -> None:
        """Note records added to (or labels joined into) a key's window."""
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + rows

    def pending(self, key: WindowKey) -> int:
        """Records noted for a key since its last computation started."""
        with self._lock:
            return self._pending.get(key, 0)

    def due(self, key: WindowKey, now: float) -> bool:
        """Whether a key's window should be recomputed at ``now``."""
        with self._lock:
            if key not in self._computed:
                return True
            if now - self._last.get(key, 0.0) < self.update_interval:
                return False
            return self._pending.get(key, 0) > 0 or self.ages

    def any_due(self, keys: Iterable[WindowKey], now: float) -> bool:
        """Whether some key is due, unless the model is catching up."""
        if self.catching_up:
            return False
        return any(self.due(key, now) for key in keys)

    def begin(self, key: WindowKey, now: float) -> None:
        """A computation of the key's window starts at ``now``: what is pending is taken."""
        with self._lock:
            self._pending[key] = 0
            self._last[key] = now

    def done(self, key: WindowKey) -> None:
        """The key's computation published a snapshot."""
        with self._lock:
            self._computed.add(key)

    def forget(self, key: WindowKey) -> None:
        """Drop a key whose window is gone (an evicted version)."""
        with self._lock:
            self._pending.pop(key, None)
            self._last.pop(key, None)
            self._computed.discard(key)
