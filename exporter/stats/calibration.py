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

import numpy as np
from scipy.special import gammaincinv

from exporter.stats.divergence import jensen_shannon_rows, psi_rows
from exporter.stats.ecdf import FloatArray, SortedSample, sorted_sample
from exporter.stats.wasserstein import wasserstein_rows

P_VALUE_ALPHA = 0.001
DRAWS = 1024
TAIL = 0.999
WASSERSTEIN_DRAWS = 256
WASSERSTEIN_TAIL = 0.9999
WASSERSTEIN_MAX_DRAW = 1000
WASSERSTEIN_POOL = 20000
_WASSERSTEIN_CHUNK = 64  # bootstrap windows per vectorised batch (bounds temporary memory)


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
    shape = mean * mean / var
    scale = var / mean
    # scipy.stats.gamma.ppf(tail, shape, scale=scale), without importing scipy.stats
    quantile = float(gammaincinv(shape, tail)) * scale
    return max(quantile, _just_above(float(np.min(samples))))


def binned_threshold(
    statistic: str, p_reference: FloatArray, window_n: int, reference_n: int, seed: int
) -> float:
    """Calibrated threshold for psi or jensen_shannon over fixed reference bins."""
    if statistic not in ("psi", "jensen_shannon"):
        raise ValueError(f"no binned calibration for statistic {statistic!r}")
    n_eff = effective_size(window_n, reference_n)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_eff, p_reference, size=DRAWS)
    props = counts / n_eff
    if statistic == "psi":
        return gamma_tail(psi_rows(p_reference, props))
    # JS distance is the square root of a divergence that is ~ scaled chi-square.
    distances = jensen_shannon_rows(p_reference, props)
    return max(math.sqrt(gamma_tail(distances**2)), _just_above(float(np.min(distances))))


def wasserstein_threshold(reference: SortedSample, window_n: int, norm: float, seed: int) -> float:
    """Calibrated threshold for the normed Wasserstein distance."""
    n_eff = effective_size(window_n, reference.size)
    draw = min(n_eff, WASSERSTEIN_MAX_DRAW)
    pool = _bootstrap_pool(reference)
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


def _just_above(value: float) -> float:
    """The next float above ``value``: a threshold that ``value`` itself does not cross."""
    return float(np.nextafter(value, np.inf))


def _bootstrap_pool(reference: SortedSample) -> SortedSample:
    """The reference, or evenly spaced order statistics of it (min and max kept) when large."""
    if reference.size <= WASSERSTEIN_POOL:
        return reference
    positions = np.round(np.linspace(0, reference.size - 1, WASSERSTEIN_POOL)).astype(np.int64)
    return sorted_sample(reference.values[positions])
