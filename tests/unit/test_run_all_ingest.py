"""Tests for bench/run_all.py's restart and import-weight rows against their targets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import run_all


def restart_result(published_s: float) -> dict[str, Any]:
    """A bench/restart.py result with a 2 s baseline."""
    return {"published_s": published_s, "baseline_s": 2.0, "baseline_name": "polars.read_ndjson",
            "ratio": published_s / 2.0, "target": 0.5, "passed": published_s / 2.0 <= 0.5,
            "ready_s": published_s - 0.1, "ingested": 100_000, "rows": 1_000_000}


def import_result(exporter_s: float, extra_rss: int) -> dict[str, Any]:
    """A bench/import_weight.py result against libraries taking 0.6 s and 120 MB."""
    return {"seconds": {"exporter": exporter_s, "libraries": 0.6, "numpy": 0.2},
            "peak_rss_bytes": {"exporter": 120 * 10**6 + extra_rss, "libraries": 120 * 10**6,
                               "numpy": 27 * 10**6},
            "time_ratio": exporter_s / 0.6, "extra_rss_bytes": extra_rss, "time_target": 1.25,
            "extra_rss_target": 10 * 10**6}


class TestRestartRows:
    def test_a_restart_within_half_the_parse_passes(self) -> None:
        rows = run_all.rows({"restart": restart_result(0.9)})
        assert rows[0][3:] == ("0.45x", "<= 0.5x", "PASS")

    def test_a_slower_restart_fails(self) -> None:
        rows = run_all.rows({"restart": restart_result(2.4)})
        assert rows[0][-1] == "FAIL"

    def test_a_restart_that_did_not_run_is_an_error(self) -> None:
        assert run_all.rows({"restart": None})[0][-1] == "ERROR"


class TestImportRows:
    def test_time_and_memory_within_target_pass(self) -> None:
        rows = run_all.rows({"import_weight": import_result(0.66, 4 * 10**6)})
        assert [r[-1] for r in rows[:2]] == ["PASS", "PASS"]

    def test_each_target_fails_on_its_own(self) -> None:
        rows = run_all.rows({"import_weight": import_result(0.9, 12 * 10**6)})
        assert [r[-1] for r in rows[:2]] == ["FAIL", "FAIL"]
