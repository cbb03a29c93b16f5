"""LogReader: blocks of lines to batches, the next block parsed ahead while one is consumed."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from exporter import reader as reader_module
from exporter import tail_jsonl
from exporter.counters import ModelCounters
from exporter.parsing import CATEGORY, NUMBER, ColumnSpec
from exporter.reader import LogReader

COLUMNS = [ColumnSpec("x", NUMBER), ColumnSpec("c", CATEGORY)]


def write_log(path: Path, rows: int, bad_every: int = 0) -> list[int]:
    """``rows`` records x = 0..rows-1 (a malformed line before every ``bad_every``-th);
    returns the line numbers of the malformed lines."""
    bad, lines = [], []
    for i in range(rows):
        if bad_every and i % bad_every == 0:
            lines.append('{"x": ')
            bad.append(len(lines))
        lines.append(json.dumps({"x": i, "c": f"k{i % 3}", "pad": "p" * 40}))
    path.write_text("".join(line + "\n" for line in lines))
    return bad


def read_all(pattern: str) -> tuple[list[np.ndarray], ModelCounters]:
    counters = ModelCounters(["x", "c"], ["x", "c"])
    log_reader = LogReader("m", pattern, "jsonl", 1024, COLUMNS, counters)
    try:
        return [b.numbers["x"] for b in log_reader.batches()], counters
    finally:
        log_reader.close()


def parsing_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads that parse blocks, in order, from now on (a spy on the parser)."""
    threads: list[str] = []
    parse = reader_module.parse_jsonl

    def spy(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return parse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reader_module, "parse_jsonl", spy)
    return threads


class TestPrefetch:
    @pytest.fixture(autouse=True)
    def small_blocks(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(tail_jsonl, "READ_CHUNK", 4096)  # many blocks from a small file

    def test_blocks_parsed_ahead_come_out_whole_and_in_file_order(self, tmp_path: Path) -> None:
        write_log(tmp_path / "a.jsonl", 2000)
        batches, counters = read_all(str(tmp_path / "*.jsonl"))
        assert len(batches) > 10
        np.testing.assert_array_equal(np.concatenate(batches), np.arange(2000.0))
        assert counters.values().rows_ingested == 0  # the reader parses; the pipeline counts

    def test_rejected_lines_are_logged_in_file_order_with_their_line_numbers(
            self, tmp_path: Path, caplog: pytest.LogCaptureFixture,
            monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(reader_module, "LOGGED_REJECTIONS_PER_POLL", 1000)
        bad = write_log(tmp_path / "a.jsonl", 2000, bad_every=97)
        with caplog.at_level(logging.WARNING, logger="exporter.reader"):
            batches, _ = read_all(str(tmp_path / "*.jsonl"))
        logged = [int(r.line) for r in caplog.records  # type: ignore[attr-defined]
                  if r.getMessage() == "record rejected"]
        assert logged == bad
        assert sum(b.shape[0] for b in batches) == 2000

    def test_the_next_block_is_parsed_on_the_prefetch_thread_while_one_is_consumed(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        write_log(tmp_path / "a.jsonl", 2000)
        threads = parsing_threads(monkeypatch)
        read_all(str(tmp_path / "*.jsonl"))
        assert threads[0] == threading.current_thread().name
        assert all(name.startswith("prefetch") for name in threads[1:])

    def test_a_single_block_is_parsed_on_the_calling_thread(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        write_log(tmp_path / "a.jsonl", 10)
        threads = parsing_threads(monkeypatch)
        batches, _ = read_all(str(tmp_path / "*.jsonl"))
        assert threads == [threading.current_thread().name]
        assert batches[0].shape == (10,)

    def test_a_consumer_that_stops_early_loses_no_block(self, tmp_path: Path) -> None:
        # the block parsed ahead was not given out: the next read starts with it again
        write_log(tmp_path / "a.jsonl", 2000)
        counters = ModelCounters(["x", "c"], ["x", "c"])
        log_reader = LogReader("m", str(tmp_path / "*.jsonl"), "jsonl", 1024, COLUMNS,
                               counters)
        try:
            batches = log_reader.batches()
            first = next(batches)
            batches.close()  # as when the consumer raises
            rest = [b.numbers["x"] for b in log_reader.batches()]
        finally:
            log_reader.close()
        np.testing.assert_array_equal(np.concatenate([first.numbers["x"], *rest]),
                                      np.arange(2000.0))


class TestStartUp:
    def test_only_the_windows_records_are_read_and_only_their_bad_lines_counted(
            self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        # 1,000 records with a malformed line before every 97th (11 of them): the window's 100
        # records are read back, with the one malformed line among them (before record 970)
        bad = write_log(tmp_path / "a.jsonl", 1000, bad_every=97)
        counters = ModelCounters(["x", "c"], ["x", "c"])
        log_reader = LogReader("m", str(tmp_path / "*.jsonl"), "jsonl", 1024, COLUMNS, counters)
        try:
            log_reader.follower.start(100, None)
            with caplog.at_level(logging.WARNING, logger="exporter.reader"):
                batches = list(log_reader.batches())
        finally:
            log_reader.close()
        values = np.concatenate([b.numbers["x"] for b in batches])
        np.testing.assert_array_equal(values, np.arange(900.0, 1000.0))
        assert sum(b.rejected.get("malformed", 0) for b in batches) == 1
        logged = [int(r.line) for r in caplog.records  # type: ignore[attr-defined]
                  if r.getMessage() == "record rejected"]
        assert logged == [bad[-1]]  # with its line number: the lines before it were counted
