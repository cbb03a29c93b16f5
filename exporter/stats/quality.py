"""Model quality over labelled records, equal to scikit-learn's metrics (columnar, no sklearn)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from exporter.stats.ecdf import FloatArray

ObjectArray = NDArray[np.object_]


def accuracy(y_true: ObjectArray, y_pred: ObjectArray) -> float:
    """sklearn.metrics.accuracy_score."""
    return float(np.mean(y_true == y_pred))


def macro_f1(y_true: ObjectArray, y_pred: ObjectArray) -> float:
    """sklearn.metrics.f1_score(average="macro") over the classes present in either array
    (a class with no true and no predicted sample does not occur; zero_division gives 0)."""
    import pandas as pd  # only with labels configured

    codes, classes = pd.factorize(np.concatenate((y_true, y_pred)), sort=True)
    k = len(classes)
    t, p = codes[: y_true.shape[0]], codes[y_true.shape[0]:]
    tp = np.bincount(t[t == p], minlength=k).astype(np.float64)
    true_count = np.bincount(t, minlength=k)
    pred_count = np.bincount(p, minlength=k)
    denominator = true_count + pred_count
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    return float(np.mean(f1))


def roc_auc(positive: NDArray[np.bool_], scores: FloatArray) -> float | None:
    """sklearn.metrics.roc_auc_score for a binary label; None when only one class is present."""
    n_pos = int(positive.sum())
    n_neg = int(positive.shape[0] - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(scores)  # average ranks for ties: the Mann-Whitney U statistic
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def average_ranks(values: FloatArray) -> FloatArray:
    """``scipy.stats.rankdata(values)``: ranks from 1, tied values sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    group = np.cumsum(starts) - 1  # tie group of each sorted position
    bounds = np.concatenate((np.flatnonzero(starts), [values.shape[0]]))
    mean_rank = (bounds[:-1] + bounds[1:] + 1) / 2.0  # mean of ranks bounds[g]+1 .. bounds[g+1]
    ranks: FloatArray = np.empty(values.shape[0], dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def mae(y_true: FloatArray, y_pred: FloatArray) -> float:
    """sklearn.metrics.mean_absolute_error."""
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true: FloatArray, y_pred: FloatArray) -> float:
    """Root of sklearn.metrics.mean_squared_error."""
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


POSITIVE_LABELS = frozenset({"1", "true"})
NEGATIVE_LABELS = frozenset({"0", "false"})


def binary_labels(labels: ObjectArray) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(is_positive, is_usable) for labels ``1``/``0``/``true``/``false`` (any case)."""
    import pandas as pd  # only with labels configured

    lowered = pd.Series(labels, dtype=object).str.lower()
    positive = lowered.isin(POSITIVE_LABELS).to_numpy()
    usable = positive | lowered.isin(NEGATIVE_LABELS).to_numpy()
    return positive, usable
