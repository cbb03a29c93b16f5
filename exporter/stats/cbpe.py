"""Confidence-based performance estimation (CBPE, SPEC 6.10): model quality without labels.

For a binary classifier with a numerical score, the reference (which carries the label) gives a
calibration ``score -> P(label = 1 | score)``. Over a window, each record's calibrated
probability ``p_i`` stands for its unknown label, so the expected confusion matrix, and from it
the expected accuracy, macro F1 and ROC AUC, can be computed before (or without) the labels.
The method, its assumptions and its limits are in docs/cbpe.md. Pure functions over numpy
arrays; isotonic regression is ``scipy.optimize.isotonic_regression`` (scipy >= 1.12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from exporter.stats import quality as q
from exporter.stats.ecdf import FloatArray

BoolArray = NDArray[np.bool_]

FOLDS = 5  # held-out splits of the reference that decide whether calibration helps
ECE_BINS = 10  # equal-mass bins of the expected calibration error
BOOTSTRAP_DRAWS = 200  # reference resamples behind each sampling error (about 5% precision)
BOOTSTRAP_MAX_ROWS = 5000  # rows per resample: the error scales as 1/sqrt(n) from there
MIN_REFERENCE_ROWS = 100  # labelled reference rows below which no estimate is made
MIN_CLASS_ROWS = 10  # each class needs this many reference rows (folds, bootstrap, AUC)


@dataclass(frozen=True)
class Calibration:
    """Map from raw score to probability of the positive class, fitted on the reference.

    ``knots`` are None when the raw score (clipped to [0, 1]) is used as the probability;
    otherwise the isotonic fit, interpolated linearly between its knots and held constant
    beyond them (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``).
    """

    knots_x: FloatArray | None
    knots_y: FloatArray | None
    raw_error: float  # mean held-out expected calibration error of the raw score
    calibrated_error: float  # the same for the isotonic fit (inf when it could not be fitted)

    @property
    def calibrated(self) -> bool:
        """True when the isotonic fit replaces the raw score."""
        return self.knots_x is not None

    def apply(self, scores: FloatArray) -> FloatArray:
        """Probabilities of the positive class for finite ``scores``."""
        if self.knots_x is None or self.knots_y is None:
            return np.clip(scores, 0.0, 1.0)
        result: FloatArray = np.interp(scores, self.knots_x, self.knots_y)
        return result


@dataclass(frozen=True)
class Confusion:
    """A binary confusion matrix: counts, or expected counts (sums of probabilities)."""

    tp: float
    fp: float
    fn: float
    tn: float


@dataclass(frozen=True)
class Metrics:
    """Accuracy, macro F1 and ROC AUC (None when undefined: a single class)."""

    accuracy: float
    f1: float
    roc_auc: float | None


@dataclass(frozen=True)
class Estimate:
    """Estimated metrics of a set of records and the expected confusion matrix behind them."""

    metrics: Metrics
    confusion: Confusion


@dataclass(frozen=True)
class SamplingErrors:
    """One standard error per metric for a window of n rows: ``scale * sqrt(1/n + 1/N)``.

    ``scale / sqrt(n)`` is the realized metric's spread over windows of n rows; the ``1/N``
    term (N reference rows) keeps the reference's own sampling error, which is in the
    calibration and does not shrink with the window, so a window much larger than the
    reference does not get a narrower band than the reference supports."""

    accuracy_scale: float
    f1_scale: float
    roc_auc_scale: float | None
    reference_rows: int

    def for_rows(self, rows: int) -> Metrics:
        """Standard errors of a window of ``rows`` records."""
        root = math.sqrt(1.0 / max(rows, 1) + 1.0 / max(self.reference_rows, 1))
        auc = None if self.roc_auc_scale is None else self.roc_auc_scale * root
        return Metrics(self.accuracy_scale * root, self.f1_scale * root, auc)


@dataclass(frozen=True)
class CbpeReference:
    """Everything CBPE needs from the reference, computed once when it is loaded."""

    calibration: Calibration
    threshold: float
    sampling_errors: SamplingErrors
    estimated: Metrics  # CBPE on the reference itself (drift_reference_model_estimated_*)
    realized: Metrics  # the reference's own realized metrics, for comparison
    rows: int
    score_min: float
    score_max: float


@dataclass(frozen=True)
class WindowEstimate:
    """CBPE over one window: the estimate, its standard errors, and how far it can be trusted."""

    estimate: Estimate
    sampling_errors: Metrics
    rows: int
    outside_share: float  # window scores outside the reference's score range


@dataclass(frozen=True)
class Applicability:
    """Whether CBPE applies to a model, and why not when it does not."""

    applies: bool
    reason: str


def applicable(task: str | None, prediction_type: str | None, label_in_reference: bool,
               labeled_rows: int, positive_rows: int) -> Applicability:
    """CBPE applies to binary classification with a numerical score and a labelled reference."""
    if task != "classification":
        return Applicability(False, "label.task is not classification")
    if prediction_type != "numerical":
        return Applicability(False, "the prediction is not a numerical score")
    if not label_in_reference:
        return Applicability(False, "the reference has no label column")
    if labeled_rows < MIN_REFERENCE_ROWS:
        return Applicability(False, f"the reference has {labeled_rows} rows with a binary "
                                    f"label (1/0/true/false) and a score, fewer than "
                                    f"{MIN_REFERENCE_ROWS}")
    smaller = min(positive_rows, labeled_rows - positive_rows)
    if smaller < MIN_CLASS_ROWS:
        return Applicability(False, f"the reference's rarer class has {smaller} rows, fewer "
                                    f"than {MIN_CLASS_ROWS}")
    return Applicability(True, "binary classification with a numerical score and a labelled "
                               "reference")


def isotonic_fit(scores: FloatArray, positive: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Knots (x, y) of the isotonic regression of the label on the score.

    Equal scores are pooled first (their mean label, weighted by their count), as
    scikit-learn does; only the ends of each constant block are kept, which leaves the
    interpolated function unchanged."""
    # Imported here: scipy.optimize costs ~0.5 s and its memory, needed once per reference load,
    # never by a window's estimate.
    from scipy.optimize import isotonic_regression

    xs, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=positive.astype(np.float64)) / counts
    ys: FloatArray = np.asarray(
        isotonic_regression(means, weights=counts.astype(np.float64)).x, dtype=np.float64)
    keep = np.ones(xs.shape[0], dtype=bool)
    keep[1:-1] = (ys[1:-1] != ys[:-2]) | (ys[1:-1] != ys[2:])
    return xs[keep], ys[keep]


