"""``threshold: auto``: thresholds calibrated on the reference for a given window size.

Method (documented in docs/statistics.md):

* p-value statistics (ks, chi2): the p-value already accounts for both sample sizes, so the
  threshold is the fixed level ``P_VALUE_ALPHA`` = 0.001 (a 0.1% false-alarm rate per
  feature-window under the null; KS on tied data is conservative, so lower still).
* distances (psi, jensen_shannon, wasserstein): windows are simulated from the reference's own
  distribution with a seeded generator, the distance of each to the reference is computed, a
  gamma distribution is fitted to those distances by moments, and the threshold is a high
  quantile of it. To account for the reference being itself a sample, windows are drawn with
  the effective size n*N/(n+N) of a two-sample comparison.
* Binned distances draw ``DRAWS`` multinomial bin counts (about a millisecond in all) and take
  the ``TAIL`` (99.9%) quantile.
* Beyond ``MAX_SIMULATED_BINS`` bins (high-cardinality categories) the cost of that simulation
  (DRAWS x bins, 4 GB for 100k categories) is capped, and sparse bins (counts up to
  ``ROBBINS_MAX_COUNT`` shared by many bins) are not simulated from their noisy shares: only
  the other bins among the ``MAX_SIMULATED_BINS - 1`` largest are simulated as above (the rest
  drawn as one merged bin that adds no term), and the mean and variance of the rest's terms are
  summed analytically, once per distinct reference count (at most about sqrt(2N) of them). A
  sparse bin's window count follows its true count, estimated by Robbins' empirical Bayes rule
  from f(r), the number of bins seen r times (mean (r+1) f(r+1) / f(r), with the matching
  variance): simulating windows from the noisy reference shares themselves makes them follow
  the reference's own noise, and gave up to 100% false alarms for categories seen 5-15 times
  each. The unseen bin gets the Good-Turing share f(1) / N of values the reference never saw.
  The two parts' standard deviations are added (the largest possible sum, whatever their
  correlation) and the ``TAIL`` quantile is taken. Cost: about 10-16 MiB and 0.1-0.5 s per
  calibration whatever the number of categories.
* Wasserstein draws ``WASSERSTEIN_DRAWS`` bootstrap windows of at most ``WASSERSTEIN_MAX_DRAW``
  values from at most ``WASSERSTEIN_POOL`` evenly spaced order statistics of the reference, and
  scales by sqrt(draw/n_eff) (W shrinks as 1/sqrt(n)). Its null distribution has a heavier
  right tail than the moment-matched gamma, and a bootstrap from the reference cannot produce
  values beyond the reference's extremes, so it takes the ``WASSERSTEIN_TAIL`` (99.99%)
  quantile; measured false-alarm rates stay well under 1% (tests/unit/test_stats_calibration.py).
* A threshold is never at or below a value every simulated window reaches: when all simulated
  distances are equal (a constant reference gives 0), the threshold is the next float above,
  so a window that matches the reference exactly is not reported as drifted.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaincinv, gammaln

from exporter.stats.divergence import BinnedDistance
from exporter.stats.ecdf import FloatArray, SortedSample, sorted_sample
from exporter.stats.scaling import exponent_for, rescaled
from exporter.stats.wasserstein import wasserstein_rows

P_VALUE_ALPHA = 0.001
DRAWS = 1024
TAIL = 0.999
MAX_SIMULATED_BINS = 1024  # bins simulated draw by draw; the rarer ones are summed analytically
ROBBINS_MAX_COUNT = 20  # reference counts up to this are shrunk (empirical Bayes) ...
ROBBINS_MIN_BINS = 10  # ... when at least this many bins share the count and the next one
_SPAN = 12.0  # rare-bin counts summed over mean +- 12 sd (+12): the rest is < 1e-30
_CHUNK_ELEMENTS = 1 << 17  # simulated or summed terms evaluated at once (bounds memory)
WASSERSTEIN_DRAWS = 256
WASSERSTEIN_TAIL = 0.9999
WASSERSTEIN_MAX_DRAW = 1000
WASSERSTEIN_POOL = 20000
_WASSERSTEIN_CHUNK = 64  # bootstrap windows per vectorised batch (bounds temporary memory)

TermFunction = Callable[[FloatArray, FloatArray], FloatArray]


def seed_for(*parts: object) -> int:
    """A stable seed from names and sizes (same inputs, same thresholds, every run)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode())


