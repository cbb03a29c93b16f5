"""Many log files under a low descriptor limit (issue 13, item 7), through a real exporter.

The exporter runs under ``prlimit --nofile=256:256``: before descriptors were bounded it kept
every matching file open, ran out of them after ~230 files ("Too many open files" every second
per file), never counted the rest, and its HTTP server could no longer accept connections.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import harness
import numpy as np
import pytest
from harness import Exporter, model_config, value, wait_until
from logdata import (
    FEATURES,
    PREDICTION,
    clean_lines,
    live_columns,
    reference_frame,
    write_reference,
)
from reliability_helpers import fds_under

MODEL = "many"
LIMIT = 256  # the exporter's RLIMIT_NOFILE, soft and hard
FILES = 2000
ExporterFactory = Callable[..., Exporter]


@pytest.fixture
def descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start exporters through prlimit with at most LIMIT open files."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("needs prlimit (util-linux)")
    plain = harness.exporter_command()
    monkeypatch.setattr(harness, "exporter_command",
                        lambda: [prlimit, f"--nofile={LIMIT}:{LIMIT}", "--", *plain])


def ingested(process: Exporter) -> float | None:
    """drift_rows_ingested_total of the model."""
    return value(process.scrape(), "drift_rows_ingested_total", model=MODEL)


def open_file_limit(pid: int) -> int:
    """The soft 'Max open files' of a process."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    msg = f"no open-file limit in /proc/{pid}/limits"
    raise AssertionError(msg)


def test_thousands_of_one_line_files_are_all_read_under_a_low_descriptor_limit(
        tmp_path: Path, exporter: ExporterFactory, descriptor_limit: None) -> None:
    ref = write_reference(reference_frame(), tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {"models": [model_config(MODEL, logs / "*.jsonl", ref,
                                   [{"name": f, "type": "numerical"} for f in FEATURES],
                                   prediction={"column": PREDICTION},
                                   window={"rows": 2 * FILES}, drift={"min_rows": 5})]}
    lines = clean_lines(live_columns(np.random.default_rng(71), FILES + 20))
    half = FILES // 2
    for n in range(half):  # present at start-up: all of them fit in the window
        (logs / f"app-{n:05}.jsonl").write_text(f"{lines[n]}\n")
    process = exporter(cfg, wait=False)
    process.wait_ready(timeout=60)
    assert open_file_limit(process.proc.pid) == LIMIT
    assert ingested(process) == half

    for n in range(half, FILES):  # and as many more while it runs
        (logs / f"app-{n:05}.jsonl").write_text(f"{lines[n]}\n")
    wait_until(lambda: ingested(process) == FILES, 60, what=f"{FILES} records ingested")
    assert process.get("/-/healthy").status_code == 200
    held = fds_under(process.proc.pid, logs)
    assert len(held) <= LIMIT // 16, f"{len(held)} log files open"

    # Files long closed are read on when they grow.
    for n in range(20):
        with (logs / f"app-{n:05}.jsonl").open("a") as handle:
            handle.write(f"{lines[FILES + n]}\n")
    wait_until(lambda: ingested(process) == FILES + 20, 20, what="the 20 appended records")
    assert process.get("/-/healthy").status_code == 200
    assert "Too many open files" not in process.stderr()
