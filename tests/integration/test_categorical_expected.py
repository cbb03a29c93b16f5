"""The categorical statistics of SPEC 2, 6.1, 6.3 and 6.5, written again without ``exporter/``.

The other ``test_categorical_*`` modules compute what the exporter should publish with these
functions; the tests in this module check the oracle itself against the SPEC's own examples.

- Canonical category text (SPEC 2): strings as they are, booleans ``true``/``false``,
  integers in decimal, whole-number floats without their fraction (``1.0`` -> ``1``), other
  floats in positional notation; null, absent and NaN are missing; nested values (lists,
  objects) are invalid: counted, then treated as missing.
- Bins (6.5): each reference category, most frequent first (ties by name), plus one bin for
  values never seen in the reference.
- Ratios: the ``max_categories`` most frequent reference categories get their own label; the
  rest (other reference categories and unseen values) is summed as ``__other__``, which exists
  when there is something beyond the top categories: more reference categories than
  ``max_categories``, or unseen values in the window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

OTHER: Final = "__other__"
EMPTY_BIN: Final = 1e-4


class _Invalid:
    """A value of the wrong type in a categorical column."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()
Canonical = str | None | _Invalid


def canonical(value: object) -> Canonical:
    """The category a raw JSON / Parquet / CSV value stands for (SPEC 2)."""
    result: Canonical
    if isinstance(value, (bool, np.bool_)):
        result = "true" if value else "false"
    elif value is None or isinstance(value, str):
        result = value
    elif isinstance(value, (int, np.integer)):
        result = str(int(value))
    elif isinstance(value, (float, np.floating)):
        result = _float_category(float(value))
    else:
        result = INVALID  # lists, dicts
    return result


def _float_category(number: float) -> Canonical:
    """NaN is missing, infinities are invalid, whole numbers lose their fraction."""
    if math.isnan(number):
        return None
    if math.isinf(number):
        return INVALID
    if number.is_integer():
        return str(int(number))
    text = repr(number)
    assert "e" not in text, f"test data should avoid exponents: {text}"
    return text


def usable(values: Iterable[object]) -> list[str]:
    """The canonical categories of the values that are neither missing nor invalid."""
    return [c for c in map(canonical, values) if isinstance(c, str)]


def invalid_count(values: Iterable[object]) -> int:
    """How many values are of the wrong type."""
    return sum(1 for v in values if canonical(v) is INVALID)


def reference_order(reference: Sequence[object]) -> tuple[str, ...]:
    """Reference categories, most frequent first, ties broken by name."""
    counts = Counter(usable(reference))
    return tuple(sorted(counts, key=lambda c: (-counts[c], c)))


@dataclass(frozen=True)
class Expected:
    """Every gauge of one categorical column, as the SPEC defines it."""

    missing_ratio: float
    reference_missing_ratio: float
    unseen_ratio: float
    chi2_pvalue: float
    jensen_shannon_distance: float
    psi: float
    ratios: dict[str, float]
    reference_ratios: dict[str, float]
    usable: int


def bin_counts(order: Sequence[str], values: Sequence[str]) -> NDArray[np.float64]:
    """Counts per reference category, then the unseen bin."""
    counts = Counter(values)
    known = set(order)
    unseen = sum(n for c, n in counts.items() if c not in known)
    return np.array([counts.get(c, 0) for c in order] + [unseen], dtype=np.float64)


def chi2_pvalue(ref_counts: NDArray[np.float64], win_counts: NDArray[np.float64]) -> float:
    """chi2_contingency([ref, win]) over the bins seen in either sample; 1 when only one is."""
    seen = (ref_counts + win_counts) > 0
    if int(seen.sum()) < 2:
        return 1.0
    return float(chi2_contingency([ref_counts[seen], win_counts[seen]]).pvalue)


def psi(p_ref: NDArray[np.float64], p_win: NDArray[np.float64]) -> float:
    """sum((w - r) * ln(w / r)) with empty-bin proportions replaced by 1e-4."""
    total = 0.0
    for r, w in zip(p_ref, p_win, strict=True):
        r_ = EMPTY_BIN if r == 0 else float(r)
        w_ = EMPTY_BIN if w == 0 else float(w)
        total += (w_ - r_) * math.log(w_ / r_)
    return total


