"""Tests for exporter.stats.moments: mean, sample stddev and quantiles (SPEC 6.1, 6.3)."""

from __future__ import annotations

import numpy as np
import pytest

from exporter.stats.moments import PREDICTION_QUANTILES, mean, quantiles, stddev

SAMPLES = {
    "normal": np.random.default_rng(1).normal(10.0, 2.0, 5000),
    "lognormal": np.random.default_rng(2).lognormal(0.0, 2.0, 5000),
    "ties": np.random.default_rng(3).integers(0, 3, 101).astype(np.float64),
    "one-value": np.array([4.5]),
    "two-values": np.array([1.0, 4.0]),
}


class TestMean:
    @pytest.mark.parametrize("name", SAMPLES)
    def test_the_mean_equals_numpy(self, name: str) -> None:
        assert mean(SAMPLES[name]) == pytest.approx(float(np.mean(SAMPLES[name])), rel=1e-15)

    def test_an_empty_sample_has_no_mean(self) -> None:
        assert mean(np.empty(0)) is None


class TestStddev:
    @pytest.mark.parametrize("name", [n for n in SAMPLES if n != "one-value"])
    def test_the_stddev_is_numpys_with_one_degree_of_freedom(self, name: str) -> None:
        assert stddev(SAMPLES[name]) == pytest.approx(
            float(np.std(SAMPLES[name], ddof=1)), rel=1e-15)

    def test_two_values_give_the_sample_stddev(self) -> None:
        assert stddev(np.array([1.0, 4.0])) == pytest.approx(np.sqrt(4.5))

    def test_below_two_values_there_is_no_stddev(self) -> None:
        assert stddev(np.array([4.5])) is None
        assert stddev(np.empty(0)) is None

    def test_a_repeated_value_has_zero_stddev(self) -> None:
        assert stddev(np.full(10, 2.5)) == 0.0


class TestQuantiles:
    @pytest.mark.parametrize("name", SAMPLES)
    def test_the_quantiles_equal_numpys_default_method(self, name: str) -> None:
        values = np.sort(SAMPLES[name])
        expected = np.quantile(values, PREDICTION_QUANTILES)
        assert quantiles(values, PREDICTION_QUANTILES) == tuple(float(v) for v in expected)

    def test_the_prediction_quantiles_are_the_spec_ones(self) -> None:
        assert PREDICTION_QUANTILES == (0.05, 0.25, 0.5, 0.75, 0.95)
