"""exporter_client's writers against a real ``drift-exporter run``: whatever the app writes,
through roll-overs, concurrent writers and Parquet renames, is read exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from harness import Exporter, model_config, value
from logdata import FEATURES, PREDICTION, live_columns, reference_frame, write_reference

from exporter_client import JsonlLogWriter, ParquetLogWriter

ExporterFactory = Callable[..., Exporter]
MODEL = "writer"
THREADS = 4
PER_THREAD = 750
WINDOW = 500


def write_concurrently(write: Callable[[dict[str, object]], None], seed: int) -> None:
    """THREADS threads each write PER_THREAD records of the logdata columns."""
    def work(thread: int) -> None:
        columns = live_columns(np.random.default_rng(seed + thread), PER_THREAD)
        for i in range(PER_THREAD):
            write({"request_id": f"{thread}-{i}",
                   **{name: float(data[i]) for name, data in columns.items()}})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def config(tmp_path: Path, pattern: str) -> dict[str, object]:
    """One model over the logdata reference, following ``pattern`` under tmp_path/logs."""
    reference = write_reference(reference_frame(), tmp_path / "reference.parquet")
    features = [{"name": f, "type": "numerical"} for f in FEATURES]
    return {"models": [model_config(MODEL, tmp_path / "logs" / pattern, reference, features,
                                    prediction={"column": PREDICTION},
                                    window={"rows": WINDOW})]}


def test_jsonl_roll_overs_from_concurrent_writers_are_read_exactly_once(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    (tmp_path / "logs").mkdir()
    process = exporter(config(tmp_path, "*.jsonl"))
    with JsonlLogWriter(tmp_path / "logs", max_bytes=40_000) as writer:
        write_concurrently(writer.write, seed=10)
    files = list((tmp_path / "logs").glob("*.jsonl"))
    assert len(files) > 5
    samples = process.wait_for_window(MODEL, THREADS * PER_THREAD, WINDOW)
    assert value(samples, "drift_rows_rejected_total", model=MODEL, reason="malformed") == 0
    assert value(samples, "drift_values_invalid_total", model=MODEL, feature="gauss") == 0


def test_parquet_batches_renamed_into_place_are_read_exactly_once(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    (tmp_path / "logs").mkdir()
    process = exporter(config(tmp_path, "*.parquet"))
    with ParquetLogWriter(tmp_path / "logs", batch_rows=400, max_age=0.5) as writer:
        write_concurrently(writer.write, seed=20)
    assert len(writer.files_written) >= THREADS * PER_THREAD // 400
    samples = process.wait_for_window(MODEL, THREADS * PER_THREAD, WINDOW)
    assert value(samples, "drift_files_rejected_total", model=MODEL, reason="corrupt") == 0
    assert list((tmp_path / "logs").glob("*.tmp")) == []
