"""Tests for exporter.stats.chi2: the p-value of scipy.stats.chi2_contingency (SPEC 6.1)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from exporter.stats.chi2 import chi2_pvalue, contingency_pvalue


def _counts(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


class TestChi2Pvalue:
    @pytest.mark.parametrize(
        ("reference", "window"),
        [
            ([600, 300, 50, 30, 15, 5, 0], [55, 35, 4, 3, 2, 1, 0]),
            ([5000, 5000], [480, 520]),  # one degree of freedom: Yates' correction applies
            ([10, 20, 30], [30, 20, 10]),
            ([1000, 1, 1], [990, 5, 5]),
            ([7, 3], [0, 10]),
        ],
    )
    def test_the_pvalue_equals_scipy(self, reference: list[int], window: list[int]) -> None:
        expected = chi2_contingency(
            [[r for r, w in zip(reference, window, strict=True) if r + w],
             [w for r, w in zip(reference, window, strict=True) if r + w]]).pvalue
        assert chi2_pvalue(_counts(reference), _counts(window)) == pytest.approx(
            expected, rel=1e-12, abs=1e-300)

    def test_categories_seen_in_neither_sample_are_left_out(self) -> None:
        with_gaps = chi2_pvalue(_counts([10, 0, 20, 0]), _counts([15, 0, 5, 0]))
        assert with_gaps == pytest.approx(chi2_contingency([[10, 20], [15, 5]]).pvalue)

    def test_values_unseen_in_the_reference_count_as_a_category(self) -> None:
        # The last bin is 'unseen': zero in the reference, present in the window.
        value = chi2_pvalue(_counts([50, 50, 0]), _counts([40, 40, 20]))
        assert value == pytest.approx(chi2_contingency([[50, 50, 0], [40, 40, 20]]).pvalue)
        assert value < 1e-4

    def test_a_single_category_seen_gives_one(self) -> None:
        assert chi2_pvalue(_counts([10, 0, 0]), _counts([5, 0, 0])) == 1.0

    def test_an_empty_side_gives_one_instead_of_a_scipy_error(self) -> None:
        with pytest.raises(ValueError, match="zero element"):
            chi2_contingency([[10, 20], [0, 0]])
        assert chi2_pvalue(_counts([10, 20]), _counts([0, 0])) == 1.0
        assert chi2_pvalue(_counts([0, 0, 0]), _counts([4, 5, 0])) == 1.0

    def test_identical_proportions_give_one(self) -> None:
        assert chi2_pvalue(_counts([100, 200, 300]), _counts([10, 20, 30])) == pytest.approx(1.0)


class TestContingencyPvalue:
    @pytest.mark.parametrize("columns", [2, 3, 8, 40])
    def test_random_tables_give_scipys_pvalue(self, columns: int) -> None:
        rng = np.random.default_rng(columns)
        for _ in range(50):
            table = rng.integers(1, rng.choice([5, 100, 10_000]), size=(2, columns))
            expected = chi2_contingency(table).pvalue
            assert contingency_pvalue(table.astype(np.float64)) == pytest.approx(
                expected, rel=1e-10, abs=1e-300)
