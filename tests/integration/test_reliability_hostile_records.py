"""Records built to hurt (issue 13, items 12 and 14), through a real exporter process.

A 100,000-deep JSON line is one malformed record, not a crash; a record timestamp far in the
future (``1e300``, a day ahead, milliseconds taken for seconds) is counted as an invalid value of
the timestamp column and the record is timed when it was read, so
``drift_last_record_timestamp_seconds`` stays near the clock and a duration window lets the
record go in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from harness import Exporter, append_lines, jsonl_line, model_config, value, wait_until
from logdata import (
    FEATURES,
    PREDICTION,
    clean_lines,
    live_columns,
    reference_frame,
    write_reference,
)

MODEL = "hostile"
ExporterFactory = Callable[..., Exporter]
DEEP = 100_000


def setup(tmp_path: Path, **extra: object) -> tuple[dict[str, object], Path]:
    """A config following logs/*.jsonl with the logdata features."""
    ref = write_reference(reference_frame(), tmp_path / "reference.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = model_config(MODEL, logs / "*.jsonl", ref,
                       [{"name": f, "type": "numerical"} for f in FEATURES],
                       prediction={"column": PREDICTION}, drift={"min_rows": 5}, **extra)
    return {"models": [cfg]}, logs


def deep_line() -> str:
    """A syntactically valid JSON object nested 100,000 arrays deep."""
    return '{"gauss": 1.0, "deep": ' + "[" * DEEP + "]" * DEEP + "}"


def test_a_100000_deep_json_line_is_one_malformed_record_and_the_exporter_goes_on(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs = setup(tmp_path, window={"rows": 1000})
    log = logs / "app.jsonl"
    rng = np.random.default_rng(5)
    # one before start-up (read back by the start-up scan) and one while following
    append_lines(log, [*clean_lines(live_columns(rng, 10)), deep_line()])
    process = exporter(cfg)
    append_lines(log, [deep_line(), *clean_lines(live_columns(rng, 20), start=10)])

    def settled() -> bool:
        samples = process.scrape()
        return (value(samples, "drift_rows_ingested_total", model=MODEL) == 30
                and value(samples, "drift_rows_rejected_total", model=MODEL,
                          reason="malformed") == 2)

    wait_until(settled, 30, what="30 records ingested and 2 malformed")
    assert process.proc.poll() is None
    assert "RecursionError" not in process.stderr()
    assert "Traceback" not in process.stderr()


def test_timestamps_far_in_the_future_are_invalid_and_the_record_is_timed_when_read(
        tmp_path: Path, exporter: ExporterFactory) -> None:
    cfg, logs = setup(tmp_path, window={"duration": "3s"}, timestamp_column="ts")
    process = exporter(cfg)
    columns = live_columns(np.random.default_rng(6), 4)
    now = time.time()
    stamps = [1e300, now + 86_400, now * 1000, now - 1]  # the last one is fine
    records = [{**{k: float(v[i]) for k, v in columns.items()}, "ts": stamps[i]}
               for i in range(4)]
    started = time.time()
    append_lines(logs / "app.jsonl", [jsonl_line(r) for r in records])

    def read() -> dict[str, float | None] | None:
        samples = process.scrape()
        if value(samples, "drift_rows_ingested_total", model=MODEL) != 4:
            return None
        return {
            "invalid": value(samples, "drift_values_invalid_total", model=MODEL, feature="ts"),
            "last": value(samples, "drift_last_record_timestamp_seconds", model=MODEL),
            "window": value(samples, "drift_window_rows", model=MODEL),
        }

    seen = wait_until(read, 20, what="4 records ingested")
    assert seen["invalid"] == 3
    last = seen["last"]
    assert last is not None
    assert started - 1 <= last <= time.time() + 1, seen
    # the records timed when they were read leave the 3 s window: none stays for ever
    wait_until(lambda: value(process.scrape(), "drift_window_rows", model=MODEL) in (0, None),
               20, what="the window to empty")
    assert "timestamps in the future" in process.stderr()
