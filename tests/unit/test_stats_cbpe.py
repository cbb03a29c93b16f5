"""CBPE (SPEC 6.10): calibration against scikit-learn, and estimates against realized metrics on
synthetic populations whose truth is known (tests/cbpe_cases.py)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from cbpe_cases import REFERENCE_ROWS, THRESHOLD, WINDOW_ROWS, Case, case
from sklearn import metrics
from sklearn.isotonic import IsotonicRegression

from exporter.stats import cbpe

WINDOWS = 300


@functools.cache
def prepared(name: str) -> tuple[cbpe.CbpeReference, tuple[cbpe.Metrics, ...],
                                 tuple[cbpe.Metrics, ...], tuple[cbpe.Metrics, ...]]:
    """The case's reference, and per window: the estimate, the realized metrics, the errors."""
    c = case(name)
    rng = np.random.default_rng(20261206)
    scores, positive = c.reference.draw(REFERENCE_ROWS, rng)
    reference = cbpe.prepare_reference(scores, positive, THRESHOLD, seed=7)
    estimates, truths, errors = [], [], []
    for _ in range(WINDOWS):
        s, y = c.window.draw(WINDOW_ROWS, rng)
        window = cbpe.estimate_window(reference, s)
        assert window is not None
        estimates.append(window.estimate.metrics)
        errors.append(window.sampling_errors)
        truths.append(cbpe.realized(y, s, THRESHOLD))
    return reference, tuple(estimates), tuple(truths), tuple(errors)


def coverage(name: str, metric: str) -> float:
    """Share of windows whose estimate is within 3 sampling errors of the realized metric."""
    _, estimates, truths, errors = prepared(name)
    inside = [abs(getattr(e, metric) - getattr(t, metric)) <= 3 * getattr(s, metric)
              for e, t, s in zip(estimates, truths, errors, strict=True)]
    return float(np.mean(inside))


def mean_of(values: tuple[cbpe.Metrics, ...], metric: str) -> float:
    return float(np.mean([getattr(v, metric) for v in values]))


METRICS = ("accuracy", "f1", "roc_auc")


class TestCalibration:
    def test_the_isotonic_fit_equals_scikit_learns_with_ties_and_out_of_range_scores(self) -> None:
        rng = np.random.default_rng(1)
        scores = np.round(rng.random(3000), 2)  # many ties
        positive = rng.random(3000) < scores ** 2
        knots_x, knots_y = cbpe.isotonic_fit(scores, positive)
        theirs = IsotonicRegression(out_of_bounds="clip").fit(scores, positive)
        probe = np.concatenate((np.linspace(-0.5, 1.5, 2001), scores))
        np.testing.assert_allclose(np.interp(probe, knots_x, knots_y), theirs.predict(probe),
                                   rtol=0, atol=1e-12)

    def test_a_miscalibrated_score_is_calibrated_and_a_perfect_one_is_kept(self) -> None:
        miscalibrated = prepared("miscalibrated")[0].calibration
        assert miscalibrated.calibrated
        assert miscalibrated.calibrated_error < miscalibrated.raw_error / 3
        scores = np.repeat([0.0, 1.0], 500)  # raw error 0: nothing can be strictly better
        kept = cbpe.fit_calibration(scores, scores == 1.0, seed=0)
        assert not kept.calibrated
        np.testing.assert_array_equal(kept.apply(np.array([-1.0, 0.3, 2.0])), [0.0, 0.3, 1.0])

    def test_the_calibration_is_deterministic_for_a_seed(self) -> None:
        rng = np.random.default_rng(2)
        scores = rng.random(2000)
        positive = rng.random(2000) < scores
        first = cbpe.fit_calibration(scores, positive, seed=5)
        second = cbpe.fit_calibration(scores, positive, seed=5)
        assert first.raw_error == second.raw_error
        assert first.calibrated_error == second.calibrated_error
        np.testing.assert_array_equal(first.apply(scores), second.apply(scores))

    def test_the_expected_calibration_error_is_zero_for_perfect_bins(self) -> None:
        probabilities = np.repeat([0.0, 0.5, 1.0], 4)
        positive = np.array([0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1], dtype=bool)
        assert cbpe.expected_calibration_error(probabilities, positive, bins=3) == 0.0


