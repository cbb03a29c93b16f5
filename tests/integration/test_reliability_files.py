"""Files that go away, come back, or cannot be written (issue 4, scenario 6 and the read-only
log volume), through a real exporter process and what /proc says about it.

Read-only volume: the Docker image runs the exporter as uid 10001 and the README mounts the
logs with ``:ro``. These tests run as root, for whom permission bits mean nothing, so the
exporter is started through ``setpriv`` without the capabilities that bypass them
(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN), and the log directory and files
belong to uid 10001 with modes 0555 and 0444: for the exporter they are read-only "other"
files, exactly as a ``:ro`` mount or another user's files are. Every descriptor it holds on
them is also checked to be O_RDONLY.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import harness
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from harness import Exporter, append_lines, model_config, value, wait_until
from logdata import (
    FEATURES,
    PREDICTION,
    clean_lines,
    live_columns,
    reference_frame,
    write_reference,
)
from reliability_helpers import fd_flags, fds_on, fds_under, lines_block, proc_status

MODEL = "files"
ExporterFactory = Callable[..., Exporter]
CAP_DAC_OVERRIDE = 1
# Capabilities that would let root write a file whose mode or owner forbid it.
DROPPED = "-dac_override,-dac_read_search,-fowner,-chown"
SOMEONE_ELSE = 10001  # the Docker image's uid; here the owner of the read-only logs


def setup(tmp_path: Path, pattern: str = "*.jsonl") -> tuple[dict[str, object], Path]:
    """A config following logs/<pattern>; returns it and the log directory."""
    ref = write_reference(reference_frame(), tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = model_config(MODEL, logs / pattern, ref,
                       [{"name": f, "type": "numerical"} for f in FEATURES],
                       prediction={"column": PREDICTION}, window={"rows": 300},
                       drift={"min_rows": 5})
    return {"models": [cfg]}, logs


def ingested(process: Exporter) -> float | None:
    """drift_rows_ingested_total of the model."""
    return value(process.scrape(), "drift_rows_ingested_total", model=MODEL)


def wait_ingested(process: Exporter, count: int, timeout: float = 10.0) -> None:
    """Until exactly ``count`` records were read."""
    wait_until(lambda: ingested(process) == count, timeout, what=f"{count} records ingested")


def records(seed: int, count: int, start: int = 0) -> list[str]:
    """``count`` plain records."""
    return clean_lines(live_columns(np.random.default_rng(seed), count), start=start)


class TestDeletedFile:
    """SPEC 2: a deleted file is drained and released; a new file of the same name is new."""

    def test_a_file_deleted_while_open_is_drained_and_its_descriptor_released(
            self, tmp_path: Path, exporter: ExporterFactory) -> None:
        cfg, logs = setup(tmp_path)
        log = logs / "app.jsonl"
        append_lines(log, records(1, 100))
        process = exporter(cfg)
        assert ingested(process) == 100
        assert len(fds_on(process.proc.pid, log)) == 1

        # ~20 MB in one write, deleted at once: most of it is still unread when it goes.
        burst = records(2, 150_000, start=100)
        append_lines(log, burst)
        log.unlink()
        wait_ingested(process, 100 + len(burst), timeout=30)
        wait_until(lambda: not fds_on(process.proc.pid, log), 5,
                   what="the deleted file's descriptor to be closed")
        assert not fds_under(process.proc.pid, logs), fds_under(process.proc.pid, logs)

    def test_a_file_deleted_and_created_again_under_its_name_is_read_as_a_new_file(
            self, tmp_path: Path, exporter: ExporterFactory) -> None:
        cfg, logs = setup(tmp_path)
        log = logs / "app.jsonl"
        append_lines(log, records(3, 50))
        process = exporter(cfg)
        assert ingested(process) == 50

        # Deleted and recreated before the exporter looks again (it still holds the old one).
        append_lines(log, records(4, 20, start=50))
        log.unlink()
        append_lines(log, records(5, 30, start=70))
        wait_ingested(process, 100)

        # Deleted, released, then created again: the freed inode is often given to the new
        # file; it is a new file all the same, read from its first line.
        old_inode = log.stat().st_ino
        log.unlink()
        wait_until(lambda: not fds_on(process.proc.pid, log), 5, what="the release")
        append_lines(log, records(6, 30, start=100))
        wait_ingested(process, 130)
        samples = process.wait_for_window(MODEL, 130, 130)
        assert value(samples, "drift_log_truncations_total", model=MODEL) == 0, (
            "a new file is no truncation")
        assert len(fds_on(process.proc.pid, log)) == 1
        reused = log.stat().st_ino == old_inode
        assert ingested(process) == 130, f"inode reused: {reused}"

    def test_a_parquet_file_deleted_and_created_again_in_the_same_inode_is_read_again(
            self, tmp_path: Path, exporter: ExporterFactory) -> None:
        cfg, logs = setup(tmp_path, "*.parquet")
        process = exporter(cfg)

        def write(seed: int, path: Path) -> None:
            # fixed-width, uncompressed: two files of 100 rows have the same size
            rng = np.random.default_rng(seed)
            table = pa.table({f: rng.normal(50, 10, 100) for f in (*FEATURES, PREDICTION)})
            pq.write_table(table, path, compression="none", use_dictionary=False)

        final = logs / "a.parquet"
        write(7, final)
        wait_ingested(process, 100)
        size, inode = final.stat().st_size, final.stat().st_ino
        os.utime(final)  # touching it is no new file
        time.sleep(1.5)  # one rescan
        assert ingested(process) == 100
        # Delete and write again until the file system gives the new file the freed inode
        # (ext4, xfs and tmpfs usually do at once).
        for attempt in range(20):
            final.unlink()
            write(8 + attempt, final)
            if final.stat().st_ino == inode:
                break
        else:
            pytest.skip("this file system never reused the inode")
        assert final.stat().st_size == size
        wait_ingested(process, 200)
        assert value(process.scrape(), "drift_files_rejected_total", model=MODEL,
                     reason="corrupt") == 0


@pytest.fixture
def without_write_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start exporters through setpriv without the capabilities that override permissions."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv (util-linux) to drop capabilities")
    plain = harness.exporter_command()
    monkeypatch.setattr(harness, "exporter_command", lambda: [
        setpriv, f"--bounding-set={DROPPED}", f"--inh-caps={DROPPED}", "--", *plain])


def read_only(logs: Path) -> None:
    """Files 0444 and the directory 0555, owned by someone else."""
    for path in logs.iterdir():
        os.chown(path, SOMEONE_ELSE, SOMEONE_ELSE)
        path.chmod(0o444)
    os.chown(logs, SOMEONE_ELSE, SOMEONE_ELSE)
    logs.chmod(0o555)


def test_a_read_only_log_volume_is_followed_and_never_opened_for_writing(
        tmp_path: Path, exporter: ExporterFactory, without_write_capabilities: None) -> None:
    cfg, logs = setup(tmp_path)
    current = logs / "app.jsonl"
    append_lines(current, records(11, 40))
    append_lines(logs / "older.jsonl", records(12, 10, start=40))
    os.utime(logs / "older.jsonl", (time.time() - 60, time.time() - 60))
    read_only(logs)
    try:
        process = exporter(cfg)
        pid = process.proc.pid
        caps = int(Path(f"/proc/{pid}/status").read_text().split("CapEff:")[1].split()[0], 16)
        assert not caps & (1 << CAP_DAC_OVERRIDE), "the exporter could still override modes"
        assert ingested(process) == 50

        # The writer (this test, with its capabilities) appends and rotates.
        append_lines(current, records(13, 20, start=50))
        current.rename(logs / "app.jsonl.1")
        append_lines(current, records(14, 30, start=70))
        read_only(logs)
        wait_ingested(process, 100)

        held = fds_under(pid, logs)
        assert held, "the exporter holds no log file open"
        for fd, target in held.items():
            flags = fd_flags(pid, fd)
            assert flags & os.O_ACCMODE == os.O_RDONLY, f"{target} open with flags {flags:o}"
        assert proc_status(pid)["Threads"] >= 1
        assert "Permission denied" not in process.stderr()
    finally:
        logs.chmod(0o755)  # let pytest clean up


def barrier(process: Exporter, logs: Path, seed: int, expected: int) -> None:
    """Write one record to a file of its own and wait until ``expected`` records were read:
    the exporter has then looked at every file at least once since the call."""
    append_lines(logs / f"barrier-{seed}.jsonl", records(seed, 1, start=10_000 + seed))
    wait_ingested(process, expected)


class TestCopyInsideTheGlob:
    """Issue 13.10: copytruncate writing its copy to a name the glob matches counts each
    record once (the copy is read only from where the original was read)."""

    def test_copy_truncate_into_the_glob_neither_doubles_nor_loses_records(
            self, tmp_path: Path, exporter: ExporterFactory) -> None:
        cfg, logs = setup(tmp_path)
        log = logs / "app.jsonl"
        written = 50
        append_lines(log, records(21, written))
        process = exporter(cfg)
        assert ingested(process) == written
        expected = written
        for rotation in range(1, 7):
            # Records the exporter has not read yet when the copy is made (every other time),
            # or has read already.
            append_lines(log, records(30 + rotation, 40, start=written))
            written += 40
            expected += 40
            if rotation % 2:
                wait_ingested(process, expected)
            shutil.copyfile(log, logs / f"app-{rotation}.jsonl")
            if rotation % 3 == 0:  # the exporter sees the copy before the truncation
                expected += 1
                barrier(process, logs, rotation, expected)
            with log.open("r+b") as handle:
                handle.truncate(0)
            append_lines(log, records(50 + rotation, 25, start=written))
            written += 25
            expected += 25
            wait_ingested(process, expected)
        expected += 1
        barrier(process, logs, 99, expected)  # one more look at every file
        assert ingested(process) == expected
        assert value(process.scrape(), "drift_log_truncations_total", model=MODEL) == 6


class TestOverwrittenAfterRename:
    """Issue 13.11: a file renamed out of the glob and then overwritten in place holds nothing
    of the log any more: it is not read from the old offset."""

    def test_a_renamed_out_file_overwritten_with_other_records_is_not_read_further(
            self, tmp_path: Path, exporter: ExporterFactory) -> None:
        cfg, logs = setup(tmp_path)
        log = logs / "app.jsonl"
        append_lines(log, records(41, 100))
        process = exporter(cfg)
        assert ingested(process) == 100

        away = logs / "app.jsonl.1"
        os.rename(log, away)
        with away.open("r+b") as handle:  # same inode; 2,221 foreign records
            handle.truncate(0)
            handle.write(lines_block(records(42, 2221, start=5000)))
        append_lines(log, records(43, 10, start=100))
        barrier(process, logs, 1, 111)
        samples = process.scrape()
        assert value(samples, "drift_rows_rejected_total", model=MODEL, reason="malformed") == 0
        assert value(samples, "drift_log_truncations_total", model=MODEL) == 1
        assert not fds_on(process.proc.pid, away)


def test_an_unreadable_log_file_is_counted_and_logged_once_per_change_of_state(
        tmp_path: Path, exporter: ExporterFactory, without_write_capabilities: None) -> None:
    cfg, logs = setup(tmp_path)
    append_lines(logs / "app.jsonl", records(61, 10))
    secret = logs / "secret.jsonl"
    append_lines(secret, records(62, 5, start=10))
    os.chown(secret, SOMEONE_ELSE, SOMEONE_ELSE)
    secret.chmod(0o000)
    process = exporter(cfg)
    assert ingested(process) == 10

    def unreadable() -> float | None:
        return value(process.scrape(), "drift_files_rejected_total", model=MODEL,
                     reason="unreadable")

    assert unreadable() == 1
    for seed in (1, 2):  # more polls: counted and logged once
        barrier(process, logs, seed, 10 + seed)
    assert unreadable() == 1
    assert process.stderr().count("log file unreadable") == 1
    secret.chmod(0o444)
    wait_ingested(process, 17)
    barrier(process, logs, 3, 18)
    assert unreadable() == 1
    assert process.stderr().count("log file readable again") == 1
