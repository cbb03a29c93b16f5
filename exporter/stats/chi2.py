"""Chi-square test of homogeneity between reference and window category counts."""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2_contingency

from exporter.stats.binning import IntArray


def chi2_pvalue(reference_counts: IntArray, window_counts: IntArray) -> float:
    """p-value of chi2_contingency([ref, win]) over categories seen in either (1 if only one).

    Also 1 when one side has no values at all: scipy rejects a table with an all-zero row,
    and an empty sample is no evidence of a difference.
    """
    seen = (reference_counts + window_counts) > 0
    if int(seen.sum()) < 2 or int(reference_counts.sum()) == 0 or int(window_counts.sum()) == 0:
        return 1.0
    table = np.vstack((reference_counts[seen], window_counts[seen]))
    return float(chi2_contingency(table).pvalue)