def label_ratios(order: Sequence[str], counts: NDArray[np.float64],
                 max_categories: int) -> dict[str, float]:
    """Shares per exposed reference category plus ``__other__`` when something is beyond them."""
    total = float(counts.sum())
    top = min(max_categories, len(order))
    ratios = {c: float(counts[i]) / total for i, c in enumerate(order[:top])}
    rest = float(counts[top:].sum())
    if len(order) > max_categories or rest > 0:
        ratios[OTHER] = rest / total
    return ratios


def expect(reference: Sequence[object], window: Sequence[object],
           max_categories: int) -> Expected:
    """The gauges of a column from its raw reference values and raw window values."""
    order = reference_order(reference)
    ref_good, win_good = usable(reference), usable(window)
    ref_counts, win_counts = bin_counts(order, ref_good), bin_counts(order, win_good)
    assert ref_counts[-1] == 0
    p_ref, p_win = ref_counts / ref_counts.sum(), win_counts / win_counts.sum()
    return Expected(
        missing_ratio=1.0 - len(win_good) / len(window),
        reference_missing_ratio=1.0 - len(ref_good) / len(reference),
        unseen_ratio=float(win_counts[-1]) / len(win_good),
        chi2_pvalue=chi2_pvalue(ref_counts, win_counts),
        jensen_shannon_distance=float(jensenshannon(p_ref, p_win, base=2)),
        psi=psi(p_ref, p_win),
        ratios=label_ratios(order, win_counts, max_categories),
        reference_ratios=label_ratios(order, ref_counts, max_categories),
        usable=len(win_good),
    )


# --- the oracle checked against the SPEC's wording ------------------------------------------


class TestCanonicalCategories:
    @pytest.mark.parametrize("raw", [1, 1.0, "1", np.int64(1), np.float64(1.0)])
    def test_one_written_any_way_is_the_category_1(self, raw: object) -> None:
        assert canonical(raw) == "1"

    @pytest.mark.parametrize("raw", [True, "true", np.bool_(True)])
    def test_true_written_any_way_is_the_category_true(self, raw: object) -> None:
        assert canonical(raw) == "true"

    def test_strings_are_compared_as_written(self) -> None:
        assert canonical("1.0") == "1.0"
        assert canonical("True") == "True"

    def test_other_floats_keep_their_fraction(self) -> None:
        assert canonical(2.5) == "2.5"

    @pytest.mark.parametrize("raw", [None, math.nan, np.float64("nan")])
    def test_null_and_nan_are_missing(self, raw: object) -> None:
        assert canonical(raw) is None

    @pytest.mark.parametrize("raw", [[1], {"a": 1}, []])
    def test_nested_values_are_invalid(self, raw: object) -> None:
        assert canonical(raw) is INVALID


class TestCategoricalStatistics:
    def test_ties_in_frequency_are_broken_by_name(self) -> None:
        assert reference_order(["b", "a", "c", "c", None]) == ("c", "a", "b")

    def test_identical_distributions_have_no_distance(self) -> None:
        got = expect(["a", "b", "b"] * 10, ["a", "b", "b"] * 5, 20)
        assert got.jensen_shannon_distance == 0.0
        assert got.psi == 0.0
        assert got.chi2_pvalue == pytest.approx(1.0)
        assert OTHER not in got.ratios

    def test_unseen_values_go_to_other_and_their_own_bin(self) -> None:
        got = expect(["a", "b"] * 10, ["a", "z", None, [1]], 20)
        assert got.unseen_ratio == 0.5
        assert got.missing_ratio == 0.5
        assert got.ratios == {"a": 0.5, "b": 0.0, OTHER: 0.5}
        assert OTHER not in got.reference_ratios

    def test_categories_beyond_the_top_are_summed_as_other(self) -> None:
        got = expect(["a"] * 3 + ["b"] * 2 + ["c"], ["a", "b"], 1)
        assert got.reference_ratios == {"a": 0.5, OTHER: 0.5}
        assert got.ratios == {"a": 0.5, OTHER: 0.5}

    def test_chi2_is_one_when_a_single_bin_is_seen(self) -> None:
        assert expect(["a"] * 5, ["a"] * 5, 20).chi2_pvalue == 1.0