class TestEstimate:
    def test_hard_probabilities_give_the_realized_metrics_of_scikit_learn(self) -> None:
        rng = np.random.default_rng(3)
        scores = np.round(rng.random(500), 1)
        positive = rng.random(500) < scores
        result = cbpe.estimate(scores, positive.astype(float), THRESHOLD).metrics
        predicted = scores >= THRESHOLD
        assert result.accuracy == pytest.approx(metrics.accuracy_score(positive, predicted))
        assert result.f1 == pytest.approx(metrics.f1_score(positive, predicted, average="macro"))
        assert result.roc_auc == pytest.approx(metrics.roc_auc_score(positive, scores))
        assert cbpe.realized(positive, scores, THRESHOLD) == result

    def test_the_expected_confusion_matrix_sums_the_probabilities(self) -> None:
        scores = np.array([0.9, 0.6, 0.4, 0.1])
        probabilities = np.array([0.8, 0.5, 0.3, 0.2])
        confusion = cbpe.estimate(scores, probabilities, 0.5).confusion
        assert (confusion.tp, confusion.fp) == pytest.approx((1.3, 0.7))
        assert (confusion.fn, confusion.tn) == pytest.approx((0.5, 1.5))

    def test_the_estimated_auc_is_the_area_under_the_expected_roc_curve_up_to_self_pairs(
            self) -> None:
        rng = np.random.default_rng(4)
        scores = rng.random(2000)
        probabilities = scores  # calibrated
        order = np.argsort(-scores)
        tp = np.concatenate(([0.0], np.cumsum(probabilities[order])))
        fp = np.concatenate(([0.0], np.cumsum(1 - probabilities[order])))
        curve = metrics.auc(fp / fp[-1], tp / tp[-1])
        ours = cbpe.estimated_roc_auc(scores, probabilities)
        assert ours == pytest.approx(curve, abs=2e-3)

    def test_a_window_outside_the_reference_range_is_measured(self) -> None:
        reference = prepared("calibrated")[0]
        scores = np.array([reference.score_min - 1, 0.5, 0.6, reference.score_max + 1])
        window = cbpe.estimate_window(reference, scores)
        assert window is not None
        assert window.outside_share == 0.5
        assert cbpe.estimate_window(reference, np.array([])) is None

    def test_scores_that_are_not_finite_are_left_out(self) -> None:
        reference = prepared("calibrated")[0]
        window = cbpe.estimate_window(reference, np.array([0.2, np.nan, 0.9, np.inf]))
        assert window is not None
        assert window.rows == 2
        assert np.isfinite(window.estimate.metrics.accuracy)
        assert cbpe.estimate_window(reference, np.array([np.nan])) is None


class TestSeparableReference:
    def test_a_perfectly_separated_reference_still_gets_a_band(self) -> None:
        scores = np.linspace(0, 1, 400)
        positive = scores >= 0.5
        reference = cbpe.prepare_reference(scores, positive, 0.5, seed=1)
        assert reference.realized.accuracy == 1.0
        errors = reference.sampling_errors.for_rows(100)
        assert errors.accuracy > 0
        assert errors.f1 > 0


