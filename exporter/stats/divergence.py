"""Distances between two binned distributions: PSI and Jensen-Shannon (SPEC 6.5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import rel_entr

from exporter.stats.ecdf import FloatArray

EMPTY_BIN_PROPORTION = 1e-4


def psi(p_reference: FloatArray, p_window: FloatArray) -> float:
    """Population stability index; empty-bin proportions are replaced by 1e-4 first."""
    return float(np.sum(psi_rows(p_reference, p_window[np.newaxis, :])))


def psi_rows(p_reference: FloatArray, p_windows: FloatArray) -> FloatArray:
    """PSI of each row of ``p_windows`` against one reference distribution."""
    result: FloatArray = np.sum(psi_terms(p_reference, p_windows), axis=-1)
    return result


def psi_terms(p_reference: FloatArray, p_windows: FloatArray) -> FloatArray:
    """Each bin's term of the PSI (broadcast): PSI is their sum over the bins."""
    ref = np.where(p_reference == 0, EMPTY_BIN_PROPORTION, p_reference)
    win = np.where(p_windows == 0, EMPTY_BIN_PROPORTION, p_windows)
    result: FloatArray = (win - ref) * np.log(win / ref)
    return result


def jensen_shannon(p_reference: FloatArray, p_window: FloatArray) -> float:
    """scipy.spatial.distance.jensenshannon(p_reference, p_window, base=2)."""
    return float(jensen_shannon_rows(p_reference, p_window[np.newaxis, :])[0])


def jensen_shannon_rows(p_reference: FloatArray, p_windows: FloatArray) -> FloatArray:
    """Jensen-Shannon distance (base 2) of each row of ``p_windows`` against the reference."""
    p = p_reference / np.sum(p_reference)
    q = p_windows / np.sum(p_windows, axis=-1, keepdims=True)
    m = (p + q) / 2.0
    left = np.sum(rel_entr(p, m), axis=-1)
    right = np.sum(rel_entr(q, m), axis=-1)
    js = (left + right) / 2.0 / np.log(2.0)
    result: FloatArray = np.sqrt(np.maximum(js, 0.0))
    return result


def jensen_shannon_terms(p_reference: FloatArray, p_windows: FloatArray) -> FloatArray:
    """Each bin's term of the JS divergence (base 2; the squared distance is their sum) for
    shares that already sum to 1 (broadcast)."""
    m = (p_reference + p_windows) / 2.0
    result: FloatArray = (rel_entr(p_reference, m) + rel_entr(p_windows, m)) / (2.0 * np.log(2.0))
    return result


@dataclass(frozen=True)
class BinnedDistance:
    """A distance between binned distributions, as the binned calibration simulates it."""

    rows: Callable[[FloatArray, FloatArray], FloatArray]  # of each window row to the reference
    terms: Callable[[FloatArray, FloatArray], FloatArray]  # each bin's term of the sum
    root: bool = False  # the distance is the square root of the sum of its terms


PSI = BinnedDistance(psi_rows, psi_terms)
JENSEN_SHANNON = BinnedDistance(jensen_shannon_rows, jensen_shannon_terms, root=True)
