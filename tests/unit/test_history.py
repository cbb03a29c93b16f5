"""The replay's OpenMetrics history writer: contiguous families, time order, atomic output."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import generate_latest

from exporter.collector import OpenMetricsView
from exporter.history import HistoryWriter


class _Steps:
    """A collector whose values change with a step number."""

    def __init__(self) -> None:
        self.step = 0

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("drift_x", "A gauge.", labels=["model"])
        gauge.add_metric(["a"], float(self.step))
        if self.step % 2 == 0:  # a series that comes and goes
            gauge.add_metric(["b"], 10.0 + self.step)
        yield gauge
        counter = CounterMetricFamily("drift_c", "A counter.", labels=["model"])
        counter.add_metric(["a"], float(self.step * 3))
        yield counter


def _write(path: Path, steps: int) -> Path:
    source = _Steps()
    writer = HistoryWriter(path)
    for step in range(steps):
        source.step = step
        writer.write_step(source, 1_700_000_000.0 + 60 * step)
    return writer.close()


class TestHistoryWriter:
    def test_each_family_is_one_contiguous_run_in_time_order(self, tmp_path: Path) -> None:
        text = _write(tmp_path / "out.om", 4).read_text()
        lines = text.splitlines()
        assert lines[-1] == "# EOF"
        assert [line for line in lines if line.startswith("# TYPE")] == [
            "# TYPE drift_x gauge", "# TYPE drift_c counter"]
        x_lines = [line for line in lines if line.startswith("drift_x{")]
        c_start = lines.index("# TYPE drift_c counter")
        assert all(lines.index(line) < c_start for line in x_lines)
        a_times = [float(line.split()[-1]) for line in x_lines if 'model="a"' in line]
        assert a_times == sorted(a_times)
        assert len(a_times) == 4
        assert sum('model="b"' in line for line in x_lines) == 2
        assert 'drift_c_total{model="a"} 9.0 1700000180.0' in lines

    def test_an_aborted_history_leaves_no_file_and_no_spool(self, tmp_path: Path) -> None:
        writer = HistoryWriter(tmp_path / "out.om")
        writer.write_step(_Steps(), 1_700_000_000.0)
        writer.abort()
        assert list(tmp_path.iterdir()) == []

    def test_a_finished_history_leaves_only_the_output(self, tmp_path: Path) -> None:
        _write(tmp_path / "out.om", 2)
        assert [p.name for p in tmp_path.iterdir()] == ["out.om"]

    @pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
    def test_promtool_imports_the_history(self, tmp_path: Path) -> None:
        out = _write(tmp_path / "out.om", 5)
        result = subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(out),
             str(tmp_path / "blocks")], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert any((tmp_path / "blocks").iterdir())

    def test_a_step_is_rendered_as_prometheus_client_renders_it(self, tmp_path: Path) -> None:
        class Tricky:
            def collect(self) -> Iterator[Metric]:
                gauge = GaugeMetricFamily("drift_g", 'Help with "quotes" and \\ back.',
                                          labels=["model", "category"], unit="seconds")
                for index, (label, value) in enumerate([
                        ('a "quoted"\nline', math.nan), ("back\\slash", math.inf),
                        ("ünïcode", -math.inf), ("big", 123456789.0), ("", 1e-300)]):
                    gauge.add_metric([f"m{index}", label], value)
                yield gauge
                histogram = HistogramMetricFamily("drift_h", "A histogram.", labels=["model"])
                histogram.add_metric(["a"], [("0.5", 1.0), ("+Inf", 3.0)], 7.25)
                yield histogram
                yield CounterMetricFamily("drift_n", "No labels.", value=2.0)

        stamped = 1_700_000_000.125
        writer = HistoryWriter(tmp_path / "out.om")
        writer.write_step(Tricky(), stamped)
        text = writer.close().read_text()

        class Stamped:
            def collect(self) -> Iterator[Metric]:
                for metric in OpenMetricsView(Tricky()).collect():
                    metric.samples = [s._replace(timestamp=stamped) for s in metric.samples]
                    yield metric

        assert text == generate_latest(Stamped()).decode("utf-8")


class TestSeriesOrder:
    def test_each_series_points_are_contiguous_and_in_time_order(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        import exporter.history

        class Histories:
            step = 0

            def collect(self) -> Iterator[Metric]:
                gauge = GaugeMetricFamily("drift_x", "A gauge.", labels=["model"])
                for model in ("b", "a") if self.step % 2 else ("a", "b", "c"):
                    gauge.add_metric([model], float(self.step))
                yield gauge
                histogram = HistogramMetricFamily("drift_h", "A histogram.", labels=["model"])
                for model in ("a", "b"):
                    histogram.add_metric([model], [("0.5", 1.0 + self.step),
                                                   ("+Inf", 3.0 + self.step)], 7.0)
                yield histogram

        monkeypatch.setattr(exporter.history, "SORT_RUN_LINES", 7)  # several runs to merge
        source = Histories()
        writer = HistoryWriter(tmp_path / "out.om")
        for step in range(9):
            source.step = step
            writer.write_step(source, 1_700_000_000.0 + 60 * step)
        text = writer.close().read_text()
        # prometheus_client's parser checks series grouping strictly, but reads only one point
        # per histogram series: the gauge part goes through it, the histogram is read as text.
        gauge_text = text[:text.index("# HELP drift_h")] + "# EOF\n"
        families = {f.name: f for f in text_string_to_metric_families(gauge_text)}
        points = [(s.labels["model"], s.timestamp) for s in families["drift_x"].samples]
        assert [model for model, _ in points] == ["a"] * 9 + ["b"] * 9 + ["c"] * 5
        for model in ("a", "b", "c"):
            times = [float(t) for m, t in points if m == model]
            assert times == sorted(times)
        histogram = [line.split() for line in text[text.index("# TYPE drift_h"):].splitlines()
                     if line.startswith("drift_h")]
        assert [(h[0], h[2]) for h in histogram[:5]] == [
            ('drift_h_bucket{le="0.5",model="a"}', "1700000000.0"),
            ('drift_h_bucket{le="+Inf",model="a"}', "1700000000.0"),
            ('drift_h_count{model="a"}', "1700000000.0"),
            ('drift_h_sum{model="a"}', "1700000000.0"),
            ('drift_h_bucket{le="0.5",model="a"}', "1700000060.0")]
        assert all('model="b"' in h[0] for h in histogram[9 * 4:])
        assert list(tmp_path.iterdir()) == [tmp_path / "out.om"]