def expected_calibration_error(probabilities: FloatArray, positive: BoolArray,
                               bins: int = ECE_BINS) -> float:
    """ECE over equal-mass bins of the sorted probabilities: sum of share * |mean p - mean y|."""
    n = probabilities.shape[0]
    if n == 0:
        return 0.0
    order = np.argsort(probabilities, kind="stable")
    edges = np.linspace(0, n, min(bins, n) + 1).round().astype(np.int64)
    p_sums = np.add.reduceat(probabilities[order], edges[:-1])
    y_sums = np.add.reduceat(positive[order].astype(np.float64), edges[:-1])
    return float(np.sum(np.abs(p_sums - y_sums)) / n)


def fit_calibration(scores: FloatArray, positive: BoolArray, *, seed: int,
                    folds: int = FOLDS) -> Calibration:
    """Isotonic calibration when it lowers the held-out calibration error, else the raw score.

    Stratified k-fold: the fit on k-1 folds and the raw score (clipped to [0, 1]) are both
    measured by ECE on the held-out fold; the isotonic fit on the whole reference is used when
    its mean held-out ECE is strictly lower."""
    fold = _stratified_folds(positive, folds, seed)
    raw = np.clip(scores, 0.0, 1.0)
    raw_errors, fitted_errors = [], []
    for k in range(folds):
        held = fold == k
        if not held.any() or held.all():
            continue
        knots_x, knots_y = isotonic_fit(scores[~held], positive[~held])
        fitted = np.interp(scores[held], knots_x, knots_y)
        fitted_errors.append(expected_calibration_error(fitted, positive[held]))
        raw_errors.append(expected_calibration_error(raw[held], positive[held]))
    raw_error = float(np.mean(raw_errors)) if raw_errors else 0.0
    fitted_error = float(np.mean(fitted_errors)) if fitted_errors else math.inf
    if fitted_error < raw_error:
        knots_x, knots_y = isotonic_fit(scores, positive)
        return Calibration(knots_x, knots_y, raw_error, fitted_error)
    return Calibration(None, None, raw_error, fitted_error)


