"""CBPE's pieces against independent implementations, for arbitrary inputs (SPEC 6.10)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics
from sklearn.isotonic import IsotonicRegression

from exporter.stats import cbpe

# Scores on a coarse grid so that ties (shared ranks, pooled isotonic points) are common.
grid_scores = st.lists(st.integers(0, 20).map(lambda k: k / 20), min_size=2, max_size=60)


def labelled(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    scores = np.array(draw(grid_scores))
    positive = np.array(draw(st.lists(st.booleans(), min_size=scores.shape[0],
                                      max_size=scores.shape[0])))
    return scores, positive


labelled_data = st.composite(labelled)()


@settings(max_examples=200, deadline=None)
@given(labelled_data)
def test_the_isotonic_fit_equals_scikit_learns(data: tuple[np.ndarray, np.ndarray]) -> None:
    scores, positive = data
    knots_x, knots_y = cbpe.isotonic_fit(scores, positive)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(scores, positive)
    probe = np.linspace(-0.1, 1.1, 121)
    np.testing.assert_allclose(np.interp(probe, knots_x, knots_y), theirs.predict(probe),
                               rtol=0, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(labelled_data, st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_hard_probabilities_give_scikit_learns_realized_metrics(
        data: tuple[np.ndarray, np.ndarray], threshold: float) -> None:
    scores, positive = data
    result = cbpe.estimate(scores, positive.astype(float), threshold).metrics
    predicted = scores >= threshold
    assert result.accuracy == pytest.approx(metrics.accuracy_score(positive, predicted))
    assert result.f1 == pytest.approx(
        metrics.f1_score(positive, predicted, average="macro", zero_division=0))
    if positive.all() or not positive.any():
        assert result.roc_auc is None
    else:
        assert result.roc_auc == pytest.approx(metrics.roc_auc_score(positive, scores))
    assert cbpe.realized(positive, scores, threshold) == result


@settings(max_examples=200, deadline=None)
@given(grid_scores, st.data())
def test_the_estimated_auc_is_expected_u_over_expected_pairs(
        scores_list: list[float], data: st.DataObject) -> None:
    scores = np.array(scores_list)
    n = scores.shape[0]
    p = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    # Brute force over ordered pairs (i, j), i != j: i positive, j negative.
    weight = np.outer(p, 1 - p)
    np.fill_diagonal(weight, 0.0)
    kernel = (scores[:, None] > scores[None, :]) + 0.5 * (scores[:, None] == scores[None, :])
    pairs = weight.sum()
    ours = cbpe.estimated_roc_auc(scores, p)
    if pairs <= 1e-12:
        assert ours is None
    else:
        assert ours == pytest.approx(float((weight * kernel).sum() / pairs), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(grid_scores, st.data())
def test_estimates_lie_between_0_and_1(scores_list: list[float], data: st.DataObject) -> None:
    scores = np.array(scores_list)
    n = scores.shape[0]
    p = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    result = cbpe.estimate(scores, p, 0.5)
    assert 0.0 <= result.metrics.accuracy <= 1.0
    assert 0.0 <= result.metrics.f1 <= 1.0
    assert result.metrics.roc_auc is None or 0.0 <= result.metrics.roc_auc <= 1.0
    c = result.confusion
    assert c.tp + c.fp + c.fn + c.tn == pytest.approx(n)
