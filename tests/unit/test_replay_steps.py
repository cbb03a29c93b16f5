"""Replay (SPEC 7): steps, the virtual clock, batches cut at steps, and the command's errors."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from exporter import signals
from exporter.cli import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, main
from exporter.counters import ModelCounters
from exporter.errors import ExporterError
from exporter.parsing import NUMBER, TIME, Batch, ColumnSpec
from exporter.reader import LogReader
from exporter.replay import (
    PredictionStream,
    Progress,
    Span,
    clock_batch,
    parse_time,
    slice_batch,
)

START = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _default_signal_actions() -> Iterator[None]:
    """main() installs the exporter's signal handlers; the test process gets its own back."""
    yield
    signals.uninstall()


def _batch(times: list[float], invalid: int = 0) -> Batch:
    return Batch(len(times), {"ts": np.array(times, dtype=np.float64),
                              "x": np.arange(len(times), dtype=np.float64)}, {},
                 {"ts": invalid} if invalid else {}, {"malformed": 1})


def _log(path: Path, times: list[object]) -> LogReader:
    path.write_text("".join(json.dumps({"ts": t, "x": float(i)}) + "\n"
                            for i, t in enumerate(times)))
    reader = LogReader("m", str(path.parent / "*.jsonl"), "jsonl", 1 << 20,
                       [ColumnSpec("x", NUMBER), ColumnSpec("ts", TIME)],
                       ModelCounters(["x", "ts"], ["x"]))
    reader.follower.start(None, None)
    return reader


class TestSpan:
    def test_steps_run_from_the_start_to_the_end_included(self) -> None:
        span = Span(START, START + 300, 60)
        assert span.steps == 6
        assert list(span.times()) == [START + 60 * i for i in range(6)]

    def test_a_span_of_one_instant_has_one_step(self) -> None:
        assert list(Span(START, START, 60).times()) == [START]

    def test_an_end_between_two_steps_is_not_a_step(self) -> None:
        assert list(Span(START, START + 90, 60).times()) == [START, START + 60]

    def test_decimal_steps_reach_the_end_despite_rounding(self) -> None:
        assert Span(START, START + 0.3, 0.1).steps == 4


class TestClock:
    def test_the_clock_is_the_running_maximum_and_never_goes_back(self) -> None:
        batch, clocks = clock_batch(_batch([10.0, 12.0, 11.0, 15.0, 9.0]), "ts", 0.0, math.inf)
        assert clocks.tolist() == [10.0, 12.0, 12.0, 15.0, 15.0]
        # a record stamped earlier keeps its own time (as run keeps it): only its entry waits
        assert batch.numbers["ts"].tolist() == [10.0, 12.0, 11.0, 15.0, 9.0]

    def test_the_clock_starts_where_the_previous_batch_left_it(self) -> None:
        _, clocks = clock_batch(_batch([5.0, 25.0]), "ts", 20.0, math.inf)
        assert clocks.tolist() == [20.0, 25.0]

    def test_a_record_without_a_valid_timestamp_takes_the_clock(self) -> None:
        batch, clocks = clock_batch(_batch([10.0, math.nan, 14.0, math.nan], invalid=2), "ts",
                                    0.0, math.inf)
        assert batch.numbers["ts"].tolist() == [10.0, 10.0, 14.0, 14.0]
        assert clocks.tolist() == [10.0, 10.0, 14.0, 14.0]
        assert batch.invalid == {"ts": 2}  # counted once, by the parser

    def test_a_timestamp_too_far_ahead_of_the_wall_clock_is_counted_invalid(self) -> None:
        batch, clocks = clock_batch(_batch([10.0, 1e300, 11.0], invalid=1), "ts", 0.0, 100.0)
        assert clocks.tolist() == [10.0, 10.0, 11.0]
        assert batch.numbers["ts"].tolist() == [10.0, 10.0, 11.0]
        assert batch.invalid == {"ts": 2}

    def test_a_slice_keeps_its_rows_and_only_the_first_carries_the_counts(self) -> None:
        batch = _batch([1.0, 2.0, 3.0, 4.0], invalid=1)
        first, rest = slice_batch(batch, 0, 1), slice_batch(batch, 1, 4)
        assert (first.rows, rest.rows) == (1, 3)
        assert rest.numbers["x"].tolist() == [1.0, 2.0, 3.0]
        assert (first.invalid, first.rejected) == ({"ts": 1}, {"malformed": 1})
        assert (rest.invalid, rest.rejected) == ({}, {})


