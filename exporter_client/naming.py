"""File names for rolled-over logs: chronological, unique, and pruned beyond a count."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


class LogFileNamer:
    """Names ``{prefix}-{UTC time}-{sequence}{suffix}`` in one directory.

    Names sort in creation order (the exporter orders files by modification time, then name),
    never reuse an existing file's name (a restarted app in the same second gets the next
    sequence number), and ``prune`` deletes the oldest beyond a count.
    """

    def __init__(self, directory: str | os.PathLike[str], prefix: str, suffix: str,
                 clock: Callable[[], float] = time.time) -> None:
        if not prefix or "/" in prefix or prefix.startswith((".", "_")):
            msg = (f"prefix {prefix!r}: expected a non-empty file-name prefix that does not "
                   "start with '.' or '_' (the exporter ignores such files)")
            raise ValueError(msg)
        self.directory = Path(directory)
        self.prefix = prefix
        self.suffix = suffix
        self._clock = clock
        self._sequence = 0
        self.directory.mkdir(parents=True, exist_ok=True)

    def next_path(self) -> Path:
        """A fresh path for the next file (nothing exists under it, nor under ``path.tmp``)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        while True:
            self._sequence += 1
            path = self.directory / f"{self.prefix}-{stamp}-{self._sequence:06d}{self.suffix}"
            if not path.exists() and not path.with_name(path.name + ".tmp").exists():
                return path

    def existing(self) -> list[Path]:
        """This writer's complete files in the directory, oldest first."""
        return sorted(p for p in self.directory.glob(f"{self.prefix}-*{self.suffix}")
                      if p.is_file())

    def prune(self, keep: int | None) -> list[Path]:
        """Delete all but the newest ``keep`` files (none when ``keep`` is None); return them."""
        if keep is None:
            return []
        files = self.existing()
        doomed = files[:-keep] if keep > 0 else files
        for path in doomed:
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # someone else removed it: the goal is reached anyway
        return doomed


def check_rollover(max_age: float, keep_files: int | None) -> None:
    """Validate the roll-over arguments every writer takes (raises ValueError)."""
    if max_age <= 0:
        msg = f"max_age: expected a positive number of seconds, got {max_age!r}"
        raise ValueError(msg)
    if keep_files is not None and keep_files < 1:
        msg = f"keep_files: expected None or at least 1, got {keep_files!r}"
        raise ValueError(msg)
