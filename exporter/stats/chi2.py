"""Chi-square test of homogeneity between reference and window category counts."""

from __future__ import annotations

import numpy as np
from scipy.special import chdtrc

from exporter.stats.binning import IntArray


def chi2_pvalue(reference_counts: IntArray, window_counts: IntArray) -> float:
    """p-value of chi2_contingency([ref, win]) over categories seen in either (1 if only one).

    Also 1 when one side has no values at all: scipy rejects a table with an all-zero row,
    and an empty sample is no evidence of a difference.
    """
    seen = (reference_counts + window_counts) > 0
    if int(seen.sum()) < 2 or int(reference_counts.sum()) == 0 or int(window_counts.sum()) == 0:
        return 1.0
    table = np.vstack((reference_counts[seen], window_counts[seen])).astype(np.float64)
    return contingency_pvalue(table)


def contingency_pvalue(observed: np.ndarray) -> float:
    """``scipy.stats.chi2_contingency(observed).pvalue`` for a table without empty rows or columns.

    Pearson's statistic against the expected counts ``row_sum * column_sum / total``, with
    Yates' continuity correction when the table has one degree of freedom (scipy's default:
    each observed count moves by up to 0.5 towards its expected count), and the chi-square
    survival function ``chdtrc``; scipy.special only (scipy.stats costs ~46 MiB to import).
    """
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    dof = expected.size - sum(expected.shape) + expected.ndim - 1
    if dof == 0:
        return 1.0
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return float(chdtrc(dof, statistic))
