"""Tests for exporter.checking: ``check`` lists and samples log files as ``run`` reads them."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exporter import checking
from exporter.checking import check_logs, list_log_files
from exporter.config import ModelConfig, parse_config
from exporter.reader import file_format
from exporter.tailing import Follower


def touch(path: Path, when: float, data: bytes = b"") -> Path:
    path.write_bytes(data)
    os.utime(path, (when, when))
    return path


def model(tmp_path: Path, pattern: str = "logs/*.jsonl", **extra: object) -> ModelConfig:
    """A model with numerical features a and b and a timestamp column ts."""
    pd.DataFrame({"a": np.arange(200.0), "b": np.arange(200.0)}).to_parquet(
        tmp_path / "ref.parquet", index=False)
    (tmp_path / "logs").mkdir(exist_ok=True)
    entry = {"name": "m", "logs": {"path": str(tmp_path / pattern)},
             "reference": {"path": str(tmp_path / "ref.parquet")},
             "features": [{"name": "a", "type": "numerical"},
                          {"name": "b", "type": "numerical"}],
             "timestamp_column": "ts"}
    entry.update(extra)
    return parse_config({"models": [entry]}, base_dir=tmp_path).models[0]


class TestListLogFiles:
    def test_files_are_in_the_order_run_reads_them_mtime_then_name(self, tmp_path: Path) -> None:
        for name, when in [("c.jsonl", 100), ("a.jsonl", 300), ("b.jsonl", 100),
                           ("d.jsonl", 200)]:
            touch(tmp_path / name, when)
        pattern = str(tmp_path / "*.jsonl")
        listed = [p for p, _ in list_log_files(pattern).files]
        assert [os.path.basename(p) for p in listed] == ["b.jsonl", "c.jsonl", "d.jsonl",
                                                         "a.jsonl"]
        follower = Follower(pattern, file_format("jsonl", 1 << 20))
        assert listed == [item.path for item in follower._list()]

    def test_what_is_not_a_regular_file_is_skipped_with_the_reason(self, tmp_path: Path) -> None:
        touch(tmp_path / "a.jsonl", 100)
        (tmp_path / "dir.jsonl").mkdir()
        os.mkfifo(tmp_path / "pipe.jsonl")
        (tmp_path / "gone.jsonl").symlink_to(tmp_path / "nowhere")
        (tmp_path / "link.jsonl").symlink_to(tmp_path / "a.jsonl")
        touch(tmp_path / ".hidden.jsonl", 100)
        listing = list_log_files(str(tmp_path / "*.jsonl"))
        assert [os.path.basename(p) for p, _ in listing.files] == ["a.jsonl", "link.jsonl"]
        assert [(os.path.basename(p), why) for p, why in listing.skipped] == [
            ("dir.jsonl", "not a regular file (a directory)"),
            ("gone.jsonl", "a dangling symlink"),
            ("pipe.jsonl", "not a regular file (a FIFO)")]


class TestSampling:
    def test_lines_longer_than_max_line_bytes_are_skipped_not_held(self, tmp_path: Path) -> None:
        config = model(tmp_path, logs={"path": str(tmp_path / "logs/*.jsonl"),
                                       "max_line_bytes": 1024})
        data = b'{"a": 1, "pad": "' + b"x" * 200_000 + b'"}\n{"a": 1, "b": 2}\n'
        touch(tmp_path / "logs" / "x.jsonl", 100, data)
        result = check_logs(0, config)
        assert result.problems == ()
        assert result.warnings == ()

    def test_the_sample_reads_a_bounded_number_of_bytes(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        config = model(tmp_path, logs={"path": str(tmp_path / "logs/*.jsonl"),
                                       "max_line_bytes": 1024})
        touch(tmp_path / "logs" / "x.jsonl", 100, b"\n" * 10_000_000)
        reads: list[int] = []
        real_read = os.read
        monkeypatch.setattr(checking.os, "read",
                            lambda fd, n: reads.append(n) or real_read(fd, n))
        assert check_logs(0, config).problems == ()
        assert sum(reads) <= checking.SAMPLE_LINES * 1025

    def test_a_last_line_without_newline_is_not_sampled(self, tmp_path: Path) -> None:
        config = model(tmp_path)
        touch(tmp_path / "logs" / "x.jsonl", 100, b'{"a": 1, "b": 2}\n{"a": 1}')
        assert check_logs(0, config).problems == ()

    def test_a_missing_column_names_the_newest_file(self, tmp_path: Path) -> None:
        config = model(tmp_path)
        touch(tmp_path / "logs" / "new.jsonl", 200, b'{"a": 1}\n')
        touch(tmp_path / "logs" / "old.jsonl", 100, b'{"a": 1, "b": 2}\n')
        problems = check_logs(0, config).problems
        assert problems == (f"models[0].logs.path: column 'b' not in the first 100 records of "
                            f"{tmp_path / 'logs' / 'new.jsonl'}",)

    def test_a_compressed_file_is_sampled_from_its_decompressed_records(
        self, tmp_path: Path
    ) -> None:
        config = model(tmp_path, logs={"path": str(tmp_path / "logs/*.jsonl*"), "format": "jsonl"})
        touch(tmp_path / "logs" / "x.jsonl.1.gz", 200, gzip.compress(b'{"a": 1}\n'))
        touch(tmp_path / "logs" / "x.jsonl", 100, b'{"a": 1, "b": 2}\n')
        assert check_logs(0, config).problems == (
            f"models[0].logs.path: column 'b' not in the first 100 records of "
            f"{tmp_path / 'logs' / 'x.jsonl.1.gz'}",)

    def test_a_corrupt_compressed_file_is_named_and_an_older_file_sampled(
        self, tmp_path: Path
    ) -> None:
        config = model(tmp_path, logs={"path": str(tmp_path / "logs/*.jsonl*"), "format": "jsonl"})
        touch(tmp_path / "logs" / "x.jsonl.1.gz", 200, gzip.compress(b'{"a": 1}\n' * 50)[:-9])
        touch(tmp_path / "logs" / "x.jsonl", 100, b'{"a": 1}\n')
        result = check_logs(0, config)
        assert "cannot read" in result.warnings[0]
        assert "x.jsonl.1.gz: gzip file incomplete" in result.warnings[0]
        assert result.problems == (
            f"models[0].logs.path: column 'b' not in the first 100 records of "
            f"{tmp_path / 'logs' / 'x.jsonl'}",)

    def test_future_timestamps_are_judged_by_the_clock_given(self, tmp_path: Path) -> None:
        config = model(tmp_path)
        touch(tmp_path / "logs" / "x.jsonl", 100,
              b'{"a": 1, "b": 2, "ts": 1000}\n{"a": 1, "b": 2, "ts": 5000}\n')
        assert check_logs(0, config, now=5000.0).warnings == ()
        (warning,) = check_logs(0, config, now=1000.0).warnings
        assert "1 of the first 2 records" in warning
