"""Process signals: SIGTERM and SIGINT stop, SIGHUP asks for a reload.

The handlers are installed first thing in ``main()``, before the heavy imports and the reference
loading, so that a SIGTERM during start-up ends the process with a log line and exit 0 instead
of the default action (killed, exit 143, nothing logged). Until the exporter runs, a stop signal
raises ``StartupInterrupted`` in the main thread, which unwinds whatever step of the start-up is
under way; once it runs, the handlers only record what was asked and the main loop acts on it.

A Python handler only runs when the main thread is between two bytecodes, so a start-up step
stuck in one long C call (reading a huge Parquet reference, say) would delay it. A small thread
learns of the signal at once through ``signal.set_wakeup_fd`` and, should start-up not have
unwound ``STARTUP_STOP_SECONDS`` later, logs and ends the process with exit 0 itself.

This module imports nothing heavy on purpose.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STARTUP_STOP_SECONDS = 4.0  # SPEC 4 allows 5 s from the signal to the end of the process
log = logging.getLogger(__name__)


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
        self._started_up = False  # set by running() only (the handler also clears `starting`)
        self._wakeup: int | None = None  # the write end of the set_wakeup_fd pipe

    def watch_start_up(self) -> None:
        """Start the thread that bounds how long a stop signal during start-up can take."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        self._wakeup = write_fd
        threading.Thread(target=self._bound_start_up, args=(read_fd,), name="start-up-signals",
                         daemon=True).start()

    def _bound_start_up(self, read_fd: int) -> None:
        try:
            self._wait_and_bound(read_fd)
        finally:
            os.close(read_fd)

    def _wait_and_bound(self, read_fd: int) -> None:
        stops = {int(s) for s in STOP_SIGNALS}
        name = "unknown"
        while not self._started_up:
            try:
                received = os.read(read_fd, 64)
            except OSError:
                return
            if not received:
                return
            stop = stops & set(received)
            if stop and not self._started_up:
                name = signal.Signals(min(stop)).name
                break
        else:
            return
        deadline = time.monotonic() + STARTUP_STOP_SECONDS
        while time.monotonic() < deadline:
            if self._started_up:  # the normal stop path is in charge
                return
            time.sleep(0.05)
        if self._started_up:
            return
        # Holds only for C code that releases the GIL (pyarrow, polars and numpy do): this
        # thread needs it to run.
        log.warning("signal received during start-up; a start-up step did not return in time, "
                    "exiting now", extra={"signal": name})
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(0)

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
        self._started_up = True
        if self._wakeup is not None:
            write_fd, self._wakeup = self._wakeup, None
            signal.set_wakeup_fd(-1)
            os.write(write_fd, b"\0")  # wakes the start-up thread, which sees _started_up
            os.close(write_fd)

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
        handlers.watch_start_up()
        _installed = handlers
    return _installed


def uninstall() -> None:
    """Restore the default actions (for commands that do not run the exporter)."""
    global _installed  # noqa: PLW0603 - see install()
    if _installed is not None:
        _installed.running()  # ends the start-up thread
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _installed = None