class TestSamplingErrors:
    def test_the_accuracy_error_is_the_binomial_one(self) -> None:
        reference = prepared("calibrated")[0]
        acc = reference.realized.accuracy
        assert reference.sampling_errors.accuracy_scale == pytest.approx(
            np.sqrt(acc * (1 - acc)), rel=0.15)

    @pytest.mark.parametrize("metric", METRICS)
    def test_the_errors_match_the_spread_of_realized_metrics_over_windows(
            self, metric: str) -> None:
        _, _, truths, errors = prepared("calibrated")
        spread = np.std([getattr(t, metric) for t in truths], ddof=1)
        assert getattr(errors[0], metric) == pytest.approx(spread, rel=0.2)

    def test_errors_shrink_with_the_square_root_of_the_window_down_to_the_reference_s(
            self) -> None:
        errors = cbpe.SamplingErrors(1.0, 1.0, 1.0, reference_rows=10_000)
        assert errors.for_rows(400).accuracy == pytest.approx((1 / 400 + 1 / 10_000) ** 0.5)
        assert errors.for_rows(10_000).f1 == pytest.approx(2 ** 0.5 * 0.01)
        assert errors.for_rows(10**9).roc_auc == pytest.approx(0.01, rel=1e-4)


class TestAgainstTheTruth:
    @pytest.mark.parametrize("metric", METRICS)
    @pytest.mark.parametrize("name", ["calibrated", "covariate_shift", "covariate_shift_up",
                                      "miscalibrated", "miscalibrated_shift"])
    def test_the_estimate_is_within_three_sampling_errors_of_the_realized_metric(
            self, name: str, metric: str) -> None:
        # 3 standard errors hold 99.7% of a normal; 300 windows, so allow a few outside.
        assert coverage(name, metric) >= 0.97

    @pytest.mark.parametrize("metric", METRICS)
    def test_a_covariate_shift_that_lowers_quality_is_followed_by_the_estimate(
            self, metric: str) -> None:
        reference, estimates, truths, errors = prepared("covariate_shift")
        drop = getattr(reference.estimated, metric) - mean_of(estimates, metric)
        assert drop > 3 * getattr(errors[0], metric)  # an alert at 3 errors would fire
        realized_drop = getattr(reference.realized, metric) - mean_of(truths, metric)
        assert drop == pytest.approx(realized_drop, abs=getattr(errors[0], metric))

    def test_a_miscalibrated_score_would_bias_the_raw_estimate(self) -> None:
        c: Case = case("miscalibrated")
        _, estimates, truths, errors = prepared("miscalibrated")
        rng = np.random.default_rng(9)
        scores, _ = c.window.draw(WINDOW_ROWS * 50, rng)
        raw = cbpe.estimate(scores, np.clip(scores, 0, 1), THRESHOLD).metrics
        for metric in ("accuracy", "f1"):
            bias = abs(getattr(raw, metric) - mean_of(truths, metric))
            assert bias > 5 * getattr(errors[0], metric)
            assert abs(mean_of(estimates, metric) - mean_of(truths, metric)) < 0.5 * getattr(
                errors[0], metric)

    @pytest.mark.parametrize("metric", METRICS)
    def test_a_concept_shift_is_invisible_to_the_estimate(self, metric: str) -> None:
        """The documented limit: labels that follow the score differently than in the
        reference lower the realized metric while the estimate stays at the reference's."""
        reference, estimates, truths, errors = prepared("concept_shift")
        error = getattr(errors[0], metric)
        assert abs(mean_of(estimates, metric) - getattr(reference.estimated, metric)) < error
        assert getattr(reference.realized, metric) - mean_of(truths, metric) > 5 * error
        assert coverage("concept_shift", metric) < 0.5


class TestApplicable:
    @pytest.mark.parametrize(("arguments", "reason"), [
        (("regression", "numerical", True, 1000, 500), "not classification"),
        (("classification", "categorical", True, 1000, 500), "not a numerical score"),
        (("classification", "numerical", False, 0, 0), "no label column"),
        (("classification", "numerical", True, 50, 25), "fewer than 100"),
        (("classification", "numerical", True, 1000, 995), "rarer class has 5 rows"),
    ])
    def test_it_says_why_cbpe_does_not_apply(
            self, arguments: tuple[str, str, bool, int, int], reason: str) -> None:
        result = cbpe.applicable(*arguments)
        assert not result.applies
        assert reason in result.reason

    def test_binary_classification_with_a_score_and_a_labelled_reference_applies(self) -> None:
        assert cbpe.applicable("classification", "numerical", True, 1000, 300).applies
