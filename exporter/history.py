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

from prometheus_client import utils as client_utils
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.registry import Collector

from exporter.collector import OpenMetricsView


class _One:
    """A collector of one family without samples: its header lines, rendered by the library."""

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> Iterable[Metric]:
        """The family's name, help, type and unit."""
        yield Metric(self._metric.name, self._metric.documentation, self._metric.type,
                     self._metric.unit)


def _header(metric: Metric) -> str:
    """The family's ``# HELP``/``# TYPE``/``# UNIT`` lines, exactly as prometheus_client
    writes them (rendered once per family, not at every step)."""
    text = bytes(generate_latest(_One(metric))).decode("utf-8")  # type: ignore[no-untyped-call]
    return text.removesuffix("# EOF\n")


def _sample_lines(metric: Metric, stamp: str) -> str:
    """The family's sample lines with ``stamp`` (" <timestamp>\\n") appended.

    The same text as prometheus_client's OpenMetrics ``generate_latest`` (labels sorted,
    values through ``floatToGoString``, label values escaped), which spends most of its time
    checking every character of every label for UTF-8 names: at 1,800 samples a step that
    doubled the cost of a replay step. Names here are plain Prometheus names (the collector's
    own), so that check is not needed; a test compares the two renderings."""
    lines = []
    for sample in metric.samples:
        if sample.labels:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
            lines.append(f"{sample.name}{{{labels}}} {_go_float(sample.value)}{stamp}")
        else:
            lines.append(f"{sample.name} {_go_float(sample.value)}{stamp}")
    return "".join(lines)


def _go_float(value: float) -> str:
    """prometheus_client's rendering of a value (``floatToGoString``, unannotated there)."""
    text: str = client_utils.floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


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
        stamp = f" {timestamp}\n"
        for metric in OpenMetricsView(source).collect():
            entry = self._families.get(metric.name)
            if entry is None:
                handle = open(self._spool / f"{len(self._families):05d}", "w",  # noqa: SIM115
                              encoding="utf-8")
                entry = (_header(metric), handle)
                self._families[metric.name] = entry
            entry[1].write(_sample_lines(metric, stamp))
            self.samples += len(metric.samples)
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
