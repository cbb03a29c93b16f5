"""Quality metrics equal scikit-learn's for arbitrary label/prediction arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

from exporter.stats import quality

classes = st.sampled_from(["a", "b", "c", "d"])
pairs = st.integers(1, 80).flatmap(
    lambda n: st.tuples(st.lists(classes, min_size=n, max_size=n),
                        st.lists(classes, min_size=n, max_size=n)))


@settings(max_examples=150, deadline=None)
@given(pairs)
def test_accuracy_and_macro_f1_equal_sklearn(pair: tuple[list[str], list[str]]) -> None:
    y_true = np.array(pair[0], dtype=object)
    y_pred = np.array(pair[1], dtype=object)
    assert quality.accuracy(y_true, y_pred) == pytest.approx(
        metrics.accuracy_score(y_true, y_pred))
    assert quality.macro_f1(y_true, y_pred) == pytest.approx(
        metrics.f1_score(y_true, y_pred, average="macro", zero_division=0))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=2, max_size=100))
def test_roc_auc_equals_sklearn_with_tied_scores(rows: list[tuple[bool, int]]) -> None:
    positive = np.array([r[0] for r in rows])
    scores = np.array([r[1] / 20 for r in rows])
    result = quality.roc_auc(positive, scores)
    if positive.all() or not positive.any():
        assert result is None
    else:
        assert result == pytest.approx(metrics.roc_auc_score(positive, scores))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1,
                max_size=100))
def test_mae_and_rmse_equal_sklearn(rows: list[tuple[float, float]]) -> None:
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    assert quality.mae(y, p) == pytest.approx(metrics.mean_absolute_error(y, p))
    assert quality.rmse(y, p) == pytest.approx(np.sqrt(metrics.mean_squared_error(y, p)))


def test_binary_labels_accept_ones_zeros_and_booleans_in_any_case() -> None:
    positive, usable = quality.binary_labels(np.array(["1", "0", "true", "False", "yes", None],
                                                      dtype=object))
    assert list(positive) == [True, False, True, False, False, False]
    assert list(usable) == [True, True, True, True, False, False]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, 1.5, -2.0]),
                min_size=1, max_size=60))
def test_average_ranks_equal_scipy_rankdata(values: list[float]) -> None:
    from scipy.stats import rankdata

    array = np.array(values, dtype=np.float64)
    np.testing.assert_array_equal(quality.average_ranks(array), rankdata(array))