def effective_size(window_n: int, reference_n: int) -> int:
    """Size whose one-sample noise equals the noise of comparing n to N values."""
    return max(1, round(window_n * reference_n / (window_n + reference_n)))


def gamma_tail(samples: FloatArray, tail: float = TAIL) -> float:
    """The ``tail`` quantile of a gamma distribution fitted to non-negative samples by moments.

    Always strictly above the smallest sample, so a constant simulated distance (0 for a
    constant reference) gives a threshold that this distance does not cross.
    """
    if samples.size == 0:
        raise ValueError("gamma_tail needs at least one sample")
    mean = float(np.mean(samples))
    var = float(np.var(samples, ddof=1)) if samples.size > 1 else 0.0
    if mean <= 0.0 or var <= 0.0 or not math.isfinite(var):
        return _just_above(float(np.max(samples)))
    return max(gamma_quantile(mean, var, tail), _just_above(float(np.min(samples))))


def gamma_quantile(mean: float, var: float, tail: float) -> float:
    """The ``tail`` quantile of the gamma distribution with this mean and variance (both > 0)."""
    shape = mean * mean / var
    scale = var / mean
    # scipy.stats.gamma.ppf(tail, shape, scale=scale), without importing scipy.stats
    return float(gammaincinv(shape, tail)) * scale


def binned_threshold(
    distance: BinnedDistance, p_reference: FloatArray, window_n: int, reference_n: int, seed: int
) -> float:
    """Calibrated threshold for a binned distance (psi, jensen_shannon) over fixed bins."""
    n_eff = effective_size(window_n, reference_n)
    rng = np.random.default_rng(seed)
    reference_counts = np.round(p_reference / np.sum(p_reference) * reference_n)
    frequencies = _CountFrequencies.of(reference_counts)
    if p_reference.shape[0] > MAX_SIMULATED_BINS or frequencies.sparse:
        divergence = _split_divergence_tail(distance.terms, reference_counts, frequencies,
                                            window_n, reference_n, rng)
        return max(math.sqrt(divergence) if distance.root else divergence, _just_above(0.0))
    counts = rng.multinomial(n_eff, p_reference, size=DRAWS)
    rows = _row_chunks(counts, p_reference.shape[0])
    distances = np.concatenate([distance.rows(p_reference, c / n_eff) for c in rows])
    if not distance.root:
        return gamma_tail(distances)
    # JS distance is the square root of a divergence that is ~ scaled chi-square.
    return max(math.sqrt(gamma_tail(distances**2)), _just_above(float(np.min(distances))))


