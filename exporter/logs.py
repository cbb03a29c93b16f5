"""Process logging in logfmt or JSON, with structured fields passed through ``extra``.

Everything the process writes to stderr while running is a log line: Python warnings (numpy's
included) and uncaught exceptions in any thread go through the same formatter.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import warnings
from types import TracebackType

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower().replace("warning", "warn"),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return fields


class LogfmtFormatter(logging.Formatter):
    """key=value pairs, values quoted when needed."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a logfmt line."""
        parts = []
        for key, value in _fields(record).items():
            text = str(value)
            if not text or any(ch in text for ch in ' ="\n\t'):
                text = json.dumps(text)
            parts.append(f"{key}={text}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a JSON line."""
        return json.dumps(_fields(record), default=str)


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    """Configure the root logger once, writing to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    _route_stderr_writers_to_log()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    logging.getLogger("py.warnings").warning(str(message), extra={
        "category": category.__name__, "location": f"{filename}:{lineno}"})


def _thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("exporter").error(
        "uncaught exception in a thread", extra={"thread_name": name},
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback))


def _main_exception(kind: type[BaseException], value: BaseException,
                    traceback: TracebackType | None) -> None:
    logging.getLogger("exporter").error("uncaught exception", exc_info=(kind, value, traceback))


def _route_stderr_writers_to_log() -> None:
    """Warnings and uncaught exceptions would print raw, multi-line text to stderr."""
    warnings.showwarning = _show_warning
    threading.excepthook = _thread_exception
    sys.excepthook = _main_exception
