"""Two-sample Kolmogorov-Smirnov statistic and p-value, equal to scipy.stats.ks_2samp.

The statistic is computed against a reference sorted once (``SortedSample``): only the window
is sorted, and the reference is searched, never re-sorted or concatenated.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as sps
from scipy.special import gammaln, logsumexp
from scipy.stats import _ksstats, _stats_py

from exporter.stats.ecdf import FloatArray, SortedSample

# scipy's ks_2samp uses the exact distribution up to this sample size ("auto" mode).
_MAX_AUTO_N = 10000


def ks_statistic(reference: SortedSample, window_sorted: FloatArray) -> float:
    """Return sup |F_ref - F_win| evaluated at the pooled sample points, as scipy does."""
    n1 = reference.size
    n2 = int(window_sorted.shape[0])
    if n1 == 0 or n2 == 0:
        raise ValueError("ks_statistic needs two non-empty samples")
    values, counts = np.unique(window_sorted, return_counts=True)
    win_cdf = np.cumsum(counts) / n2
    ref = reference.values
    # Candidate 1: at each distinct window value v, F_ref(v) - F_win(v).
    ref_le = np.searchsorted(ref, values, side="right") / n1
    # Candidate 2: at the largest reference point below v (and above the previous window
    # value), where F_win still has its previous level.
    ref_lt = np.searchsorted(ref, values, side="left") / n1
    win_prev = np.concatenate(([0.0], win_cdf[:-1]))
    diffs = np.concatenate((ref_le - win_cdf, ref_lt - win_prev))
    max_s = float(diffs.max())
    min_s = float(np.clip(-diffs.min(), 0.0, 1.0))
    return min_s if min_s > max_s else max_s


def ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Return the two-sided p-value scipy.stats.ks_2samp gives for this statistic and sizes."""
    g = math.gcd(n1, n2)
    prob = float("nan")
    exact = max(n1, n2) <= _MAX_AUTO_N
    if exact:
        # scipy rounds d to a multiple of 1/lcm(n1, n2) here and keeps that d if it falls
        # back to the asymptotic distribution.
        ok, statistic, prob = _stats_py._attempt_exact_2kssamp(n1, n2, g, statistic,
                                                                "two-sided")
        exact = bool(ok)
    if not exact:
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prob = _kstwo_sf(statistic, int(np.round(en)))
    return float(np.clip(prob, 0.0, 1.0))


def _kstwo_sf(x: float, n: int) -> float:
    """scipy.stats.kstwo.sf(x, n), with its slow exact-Smirnov branch computed vectorised."""
    t = n * x
    smirnov_branch = n > 140 and 1.0 < t < n - 1 and (x >= 0.5 or 2.2 <= t * x < 370.0)
    if smirnov_branch:
        return float(np.clip(2.0 * _smirnov(n, x), 0.0, 1.0))
    if 0.0 < x < 1.0:  # kstwo.sf is kolmogn inside its support, without the frozen-rv overhead
        return float(np.clip(_ksstats.kolmogn(n, x, cdf=False), 0.0, 1.0))
    return float(sps.kstwo.sf(x, n))


def _smirnov(n: int, x: float) -> float:
    """Exact one-sided Smirnov tail P(D+ >= x), summed in log space (scipy.special.smirnov)."""
    j = np.arange(0, int(np.floor(n * (1.0 - x))) + 1, dtype=np.float64)
    a = np.clip(1.0 - x - j / n, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_terms = (
            gammaln(n + 1.0)
            - gammaln(j + 1.0)
            - gammaln(n - j + 1.0)
            + (n - j) * np.log(a)
            + (j - 1.0) * np.log(x + j / n)
        )
    log_terms = np.where(np.isnan(log_terms), -np.inf, log_terms)
    return float(np.exp(np.log(x) + logsumexp(log_terms)))
