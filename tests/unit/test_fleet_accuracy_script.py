"""Tests for bench/fleet_accuracy.py: the bucketed KS of a fleet's summed histograms."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import fleet_accuracy
from fleet_accuracy import (
    FloatArray,
    bucket_bounds,
    bucketed_ks,
    critical_value,
    exact_ks,
    max_bucket_mass,
)

SEED = 7


def _brute_force_bucketed_ks(
    reference: list[float], window: list[float], bounds: list[float]
) -> float:
    best = 0.0
    for le in bounds:
        f_window = sum(value <= le for value in window) / len(window)
        f_reference = sum(value <= le for value in reference) / len(reference)
        best = max(best, abs(f_window - f_reference))
    return best


def _samples(kind: str, seed: int) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0.0, 1.0, 400), rng.normal(0.3, 1.1, 250)
    if kind == "lognormal":
        return rng.lognormal(0.0, 1.0, 300), rng.lognormal(0.2, 1.3, 200)
    return (
        rng.poisson(3.0, 500).astype(np.float64),
        rng.poisson(3.6, 300).astype(np.float64),
    )


KINDS = ["normal", "lognormal", "poisson"]
BUCKETS = [1, 2, 5, 10, 20, 50]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("buckets", BUCKETS)
def test_bucketed_ks_equals_a_brute_force_maximum_over_the_bounds(kind: str, buckets: int) -> None:
    reference, window = _samples(kind, SEED)
    bounds = bucket_bounds(reference, buckets)
    expected = _brute_force_bucketed_ks(reference.tolist(), window.tolist(), bounds.tolist())
    assert bucketed_ks(reference, window, bounds) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("buckets", BUCKETS)
def test_bucketed_ks_never_exceeds_the_exact_ks(kind: str, buckets: int) -> None:
    for seed in range(5):
        reference, window = _samples(kind, seed)
        bounds = bucket_bounds(reference, buckets)
        bucketed = bucketed_ks(reference, window, bounds)
        exact = stats.ks_2samp(reference, window).statistic
        assert bucketed <= exact + 1e-12
        assert exact - bucketed <= max_bucket_mass(reference, bounds) + 1e-12


def test_bounds_are_the_reference_quantiles_without_duplicates() -> None:
    reference = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    bounds = bucket_bounds(reference, 4)
    expected = np.unique(np.quantile(reference, [0.25, 0.5, 0.75]))
    np.testing.assert_array_equal(bounds, expected)
    assert bounds.tolist() == [1.0, 1.5, 3.25]


def test_one_bucket_per_distinct_reference_value_recovers_the_exact_ks_on_discrete_data() -> None:
    rng = np.random.default_rng(SEED)
    support = np.arange(10, dtype=np.float64)
    for _ in range(5):
        reference = rng.choice(support, 600, p=np.full(10, 0.1))
        window = rng.choice(support, 300, p=rng.dirichlet(np.ones(10)))
        assert set(window.tolist()) <= set(reference.tolist())
        bounds = np.unique(reference)
        exact = stats.ks_2samp(reference, window).statistic
        assert bucketed_ks(reference, window, bounds) == pytest.approx(exact, abs=1e-12)


def test_a_single_bucket_has_no_finite_bound_and_a_bucketed_ks_of_zero() -> None:
    reference, window = _samples("normal", SEED)
    bounds = bucket_bounds(reference, 1)
    assert bounds.size == 0
    assert bucketed_ks(reference, window, bounds) == 0.0
    assert max_bucket_mass(reference, bounds) == 1.0


def test_exact_ks_is_scipys_statistic_and_pvalue() -> None:
    reference, window = _samples("lognormal", SEED)
    result = stats.ks_2samp(reference, window)
    assert exact_ks(reference, window) == (result.statistic, result.pvalue)


def test_the_critical_value_is_the_asymptotic_one_at_alpha_one_in_a_thousand() -> None:
    n, m = 100_000, 1_000
    coefficient = np.sqrt(-np.log(0.001 / 2) / 2)
    assert critical_value(n, m) == pytest.approx(coefficient * np.sqrt((n + m) / (n * m)), 1e-3)


def test_main_prints_the_table_and_writes_the_figures_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures.json"
    assert fleet_accuracy.main(["--buckets", "10", "20", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert len(document["rows"]) == 2 * len(fleet_accuracy.SCENARIOS)
    assert all(row["bucketed_ks"] <= row["exact_ks"] + 1e-12 for row in document["rows"])
    assert "| flags (exact/bucketed) |" in capsys.readouterr().out
