"""Model quality over the labelled records of a window or of the reference (SPEC 6.4).

Classification: the predicted class is the prediction itself when it is categorical, else
``score >= label.threshold`` with labels ``1``/``0`` or ``true``/``false``. Regression: MAE and
RMSE. Only records that carry both a label and a prediction count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from exporter.config import ModelConfig
from exporter.stats import quality as q
from exporter.values import missing_objects


@dataclass(frozen=True)
class QualitySnapshot:
    """Quality gauges of one window (or the reference); None = not defined."""

    labeled: int = 0
    labeled_ratio: float | None = None
    accuracy: float | None = None
    f1: float | None = None
    roc_auc: float | None = None
    mae: float | None = None
    rmse: float | None = None
    error_change_ratio: float | None = None

    @property
    def error(self) -> float | None:
        """1 - accuracy for classification, RMSE for regression."""
        if self.accuracy is not None:
            return 1.0 - self.accuracy
        return self.rmse


def label_is_number(model: ModelConfig) -> bool:
    """Regression labels are numbers; classification labels are categories."""
    return model.label is not None and model.label.task == "regression"


def compute_quality(rows: int, numbers: Mapping[str, NDArray[np.float64]],
                    objects: Mapping[str, NDArray[np.object_]], model: ModelConfig,
                    reference: QualitySnapshot | None, min_rows: int) -> QualitySnapshot | None:
    """Quality of the labelled records among ``rows``; None when no label is configured.

    ``objects`` holds a categorical label and a categorical prediction as text, under their
    column names; ``numbers`` a numerical label or prediction score."""
    if model.label is None or model.prediction is None:
        return None
    label = model.label
    if label.task == "regression":
        y = numbers[label.column]
        pred = numbers[model.prediction.column]
        labeled = ~np.isnan(y)
        use = labeled & ~np.isnan(pred)
        base = _base(rows, labeled)
        if int(use.sum()) < min_rows:
            return base
        result = QualitySnapshot(base.labeled, base.labeled_ratio,
                                 mae=q.mae(y[use], pred[use]), rmse=q.rmse(y[use], pred[use]))
    else:
        labels = objects[label.column]
        labeled = ~missing_objects(labels)
        base = _base(rows, labeled)
        result_or_none = _classification(labels, labeled, numbers, objects, model, min_rows)
        if result_or_none is None:
            return base
        result = QualitySnapshot(base.labeled, base.labeled_ratio, *result_or_none)
    return _with_change(result, reference)


def _base(rows: int, labeled: NDArray[np.bool_]) -> QualitySnapshot:
    count = int(labeled.sum())
    return QualitySnapshot(count, count / rows if rows else None)


def _classification(labels: NDArray[np.object_], labeled: NDArray[np.bool_],
                    numbers: Mapping[str, NDArray[np.float64]],
                    objects: Mapping[str, NDArray[np.object_]], model: ModelConfig,
                    min_rows: int) -> tuple[float, float, float | None] | None:
    assert model.prediction is not None
    assert model.label is not None
    if model.prediction.type == "categorical":
        predicted = objects[model.prediction.column]
        use = labeled & ~missing_objects(predicted)
        if int(use.sum()) < min_rows:
            return None
        y_true, y_pred = labels[use], predicted[use]
        return q.accuracy(y_true, y_pred), q.macro_f1(y_true, y_pred), None
    scores = numbers[model.prediction.column]
    positive, usable = q.binary_labels(labels)
    use = usable & ~np.isnan(scores)
    if int(use.sum()) < min_rows:
        return None
    truth = positive[use]
    guess = scores[use] >= model.label.threshold
    y_true = np.where(truth, "1", "0").astype(object)
    y_pred = np.where(guess, "1", "0").astype(object)
    return (q.accuracy(y_true, y_pred), q.macro_f1(y_true, y_pred),
            q.roc_auc(truth, scores[use]))


def _with_change(result: QualitySnapshot, reference: QualitySnapshot | None) -> QualitySnapshot:
    if reference is None or reference.error is None or result.error is None:
        return result
    if reference.error == 0:
        return result
    change = (result.error - reference.error) / reference.error
    return QualitySnapshot(result.labeled, result.labeled_ratio, result.accuracy, result.f1,
                           result.roc_auc, result.mae, result.rmse, change)
