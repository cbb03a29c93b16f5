"""Exception hierarchy: everything the exporter raises on purpose derives from ExporterError."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


class ExporterError(Exception):
    """Base class of every error the exporter raises deliberately."""


class ConfigError(ExporterError):
    """Invalid configuration; `problems` lists every mistake, each prefixed by its YAML path."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        collected = (problems,) if isinstance(problems, str) else tuple(problems)
        if not collected:
            msg = "ConfigError needs at least one problem"
            raise ValueError(msg)
        self.problems: tuple[str, ...] = collected
        super().__init__("\n".join(collected))


class ReferenceDataError(ExporterError):
    """A reference data file cannot be read; the message names the file (and line for JSONL)."""
