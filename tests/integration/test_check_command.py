"""``drift-exporter check`` (SPEC 4) on awkward log directories and references (issue 13).

``check`` reads the logs as ``run`` does: it never crashes on a line, never blocks on a FIFO,
skips what ``run`` skips with a warning instead of an error, samples the file ``run`` reads last
(newest modification time, then name), and warns about a reference it would be unwise to
calibrate on.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import (
    append_lines,
    free_port,
    jsonl_line,
    model_config,
    run_cli,
    start_exporter,
    wait_until,
    write_config,
)
from logdata import (
    FEATURES,
    PREDICTION,
    clean_lines,
    live_columns,
    reference_frame,
    write_reference,
)

CHECK_TIMEOUT = 60.0
UNREADABLE = Path("/proc/sys/vm/compact_memory")  # a regular file even root cannot open


def config(tmp_path: Path, *, reference: Path | None = None,
           logs: Path | None = None, **extra: Any) -> dict[str, Any]:
    """One model following ``logs/*.jsonl`` (made if absent) with the logdata features."""
    ref = reference or write_reference(reference_frame(), tmp_path / "reference.parquet")
    logs = logs or tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    cfg = model_config("m", logs / "*.jsonl", ref,
                       [{"name": f, "type": "numerical"} for f in FEATURES],
                       prediction={"column": PREDICTION}, **extra)
    return {"models": [cfg]}


def good_lines(n: int = 5, seed: int = 3) -> list[str]:
    """Records carrying every configured column."""
    return clean_lines(live_columns(np.random.default_rng(seed), n))


def check(tmp_path: Path, cfg: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``drift-exporter check`` on the config, which must end (a hang fails the test)."""
    path = write_config(tmp_path, cfg)
    try:
        result = run_cli("check", f"--config.file={path}", timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"check did not end within {CHECK_TIMEOUT:g} s")
    assert "Traceback" not in result.stderr, result.stderr
    return result


def set_mtime(path: Path, when: float) -> None:
    """Give a file a modification time (seconds since the epoch)."""
    os.utime(path, (when, when))


class TestLinesCheckReads:
    def test_a_100000_deep_json_line_is_a_malformed_line_not_a_crash(
            self, tmp_path: Path) -> None:
        cfg = config(tmp_path)
        deep = '{"gauss": 1, "d": ' + "[" * 100_000 + "]" * 100_000 + "}"
        append_lines(tmp_path / "logs" / "app.jsonl", [deep, *good_lines()])
        result = check(tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert "1 of the first 6 lines" in result.stderr
        assert "config OK" in result.stdout

    def test_timestamps_far_in_the_future_are_a_warning(self, tmp_path: Path) -> None:
        cfg = config(tmp_path, timestamp_column="ts")
        stamps = [time.time() * 1000, time.time()]  # milliseconds taken for seconds, then fine
        lines = [jsonl_line({**json.loads(line), "ts": ts})
                 for line, ts in zip(good_lines(2), stamps, strict=True)]
        append_lines(tmp_path / "logs" / "app.jsonl", lines)
        result = check(tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert "1 of the first 2 records" in result.stderr
        assert "'ts' more than 600 s in the future" in result.stderr


class TestFilesCheckSkipsAsRunDoes:
    def test_a_fifo_matching_the_glob_is_skipped_with_a_warning_never_opened(
            self, tmp_path: Path) -> None:
        cfg = config(tmp_path)
        append_lines(tmp_path / "logs" / "app.jsonl", good_lines())
        fifo = tmp_path / "logs" / "zz-pipe.jsonl"
        os.mkfifo(fifo)
        result = check(tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert f"skipping {fifo}: not a regular file (a FIFO)" in result.stderr

    def test_a_directory_matching_the_glob_is_skipped_with_a_warning(
            self, tmp_path: Path) -> None:
        cfg = config(tmp_path)
        append_lines(tmp_path / "logs" / "app.jsonl", good_lines())
        (tmp_path / "logs" / "zz-dir.jsonl").mkdir()
        result = check(tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert "zz-dir.jsonl: not a regular file (a directory)" in result.stderr

    def test_a_dangling_symlink_matching_the_glob_is_skipped_with_a_warning(
            self, tmp_path: Path) -> None:
        cfg = config(tmp_path)
        append_lines(tmp_path / "logs" / "app.jsonl", good_lines())
        (tmp_path / "logs" / "zz-gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
        result = check(tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert "zz-gone.jsonl: a dangling symlink" in result.stderr

    @pytest.mark.skipif(not UNREADABLE.exists(), reason=f"needs {UNREADABLE}")
    def test_an_unreadable_newest_file_is_skipped_and_an_older_one_sampled(
            self, tmp_path: Path) -> None:
        cfg = config(tmp_path)
        older = tmp_path / "logs" / "app.jsonl"
        append_lines(older, ['{"gauss": 1.0}'])  # lacks columns: must be the file sampled
        # Older than the /proc file behind the symlink, whose times are the machine's.
        set_mtime(older, 1_000_000_000)
        (tmp_path / "logs" / "zz-locked.jsonl").symlink_to(UNREADABLE)
        result = check(tmp_path, cfg)
        assert result.returncode == 2, result.stderr
        assert "cannot read" in result.stderr
        assert "zz-locked.jsonl" in result.stderr
        assert f"not in the first 100 records of {older}" in result.stderr

    def test_run_also_skips_what_check_skipped(self, tmp_path: Path) -> None:
        cfg = config(tmp_path)
        append_lines(tmp_path / "logs" / "app.jsonl", good_lines(7))
        os.mkfifo(tmp_path / "logs" / "zz-pipe.jsonl")
        (tmp_path / "logs" / "zz-dir.jsonl").mkdir()
        (tmp_path / "logs" / "zz-gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
        process = start_exporter(tmp_path, cfg, free_port())
        try:
            process.wait_ready()
            wait_until(lambda: process.scrape().get(
                ("drift_rows_ingested_total", frozenset({("model", "m")}))) == 7, 20,
                what="the 7 records of the regular file")
        finally:
            code, _ = process.stop()
        assert code == 0, process.stderr()


class TestNewestFile:
    def test_the_newest_file_by_modification_time_is_sampled_not_the_last_by_name(
            self, tmp_path: Path) -> None:
        cfg = config(tmp_path)
        newest, older = tmp_path / "logs" / "a.jsonl", tmp_path / "logs" / "b.jsonl"
        append_lines(newest, ['{"gauss": 1.0, "score": 0.5}'])  # lacks skewed and counts
        append_lines(older, good_lines())
        set_mtime(older, time.time() - 3600)
        result = check(tmp_path, cfg)
        assert result.returncode == 2, result.stderr
        assert f"column 'skewed' not in the first 100 records of {newest}" in result.stderr

    def test_files_of_the_same_modification_time_are_ordered_by_name(
            self, tmp_path: Path) -> None:
        cfg = config(tmp_path)
        first, last = tmp_path / "logs" / "b.jsonl", tmp_path / "logs" / "c.jsonl"
        append_lines(first, good_lines())
        append_lines(last, ['{"gauss": 1.0, "score": 0.5}'])
        when = time.time() - 60
        set_mtime(first, when)
        set_mtime(last, when)
        result = check(tmp_path, cfg)
        assert result.returncode == 2, result.stderr
        assert f"records of {last}" in result.stderr


class TestReferenceWarnings:
    def test_a_glob_matching_the_reference_itself_is_a_warning(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        data.mkdir()
        ref = write_reference(reference_frame(), data / "reference.jsonl")
        cfg = config(tmp_path, reference=ref, logs=data)
        append_lines(data / "app.jsonl", good_lines())
        set_mtime(ref, time.time() - 3600)
        result = check(tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert f"the glob matches the reference file {ref}" in result.stderr

    def test_a_one_row_reference_is_a_warning_in_check_and_at_run_start(
            self, tmp_path: Path) -> None:
        ref = write_reference(reference_frame().head(1).fillna(1.0), tmp_path / "one.parquet")
        cfg = config(tmp_path, reference=ref)
        result = check(tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert "has 1 rows, fewer than drift.min_rows (100)" in result.stderr
        assert "models[0].reference.path" in result.stderr
        assert "the drift alarm needs at least 200 and stays off" in result.stderr

        process = start_exporter(tmp_path, cfg, free_port())
        try:
            process.wait_ready()
            assert "reference too small" in process.stderr()
            assert "fewer than drift.min_rows (100)" in process.stderr()
        finally:
            code, _ = process.stop()
        assert code == 0, process.stderr()

    def test_a_reference_column_with_too_few_usable_values_is_a_warning(
            self, tmp_path: Path) -> None:
        frame = reference_frame()
        frame.loc[frame.index[5:], "skewed"] = np.nan
        ref = write_reference(frame, tmp_path / "sparse.parquet")
        result = check(tmp_path, config(tmp_path, reference=ref))
        assert result.returncode == 0, result.stderr
        assert "column 'skewed' has 5 usable values in the reference" in result.stderr

    def test_a_good_setup_has_no_warning(self, tmp_path: Path) -> None:
        # 25,000 reference rows: below that the alarm's own reference warning is due.
        big = write_reference(reference_frame(rows=25_000), tmp_path / "reference.parquet")
        cfg = config(tmp_path, reference=big)
        append_lines(tmp_path / "logs" / "app.jsonl", good_lines())
        result = check(tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert "warning" not in result.stderr
