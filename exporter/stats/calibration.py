"""``threshold: auto``: thresholds calibrated on the reference for a given window size.

Method (documented in docs/statistics.md):

* p-value statistics (ks, chi2): the p-value already accounts for both sample sizes, so the
  threshold is the fixed level ``P_VALUE_ALPHA`` = 0.001 (a 0.1% false-alarm rate per
  feature-window under the null; KS on tied data is conservative, so lower still).
* distances (psi, jensen_shannon, wasserstein): ``DRAWS`` windows are simulated from the
  reference's own distribution with a seeded generator, the distance of each to the reference is
  computed, a gamma distribution is fitted to those distances by moments, and the threshold is its
  ``TAIL`` (99.9%) quantile. To account for the reference being itself a sample, windows are
  drawn with the effective size n*N/(n+N) of a two-sample comparison.
  Binned distances draw multinomial bin counts (microseconds per draw). Wasserstein draws at most
  ``WASSERSTEIN_MAX_DRAW`` values and scales by sqrt(draw/n_eff) (W shrinks as 1/sqrt(n)).
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.stats import gamma

from exporter.stats.divergence import jensen_shannon_rows, psi_rows
from exporter.stats.ecdf import FloatArray, SortedSample
from exporter.stats.wasserstein import wasserstein

P_VALUE_ALPHA = 0.001
DRAWS = 256
TAIL = 0.999
WASSERSTEIN_DRAWS = 64
WASSERSTEIN_MAX_DRAW = 5000


def seed_for(*parts: object) -> int:
    """A stable seed from names and sizes (same inputs, same thresholds, every run)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode())


def effective_size(window_n: int, reference_n: int) -> int:
    """Size whose one-sample noise equals the noise of comparing n to N values."""
    return max(1, int(round(window_n * reference_n / (window_n + reference_n))))


def gamma_tail(samples: FloatArray, tail: float = TAIL) -> float:
    """The ``tail`` quantile of a gamma distribution fitted to positive samples by moments."""
    mean = float(np.mean(samples))
    var = float(np.var(samples, ddof=1))
    if mean <= 0.0:
        return float(np.max(samples)) if samples.size else 0.0
    if var <= 0.0:
        return mean
    shape = mean * mean / var
    scale = var / mean
    return float(gamma.ppf(tail, shape, scale=scale))


def binned_threshold(
    statistic: str, p_reference: FloatArray, window_n: int, reference_n: int, seed: int
) -> float:
    """Calibrated threshold for psi or jensen_shannon over fixed reference bins."""
    n_eff = effective_size(window_n, reference_n)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_eff, p_reference, size=DRAWS)
    props = counts / n_eff
    if statistic == "psi":
        return gamma_tail(psi_rows(p_reference, props))
    if statistic == "jensen_shannon":
        # JS distance is the square root of a divergence that is ~ scaled chi-square.
        squared = jensen_shannon_rows(p_reference, props) ** 2
        return float(np.sqrt(gamma_tail(squared)))
    raise ValueError(f"no binned calibration for statistic {statistic!r}")


def wasserstein_threshold(reference: SortedSample, window_n: int, norm: float, seed: int) -> float:
    """Calibrated threshold for the normed Wasserstein distance."""
    n_eff = effective_size(window_n, reference.size)
    draw = min(n_eff, WASSERSTEIN_MAX_DRAW)
    rng = np.random.default_rng(seed)
    values = np.empty(WASSERSTEIN_DRAWS, dtype=np.float64)
    for i in range(WASSERSTEIN_DRAWS):
        sample = np.sort(rng.choice(reference.values, size=draw, replace=True))
        values[i] = wasserstein(reference, sample) / norm
    return gamma_tail(values) * float(np.sqrt(draw / n_eff))