def _row_chunks(counts: np.ndarray, columns: int) -> list[np.ndarray]:
    """Simulated rows in chunks of about _CHUNK_ELEMENTS values (bounds temporary memory)."""
    step = max(1, _CHUNK_ELEMENTS // max(columns, 1))
    return [counts[start:start + step] for start in range(0, counts.shape[0], step)]


def wasserstein_threshold(reference: SortedSample, window_n: int, norm: float, seed: int) -> float:
    """Calibrated threshold for the normed Wasserstein distance."""
    n_eff = effective_size(window_n, reference.size)
    draw = min(n_eff, WASSERSTEIN_MAX_DRAW)
    pool = _bootstrap_pool(reference)
    exponent = exponent_for(pool.values[0], pool.values[-1])
    if exponent:  # values near the float limit: the same normed distances, without overflow
        pool = sorted_sample(rescaled(pool.values, exponent))
        norm = float(np.ldexp(norm, -exponent))
    rng = np.random.default_rng(seed)
    batches = []
    for start in range(0, WASSERSTEIN_DRAWS, _WASSERSTEIN_CHUNK):
        rows = min(_WASSERSTEIN_CHUNK, WASSERSTEIN_DRAWS - start)
        # Sorted indices into a sorted array are sorted samples: no per-window sort of values.
        index = np.sort(rng.integers(0, pool.size, size=(rows, draw)), axis=1)
        batches.append(wasserstein_rows(pool, pool.values[index]))
    distances = np.concatenate(batches) / norm
    return max(gamma_tail(distances, WASSERSTEIN_TAIL) * math.sqrt(draw / n_eff),
               _just_above(0.0))


@dataclass(frozen=True)
class _CountFrequencies:
    """How many bins the reference saw r times (f(r)), and the counts r small and frequent
    enough for Robbins' estimate of the true count: r <= ROBBINS_MAX_COUNT with f(r) and
    f(r + 1) both at least ROBBINS_MIN_BINS."""

    f: dict[float, int]
    sparse: frozenset[float]

    @classmethod
    def of(cls, counts: FloatArray) -> _CountFrequencies:
        """The frequencies of the positive counts."""
        values, frequency = np.unique(counts[counts > 0], return_counts=True)
        f = dict(zip(values.tolist(), frequency.tolist(), strict=True))
        sparse = frozenset(r for r, now in f.items() if r <= ROBBINS_MAX_COUNT
                           and now >= ROBBINS_MIN_BINS and f.get(r + 1, 0) >= ROBBINS_MIN_BINS)
        return cls(f, sparse)


def _split_divergence_tail(terms: TermFunction, counts: FloatArray,
                           frequencies: _CountFrequencies, window_n: int, reference_n: int,
                           rng: np.random.Generator) -> float:
    """The TAIL quantile of the sum of the terms (PSI, the squared JS distance) with the rare
    bins (past the ``MAX_SIMULATED_BINS - 1`` largest, or sparse) summed analytically (module
    docstring).

    The other bins are simulated as the exact path does, the rare ones drawn as one merged bin
    that adds no term.
    """
    p = counts / np.sum(counts)
    rare = np.isin(counts, list(frequencies.sparse))
    if p.shape[0] > MAX_SIMULATED_BINS - 1:
        largest = np.zeros(p.shape[0], dtype=bool)
        largest[np.argpartition(-p, MAX_SIMULATED_BINS - 2)[:MAX_SIMULATED_BINS - 1]] = True
        rare |= ~largest
    head = np.flatnonzero(~rare & (counts > 0))
    rest = counts[rare & (counts > 0)]  # the unseen bin: modelled in _rare_term_moments
    head_mean = head_sd = 0.0
    if head.shape[0]:
        n_eff = effective_size(window_n, reference_n)
        pvals = np.append(p[head], max(0.0, 1.0 - float(np.sum(p[head]))))
        head_terms = np.empty(DRAWS, dtype=np.float64)
        step = max(1, _CHUNK_ELEMENTS // pvals.shape[0])
        for start in range(0, DRAWS, step):
            rows = min(step, DRAWS - start)
            window = rng.multinomial(n_eff, pvals, size=rows)[:, :-1] / n_eff
            head_terms[start:start + rows] = np.sum(terms(p[head], window), axis=-1)
        head_mean = float(np.mean(head_terms))
        head_sd = float(np.std(head_terms, ddof=1))
    rest_mean, rest_var = _rare_term_moments(terms, rest, frequencies, window_n, reference_n)
    mean = head_mean + rest_mean
    # The largest standard deviation of a sum, whatever the two parts' correlation.
    sd = head_sd + math.sqrt(rest_var)
    if mean <= 0.0 or sd <= 0.0:
        return _just_above(max(mean, 0.0))
    return gamma_quantile(mean, sd * sd, TAIL)


def _rare_term_moments(terms: TermFunction, rest: FloatArray, frequencies: _CountFrequencies,
                       window_n: int, reference_n: int) -> tuple[float, float]:
    """Sum over the rare bins and the unseen bin of the mean and variance of their terms.

    A bin seen r times in the reference (of N values) is compared at its fixed share r / N
    with a window count k ~ Poisson(n * L / N), L its unknown true count. For sparse r, L is
    estimated by Robbins' empirical Bayes rule from the bins' count frequencies f: mean
    t = (r+1) f(r+1) / f(r), variance (r+1)(r+2) f(r+2) / f(r) - t^2 (else t, the two-sample
    noise), taken as a gamma law, so k is negative binomial. Other bins: k ~ Poisson(n_eff r/N)
    over n_eff, as the simulated bins. The unseen bin gets the Good-Turing share f(1) / N.
    Bins with equal counts have equal moments, so each distinct count is evaluated once.
    """
    f = frequencies.f
    distinct, multiplicity = np.unique(rest, return_counts=True)
    n_eff = effective_size(window_n, reference_n)
    true_count = distinct.copy()
    true_var = np.zeros(distinct.shape[0])
    size = np.full(distinct.shape[0], float(n_eff))
    for i, r in enumerate(distinct.tolist()):
        if r in frequencies.sparse:
            now, one, two = f[r], f[r + 1], f.get(r + 2, 0)
            t = (r + 1) * one / now
            v = (r + 1) * (r + 2) * two / now - t * t if two >= ROBBINS_MIN_BINS else t
            true_count[i], true_var[i], size[i] = t, max(v, 0.0), window_n
    shares = distinct / reference_n
    if f.get(1.0, 0) > 0:
        shares = np.append(shares, 0.0)
        true_count = np.append(true_count, f[1.0])
        true_var = np.append(true_var, 0.0)
        size = np.append(size, float(window_n))
        multiplicity = np.append(multiplicity, 1)
    if shares.shape[0] == 0:
        return 0.0, 0.0
    lam = true_count * size / reference_n
    lam_var = true_var * (size / reference_n) ** 2
    spread = _SPAN * np.sqrt(lam + lam_var) + _SPAN
    low = np.floor(np.maximum(lam - spread, 0.0))
    width = int(np.max(np.ceil(lam + spread) - low)) + 1
    rows = max(1, _CHUNK_ELEMENTS // width)
    mean = var = 0.0
    for start in range(0, shares.shape[0], rows):
        part = slice(start, start + rows)
        k = low[part, np.newaxis] + np.arange(width, dtype=np.float64)
        pmf = _count_pmf(k, lam[part], lam_var[part])
        values_k = terms(shares[part, np.newaxis], k / size[part, np.newaxis])
        first = np.sum(pmf * values_k, axis=1)
        second = np.sum(pmf * (values_k - first[:, np.newaxis]) ** 2, axis=1)
        mean += float(np.sum(multiplicity[part] * first))
        var += float(np.sum(multiplicity[part] * second))
    return mean, var


def _count_pmf(k: FloatArray, lam: FloatArray, lam_var: FloatArray) -> FloatArray:
    """Probabilities of the counts k (one row per mean, to 12 sd): Poisson with a gamma
    distributed mean (mean lam, variance lam_var), i.e. negative binomial."""
    mu = np.maximum(lam, 1e-300)[:, np.newaxis]
    poisson = k * np.log(mu) - mu - gammaln(k + 1.0)
    # Gamma shape of the mean (capped where it is huge: the Poisson limit, taken below).
    shape = np.minimum(lam * lam / np.maximum(lam_var, 1e-300), 1e8)[:, np.newaxis]
    mixed = (gammaln(k + shape) - gammaln(shape) - gammaln(k + 1.0)
             - shape * np.log1p(mu / shape) + k * np.log(mu / (shape + mu)))
    pmf: FloatArray = np.exp(np.where((lam_var > 0)[:, np.newaxis], mixed, poisson))
    pmf /= np.sum(pmf, axis=1, keepdims=True)  # the truncated mass (< 1e-30) put back
    return pmf


def _just_above(value: float) -> float:
    """The next float above ``value``: a threshold that ``value`` itself does not cross."""
    return float(np.nextafter(value, np.inf))


def _bootstrap_pool(reference: SortedSample) -> SortedSample:
    """The reference, or evenly spaced order statistics of it (min and max kept) when large."""
    if reference.size <= WASSERSTEIN_POOL:
        return reference
    positions = np.round(np.linspace(0, reference.size - 1, WASSERSTEIN_POOL)).astype(np.int64)
    return sorted_sample(reference.values[positions])
