"""Timestamped OpenMetrics history for ``replay``: families spooled apart, joined at the end.

OpenMetrics wants every sample of a family in one contiguous run, within it each series'
points together and in time order. Replay produces the opposite order (every family at one
time, then the next time), so each family's sample lines go to a spool file of their own as
steps are written, each line prefixed by the number of its series (its labels without ``le``,
numbered in order of first appearance). ``close`` sorts every spool by that number (a stable
external merge sort over runs of at most ``SORT_RUN_LINES`` lines, so time order is kept and
memory stays bounded whatever the history's length), joins the families in the order they
were first seen and ends with ``# EOF``. The output is written under a temporary name beside
the target and renamed into place only when complete: an interrupted replay leaves either a
finished file or none.
"""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
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


def _keyed_lines(metric: Metric, stamp: str) -> Iterator[tuple[str, str]]:
    """(series, line) for each sample, the line with ``stamp`` (" <timestamp>\\n") appended;
    the series is the labels without ``le``.

    The same text as prometheus_client's OpenMetrics ``generate_latest`` (labels sorted,
    values through ``floatToGoString``, label values escaped), which spends most of its time
    checking every character of every label for UTF-8 names: at 1,800 samples a step that
    doubled the cost of a replay step. Names here are plain Prometheus names (the collector's
    own), so that check is not needed; a test compares the two renderings."""
    for sample in metric.samples:
        if sample.labels:
            pairs = [f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items())]
            series = ",".join(p for p in pairs if not p.startswith('le="'))
            yield series, f"{sample.name}{{{','.join(pairs)}}} {_go_float(sample.value)}{stamp}"
        else:
            yield "", f"{sample.name} {_go_float(sample.value)}{stamp}"


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
        # Per family, each series' number in order of first appearance (the output's order).
        self._series: dict[str, dict[str, int]] = {}
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
            order = self._series.setdefault(metric.name, {})
            entry[1].write("".join(f"{order.setdefault(series, len(order)):0{_ID}d}{line}"
                                   for series, line in _keyed_lines(metric, stamp)))
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
                    out.writelines(_sorted_by_series(Path(handle.name)))
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


SORT_RUN_LINES = 500_000  # lines sorted in memory at once when a spool is put in series order


_ID = 9  # digits of a series' number in the spool (a family has far fewer series)


def _series_of(keyed: str) -> str:
    return keyed[:_ID]


def _line_of(keyed: str) -> str:
    return keyed[_ID:]


def _sorted_by_series(spool: Path) -> Iterator[str]:
    """The spool's lines grouped by series, each series' lines in the order written (stable
    external sort: sorted runs on disk, merged; earlier runs win ties, keeping time order)."""
    runs: list[Path] = []
    with open(spool, encoding="utf-8") as lines:
        while True:
            chunk = [line for _, line in zip(range(SORT_RUN_LINES), lines, strict=False)]
            if not chunk:
                break
            chunk.sort(key=_series_of)  # stable: a series keeps its time order
            run = spool.with_name(f"{spool.name}.run{len(runs)}")
            run.write_text("".join(chunk), encoding="utf-8")
            runs.append(run)
    handles = [open(run, encoding="utf-8") for run in runs]  # noqa: SIM115
    try:
        for keyed in heapq.merge(*handles, key=_series_of):
            yield _line_of(keyed)
    finally:
        for handle in handles:
            handle.close()
