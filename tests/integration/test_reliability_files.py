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
from reliability_helpers import fd_flags, fds_on, fds_under, proc_status

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