def _stratified_folds(positive: BoolArray, folds: int, seed: int) -> NDArray[np.int64]:
    """Fold of each row: each class shuffled (seeded) and dealt round-robin to the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(positive.shape[0], dtype=np.int64)
    for cls in (False, True):
        rows = np.flatnonzero(positive == cls)
        fold[rng.permutation(rows)] = np.arange(rows.shape[0]) % folds
    return fold


def estimate(scores: FloatArray, probabilities: FloatArray, threshold: float) -> Estimate:
    """Expected accuracy, macro F1 and ROC AUC of records with these scores and probabilities.

    Predictions are ``score >= threshold`` (as for the realized metrics of SPEC 6.4); each
    record counts ``p`` as a positive and ``1 - p`` as a negative."""
    predicted = scores >= threshold
    p_pred = probabilities[predicted]
    p_rest = probabilities[~predicted]
    tp, fp = float(p_pred.sum()), float(p_pred.shape[0] - p_pred.sum())
    fn, tn = float(p_rest.sum()), float(p_rest.shape[0] - p_rest.sum())
    confusion = Confusion(tp, fp, fn, tn)
    return Estimate(Metrics(_accuracy(confusion), _macro_f1(confusion),
                            estimated_roc_auc(scores, probabilities)), confusion)


def _accuracy(c: Confusion) -> float:
    total = c.tp + c.fp + c.fn + c.tn
    return (c.tp + c.tn) / total if total else math.nan


def _macro_f1(c: Confusion) -> float:
    # A class with no (expected) true and no predicted record does not count, as in
    # stats.quality.macro_f1, which averages over the classes present.
    f1s = [2 * a / d for a, d in ((c.tp, 2 * c.tp + c.fp + c.fn), (c.tn, 2 * c.tn + c.fn + c.fp))
           if d > 0]
    return float(np.mean(f1s)) if f1s else 0.0


def estimated_roc_auc(scores: FloatArray, probabilities: FloatArray) -> float | None:
    """Expected Mann-Whitney U over the expected number of (positive, negative) pairs.

    Each record is a positive with probability p and a negative with 1 - p, independently;
    records are ranked by their raw score (ties count one half), as the realized ROC AUC does.
    Numerator and denominator leave out a record paired with itself. This is the area under
    the ROC curve of expected true and false positive counts as the threshold sweeps the
    scores (NannyML's estimate), less that O(1/n) self-pair term."""
    n = scores.shape[0]
    if n < 2:
        return None
    order = np.argsort(scores, kind="stable")
    s, p = scores[order], probabilities[order]
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    pos = np.add.reduceat(p, starts)  # expected positives per tie group
    neg = np.add.reduceat(1.0 - p, starts)
    negatives_below = np.cumsum(neg) - neg
    self_pairs = float(np.sum(p * (1.0 - p)))
    pairs = float(pos.sum() * neg.sum()) - self_pairs
    if pairs <= 1e-12:
        return None
    concordant = float(np.sum(pos * (negatives_below + 0.5 * neg))) - 0.5 * self_pairs
    return min(1.0, max(0.0, concordant / pairs))


def realized_confusion(positive: BoolArray, scores: FloatArray, threshold: float) -> Confusion:
    """The confusion matrix of labelled records, predictions ``score >= threshold``."""
    predicted = scores >= threshold
    tp = float(np.sum(predicted & positive))
    fp = float(np.sum(predicted & ~positive))
    fn = float(np.sum(~predicted & positive))
    return Confusion(tp, fp, fn, float(positive.shape[0]) - tp - fp - fn)


def realized(positive: BoolArray, scores: FloatArray, threshold: float) -> Metrics:
    """Realized accuracy, macro F1 and ROC AUC of labelled records (stats.quality's values)."""
    c = realized_confusion(positive, scores, threshold)
    return Metrics(_accuracy(c), _macro_f1(c), q.roc_auc(positive, scores))


def sampling_errors(scores: FloatArray, positive: BoolArray, threshold: float, *,
                    seed: int, draws: int = BOOTSTRAP_DRAWS,
                    max_rows: int = BOOTSTRAP_MAX_ROWS) -> SamplingErrors:
    """Scales of the realized metrics' standard errors, from bootstrap windows of the reference.

    ``draws`` windows of m = min(N, max_rows) rows are drawn with replacement (seeded); the
    standard deviation of each realized metric over them, times sqrt(m), is its scale, so that
    a window of n rows gets about ``scale / sqrt(n)`` (see ``SamplingErrors``). The band is
    how far the realized metric of a window drawn from the reference's population strays
    from its expectation."""
    n = scores.shape[0]
    m = min(n, max_rows)
    rng = np.random.default_rng(seed)
    values: list[list[float]] = [[], [], []]
    for _ in range(draws):
        rows = rng.integers(0, n, size=m)
        metrics = realized(positive[rows], scores[rows], threshold)
        values[0].append(metrics.accuracy)
        values[1].append(metrics.f1)
        if metrics.roc_auc is not None:
            values[2].append(metrics.roc_auc)
    root = math.sqrt(m)

    def scale(draws_of_metric: list[float]) -> float:
        # At least the spread of one record in m: a reference the model separates perfectly
        # (every draw equal) must not give a zero band that any window would cross.
        return float(max(float(np.std(draws_of_metric, ddof=1)), 1.0 / m) * root)

    auc = scale(values[2]) if len(values[2]) >= 2 else None
    return SamplingErrors(scale(values[0]), scale(values[1]), auc, n)


def prepare_reference(scores: FloatArray, positive: BoolArray, threshold: float, *,
                      seed: int) -> CbpeReference:
    """Calibration, sampling errors and reference-level metrics, from the labelled reference.

    ``scores`` and ``positive`` hold the reference rows with a binary label (check
    ``applicable`` first); rows whose score is not finite are left out."""
    finite = np.isfinite(scores)
    scores, positive = scores[finite], positive[finite]
    calibration = fit_calibration(scores, positive, seed=seed)
    errors = sampling_errors(scores, positive, threshold, seed=seed + 1)
    estimated = estimate(scores, calibration.apply(scores), threshold).metrics
    return CbpeReference(calibration, threshold, errors, estimated,
                         realized(positive, scores, threshold), int(scores.shape[0]),
                         float(scores.min()), float(scores.max()))


def estimate_window(reference: CbpeReference, scores: FloatArray) -> WindowEstimate | None:
    """CBPE over a window's finite scores (labelled or not); None when it has none."""
    scores = scores[np.isfinite(scores)]
    n = int(scores.shape[0])
    if n == 0:
        return None
    outside = float(np.mean((scores < reference.score_min) | (scores > reference.score_max)))
    result = estimate(scores, reference.calibration.apply(scores), reference.threshold)
    return WindowEstimate(result, reference.sampling_errors.for_rows(n), n, outside)
