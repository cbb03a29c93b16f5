"""The drift alarm's test for a categorical column: one exact test per category share.

A window of ``m`` records is compared with the ``n`` reference rows category by category: the
number ``x`` of window records in category ``c`` given the pooled count ``K = x + r`` (``r``
reference rows in ``c``). When window and reference are drawn from one population, every split
of the pooled rows is equally likely, so ``x`` is hypergeometric (``n + m`` rows, ``K`` in the
category, ``m`` drawn), whatever the population and averaged over references (the reference's
own sampling noise is inside the test: Fisher's exact test). The count is discrete; a seeded
uniform ``u`` makes the two-sided p-value exactly uniform under the null
(``p_up = P(X > x) + u P(X = x)``, ``p = 2 min(p_up, 1 - p_up)``), so a categorical column
spends its false-alarm budget like a continuous one instead of a fraction of it.

Which categories are tested (``share_bins``): by reference frequency rank, the 31 most frequent
each on its own and every other category, unseen ones included, in one last bin. A window
where a category is neither in the reference nor in the window has nothing to test there
(p = 1: the coin alone never pages).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MAX_SHARE_BINS = 32  # categories tested one by one: the 31 most frequent and "the rest"
TABLE_MAX_WINDOW = 1_600  # windows up to this size read their p-values from a table (ShareTests)
TAIL_TERMS = 256  # pmf terms summed exactly; the rest bounded geometrically (see _tail)
_MASK64 = (1 << 64) - 1


def share_bins(ranks: int) -> IntArray:
    """Bin of each frequency rank ``0..ranks`` (``ranks`` = the unseen slot) for the tests.

    Every rank up to 30 is its own bin; the rarer ranks and unseen categories share the last.
    """
    return np.minimum(np.arange(ranks + 1, dtype=np.int64), MAX_SHARE_BINS - 1)


def share_bins_tested(ranks: int) -> IntArray:
    """The bins whose shares are tested for a column with ``ranks`` reference categories.

    All bins, except that with at most two reference categories the most frequent one is left
    out: its count is the window size minus the others', so its test would repeat theirs.
    """
    count = min(ranks + 1, MAX_SHARE_BINS)
    bins = np.arange(count, dtype=np.int64)
    return bins[1:] if ranks <= 2 and count > 1 else bins


def _log_pmf(x: FloatArray, pooled: FloatArray, total: float, m: float) -> FloatArray:
    """log P(X = x), X hypergeometric: ``total`` rows, ``pooled`` in the category, ``m`` drawn."""
    rest = total - pooled
    out: FloatArray = (gammaln(pooled + 1) - gammaln(x + 1) - gammaln(pooled - x + 1)
                       + gammaln(rest + 1) - gammaln(m - x + 1) - gammaln(rest - m + x + 1)
                       - gammaln(total + 1) + gammaln(m + 1) + gammaln(total - m + 1))
    return out


def _tail(x: FloatArray, pooled: FloatArray, total: float, m: float, upward: bool) -> FloatArray:
    """P(X > x) (``upward``) or P(X < x), relative to P(X = x) (i.e. divided by it).

    The pmf's ratio between neighbours falls monotonically away from the mode, so after
    ``TAIL_TERMS`` terms the rest is at most ``last * r / (1 - r)``; that bound is added (a
    p-value too large by at most it: the test can only be more conservative, by a relative
    ~1e-12 where the p-value is near a page's level).
    """
    steps = np.arange(TAIL_TERMS, dtype=np.float64)[None, :]
    rest = total - pooled
    if upward:
        j = x[:, None] + steps  # from x to x + 1, x + 1 to x + 2, ...
        ratio = (pooled[:, None] - j) * (m - j) / ((j + 1) * (rest[:, None] - m + j + 1))
    else:
        j = x[:, None] - steps  # from x to x - 1, ...
        ratio = j * (rest[:, None] - m + j) / ((pooled[:, None] - j + 1) * (m - j + 1))
    ratio = np.clip(ratio, 0.0, None)  # past the support's end every term is 0
    terms = np.cumprod(ratio, axis=1)
    last, r = terms[:, -1], ratio[:, -1]
    bound = np.where(r < 1.0, last * r / np.maximum(1.0 - r, 1e-300), np.inf)
    out: FloatArray = terms.sum(axis=1) + np.where(last > 0.0, bound, 0.0)
    return out


def _sides(x: FloatArray, reference_counts: FloatArray, m: int,
           reference_rows: int) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """The non-random parts of the p-values: P(X beyond x) on x's side, P(X = x), the side.

    The side is up when x is at or above its mean (then "beyond" is P(X > x)), else down.
    """
    pooled = x + reference_counts
    total = float(reference_rows + m)
    mf = float(m)
    upper = x >= mf * pooled / total
    p0 = np.exp(_log_pmf(x, pooled, total, mf))
    beyond = np.empty_like(x)
    if upper.any():
        beyond[upper] = p0[upper] * _tail(x[upper], pooled[upper], total, mf, True)
    low = ~upper
    if low.any():
        beyond[low] = p0[low] * _tail(x[low], pooled[low], total, mf, False)
    degenerate = (pooled <= 0.0) | (pooled >= total)  # every row in or out: nothing to test
    beyond[degenerate] = 0.5  # with p0 = 0 below: p = 1 whatever u
    p0[degenerate] = 0.0
    return beyond, p0, upper


def _randomized(beyond: FloatArray, p0: FloatArray, upper: NDArray[np.bool_],
                u: FloatArray) -> FloatArray:
    """p = twice the smaller side: P(X beyond x) + (u, or 1 - u below the mean) P(X = x)."""
    near = beyond + np.where(upper, u, 1.0 - u) * p0
    p: FloatArray = np.minimum(1.0, 2.0 * np.minimum(near, 1.0 - near))
    return p


def share_pvalues(window_counts: IntArray, reference_counts: IntArray, m: int,
                  reference_rows: int, u: FloatArray) -> FloatArray:
    """Two-sided randomized p-values of each category's count in a window of ``m`` records."""
    beyond, p0, upper = _sides(window_counts.astype(np.float64),
                               reference_counts.astype(np.float64), m, reference_rows)
    return _randomized(beyond, p0, upper, u)


def share_uniforms(seed: int, column: int | IntArray, tests: IntArray,
                   bins: IntArray) -> FloatArray:
    """Seeded uniforms in [0, 1), one per test and bin: splitmix64 of (seed, column, test, bin).

    ``column``: the column of every bin (or one for all). A pure function of its arguments
    (not a generator's state), so the draws do not depend on the order in which windows are
    tested or on how records were split into calls.
    """
    with np.errstate(over="ignore"):
        base = (np.uint64(seed * 0x9E3779B97F4A7C15 & _MASK64)
                + np.asarray(column).astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9))
        z = (base + tests.astype(np.uint64)[:, None] * np.uint64(0x94D049BB133111EB)
             + (bins.astype(np.uint64)[None, :] + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    out: FloatArray = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return out


@dataclass(frozen=True)
class ShareColumn:
    """A categorical reference column's side of the share tests, prepared once.

    ``bin_of_group``: the bin of each tie group (frequency rank, then unseen); ``counts``: the
    reference rows per bin; ``tested``: the bins tested. ``ShareTests`` tests them.
    """

    bin_of_group: IntArray
    counts: IntArray
    tested: IntArray
    rows: int  # of the reference
    missing_mass: float  # Good-Turing: the share of records in categories the reference lacks

    def weights(self, m: int) -> FloatArray:
        """Each tested bin's share of a test in a window of ``m`` records' budget.

        1, except for a bin of only unseen categories: given a pooled count of 0 (no unseen
        record in the window or the reference) its p-value is 1, so under the null it can
        exceed only in the windows holding an unseen category, at most ``m`` times the
        missing mass of them; counted as a whole test it would leave its share of the budget
        unspent (a binary column would page at half the target, one of 5 categories at 5/6).
        """
        out: FloatArray = np.ones(self.tested.shape[0])
        out[self.counts[self.tested] == 0] = min(1.0, m * self.missing_mass)
        return out

    def window_counts(self, groups: NDArray[np.integer[Any]], stops: IntArray,
                      m: int) -> IntArray:
        """Counts of the tested bins in the windows of ``m`` records ending at ``stops``.

        ``groups``: the tie groups of the records from ``stops[0] - m`` on. The windows are
        unions of steps of ``g`` records (``g`` divides ``m`` and the gaps between the stops):
        each step's counts by one ``bincount``, then a running sum over the steps.
        """
        bins = self.bin_of_group[groups]
        width = int(self.counts.shape[0])
        ends = stops - (int(stops[0]) - m)
        g = math.gcd(m, *np.diff(stops).tolist())
        steps = int(ends[-1]) // g
        cells = np.arange(steps * g, dtype=np.int64) // g * width
        per_step = np.bincount(cells + bins[:steps * g], minlength=steps * width)
        running = np.zeros((steps + 1, width), dtype=np.int64)
        np.cumsum(per_step.reshape(steps, width), axis=0, out=running[1:])
        ends = ends // g
        counts: IntArray = (running[ends] - running[ends - m // g])[:, self.tested]
        return counts


def prepare_shares(groups: IntArray, ranks: int, rows: int) -> ShareColumn:
    """The share tests' side of a categorical reference column (``groups``: its tie groups)."""
    bin_of_group = share_bins(ranks)
    counts = np.bincount(bin_of_group[groups], minlength=int(bin_of_group.max()) + 1)
    singletons = int(np.count_nonzero(np.bincount(groups) == 1))
    return ShareColumn(bin_of_group, counts.astype(np.int64), share_bins_tested(ranks), rows,
                       singletons / max(rows, 1))


class ShareTests:
    """Every categorical column's share tests together: a few numpy calls per window for all.

    The columns' bins are numbered end to end (``bin_of_group`` maps a column's tie group,
    offset by ``group_offset``, to its bin in that numbering); the tested bins are grouped by
    column, so each column's smallest p-value is one ``minimum.reduceat``. The same p-values
    as ``share_pvalues`` of each column's counts (a test checks it). Windows of up to
    ``TABLE_MAX_WINDOW`` records (the small scales, tested most often) read the p-values'
    non-random parts from a table per window size (a row per count, a column per tested bin),
    each entry computed the first time its count occurs: the counts of a stream without drift
    stay within a few standard deviations of their means, so after a few windows nearly every
    window is a lookup.
    """

    def __init__(self, columns: list[tuple[int, ShareColumn]], seed: int, rows: int) -> None:
        self.columns = np.array([j for j, _ in columns], dtype=np.int64)
        shares = [c for _, c in columns]
        widths = [int(c.counts.shape[0]) for c in shares]
        bin_offset = np.cumsum([0, *widths])[:-1]
        sizes = [int(c.bin_of_group.shape[0]) for c in shares]
        self.group_offset = np.cumsum([0, *sizes])[:-1].astype(np.int32)[:, np.newaxis]
        self.bin_of_group = np.concatenate(
            [np.zeros(0, dtype=np.int64)] + [c.bin_of_group + o for c, o in zip(
                shares, bin_offset, strict=True)])
        self.bins = int(sum(widths))
        self.tested = np.concatenate([np.zeros(0, dtype=np.int64)] + [
            c.tested + o for c, o in zip(shares, bin_offset, strict=True)])
        self.local = np.concatenate([np.zeros(0, dtype=np.int64)] + [c.tested for c in shares])
        self.column_of_test = np.concatenate([np.zeros(0, dtype=np.int64)] + [
            np.full(c.tested.shape[0], j, dtype=np.int64) for j, c in columns])
        self.starts = np.cumsum([0] + [int(c.tested.shape[0]) for c in shares])[:-1]
        self.reference = np.concatenate([np.zeros(0, dtype=np.int64)] + [
            c.counts[c.tested] for c in shares])
        self.shares = shares
        self.seed = seed
        self.rows = rows
        # Per window size: P(X beyond x) on x's side, P(X = x), the side, and whether known;
        # a row per count x, a column per tested bin, filled as counts occur.
        self._tables: dict[int, tuple[FloatArray, FloatArray, NDArray[np.bool_],
                                      NDArray[np.bool_]]] = {}

    @property
    def count(self) -> int:
        """Tests per window (tested bins over all columns)."""
        return int(self.tested.shape[0])

    def weight(self, m: int) -> float:
        """Tests per window of ``m`` records as the budget counts them (``ShareColumn.weights``)."""
        return float(sum(float(c.weights(m).sum()) for c in self.shares))

    def smallest(self, groups: NDArray[np.integer[Any]], stops: IntArray, m: int,
                 windows: IntArray) -> FloatArray:
        """Per window (rows) and categorical column: the smallest share p-value.

        ``groups``: the categorical columns' tie groups from ``stops[0] - m`` on (a row per
        column, in ``columns`` order); ``windows``: each window's identity (seeds its draws).
        """
        if stops.shape[0] == 1:
            bins = self.bin_of_group[groups[:, :m] + self.group_offset]
            counts = np.bincount(bins.ravel(), minlength=self.bins)[self.tested][np.newaxis, :]
        else:
            counts = np.concatenate([
                c.window_counts(groups[i], stops, m) for i, c in enumerate(self.shares)], axis=1)
        u = share_uniforms(self.seed, self.column_of_test, windows, self.local)
        if m <= TABLE_MAX_WINDOW:
            table = self._tables.get(m)
            if table is None:
                shape = (m + 1, self.count)
                table = (np.empty(shape), np.empty(shape), np.empty(shape, dtype=bool),
                         np.zeros(shape, dtype=bool))
                self._tables[m] = table
            cols = np.broadcast_to(np.arange(self.count)[np.newaxis, :], counts.shape)
            missing = ~table[3][counts, cols]
            if missing.any():  # counts not seen before at this size: computed once
                x, t = counts[missing], cols[missing]
                beyond, p0, upper = _sides(x.astype(np.float64),
                                           self.reference[t].astype(np.float64), m, self.rows)
                table[0][x, t], table[1][x, t], table[2][x, t] = beyond, p0, upper
                table[3][x, t] = True
            p = _randomized(table[0][counts, cols], table[1][counts, cols],
                            table[2][counts, cols], u)
        else:
            reference = np.broadcast_to(self.reference, counts.shape)
            p = share_pvalues(counts.ravel(), reference.ravel(), m, self.rows,
                              u.ravel()).reshape(counts.shape)
        out: FloatArray = np.minimum.reduceat(p, self.starts, axis=1)
        return out
