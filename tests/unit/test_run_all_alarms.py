"""Tests for bench/run_all.py's drift-alarm rows: bench/alarms.py's figures against targets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import run_all


def alarms_result(exceedances_per_target: float, alarm_delay: float) -> dict[str, Any]:
    """A bench/alarms.py --quick result with two null cases and one change."""
    return {
        "quick": True, "seconds": 54.0,
        "tail": [{"n1": 25_000, "n2": 100, "target": 1e-7, "exact_over_screen": 0.97,
                  "exact_over_scipy_asymp": 1.07}],
        "false_alarms": [
            {"population": "normal", "expected": 24.0,
             "exceedances_per_target": exceedances_per_target},
            {"population": "normal", "expected": 8.0,
             "exceedances_per_target": exceedances_per_target},
            {"population": "correlated 0.8", "exceedances_per_target": 0.1},  # not pooled
        ],
        "delay": {"rows": [{"change": "shift 0.25 sd", "alarm": alarm_delay,
                            "per_window": 11_208.0}]},
    }


def verdicts(result: dict[str, Any] | None) -> list[str]:
    return [row[-1] for row in run_all.rows({"alarms": result})]


def test_the_alarms_bench_is_one_of_run_alls_benchmarks_in_quick_mode_by_default() -> None:
    assert "alarms" in run_all.BENCHMARKS


def test_a_pooled_false_alarm_rate_inside_the_target_and_an_earlier_alarm_pass() -> None:
    table = run_all.rows({"alarms": alarms_result(0.88, 1258.0)})
    assert table[0][3:] == ("0.88x", "0.7-1.5x", "PASS")
    assert table[0][1] == "28"  # 0.88 x 32 expected, the correlated case left out
    assert verdicts(alarms_result(0.88, 1258.0)) == ["PASS", "", "PASS", ""]


def test_a_rate_outside_the_target_or_a_later_alarm_fail() -> None:
    assert verdicts(alarms_result(1.6, 1258.0))[0] == "FAIL"
    assert verdicts(alarms_result(0.6, 1258.0))[0] == "FAIL"
    assert verdicts(alarms_result(0.88, 20_000.0))[2] == "FAIL"


def test_a_failed_alarms_bench_is_an_error_row() -> None:
    assert verdicts(None) == ["ERROR"]


def timed_result(ratios: list[float], delays: list[tuple[float, float]]) -> dict[str, Any]:
    """Cases with raises and their down time per raise; changes with the alarm's and the
    textbook CUSUM's delays (the per-window rules far behind)."""
    return {
        "quick": False, "seconds": 1.0,
        "false_alarms": [{"population": "normal", "expected": 32.0, "raises": 30,
                          "ratio_down": r, "exceedances_per_target": 1.0} for r in ratios],
        "delay": {"rows": [{"change": f"change {i}", "alarm": a, "per_window": 10_000.0,
                            "per_window_bonferroni": 10_500.0, "cusum": c, "cusum_tuned": 1.0}
                           for i, (a, c) in enumerate(delays)]},
    }


def row_named(table: list[tuple[str, ...]], start: str) -> tuple[str, ...]:
    return next(row for row in table if row[0].strip().startswith(start))


def test_the_mean_time_between_false_alarms_is_pooled_over_cases_and_checked() -> None:
    inside = run_all.rows({"alarms": timed_result([1.0, 1.2], [(100.0, 200.0)])})
    assert row_named(inside, "mean time between")[1] == "1.10x"
    assert row_named(inside, "mean time between")[-1] == "PASS"
    assert row_named(inside, "the same per case")[3] == "2 of 2 inside"
    outside = run_all.rows({"alarms": timed_result([1.6, 1.8], [(100.0, 200.0)])})
    assert row_named(outside, "mean time between")[-1] == "FAIL"


def test_the_alarm_must_be_the_fastest_in_most_changes() -> None:
    most = run_all.rows({"alarms": timed_result([1.0], [(100.0, 200.0), (100.0, 50.0),
                                                        (300.0, 400.0)])})
    assert row_named(most, "delay: alarm the fastest")[1:2] == ("2 of 3 changes",)
    assert row_named(most, "delay: alarm the fastest")[-1] == "PASS"
    assert row_named(most, "... with (c')")[1] == "0 of 3 changes"
    few = run_all.rows({"alarms": timed_result([1.0], [(100.0, 200.0), (100.0, 50.0),
                                                       (300.0, 200.0)])})
    assert row_named(few, "delay: alarm the fastest")[-1] == "FAIL"
