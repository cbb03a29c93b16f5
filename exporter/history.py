"""Timestamped OpenMetrics history for ``replay``: families spooled apart, joined at the end.

OpenMetrics wants every sample of a family in one contiguous run, and each series' samples in
time order. Replay produces the opposite order (every family at one time, then the next time),
so each family's sample lines go to a spool file of their own as steps are written, and
``close`` concatenates the spools in the order the families were first seen, then ``# EOF``.
Memory stays bounded by one step's exposition whatever the history's length. The output is
written to a temporary name beside the target and renamed into place only when complete, so an
interrupted replay leaves either a finished file or none (a stale temporary is removed).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from exporter.collector import OpenMetricsView


class _Timestamped:
    """A collector whose samples all carry one timestamp (seconds)."""

    def __init__(self, source: Collector, timestamp: float) -> None:
        self._source = source
        self._timestamp = timestamp

    def collect(self) -> Iterable[object]:
        """The source's families with the step's timestamp on every sample."""
        for metric in OpenMetricsView(self._source).collect():
            metric.samples = [Sample(s.name, s.labels, s.value, self._timestamp, s.exemplar,
                                     s.native_histogram) for s in metric.samples]
            yield metric


class HistoryWriter:
    """Appends one exposition per step; ``close`` writes the complete OpenMetrics file."""

    def __init__(self, output: str | os.PathLike[str]) -> None:
        self.output = Path(output)
        self._spool = Path(tempfile.mkdtemp(prefix=".replay-", dir=self.output.parent))
        self._families: dict[str, tuple[str, IO[str]]] = {}  # name -> (header, spool file)
        self.steps = 0
        self.samples = 0

    def write_step(self, source: Collector, timestamp: float) -> None:
        """Spool every sample ``source`` exposes now, stamped with ``timestamp``."""
        # prometheus_client leaves this function unannotated.
        exposition = generate_latest(_Timestamped(source, timestamp))  # type: ignore[no-untyped-call]
        text = bytes(exposition).decode("utf-8")
        for name, header, lines in _families(text):
            entry = self._families.get(name)
            if entry is None:
                handle = open(self._spool / f"{len(self._families):05d}", "w",  # noqa: SIM115
                              encoding="utf-8")
                entry = (header, handle)
                self._families[name] = entry
            entry[1].write(lines)
            self.samples += lines.count("\n")
        self.steps += 1

    def close(self) -> Path:
        """Join the spools into the output file (atomically) and remove them."""
        partial = self.output.with_name(f".{self.output.name}.partial")
        try:
            with open(partial, "w", encoding="utf-8") as out:
                for header, handle in self._families.values():
                    handle.close()
                    out.write(header)
                    with open(handle.name, encoding="utf-8") as spool:
                        shutil.copyfileobj(spool, out, 1 << 20)
                out.write("# EOF\n")
            os.replace(partial, self.output)
        finally:
            self.abort()
            partial.unlink(missing_ok=True)
        return self.output

    def abort(self) -> None:
        """Drop everything spooled so far (no output file is written)."""
        for _, handle in self._families.values():
            handle.close()
        shutil.rmtree(self._spool, ignore_errors=True)


def _families(text: str) -> Iterable[tuple[str, str, str]]:
    """Split one OpenMetrics exposition into (name, header lines, sample lines) per family."""
    name = ""
    header: list[str] = []
    samples: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("# EOF"):
            break
        if line.startswith("# HELP "):
            if name:
                yield name, "".join(header), "".join(samples)
            name = line.split(" ", 3)[2]
            header, samples = [line], []
        elif line.startswith("#"):
            header.append(line)
        else:
            samples.append(line)
    if name:
        yield name, "".join(header), "".join(samples)
