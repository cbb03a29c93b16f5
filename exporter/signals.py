"""Process signals: SIGTERM and SIGINT stop, SIGHUP asks for a reload.

The handlers are installed first thing in ``main()``, before the heavy imports and the reference
loading, so that a SIGTERM during start-up ends the process with a log line and exit 0 instead
of the default action (killed, exit 143, nothing logged). Until the exporter runs, a stop signal
raises ``StartupInterrupted`` in the main thread, which unwinds whatever step of the start-up is
under way; once it runs, the handlers only record what was asked and the main loop acts on it.
This module imports nothing heavy on purpose.
"""

from __future__ import annotations

import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StartupInterrupted(BaseException):
    """A stop signal arrived during start-up.

    A BaseException, like KeyboardInterrupt, so an ``except Exception`` on the way (a reference
    loader counting bad files, say) cannot swallow it."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class Signals:
    """What the process was asked by signals; handlers only set plain attributes.

    No locks or Events are touched inside a handler: it runs in the main thread between two
    bytecodes, possibly while that thread holds the very lock an Event would need."""

    def __init__(self) -> None:
        self.starting = True
        self.stop_signal: str | None = None
        self._reloads = 0
        self._reloads_taken = 0

    @property
    def stop_requested(self) -> bool:
        """Whether SIGTERM or SIGINT was received."""
        return self.stop_signal is not None

    def take_reload(self) -> bool:
        """Whether SIGHUP arrived since the last call (several SIGHUPs count as one)."""
        current = self._reloads  # read once: a SIGHUP arriving meanwhile stays pending
        pending = current != self._reloads_taken
        self._reloads_taken = current
        return pending

    def running(self) -> None:
        """Start-up is over: from now on a stop signal is only recorded, never raised."""
        self.starting = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reloads += 1
            return
        if self.stop_signal is None:
            self.stop_signal = signal.Signals(signum).name
        if self.starting:
            self.starting = False  # raise once: a second signal must not break the unwinding
            raise StartupInterrupted(signal.Signals(signum).name)


_installed: Signals | None = None


def install() -> Signals:
    """Install the handlers (once per process; later calls return the same object)."""
    global _installed  # noqa: PLW0603 - signal handlers are process-wide by nature
    if _installed is None:
        handlers = Signals()
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            signal.signal(sig, handlers._handle)
        _installed = handlers
    return _installed


def uninstall() -> None:
    """Restore the default actions (for commands that do not run the exporter)."""
    global _installed  # noqa: PLW0603 - see install()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _installed = None
