"""A clock that passes only when a test says so (injected where the code reads time)."""

from __future__ import annotations


class FakeClock:
    """Monotonic time that passes only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds
