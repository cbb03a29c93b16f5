"""Tests for exporter.stats.divergence: PSI and Jensen-Shannon distance (SPEC 6.1, 6.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from exporter.stats.divergence import (
    EMPTY_BIN_PROPORTION,
    jensen_shannon,
    jensen_shannon_rows,
    psi,
    psi_rows,
)

PAIRS = [
    ([0.1] * 10, [0.08, 0.12, 0.1, 0.1, 0.09, 0.11, 0.1, 0.1, 0.05, 0.15]),
    ([0.6, 0.3, 0.05, 0.03, 0.015, 0.005, 0.0], [0.5, 0.3, 0.1, 0.05, 0.03, 0.0, 0.02]),
    ([0.5, 0.5], [0.999, 0.001]),
    ([0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.5, 0.5]),
    ([1.0, 0.0], [0.0, 1.0]),
]


def _psi_by_hand(p_ref: list[float], p_win: list[float]) -> float:
    total = 0.0
    for ref, win in zip(p_ref, p_win, strict=True):
        r = ref or EMPTY_BIN_PROPORTION
        w = win or EMPTY_BIN_PROPORTION
        total += (w - r) * math.log(w / r)
    return total


class TestPsi:
    @pytest.mark.parametrize(("p_ref", "p_win"), PAIRS)
    def test_psi_is_the_sum_of_spec_terms(self, p_ref: list[float], p_win: list[float]) -> None:
        assert psi(np.array(p_ref), np.array(p_win)) == pytest.approx(
            _psi_by_hand(p_ref, p_win), rel=1e-12)

    def test_empty_bins_count_as_1e_minus_4_on_either_side(self) -> None:
        value = psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.0, 0.5]))
        expected = ((1e-4 - 0.5) * math.log(1e-4 / 0.5)
                    + (0.5 - 1e-4) * math.log(0.5 / 1e-4))
        assert value == pytest.approx(expected, rel=1e-12)

    def test_identical_distributions_give_zero(self) -> None:
        p = np.array([0.2, 0.0, 0.3, 0.5])
        assert psi(p, p) == 0.0

    def test_psi_is_positive_when_the_distributions_differ(self) -> None:
        assert psi(np.array([0.5, 0.5]), np.array([0.6, 0.4])) > 0.0

    def test_rows_give_the_psi_of_each_row(self) -> None:
        p_ref = np.array(PAIRS[1][0])
        windows = np.array([PAIRS[1][1], p_ref, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
        rows = psi_rows(p_ref, windows)
        assert rows.tolist() == pytest.approx([psi(p_ref, w) for w in windows], rel=1e-15)


class TestJensenShannon:
    @pytest.mark.parametrize(("p_ref", "p_win"), PAIRS)
    def test_the_distance_equals_scipy_in_base_2(
            self, p_ref: list[float], p_win: list[float]) -> None:
        expected = jensenshannon(p_ref, p_win, base=2)
        assert jensen_shannon(np.array(p_ref), np.array(p_win)) == pytest.approx(
            expected, rel=1e-12, abs=1e-15)

    def test_identical_distributions_give_zero(self) -> None:
        p = np.array([0.2, 0.0, 0.3, 0.5])
        assert jensen_shannon(p, p) == 0.0

    def test_disjoint_distributions_give_one(self) -> None:
        assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)

    def test_unnormalised_counts_are_normalised_like_scipy(self) -> None:
        counts_ref, counts_win = np.array([3.0, 1.0]), np.array([1.0, 1.0])
        assert jensen_shannon(counts_ref, counts_win) == pytest.approx(
            jensenshannon(counts_ref, counts_win, base=2), rel=1e-12)

    def test_rows_give_the_distance_of_each_row(self) -> None:
        p_ref = np.array(PAIRS[0][0])
        windows = np.random.default_rng(1).dirichlet(np.ones(10), size=6)
        rows = jensen_shannon_rows(p_ref, windows)
        expected = [jensenshannon(p_ref, w, base=2) for w in windows]
        assert rows.tolist() == pytest.approx(expected, rel=1e-12)