class TestPredictionStream:
    def test_records_are_handed_out_exactly_up_to_each_step(self, tmp_path: Path) -> None:
        reader = _log(tmp_path / "a.jsonl", [START + s for s in (0, 30, 60, 61, 119, 120, 200)])
        stream = PredictionStream(reader, "ts", START, math.inf)
        handed = []
        for step in (START, START + 60, START + 120, START + 180, START + 240):
            parts = list(stream.until(step))
            handed.append(sum(b.rows for b, _ in parts))
            assert all(clock <= step for _, clock in parts)
        assert handed == [1, 2, 3, 0, 1]
        assert stream.clock == START + 200
        reader.close()

    def test_timestamps_going_backwards_enter_at_the_clock_and_nothing_is_dropped(
            self, tmp_path: Path) -> None:
        reader = _log(tmp_path / "a.jsonl",
                      [START + 100, START + 10, START + 20, START + 150, "not a time"])
        stream = PredictionStream(reader, "ts", START, math.inf)
        first = list(stream.until(START + 100))
        assert [b.rows for b, _ in first] == [3]
        assert first[0][0].numbers["ts"].tolist() == [START + 100, START + 10, START + 20]
        rest = list(stream.until(START + 200))
        assert sum(b.rows for b, _ in rest) == 2
        assert rest[0][0].numbers["ts"].tolist() == [START + 150, START + 150]
        assert stream.clock == START + 150
        reader.close()


class TestTimes:
    def test_epoch_seconds_and_rfc3339_times_are_accepted(self) -> None:
        assert parse_time("1700000000", "--from") == START
        assert parse_time("2023-11-14T22:13:20Z", "--from") == START
        assert parse_time("2023-11-14T23:13:20+01:00", "--to") == START

    @pytest.mark.parametrize("text", ["yesterday", "2023-11-14", "2023-11-14T22:13:20", "nan"])
    def test_a_time_without_a_zone_or_unreadable_is_refused(self, text: str) -> None:
        with pytest.raises(ExporterError, match="--from"):
            parse_time(text, "--from")


def _config(tmp_path: Path, *, timestamps: bool = True, records: int = 50) -> Path:
    rng = np.random.default_rng(3)
    pd.DataFrame({"x": rng.normal(size=500)}).to_parquet(tmp_path / "ref.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text("".join(
        json.dumps({"x": float(v), "ts": START + i}) + "\n"
        for i, v in enumerate(rng.normal(size=records))))
    models = []
    for name, ts in (("good", True), ("untimed", timestamps)):
        model = {"name": name, "logs": {"path": str(logs / "*.jsonl")},
                 "reference": {"path": str(tmp_path / "ref.parquet")},
                 "features": [{"name": "x", "type": "numerical"}],
                 "window": {"rows": 20}, "update_interval": "10s"}
        if ts:
            model["timestamp_column"] = "ts"
        models.append(model)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    return path


class TestCommand:
    def test_a_model_without_timestamp_column_is_a_usage_error_naming_it(
            self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        config = _config(tmp_path, timestamps=False)
        code = main(["replay", f"--config.file={config}", f"--output={tmp_path / 'h.om'}"])
        err = capsys.readouterr().err
        assert code == EXIT_USAGE
        assert "untimed" in err
        assert "timestamp_column" in err
        assert "good" not in err
        assert not (tmp_path / "h.om").exists()

    @pytest.mark.parametrize(("flags", "message"), [
        (["--from=1700000100", "--to=1700000000"], "after --to"),
        (["--from=soon"], "--from"),
        (["--to=2023-13-45T00:00:00Z"], "--to"),
        (["--step=1.5m"], "--step"),
        (["--step=0"], "--step"),
    ])
    def test_bad_flags_are_usage_errors(self, tmp_path: Path, flags: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
        config = _config(tmp_path)
        code = main(["replay", f"--config.file={config}", f"--output={tmp_path / 'h.om'}",
                     *flags])
        assert code == EXIT_USAGE
        assert message in capsys.readouterr().err
        assert not (tmp_path / "h.om").exists()

    def test_logs_without_records_are_an_empty_range_refused_with_a_reason(
            self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        config = _config(tmp_path, records=0)
        code = main(["replay", f"--config.file={config}", f"--output={tmp_path / 'h.om'}"])
        assert code == EXIT_USAGE
        assert "nothing to replay" in capsys.readouterr().err
        assert not (tmp_path / "h.om").exists()

    def test_an_explicit_range_without_records_writes_the_empty_history(
            self, tmp_path: Path) -> None:
        config = _config(tmp_path, records=0)
        code = main(["replay", f"--config.file={config}", f"--output={tmp_path / 'h.om'}",
                     "--from=1600000000", "--to=1600000030"])
        assert code == EXIT_OK
        text = (tmp_path / "h.om").read_text()
        assert text.endswith("# EOF\n")
        assert text.count('drift_rows_ingested_total{model="good"} 0.0') == 4

    def test_a_failure_while_writing_exits_1_without_output(
            self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        config = _config(tmp_path)
        output = tmp_path / "missing" / "h.om"
        code = main(["replay", f"--config.file={config}", f"--output={output}"])
        assert code == EXIT_RUNTIME
        assert "replay failed" in capsys.readouterr().err
        assert not output.parent.exists()

    def test_the_history_counts_cumulatively_and_nothing_is_written_beside_the_logs(
            self, tmp_path: Path) -> None:
        config = _config(tmp_path)
        before = sorted(p.name for p in (tmp_path / "logs").iterdir())
        code = main(["replay", f"--config.file={config}", f"--output={tmp_path / 'h.om'}"])
        assert code == EXIT_OK
        lines = (tmp_path / "h.om").read_text().splitlines()
        ingested = [float(line.split()[1]) for line in lines
                    if line.startswith('drift_rows_ingested_total{model="good"}')]
        assert ingested == [1.0, 11.0, 21.0, 31.0, 41.0]  # steps at 0, 10, ..., 40 s
        assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == before


class TestProgress:
    def test_a_terminal_gets_one_redrawn_line_with_rate_and_eta(
            self, capsys: pytest.CaptureFixture[str]) -> None:
        now = [0.0]
        progress = Progress(10, terminal=True, clock=lambda: now[0])
        now[0] = 2.0
        progress.update(4, 8000)
        now[0] = 2.1  # too soon to redraw
        progress.update(5, 9000)
        err = capsys.readouterr().err
        assert err == ("\rreplay: 8000 records read, 4/10 steps written, 4,000 records/s, "
                       "ETA 0:03  ")

    def test_elsewhere_a_log_line_every_five_seconds(
            self, caplog: pytest.LogCaptureFixture) -> None:
        now = [0.0]
        progress = Progress(10, terminal=False, clock=lambda: now[0])
        with caplog.at_level("INFO", logger="exporter.replay"):
            for second in range(1, 12):
                now[0] = float(second)
                progress.update(second % 10, 100 * second)
        assert [r.getMessage() for r in caplog.records] == ["replay progress"] * 2


class TestFeedback:
    def test_a_feedback_file_joins_its_labels_at_its_modification_time(
            self, tmp_path: Path) -> None:
        rng = np.random.default_rng(4)
        pd.DataFrame({"x": rng.normal(size=500), "score": rng.normal(size=500)}).to_parquet(
            tmp_path / "ref.parquet")
        (tmp_path / "logs").mkdir()
        (tmp_path / "labels").mkdir()
        (tmp_path / "logs" / "a.jsonl").write_text("".join(
            json.dumps({"id": f"r{i}", "x": float(rng.normal()), "score": float(rng.normal()),
                        "ts": START + i}) + "\n" for i in range(50)))
        labels = tmp_path / "labels" / "day.jsonl"
        labels.write_text("".join(json.dumps({"id": f"r{i}", "y": float(i)}) + "\n"
                                  for i in range(50)))
        os.utime(labels, (START + 25.5, START + 25.5))
        model = {"name": "m", "logs": {"path": str(tmp_path / "logs" / "*.jsonl")},
                 "reference": {"path": str(tmp_path / "ref.parquet")},
                 "features": [{"name": "x", "type": "numerical"}],
                 "prediction": {"column": "score"}, "id_column": "id",
                 "label": {"column": "y", "task": "regression",
                           "feedback": {"path": str(tmp_path / "labels" / "*.jsonl")}},
                 "timestamp_column": "ts", "window": {"rows": 20}, "update_interval": "10s"}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"models": [model]}))
        assert main(["replay", f"--config.file={config}",
                     f"--output={tmp_path / 'h.om'}"]) == EXIT_OK
        ratios = {float(line.split()[2]) - START: float(line.split()[1])
                  for line in (tmp_path / "h.om").read_text().splitlines()
                  if line.startswith('drift_model_labeled_ratio{model="m"}')}
        assert ratios.get(20.0, 0.0) == 0.0  # before the file's modification time
        # At +25.5 s the window holds r6..r25, which get their labels; of the 30 others the
        # pending buffer keeps the newest 20 (window rows, as in run): r30..r49 are picked up
        # by their records later, r26..r29 are not. At +30 s: r11..r25 and r30 of r11..r30.
        assert ratios[30.0] == 16 / 20
        assert ratios[40.0] == 16 / 20  # r21..r25 and r30..r40 of r21..r40
