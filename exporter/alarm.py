"""The model's drift alarm: false alarms at a fixed rate in time (SPEC 6.9, docs/alarms.md).

At several scales at once the window of the last ``m_k = 100 * 4**k`` records (up to a third of
the reference) is tested every ``m_k / 2`` records: small windows detect large shifts fast,
large ones have power for small shifts. One buffer of 1.5 largest windows holds every scale's
window.

Each window is compared with the reference, column by column, by two two-sample rank
tests made continuous by a seeded random tie-break (categories are ordered by reference
frequency first): Kolmogorov-Smirnov (any change of distribution) and Mann-Whitney (a shift of
location or of category shares, with ~1.5x the power of KS for it; on windows of up to a
sixteenth of the reference, where one reference moves its rate little). Under "the records are drawn
from the population the reference was drawn from" the pooled order is a uniformly random
permutation and both p-values are exact whatever the data: averaged over references, a block's
p-values are uniform, which accounts for the reference's own sampling noise.

A window tested ``dt`` seconds after the previous one at its scale is given the false-alarm
budget ``alpha = w_k * dt / T`` (``T = false_alarm_every``, ``w_k = 1 / K``) and is an
exceedance when its smallest p-value (one or two per column) is below the level for
``alpha``: Šidák's over the columns, with KS and Mann-Whitney on one column counted at their
joint null's union rate (``pair_factor``). Summed over windows, the expected number of
exceedances per second is ``1 / T`` at any traffic (docs/alarms.md).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray
from scipy.special import kolmogorov, ndtr

from exporter.share_test import ShareColumn, ShareTests, prepare_shares
from exporter.stats.divergence import jensen_shannon
from exporter.stats.ecdf import FloatArray, SortedSample
from exporter.stats.ks import ks_statistic

IntArray = NDArray[np.int64]
AnyIntArray = NDArray[np.integer[Any]]
ColumnArray = NDArray[Any]  # float64 values (NaN = missing) or int64 category codes
ColumnKind = Literal["numerical", "categorical"]

DEFAULT_FALSE_ALARM_EVERY = 30 * 86400.0
BASE_BLOCK = 100  # records in the smallest block
SCALE_FACTOR = 4  # each scale's block is this many blocks of the scale below
MAX_SCALES = 5  # 100, 400, 1,600, 6,400 and 25,600 records
# The largest block is at most a third of the reference: larger blocks give the power for small
# shifts (a 0.1 sd shift needs ~6,400 records); the p-values stay exact averaged over references,
# and what a large block costs is the spread of the rate given one reference (docs/alarms.md).
MIN_REFERENCE_PER_BLOCK = 3
MIN_REFERENCE_ROWS = 200  # below this the reference is too small for any alarm
MIN_BLOCK = 20  # no block smaller than this
# Mann-Whitney runs on windows of at most a sixteenth of the reference: its rate given one
# reference moves with the reference's mean rank error, which a window of m records sees
# amplified like sqrt(m / N) (docs/alarms.md, table 2b: 0.75x-1.4x at 400 records of a
# 25,000-row reference, 0.4x-2.1x at 1,600); KS, which spreads it over the whole curve, runs on
# every window.
RANK_MAX_SHARE = 16
# Each scale's window is tested every half window: a change is seen by a window made mostly of
# changed records after ~m/4 records less on average. Consecutive windows share records, so
# their exceedances cluster; the budget per test stays w * dt / T (the expected number of
# exceedances per second is unchanged) and raises can only be fewer (measured: docs/alarms.md).
STEPS_PER_BLOCK = 2
# KS and Mann-Whitney on the same window are dependent: under the null (distribution-free, on
# ranks) either p-value is below l with probability 2 l f(l), f(l) = 1 - PAIR_OVERLAP *
# l**PAIR_EXPONENT, fitted on a simulation of their joint null (``python bench/alarms.py --only
# pair``: f = 0.71 at 3e-2, 0.79 at 1e-3, 0.88 at 1e-5, the same for windows of 100 to 1,600
# records and references of 16 to 250 times that). Counting the pair as two independent tests
# would page f times the target: 0.8x at an accelerated run's ~1e-3, ~0.95x at 30 d's ~1e-8
# (by the fit, which extrapolates below 1e-5 toward independent tails).
PAIR_OVERLAP = 0.41
PAIR_EXPONENT = 0.095
# The level is a fixed point (f moves with it); each iteration shrinks the error ~20-fold.
_PAIR_ITERATIONS = 10
MAX_BLOCK_ALPHA = 0.01  # one block after a long silence may not page with a large probability
CLEAR_LEVEL = 0.05  # a block "looks like the reference" when its combined p-value is above this
CLEAR_BLOCKS = 2  # consecutive such blocks at the raising scale lower the alarm
# The screening p-value (Stephens' corrected Kolmogorov limit) is within 6% of the exact one
# down to 1e-7 and within 20% at 1e-10 for the sizes used (docs/alarms.md); a column whose
# screening p-value is below SCREEN_FACTOR times the level gets the exact p-value.
SCREEN_FACTOR = 2.0
# The normal approximation of Mann-Whitney overstates its tail (the rank sum is lighter-tailed:
# 2.3x at 5 sd for 40 vs 400 rows), so its screen is wide; the saddlepoint value is within 1%.
RANK_SCREEN_FACTOR = 100.0
# The exact KS tail costs ~10 ns per cell of the lattice's band (about 2 d n1 n2 cells: 25,000
# vs 1,600 records at 1e-8, 6.4 M cells, 70 ms); above this many cells (~0.3 s) the screening
# value stands in (docs/alarms.md: within 3% for 100,000 vs 6,400 records, 8% for 1 M vs 100).
EXACT_MAX_CELLS = 30_000_000
_CHUNK_LOG = 600.0  # prefix products of a row's weights stay above e**-600 (no underflow)
# Windows tested together are sorted in chunks of about this many counts (4 MiB of int32):
# bounded memory whatever the size of a call, and the chunk stays in the cache's reach.
_SORT_CHUNK = 1 << 20
# A record whose tie group has at most 2**_GROUP_SEARCH_STEPS - 1 reference rows is placed by a
# vectorised binary search within its group; in columns with larger groups, within its cell of
# the group (_Column.cells): each step of the search costs a pass over the batch.
_GROUP_SEARCH_STEPS = 4
# In a column of more distinct reference values than this, a call's values are searched among
# the levels with the guide (_Guide), else in sorted order: the levels no longer stay in the
# cache between the searches of a call in arrival order.
_CACHED_LEVELS = 4096
# Windows of at least this many records are merged from sorted steps (_sorted_scale): numpy's
# sort of one window's counts costs ~6 ns per count at 1,600 (AVX-512), 12 at 6,400, 17 at
# 25,600; merging two sorted runs ~2-5.
_MERGE_FROM = 1600
# A column's guide (_Guide) is used when it leaves at most this many steps of search.
_GUIDE_STEPS = 8
# A call of at most this many records places all its columns at once (``_Flat``).
_SMALL_CALL = 256


@dataclass(frozen=True)
class AlarmConfig:
    """``alarm:`` of a model: the target mean time between false alarms and the effect floor."""

    false_alarm_every: float = DEFAULT_FALSE_ALARM_EVERY  # seconds
    min_effect: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.false_alarm_every) and self.false_alarm_every > 0):
            problems.append(f"false_alarm_every: expected > 0 s, got {self.false_alarm_every}")
        if not 0.0 <= self.min_effect <= 1.0:
            problems.append(f"min_effect: expected a number in [0, 1], got {self.min_effect}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class ReferenceColumn:
    """One column of the reference: floats (NaN = missing) or integer category codes."""

    name: str
    kind: ColumnKind
    values: ColumnArray


@dataclass(frozen=True)
class AlarmState:
    """What the alarm publishes: raised or not, the raise counter and the columns taking part."""

    raised: bool
    raised_total: int
    columns: tuple[str, ...]  # in reference order; empty while not raised
    raised_at: float | None  # time of the record that completed the raising block
    raising_scale: int | None  # block size (records) of the raising block
    scales: tuple[int, ...]  # block sizes in use; empty when the reference is too small
    blocks_tested: int


@dataclass(frozen=True)
class BlockResult:
    """One completed block's test, as the detector saw it (for benchmarks and debugging)."""

    scale: int
    end_time: float
    alpha: float
    statistics: FloatArray  # per column: KS statistic of the jittered block vs reference
    pvalues: FloatArray  # per column, KS; screening values except where an exact one was needed
    rank_pvalues: FloatArray  # per column, Mann-Whitney; likewise (1 where not run)
    exceeded: tuple[int, ...]  # columns below the per-column level (and >= min_effect)
    share_pvalues: FloatArray  # per column, the smallest category-share p-value (1 if numerical)


def plan_scales(reference_rows: int) -> tuple[int, ...]:
    """Block sizes for a reference of this many rows: 100 * 4**k up to a third of it."""
    if reference_rows < MIN_REFERENCE_ROWS:
        return ()
    largest = reference_rows // MIN_REFERENCE_PER_BLOCK
    scales = [BASE_BLOCK * SCALE_FACTOR**k for k in range(MAX_SCALES)]
    fitting = tuple(m for m in scales if m <= largest)
    return fitting if fitting else (largest,)


def reference_warning(reference_rows: int) -> str | None:
    """What ``check`` should say about a reference too small for a dependable alarm, or None."""
    scales = plan_scales(reference_rows)
    if not scales:
        return (
            f"the reference has {reference_rows} rows: the drift alarm needs at least "
            f"{MIN_REFERENCE_ROWS} and stays off"
        )
    if reference_rows < 25_000:
        return (
            f"the reference has {reference_rows} rows: the alarm's blocks of up to "
            f"{scales[-1]:,} records are a large share of it, so its false-alarm rate with this "
            f"one reference may differ from alarm.false_alarm_every by a factor of 3 or more "
            f"(right on average over references, docs/alarms.md), and it cannot detect shifts "
            f"under ~0.2 sd; 25,000 rows or more make it dependable"
        )
    return None


def sidak_level(alpha: float, columns: float) -> float:
    """Per-column level whose smallest-of-``columns`` independent p-values has rate ``alpha``."""
    if alpha >= 1.0:  # only without the cap (benchmarks): every window exceeds
        return 1.0
    return -math.expm1(math.log1p(-alpha) / columns)


def pair_factor(level: FloatArray) -> FloatArray:
    """P(KS or Mann-Whitney p-value < level) / (2 level) on one column's window, under the null."""
    result: FloatArray = 1.0 - PAIR_OVERLAP * np.power(level, PAIR_EXPONENT)
    return result


def window_levels(alphas: FloatArray, singles: float, pairs: int) -> FloatArray:
    """Per-test levels at which windows of ``singles`` tests and ``pairs`` KS and Mann-Whitney
    pairs exceed with probabilities ``alphas`` (columns independent: Šidák's)."""
    with np.errstate(divide="ignore"):  # alpha = 1 (benchmarks without the cap): level 1
        log_keep = np.log1p(-np.minimum(alphas, 1.0))
    # At least one test: a window of only unseen-category bins (a constant categorical column
    # whose reference has no singletons counts for 0) is not given a level of 1, which would
    # page on a single record of a new category.
    level: FloatArray = -np.expm1(log_keep / max(singles + 2 * pairs, 1.0))
    for _ in range(_PAIR_ITERATIONS if pairs else 0):  # a pair counts for 2 f >= 1.18 tests
        level = -np.expm1(log_keep / (singles + 2 * pairs * pair_factor(level)))
    return level


def ks_tail_screen(d: float, n1: int, n2: int) -> float:
    """Stephens' corrected Kolmogorov limit for P(D >= d), two samples of sizes n1 and n2."""
    s = math.sqrt(n1 * n2 / (n1 + n2))
    return float(kolmogorov((s + 0.12 + 0.11 / s) * d))


def ks_tail_screen_many(d: FloatArray, n1: int, n2: int) -> FloatArray:
    """``ks_tail_screen`` of several statistics with the same sizes."""
    s = math.sqrt(n1 * n2 / (n1 + n2))
    result: FloatArray = kolmogorov((s + 0.12 + 0.11 / s) * d)
    return result


def ks_tail_exact(d: float, n1: int, n2: int, max_cells: float = EXACT_MAX_CELLS) -> float:
    """The exact two-sample P(D >= d) for continuous data, sizes n1 and n2.

    The lattice-path count (Hodges 1958) in probabilities: a uniformly random path from (0, 0)
    to the sizes is one pooled order, and ``D >= d`` when it touches the band's edge; the
    share of paths to each cell that touched it is the average of its two predecessors',
    weighted by their path counts. Stephens' screening value where the band has more than
    ``max_cells`` cells (docs/alarms.md: its runtime). Without scipy.stats (~46 MiB).
    """
    small, large = min(n1, n2), max(n1, n2)
    g = math.gcd(large, small)
    lg, sg = large // g, small // g
    h = round(d * lg * small)  # D in units of 1 / lcm(n1, n2), the lattice's own step
    if h <= 0:
        return 1.0
    if small * min(large + 1, 2 * h // sg + 1) > max_cells:
        return ks_tail_screen(d, n1, n2)
    return _outside_share(h, large, small, lg, sg)


def _outside_share(h: int, m: int, n: int, mg: int, ng: int) -> float:
    """Share of lattice paths (0, 0) -> (m, n) touching ``|x ng - y mg| >= h``; n <= m.

    Row by row (y), vectorised along x: a cell's share ``P(x, y) = (x P(x-1, y) + y P(x,
    y-1)) / (x + y)``, 1 outside the band. Along a row that is ``P_x = a_x P_(x-1) + b_x``,
    solved by prefix products and sums: ``P_x = C_x (P_s + sum b_k / C_k)``, in chunks over
    which C stays above e**-600 (no underflow). Only positive terms: no cancellation, so the
    far tail keeps its relative precision (1e-14 against scipy in the tests).
    """
    xs = np.arange(m + 1, dtype=np.float64)
    lo_prev, hi_prev = 0, min(m, -(-h // ng) - 1)
    prev: FloatArray = np.zeros(hi_prev + 1)  # row 0: inside, no path has touched yet
    for y in range(1, n + 1):
        lo = max(0, (y * mg - h) // ng + 1)  # the row's cells strictly inside the band
        hi = min(m, -(-(y * mg + h) // ng) - 1)
        if lo > hi:
            return 1.0  # no path avoids the edge
        x = xs[lo:hi + 1]
        r = 1.0 / (x + y)
        a = x * r
        b = r * y  # times the row below's share (1 where it was outside)
        overlap = min(hi, hi_prev) - lo + 1
        if overlap > 0:
            b[:overlap] *= prev[lo - lo_prev:lo - lo_prev + overlap]
        row = np.empty(hi - lo + 1)
        last = 1.0  # the cell left of the band is outside
        s = 0
        if lo == 0:  # a_0 = 0: the first cell is the one below
            row[0] = last = float(b[0])
            s = 1
        while s < row.shape[0]:
            k = row.shape[0] - s
            fall = -math.log(float(a[s]))  # a grows along the row: its first is the smallest
            if fall * k > _CHUNK_LOG:
                k = max(1, int(_CHUNK_LOG / fall))
            c = np.cumprod(a[s:s + k])
            part = np.cumsum(np.divide(b[s:s + k], c))
            part += last
            part *= c
            row[s:s + k] = part
            last = float(part[-1])
            s += k
        prev, lo_prev, hi_prev = row, lo, hi
    return float(prev[m - lo_prev])


def rank_tail_screen_many(u: FloatArray, n1: int, n2: int) -> FloatArray:
    """Two-sided normal-approximation p-value of Mann-Whitney U (reference n1, block n2)."""
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
    x = np.maximum(np.abs(u - n1 * n2 / 2.0) - 0.5, 0.0)  # continuity correction
    result: FloatArray = np.minimum(1.0, 2.0 * ndtr(-x / sd))
    return result


def _log_sinhc(x: FloatArray) -> FloatArray:
    """log(sinh(x/2) / (x/2)), the cumulant generating function of U(-1/2, 1/2) at x."""
    ax = np.abs(x)
    small = ax < 1e-4
    safe = np.where(small, 1.0, ax)
    out: FloatArray = np.where(small, ax * ax / 24.0,
                               safe / 2.0 + np.log1p(-np.exp(-safe)) - np.log(safe))
    return out


def _log_sinhc_1(x: FloatArray) -> FloatArray:
    """First derivative of ``_log_sinhc``."""
    ax = np.abs(x)
    small = ax < 1e-4
    safe = np.where(small, 1.0, ax)
    out: FloatArray = np.sign(x) * np.where(small, ax / 12.0, 0.5 / np.tanh(safe / 2.0) - 1 / safe)
    return out


def _log_sinhc_2(x: FloatArray) -> FloatArray:
    """Second derivative of ``_log_sinhc``."""
    ax = np.abs(x)
    small = ax < 1e-3
    safe = np.where(small, 1.0, np.minimum(ax, 1400.0))
    out: FloatArray = np.where(small, 1 / 12.0 - ax * ax / 240.0,
                               1 / safe**2 - 0.25 / np.sinh(safe / 2.0) ** 2)
    return out


def rank_tail_exact(u: float, n1: int, n2: int) -> float:
    """Two-sided p-value of Mann-Whitney U by the Lugannani-Rice saddlepoint approximation.

    Under the null U + sum_i W_i has the law of sum_i V_i (V_i, W_i independent, uniform on
    {0..n1+i-1} and {0..i-1}, i = 1..n2: the q-binomial generating function), which gives U's
    exact cumulant generating function; the saddlepoint tail is within 1% of the exact
    distribution down to 1e-12 (a unit test compares it with the exact count).
    """
    i = np.arange(1, n2 + 1, dtype=np.float64)
    a = n1 + i
    x = abs(u - n1 * n2 / 2.0) - 0.5  # distance from the mean, continuity-corrected
    if x <= 0.0:
        return 1.0

    def cgf(s: float, order: int) -> float:
        if order == 0:
            return float(np.sum(_log_sinhc(a * s) - _log_sinhc(i * s)))
        if order == 1:
            return float(np.sum(a * _log_sinhc_1(a * s) - i * _log_sinhc_1(i * s)))
        return float(np.sum(a * a * _log_sinhc_2(a * s) - i * i * _log_sinhc_2(i * s)))

    s = x / (n1 * n2 * (n1 + n2 + 1) / 12.0)  # the normal's saddlepoint, a lower bound
    for _ in range(100):
        step = (cgf(s, 1) - x) / cgf(s, 2)
        s -= step
        if abs(step) <= 1e-12 * abs(s):
            break
    w = math.sqrt(max(2.0 * (s * x - cgf(s, 0)), 1e-300))
    v = s * math.sqrt(cgf(s, 2))
    tail = 0.5 * math.erfc(w / math.sqrt(2.0)) + math.exp(-w * w / 2.0) / math.sqrt(
        2.0 * math.pi) * (1.0 / v - 1.0 / w)
    return min(1.0, max(2.0 * tail, 0.0))


_SIGN_OFF = np.int64(0x7FFF_FFFF_FFFF_FFFF)


def _guide_cells(values: FloatArray, linear: Any, origin: Any, scale: Any, low: Any,
                 high: Any, shift: Any, last: Any) -> IntArray:
    """Cell of each value in a guide over sorted levels, by a nondecreasing map of the value.

    Linear: ``floor((value - origin) * scale)``, for levels spread evenly; else by the bits
    of the float (its order as a 64-bit integer: a log-like scale, for skewed levels), from
    ``low`` on, ``shift`` bits dropped. Clipped to cells 0..last (NaN: a valid cell). The
    parameters are numbers, or arrays of one row per column (all columns at once).
    """
    spread: IntArray | None = None
    if linear is not False:
        with np.errstate(invalid="ignore", over="ignore"):
            floats = np.floor((values - origin) * scale)
        np.fmax(floats, 0.0, out=floats)  # fmax, fmin: NaN -> the bound
        np.fmin(floats, last, out=floats)
        spread = floats.astype(np.int64)
        if linear is True:
            return spread
    bits = (values + 0.0).view(np.int64)  # + 0.0: -0.0 as 0.0, equal values alike
    bits = np.where(bits < 0, bits ^ _SIGN_OFF, bits)  # negative floats: reversed order
    np.clip(bits, low, high, out=bits)
    scaled = (bits.view(np.uint64) - np.asarray(low).astype(np.int64).view(np.uint64)) >> shift
    cells: IntArray = scaled.astype(np.int64)
    if spread is not None:  # one kind per row (all columns at once)
        cells = np.where(linear, spread, cells)
    return cells


@dataclass(frozen=True)
class _Guide:
    """Where to search the levels for a value: the levels of its cell (see ``_guide_cells``).

    ``table[c]``: levels in the cells before c (and one more entry): a value's count of
    levels below it is in ``table[c]..table[c + 1]``, since the map is nondecreasing.
    """

    table: NDArray[np.int32]
    linear: bool
    origin: float
    scale: float
    low: int
    high: int
    shift: int
    steps: int  # bit length of the most levels in a cell

    def cells(self, values: FloatArray) -> IntArray:
        """The cell of each value."""
        return _guide_cells(values, self.linear, self.origin, self.scale, self.low,
                            self.high, np.uint64(self.shift), self.table.shape[0] - 2)

    def levels_below(self, levels: FloatArray, values: FloatArray) -> AnyIntArray:
        """``searchsorted(levels, values)``: a search among the levels of each value's cell."""
        cell = self.cells(values)
        start = self.table[cell]
        return _search_within(levels, values, start, self.table[cell + 1] - start, self.steps)


def _guide(levels: FloatArray) -> _Guide:
    """A guide of as many cells as levels: linear or by the bits, whichever is more even."""
    n = int(levels.shape[0])
    ends = (levels[[0, -1]] + 0.0).view(np.int64)
    low, high = (int(x) for x in np.where(ends < 0, ends ^ _SIGN_OFF, ends))
    width = float(levels[-1]) - float(levels[0])
    scale = n / width if math.isfinite(width) and width > 0 else 0.0
    shift = ((high - low) // n).bit_length()
    best: _Guide | None = None
    for linear in (True, False):
        cells = _guide_cells(levels, linear, float(levels[0]), scale, low, high,
                             np.uint64(shift), n - 1)
        table = np.searchsorted(cells, np.arange(n + 1)).astype(np.int32)
        steps = int(np.bincount(cells, minlength=n).max()).bit_length()
        guide = _Guide(table, linear, float(levels[0]), scale, low, high, shift, steps)
        if best is None or guide.steps < best.steps:
            best = guide
    assert best is not None
    return best


@dataclass(frozen=True)
class _Column:
    """A reference column prepared once: its tie groups and jittered, sorted keys."""

    name: str
    categorical: bool
    levels: ColumnArray  # sorted distinct values (codes for categorical)
    rank_of_level: IntArray  # categorical: frequency rank of each level; numerical: unused
    keys: SortedSample  # group + U(0, 1), sorted
    shares: FloatArray  # categorical: share per rank, then the unseen slot
    # Per slot (numerical: level, then missing; categorical: rank, then unseen), and one more:
    # reference rows of the groups before the slot's group. A record's key falls among the
    # reference keys of its own group only, so placing it needs no search over the others.
    slot_rows: NDArray[np.int32]
    search_steps: int  # bit length of the largest group's rows
    # Columns of large groups (search_steps > _GROUP_SEARCH_STEPS) cut each group's keys into
    # as many cells as it has rows, by ``floor((key - group) * rows)``: per slot, where its
    # cells start in ``cells`` (and one more, like slot_rows); there, per cell and one more,
    # the group's rows in the cells before it. A key's search is then among the few keys of its
    # cell (~1 on average).
    cell_start: NDArray[np.int32]
    cells: NDArray[np.int32]
    cell_steps: int  # bit length of the most keys in a cell
    guide: _Guide | None  # of the levels (as floats); None without levels
    share_test: ShareColumn | None  # categorical: the share tests' side (share_test.py)

    @property
    def size(self) -> int:
        """Rows of the reference (missing values included)."""
        return self.keys.size

    def sorted_groups(self) -> SortedSample:
        """The reference's tie groups as floats, sorted (for min_effect's KS effect size).

        Rebuilt from the rows per slot when asked (only for a window that exceeds with
        min_effect set) rather than kept: 8 bytes per reference row and column saved.
        """
        rows: NDArray[np.int64] = np.diff(self.slot_rows).astype(np.int64)
        slots = np.arange(rows.shape[0], dtype=np.float64)
        return SortedSample(np.repeat(slots if self.categorical else 2.0 * slots + 1.0, rows))

    def group_of(self, values: ColumnArray) -> IntArray:
        """Tie group of each value (see ``tie_groups``)."""
        return tie_groups(self.levels, self.rank_of_level, self.categorical, values)

    def place(self, values: ColumnArray, draws: FloatArray) -> tuple[IntArray, AnyIntArray]:
        """Tie group of each value and the number of reference keys below its key.

        The key is ``group + draw``; the count equals ``searchsorted(keys, key)`` (a unit test
        compares them): every reference key of a lower group is at most ``group`` and every
        one of a higher group at least ``group + 1``, so only the key's own group is searched,
        by a binary search of ``search_steps`` vectorised steps over its rows, or of
        ``cell_steps`` over its cell's. A key that rounds to its group exactly (possible only
        for a draw below ~1e-11) is searched whole.
        """
        order = None
        below_levels = None
        guide = self.guide
        if self.levels.shape[0] > _CACHED_LEVELS and values.shape[0] > 1:
            # Many levels: a search in arrival order misses the cache at nearly every step;
            # the guide leaves a few steps, else the values are searched in sorted order.
            if guide is not None and guide.steps <= _GUIDE_STEPS:
                below_levels = guide.levels_below(self.levels, values)
            else:
                order = np.argsort(values)  # NaN last
                values, draws = values[order], draws[order]
        groups, slot, tied = _slots(self.levels, self.rank_of_level, self.categorical, values,
                                    below_levels)
        keys = groups + draws
        start: AnyIntArray = self.slot_rows[slot]
        rows = np.where(tied, self.slot_rows[slot + 1] - start, 0)
        steps = self.search_steps
        if self.cells.shape[0]:
            start, rows = _narrow(self.cells, self.cell_start[slot], keys, groups, start, rows)
            steps = self.cell_steps
        below = _search_within(self.keys.values, keys, start, rows, steps)
        exact = np.flatnonzero(keys == groups)
        if exact.shape[0]:
            below[exact] = np.searchsorted(self.keys.values, keys[exact])
        if order is None:
            return groups, below
        in_order = np.empty_like(groups), np.empty_like(below)
        in_order[0][order] = groups
        in_order[1][order] = below
        return in_order


def _narrow(cells: NDArray[np.int32], cell_start: AnyIntArray, keys: FloatArray,
            groups: AnyIntArray, start: AnyIntArray,
            rows: AnyIntArray) -> tuple[AnyIntArray, AnyIntArray]:
    """The rows of each key's cell among the ``rows`` of its group from ``start`` (see
    ``_Column.cells``): the cells split the group's keys in order, so the keys of the cells
    before the key's are below it and those after above it."""
    cell = np.floor((keys - groups) * rows)  # exact difference: key and group within 2x
    np.maximum(cell, 0.0, out=cell)
    np.minimum(cell, np.maximum(rows - 1, 0), out=cell)
    at = cell_start + cell.astype(np.int64)
    first = cells[at]
    return start + first, np.where(rows > 0, cells[at + 1] - first, 0)


def _cells(keys: FloatArray, slot_rows: NDArray[np.int32],
           categorical: bool) -> tuple[NDArray[np.int32], NDArray[np.int32], int]:
    """``_Column``'s cell_start, cells and cell_steps for its sorted keys."""
    rows = np.diff(slot_rows).astype(np.int64)
    slots = rows.shape[0]
    slot_of_key = np.repeat(np.arange(slots), rows)
    group = slot_of_key if categorical else 2 * slot_of_key + 1
    per_key = rows[slot_of_key]
    cell = np.minimum(np.maximum(np.floor((keys - group) * per_key), 0.0), per_key - 1)
    cell_start = np.concatenate(([0], np.cumsum(rows + 1)))
    cell_of_key = cell_start[slot_of_key] + cell.astype(np.int64)  # ascending
    entries = np.arange(cell_start[-1])
    slot_of_entry = np.repeat(np.arange(slots), rows + 1)
    cells = np.searchsorted(cell_of_key, entries) - slot_rows[slot_of_entry]
    # One more entry: the cell after an empty slot's only one is read (and not used).
    cells = np.append(cells, 0).astype(np.int32)
    most = int(np.bincount(cell_of_key).max()) if cell_of_key.shape[0] else 0
    return cell_start.astype(np.int32), cells, most.bit_length()


def _search_within(ordered: FloatArray, keys: FloatArray, start: AnyIntArray,
                   rows: AnyIntArray, steps: int) -> AnyIntArray:
    """``start + (values of ordered[start:start + rows] below each key)``, vectorised."""
    found = start - 1
    _descend(ordered, keys, found, found + rows, steps)
    found += 1
    return found


def _slots(levels: ColumnArray, rank_of_level: IntArray, categorical: bool,
           values: ColumnArray, below: AnyIntArray | None = None,
           ) -> tuple[IntArray, IntArray, NDArray[np.bool_]]:
    """Tie group, slot (see ``_Column``) and whether the reference has rows in the group.

    ``below``: ``searchsorted(levels, values)`` when already known (NaN aside).
    """
    n_levels = int(levels.shape[0])
    count = values.shape[0]
    if n_levels == 0:  # nothing usable in the reference: one group for everything
        zeros = np.zeros(count, dtype=np.int64)
        return zeros, zeros, np.ones(count, dtype=np.bool_)
    idx = (np.searchsorted(levels, values, side="left") if below is None
           else below.astype(np.int64, copy=False))
    safe = np.minimum(idx, n_levels - 1)
    seen = (idx < n_levels) & (levels[safe] == values)
    if categorical:
        slot = np.where(seen, rank_of_level[safe], n_levels)
        return slot, slot, seen
    groups = 2 * idx + seen
    missing = np.isnan(values)
    if missing.any():  # searchsorted puts NaN after every level: slot n_levels
        groups[missing] = 2 * n_levels + 1
        idx[missing] = n_levels
        return groups, idx, seen | missing
    return groups, idx, seen


def tie_groups(levels: ColumnArray, rank_of_level: IntArray, categorical: bool,
               values: ColumnArray) -> IntArray:
    """Tie group of each value, ordered like the values; unseen values get groups of their own.

    Numerical: ``2 i + 1`` for the i-th distinct reference value (``levels``, sorted), ``2 i``
    for a value strictly between the (i-1)-th and the i-th, missing (NaN) last. Categorical:
    the category's rank by reference frequency, unseen categories one group after the last.
    """
    return _slots(levels, rank_of_level, categorical, values)[0].astype(np.int64, copy=False)


def _prepare(column: ReferenceColumn, rng: np.random.Generator) -> _Column:
    """Tie groups, tie-breaks (from ``rng``) and sorted keys of a reference column."""
    values = np.asarray(column.values)
    categorical = column.kind == "categorical"
    if categorical:
        values = values.astype(np.int64)
        levels, counts = np.unique(values, return_counts=True)
        # Rank 0 = the most frequent category (ties by code): a deterministic order.
        order = np.lexsort((levels, -counts))
        rank_of_level = np.empty(levels.shape[0], dtype=np.int64)
        rank_of_level[order] = np.arange(levels.shape[0], dtype=np.int64)
        shares = np.zeros(levels.shape[0] + 1)
        shares[rank_of_level] = counts / max(values.shape[0], 1)
        rows_in = np.zeros(levels.shape[0] + 1, dtype=np.int64)
        rows_in[rank_of_level] = counts
    else:
        values = values.astype(np.float64)
        levels, counts = np.unique(values[~np.isnan(values)], return_counts=True)
        rank_of_level = np.zeros(0, dtype=np.int64)
        shares = np.zeros(0)
        rows_in = np.append(counts, np.count_nonzero(np.isnan(values))).astype(np.int64)
    slot_rows = np.concatenate(([0], np.cumsum(rows_in))).astype(np.int32)
    groups = tie_groups(levels, rank_of_level, categorical, values)
    keys = np.sort(groups + rng.random(groups.shape[0]))
    search_steps = int(rows_in.max()).bit_length() if rows_in.shape[0] else 0
    cell_start, cells, cell_steps = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), 0
    if search_steps > _GROUP_SEARCH_STEPS and levels.shape[0]:
        cell_start, cells, cell_steps = _cells(keys, slot_rows, categorical)
    guide = _guide(levels.astype(np.float64)) if levels.shape[0] else None
    share_column = prepare_shares(groups, int(levels.shape[0]), int(values.shape[0])) \
        if categorical else None
    return _Column(column.name, categorical, levels, rank_of_level, SortedSample(keys),
                   shares, slot_rows, search_steps, cell_start, cells, cell_steps, guide,
                   share_column)


@dataclass(frozen=True)
class _Flat:
    """Every column's levels, slots and keys end to end: small calls place all columns at once.

    A call of a few records would otherwise pay numpy's per-call overhead and a chain of cache
    misses per value and column (the reference is far larger than the cache); one binary search
    by descending powers of two over all of a call's values at once makes a few dozen passes
    whose loads are independent of each other. The columns are in ``order``: those with small
    tie groups (many levels: long searches among the levels, short ones among the keys) first,
    up to ``split``, then the others (the reverse), each part searched with its own steps.
    """

    order: IntArray  # the columns in the order below
    split: int
    levels: FloatArray  # per column: its levels (as floats), end to end
    slot_rows: NDArray[np.int32]  # per column: its slot_rows, end to end
    ranks: IntArray  # per categorical column: its rank_of_level, end to end
    keys: FloatArray  # per column (reference order): its sorted keys, end to end
    level_start: IntArray  # per column, shaped (columns, 1): where its levels start
    levels_count: IntArray
    slot_start: IntArray
    key_start: IntArray
    categorical: list[int]  # the categorical columns (positions in ``order``)
    rank_start: IntArray  # per categorical column, shaped (categorical, 1)
    level_steps: tuple[int, int]  # per part: the most steps of a column's guide
    guide_tables: NDArray[np.int32]  # per column: its guide's table, end to end
    guide_start: IntArray  # per column, shaped (columns, 1): where its table starts
    guide: tuple[Any, ...]  # per column, shaped (columns, 1): _guide_cells' parameters
    search_steps: tuple[int, int]  # per part: steps of the search among a group's (cell's) keys
    # The second part's columns' cell_start (offset into ``cells``), per slot, end to end from
    # that part's first slot; and their cells, end to end (the columns' are views).
    cell_start: NDArray[np.int32]
    cells: NDArray[np.int32]


def _flatten(columns: tuple[_Column, ...]) -> tuple[tuple[_Column, ...], _Flat | None]:
    """The columns with their keys (and numerical levels) as views of one ``_Flat``.

    None when a column has no levels or a category code is not exactly a float.
    """
    keys = np.concatenate([c.keys.values for c in columns])
    key_start = np.cumsum([0] + [c.size for c in columns])
    columns = tuple(dataclasses.replace(c, keys=SortedSample(keys[key_start[j]:key_start[j + 1]]))
                    for j, c in enumerate(columns))
    if any(c.levels.shape[0] == 0 or (c.categorical and np.abs(c.levels).max() >= 2**53)
           for c in columns):
        return columns, None
    small = [j for j, c in enumerate(columns) if c.search_steps <= _GROUP_SEARCH_STEPS]
    order = np.array(small + [j for j in range(len(columns)) if j not in small], dtype=np.int64)
    parts = [columns[j] for j in order]
    levels = np.concatenate([c.levels.astype(np.float64) for c in parts])
    level_start = np.cumsum([0] + [c.levels.shape[0] for c in parts])
    views = {int(j): dataclasses.replace(c, levels=levels[level_start[i]:level_start[i + 1]])
             for i, (j, c) in enumerate(zip(order, parts, strict=True)) if not c.categorical}
    columns = tuple(views.get(j, c) for j, c in enumerate(columns))
    slot_start = np.cumsum([0] + [c.slot_rows.shape[0] for c in parts])
    large = [c for c in parts[len(small):] if c.cells.shape[0]]
    if len(large) != len(columns) - len(small):  # a column of large groups without cells
        return columns, None
    cells = np.concatenate([np.zeros(0, dtype=np.int32)] + [c.cells for c in large])
    cell_at = np.cumsum([0] + [c.cells.shape[0] for c in large])
    cell_start = np.concatenate([np.zeros(0, dtype=np.int32)] + [
        c.cell_start + at for c, at in zip(large, cell_at, strict=False)]).astype(np.int32)
    views = {int(j): dataclasses.replace(c, cells=cells[cell_at[i]:cell_at[i + 1]])
             for i, (j, c) in enumerate(zip(order[len(small):], large, strict=True))}
    parts = [views.get(int(j), c) for j, c in zip(order, parts, strict=True)]
    columns = tuple(dataclasses.replace(c, cells=views[j].cells) if j in views else c
                    for j, c in enumerate(columns))
    categorical = [i for i, c in enumerate(parts) if c.categorical]
    guides = [c.guide for c in parts if c.guide is not None]
    if len(guides) != len(parts):
        return columns, None
    # The columns' slot_rows and guide tables become views of the flat arrays (no copies).
    slot_rows = np.concatenate([c.slot_rows for c in parts])
    slot_at = np.cumsum([0] + [c.slot_rows.shape[0] for c in parts])
    tables = np.concatenate([g.table for g in guides])
    table_at = np.cumsum([0] + [g.table.shape[0] for g in guides])
    guides = [dataclasses.replace(g, table=tables[table_at[i]:table_at[i + 1]])
              for i, g in enumerate(guides)]
    shared = {int(j): (slot_rows[slot_at[i]:slot_at[i + 1]], guides[i])
              for i, j in enumerate(order)}
    columns = tuple(dataclasses.replace(c, slot_rows=shared[j][0], guide=shared[j][1])
                    for j, c in enumerate(columns))
    rank_start = np.cumsum([0] + [parts[i].levels.shape[0] for i in categorical])
    counts = np.diff(level_start)
    split = len(small)

    def most(values: list[int]) -> int:
        return max(values, default=0)

    flat = _Flat(
        order, split, levels, slot_rows,
        np.concatenate([np.zeros(0, dtype=np.int64)] + [parts[i].rank_of_level
                                                        for i in categorical]),
        keys, level_start[:-1, np.newaxis], counts[:, np.newaxis], slot_start[:-1, np.newaxis],
        key_start[order][:, np.newaxis],
        categorical, rank_start[:-1, np.newaxis],
        (most([g.steps for g in guides[:split]]), most([g.steps for g in guides[split:]])),
        tables, table_at[:-1, np.newaxis],
        tuple(np.array([[value] for value in values], dtype=dtype) for values, dtype in (
            ([g.linear for g in guides], np.bool_), ([g.origin for g in guides], np.float64),
            ([g.scale for g in guides], np.float64), ([g.low for g in guides], np.int64),
            ([g.high for g in guides], np.int64), ([g.shift for g in guides], np.uint64),
            ([g.table.shape[0] - 2 for g in guides], np.int64))),
        (most([c.search_steps for c in parts[:split]]),
         most([c.cell_steps for c in parts[split:]])), cell_start, cells)
    return columns, flat


@dataclass(frozen=True)
class PreparedReference:
    """The reference's side of the tests, prepared once and shared read-only by detectors."""

    columns: tuple[_Column, ...]
    rows: int
    seed: int  # of the reference's tie-breaks
    flat: _Flat | None = dataclasses.field(default=None, repr=False, compare=False)


def prepare_reference(reference: Sequence[ReferenceColumn], seed: int) -> PreparedReference:
    """Tie groups, seeded tie-breaks and sorted keys of every reference column.

    The draws of column j are the first ``rows`` of ``default_rng([seed, j])``; a detector with
    the same seed draws its records' tie-breaks from the same stream after them (its results
    do not depend on whether its reference was prepared by itself or shared).
    """
    if not reference:
        raise ValueError("AlarmDetector needs at least one reference column")
    rows = {int(np.asarray(c.values).shape[0]) for c in reference}
    if len(rows) != 1:
        raise ValueError(f"reference columns differ in length: {sorted(rows)}")
    columns, flat = _flatten(tuple(_prepare(c, np.random.default_rng([seed, j]))
                                   for j, c in enumerate(reference)))
    return PreparedReference(columns, rows.pop(), seed, flat)


def _sorted_scale(scales: tuple[int, ...], steps: tuple[int, ...]) -> int | None:
    """The scale whose steps the detector keeps sorted (see ``AlarmDetector``), or None.

    The largest scale below the top one of at least _MERGE_FROM records (the top one when it
    is the only such scale), when the windows of it and of every scale above it are whole
    numbers of its steps.
    """
    large = [k for k, m in enumerate(scales) if m >= _MERGE_FROM]
    if not large:
        return None
    k = large[-2] if len(large) > 1 else large[0]
    if any(m % steps[k] for m in scales[k:]):
        return None
    return k


def _place_all(flat: _Flat, values: Sequence[ColumnArray],
               draws: FloatArray) -> tuple[IntArray, IntArray]:
    """``_Column.place`` of every column at once (``draws``: one row per column, in
    ``flat.order``; the results in the columns' order)."""
    v = np.vstack([values[j] for j in flat.order.tolist()], dtype=np.float64)
    at = _guide_cells(v, *flat.guide) + flat.guide_start
    found = flat.level_start - 1 + flat.guide_tables[at]
    last = flat.level_start - 1 + flat.guide_tables[at + 1]
    parts = (slice(0, flat.split), slice(flat.split, None))
    for part, steps in zip(parts, flat.level_steps, strict=True):
        _descend(flat.levels, v[part], found[part], last[part], steps)
    idx = found + 1 - flat.level_start  # levels below each value, as searchsorted's
    missing = np.isnan(v)
    any_missing = bool(missing.any())
    if any_missing:  # NaN: after every level
        idx[missing] = np.broadcast_to(flat.levels_count, v.shape)[missing]
    safe = np.minimum(idx, flat.levels_count - 1)
    seen = flat.levels[flat.level_start + safe] == v
    groups = 2 * idx + seen
    if any_missing:
        groups[missing] = np.broadcast_to(2 * flat.levels_count + 1, v.shape)[missing]
    slot = idx
    tied = seen | missing
    if flat.categorical:
        cat = flat.categorical
        ranks = np.where(seen[cat], flat.ranks[flat.rank_start + safe[cat]], flat.levels_count[cat])
        groups[cat] = ranks
        slot[cat] = ranks
    slot += flat.slot_start
    start = flat.slot_rows[slot]
    rows = np.where(tied, flat.slot_rows[slot + 1] - start, 0)
    keys = groups + draws
    if flat.split < flat.order.shape[0]:  # large groups: their cells' rows
        large = slice(flat.split, None)
        start[large], rows[large] = _narrow(
            flat.cells, flat.cell_start[slot[large] - flat.slot_start[flat.split, 0]],
            keys[large], groups[large], start[large], rows[large])
    below = start + flat.key_start - 1
    last = below + rows
    for part, steps in zip(parts, flat.search_steps, strict=True):
        _descend(flat.keys, keys[part], below[part], last[part], steps)
    below += 1 - flat.key_start
    rows_per_column = flat.keys.shape[0] // draws.shape[0]
    for i, k in np.argwhere(keys == groups):  # a key that rounds to its group: searched whole
        start_at = int(flat.key_start[i, 0])
        below[i, k] = np.searchsorted(flat.keys[start_at:start_at + rows_per_column], keys[i, k])
    in_order = np.empty_like(groups), np.empty_like(below)
    in_order[0][flat.order] = groups
    in_order[1][flat.order] = below
    return in_order


def _descend(ordered: FloatArray, keys: FloatArray, found: AnyIntArray, last: AnyIntArray,
             steps: int) -> None:
    """Binary search by descending powers of two: ``found`` becomes the last row up to
    ``last`` whose value is below the key (``found`` unchanged where none is); every key takes
    the same ``steps`` steps (``last - found < 2**steps``), each a pass over all the keys."""
    candidate = np.empty_like(found)
    below = np.empty(found.shape, dtype=np.bool_)
    step = 1 << (steps - 1) if steps else 0
    while step:
        np.add(found, step, out=candidate)
        np.minimum(candidate, last, out=candidate)
        np.less(ordered[candidate], keys, out=below)
        np.copyto(found, candidate, where=below)
        step >>= 1


@dataclass(frozen=True)
class _Outcome:
    """One scale's windows completed by one call, tested, before the alarm's state sees them."""

    stops: list[int]  # per window: its end in the buffer
    end_times: list[float]
    alphas: list[float]
    tests: float  # p-values per window (as the budget counts them)
    statistics: FloatArray  # (windows, columns), like BlockResult's
    pvalues: FloatArray
    rank_pvalues: FloatArray
    exceeds: NDArray[np.bool_]  # (windows, columns): smallest p-value below the level
    any_exceeds: list[bool]
    smallest: list[float]  # per window: the smallest p-value
    share_pvalues: FloatArray  # (windows, columns): the smallest category-share p-value


@dataclass
class _Raised:
    """The raised alarm's bookkeeping."""

    scale: int  # index of the raising block's scale
    at: float  # time of the raising block's last record
    last_record: int  # index (since the start) of the raising block's last record
    columns: set[int]
    clean: list[int]  # per scale: consecutive clean blocks made only of later records


class AlarmDetector:
    """Consumes records in order with their times; raises and lowers the model's alarm.

    Each record is placed once, when it arrives: its tie group, its random tie-break and the
    number of reference keys below its key (``_Column.place``; a call of a few records places
    all columns at once, ``_place_all``). A block's KS statistic then needs only those counts,
    sorted, for every column at once, whatever the scale: the tie-break of a record is shared
    by the blocks that hold it (each block's test stays exact: its records' tie-breaks are
    independent of the reference and of each other). The windows a call completes are tested
    scale by scale in arrays, then followed one by one by the alarm's state (``_test_windows``);
    the results are those of testing each window alone (tests/unit/test_alarm_equivalence.py).
    """

    def __init__(
        self,
        reference: Sequence[ReferenceColumn] | PreparedReference,
        config: AlarmConfig,
        seed: int = 0,
        *,
        scales: tuple[int, ...] | None = None,
        max_block_alpha: float = MAX_BLOCK_ALPHA,
        keep_results: bool = False,
    ) -> None:
        # keep_results keeps every block's BlockResult in ``results`` (unbounded: for tests and
        # benchmarks only). A PreparedReference is shared, not copied: the reference's jittered
        # keys are the bulk of a detector's memory (docs/alarms.md).
        if not isinstance(reference, PreparedReference):
            reference = prepare_reference(reference, seed)
        self._reference = reference
        self._rows = reference.rows
        self._columns = reference.columns
        # One generator per column: the draws do not depend on how records are split into
        # calls of add(). They continue the stream prepare_reference draws from with this seed.
        # (default_rng(s) is Generator(PCG64(s)); one 64-bit step per reference draw.)
        self._rngs = [np.random.Generator(np.random.PCG64([seed, j]).advance(self._rows))
                      for j in range(len(self._columns))]
        self._config = config
        self._seed = seed
        self._categorical = np.array([c.categorical for c in self._columns], dtype=bool)
        # Tests per window: KS (and Mann-Whitney) per numerical column, one per tested category
        # share per categorical column (share_test.py).
        self._numerical = int(np.count_nonzero(~self._categorical))
        self._shares = ShareTests([(j, c.share_test) for j, c in enumerate(self._columns)
                                   if c.share_test is not None], seed, self._rows)
        self._share_tests = self._shares.count
        self._scales = plan_scales(self._rows) if scales is None else tuple(scales)
        for small, large in itertools.pairwise(self._scales):
            if large % small:
                raise ValueError(f"block sizes must divide each other, got {self._scales}")
        self._max_alpha = max_block_alpha
        self._weight = 1.0 / len(self._scales) if self._scales else 0.0
        # Each scale's window of m records is tested every m / STEPS_PER_BLOCK records.
        self._steps = tuple(max(1, m // STEPS_PER_BLOCK) for m in self._scales)
        # Per scale, the tests a window's budget counts: single tests (KS alone, category
        # shares as weighted) and KS and Mann-Whitney pairs; fixed by the window's size.
        self._counts = tuple(self._test_counts(m) for m in self._scales)
        for small, large in itertools.pairwise(self._steps):
            if large % small:
                raise ValueError(f"steps must divide each other, got {self._steps}")
        size = self._scales[-1] if self._scales else 0
        # The buffer holds the last ``size`` records at least; when full, the oldest
        # ``shift`` records go (one largest step: the copy costs 2 values per value added).
        self._shift = self._steps[-1] if self._scales else 0
        capacity = size + self._shift
        columns = len(self._columns)
        # Per column and buffered record: reference keys below its key, and its tie group (for
        # min_effect's effect sizes).
        # int32 (a reference has under 2**31 rows): sorting the windows' counts, the alarm's
        # largest cost, runs about twice as fast as on int64.
        self._below: NDArray[np.int32] = np.empty((columns, capacity), dtype=np.int32)
        # The counts again, each step of one large scale sorted (see _sorted_scale): a window
        # of that scale or a larger one is then a merge of sorted runs (a pass or three of
        # timsort) instead of a full sort, and each record is sorted once there instead of
        # twice per scale. One copy of the buffer: what the int32 groups saved.
        self._sorted_scale = _sorted_scale(self._scales, self._steps)
        # A window of a large scale is made of whole windows of the scale below, and its KS
        # statistic is at most their mean (its ECDF is their mean): while that bound's p-value
        # is far above the level, the window cannot exceed and, the alarm down, need not be
        # sorted (see _test_windows). The top scale, every other one below it down to
        # _MERGE_FROM records (their windows' sorts are the costly ones), each bounded by the
        # scale below's windows (tested in full), whose last statistics are kept by last record.
        self._bounded = tuple(
            k for k in range(len(self._scales) - 1, 0, -2)
            if self._scales[k] >= _MERGE_FROM and self._scales[k] % self._scales[k - 1] == 0
            and self._scales[k - 1] % self._steps[k - 1] == 0)
        self._parts_ks: dict[int, dict[int, FloatArray]] = {k - 1: {} for k in self._bounded}
        self._sorted_steps: NDArray[np.int32] | None = (
            None if self._sorted_scale is None else np.empty((columns, capacity), dtype=np.int32))
        self._groups = np.empty((columns, capacity), dtype=np.int32)
        self._times = np.empty(capacity, dtype=np.float64)
        self._filled = 0
        self._offset = 0  # records before the buffer's first one
        self._start: float | None = None
        self._last_end: list[float] = [0.0] * len(self._scales)
        self._raised: _Raised | None = None
        self._raised_total = 0
        self._blocks_tested = 0
        self._keep = keep_results
        self.results: list[BlockResult] = []

    @property
    def reference(self) -> PreparedReference:
        """The prepared reference the detector reads (possibly shared with others)."""
        return self._reference

    @property
    def scales(self) -> tuple[int, ...]:
        """Block sizes in use (records)."""
        return self._scales

    def add(self, values: Sequence[ColumnArray], times: FloatArray) -> None:
        """Consume records in order: one array per reference column, and their times (s)."""
        if len(values) != len(self._columns):
            raise ValueError(f"expected {len(self._columns)} columns, got {len(values)}")
        count = int(times.shape[0])
        if any(int(v.shape[0]) != count for v in values):
            raise ValueError("every column needs one value per time")
        if not self._scales or count == 0:
            return
        if self._start is None:
            finite = times[np.isfinite(times)]
            if finite.shape[0] == 0:
                return  # no usable time yet: the records cannot be placed in time
            self._start = float(finite[0])
            self._last_end = [self._start] * len(self._scales)
        columns = len(self._columns)
        flat = self._reference.flat
        if flat is not None and count <= _SMALL_CALL:
            draws = np.empty((columns, count))
            for i, j in enumerate(flat.order.tolist()):
                self._rngs[j].random(out=draws[i])
            groups, below = _place_all(flat, values, draws)
        else:
            groups = np.empty((columns, count), dtype=np.int32)
            below = np.empty((columns, count), dtype=np.int32)
            for j, (column, rng) in enumerate(zip(self._columns, self._rngs, strict=True)):
                groups[j], below[j] = column.place(np.asarray(values[j]), rng.random(count))
        capacity = int(self._times.shape[0])
        done = 0
        while done < count:
            if self._filled == capacity:  # drop the oldest step: the buffer keeps >= size
                keep = capacity - self._shift
                self._below[:, :keep] = self._below[:, self._shift:]
                if self._sorted_steps is not None:
                    self._sorted_steps[:, :keep] = self._sorted_steps[:, self._shift:]
                self._groups[:, :keep] = self._groups[:, self._shift:]
                self._times[:keep] = self._times[self._shift:]
                self._filled = keep
                self._offset += self._shift
            take = min(count - done, capacity - self._filled)
            stop = self._filled + take
            self._below[:, self._filled:stop] = below[:, done:done + take]
            self._groups[:, self._filled:stop] = groups[:, done:done + take]
            self._times[self._filled:stop] = times[done:done + take]
            seen = self._offset + self._filled  # records placed before this slice
            self._filled = stop
            done += take
            self._test_windows(seen, self._offset + stop)

    def state(self) -> AlarmState:
        """The alarm as it stands after the records added so far."""
        raised = self._raised
        columns = tuple(c.name for i, c in enumerate(self._columns)
                        if raised is not None and i in raised.columns)
        return AlarmState(
            raised=raised is not None,
            raised_total=self._raised_total,
            columns=columns,
            raised_at=raised.at if raised else None,
            raising_scale=self._scales[raised.scale] if raised else None,
            scales=self._scales,
            blocks_tested=self._blocks_tested,
        )

    def _test_windows(self, seen: int, last: int) -> None:
        """Test every window completed by records ``seen`` to ``last`` (counted from the start).

        Each scale's windows are tested together (one sort of their counts, vectorised
        statistics and screening values); the alarm's state then follows them one by one in
        the order they complete: by last record, then scale from small to large.
        """
        if self._sorted_steps is not None and self._sorted_scale is not None:
            every = self._steps[self._sorted_scale]
            first = (seen // every + 1) * every  # the first step completed, counted from the start
            if first <= last:
                start, stop = first - every - self._offset, last // every * every - self._offset
                steps = self._below[:, start:stop].reshape(self._below.shape[0], -1, every)
                self._sorted_steps[:, start:stop].reshape(steps.shape)[...] = np.sort(steps,
                                                                                    axis=-1)
        order: list[tuple[int, int, int]] = []  # (last record, scale, window of the scale)
        plans: list[tuple[int, IntArray, list[float], list[float], list[float]]] = []
        for k, (scale, every) in enumerate(zip(self._scales, self._steps, strict=True)):
            first = max(seen // every + 1, -(-scale // every)) * every
            if first > last:
                continue
            stops = np.arange(first, last + 1, every) - self._offset
            end_times = self._times[stops - 1].tolist()
            alphas, levels = self._budgets(k, end_times, *self._counts[k])
            plans.append((k, stops, end_times, alphas, levels))
            order.extend((end, k, t) for t, end in enumerate(range(first, last + 1, every)))
        # A window without budget (no time since its scale's previous one: records read in one
        # batch without timestamps) cannot exceed, nor can a bounded one (_cannot_exceed);
        # while the alarm is down their statistics matter only if another window of the call
        # raises it. So they are computed only then (and always with keep_results).
        idle = not self._keep and self._raised is None
        outcomes: dict[int, _Outcome] = {}
        for k, stops, end_times, alphas, levels in plans:
            computed = None
            if idle:
                ends = (stops + self._offset).tolist()
                computed = [level > 0.0 and not (k in self._bounded and self._cannot_exceed(
                    k, end, level)) for end, level in zip(ends, levels, strict=True)]
            outcomes[k] = self._test_scale(k, stops, end_times, alphas, levels, computed)
            if k in self._parts_ks:
                self._keep_parts(k, stops, outcomes[k], computed)
        if idle and any(any(o.any_exceeds) for o in outcomes.values()):
            outcomes = {k: self._test_scale(k, stops, end_times, alphas, levels, None)
                        for k, stops, end_times, alphas, levels in plans}
        if len(plans) > 1:
            order.sort()
        for _, k, t in order:
            self._conclude(k, outcomes[k], t)

    def _keep_parts(self, k: int, stops: IntArray, outcome: _Outcome,
                    computed: list[bool] | None) -> None:
        """Keep scale k's statistics (those computed) for the bound of the scale above."""
        parts = self._parts_ks[k]
        ends = (stops + self._offset).tolist()
        for t, end in enumerate(ends):
            if computed is None or computed[t]:
                parts[end] = outcome.statistics[t].copy()
        oldest = ends[-1] - self._scales[k + 1]
        for end in [e for e in parts if e <= oldest]:
            del parts[end]

    def _cannot_exceed(self, k: int, end: int, level: float) -> bool:
        """Whether scale k's window ending at record ``end`` surely stays above the level.

        Its KS statistic is at most the mean of those of the scale below's windows that make
        it up; their screening p-value far above the level (a margin for rounding) keeps its
        own p-value, screening or exact, above the level. Mann-Whitney, where it runs, from the
        window's rank sum (a sum, no sort), likewise above its screen's bound.
        """
        part = self._scales[k - 1]
        rows = [self._parts_ks[k - 1].get(end - i * part) for i in range(self._scales[k] // part)]
        if any(row is None for row in rows):
            return False
        n1, n2 = self._rows, self._scales[k]
        numerical = ~self._categorical  # categorical columns: the share tests, below
        bound = np.mean(np.array(rows), axis=0)[numerical] * (1.0 + 1e-12)
        if not np.all(ks_tail_screen_many(bound, n1, n2) >= SCREEN_FACTOR * level * (1.0 + 1e-9)):
            return False
        stop = end - self._offset
        if n2 * RANK_MAX_SHARE <= n1:
            below = self._below[numerical, stop - n2:stop]
            ranks = below.sum(axis=1, dtype=np.int64).astype(np.float64)
            if not np.all(rank_tail_screen_many(ranks, n1, n2) >= RANK_SCREEN_FACTOR * level):
                return False
        # The share tests are a count per category: computed (no sort), and exact.
        return bool(np.all(self._share_pvalues(k, np.array([stop])) >= level))

    def _tests(self, k: int) -> float:
        """P-values per window of scale k: KS per numerical column, and Mann-Whitney where it
        runs; one per tested category share of the categorical columns (as budgeted)."""
        singles, pairs = self._counts[k]
        return singles + 2 * pairs

    def _test_counts(self, m: int) -> tuple[float, int]:
        """A window of m records' single tests (KS alone, category shares) and KS and
        Mann-Whitney pairs."""
        shares = self._shares.weight(m)
        if m * RANK_MAX_SHARE <= self._rows:
            return shares, self._numerical
        return self._numerical + shares, 0

    def _test_scale(self, k: int, stops: IntArray, end_times: list[float], alphas: list[float],
                    levels: list[float], computed: list[bool] | None) -> _Outcome:
        """Statistics, p-values and exceedances of scale k's windows ending at ``stops``.

        Only the windows marked in ``computed`` (all when None); the others are given no
        exceedance and p-values of 1 (see ``_test_windows``).
        """
        if computed is not None and not all(computed):
            some = self._test_scale(k, stops[computed], [], [], [level for level, c in zip(
                levels, computed, strict=True) if c], None)
            rows = np.flatnonzero(computed)
            columns = len(self._columns)
            statistics, pvalues, rank_pvalues = (np.zeros((stops.shape[0], columns)),
                                                 np.ones((stops.shape[0], columns)),
                                                 np.ones((stops.shape[0], columns)))
            exceeds = np.zeros((stops.shape[0], columns), dtype=np.bool_)
            any_exceeds, smallest = [False] * stops.shape[0], [1.0] * stops.shape[0]
            for row, t in enumerate(rows.tolist()):
                any_exceeds[t], smallest[t] = some.any_exceeds[row], some.smallest[row]
            statistics[rows], pvalues[rows] = some.statistics, some.pvalues
            rank_pvalues[rows], exceeds[rows] = some.rank_pvalues, some.exceeds
            share = np.ones((stops.shape[0], columns))
            share[rows] = some.share_pvalues
            return _Outcome(stops.tolist(), end_times, alphas, some.tests, statistics, pvalues,
                            rank_pvalues, exceeds, any_exceeds, smallest, share)
        n1, n2 = self._rows, self._scales[k]
        ranked = n2 * RANK_MAX_SHARE <= n1
        tests = self._tests(k)
        level = np.array(levels)[:, np.newaxis]
        statistics, ranks = self._statistics(k, stops, ranked)
        pvalues = ks_tail_screen_many(statistics, n1, n2)
        # Categorical columns get the share tests instead of KS and Mann-Whitney.
        pvalues[:, self._categorical] = 1.0
        # Only a screening value that could fall on either side of the level gets the exact
        # one: far below it the column exceeds either way, and on drifting data the exact
        # count of every such column would cost the ingest thread ~0.1 s each.
        numerical = ~self._categorical
        near = (pvalues < SCREEN_FACTOR * level) & numerical
        if near.any():  # rare but on drifting data
            near &= pvalues * SCREEN_FACTOR >= level
            for t, j in np.argwhere(near):
                pvalues[t, j] = ks_tail_exact(float(statistics[t, j]), n1, n2)
        if ranked:
            # Mann-Whitney U: pairs (reference key, block key) with the reference key below.
            rank_pvalues = rank_tail_screen_many(ranks, n1, n2)
            rank_pvalues[:, self._categorical] = 1.0
            # The normal screen overstates the tail: below the level the exact value is too.
            near = (rank_pvalues < RANK_SCREEN_FACTOR * level) & numerical
            if near.any():
                near &= rank_pvalues >= level
                for t, j in np.argwhere(near):
                    rank_pvalues[t, j] = rank_tail_exact(float(ranks[t, j]), n1, n2)
        else:
            rank_pvalues = np.ones(statistics.shape)
        share = self._share_pvalues(k, stops)
        least = np.minimum(np.minimum(pvalues, rank_pvalues), share)
        exceeds = least < level
        any_exceeds = cast(list[bool], exceeds.any(axis=1).tolist())
        return _Outcome(stops.tolist(), end_times, alphas, tests, statistics, pvalues,
                        rank_pvalues, exceeds, any_exceeds, least.min(axis=1).tolist(), share)

    def _share_pvalues(self, k: int, stops: IntArray) -> FloatArray:
        """Per window and column: the smallest category-share p-value (1 if numerical)."""
        m = self._scales[k]
        share = np.ones((stops.shape[0], len(self._columns)))
        if not self._share_tests or stops.shape[0] == 0:
            return share
        first, last = int(stops[0]) - m, int(stops[-1])
        # A window's identity (its last record since the start, and its scale) seeds its
        # randomization: the same whatever the calls' sizes.
        windows = (self._offset + stops) * len(self._scales) + k
        columns = self._shares.columns
        share[:, columns] = self._shares.smallest(self._groups[columns, first:last], stops, m,
                                                  windows)
        return share

    def _budgets(self, k: int, end_times: list[float], singles: float,
                 pairs: int) -> tuple[list[float], list[float]]:
        """Each window's alpha (from the time since the scale's previous one) and level."""
        alphas = []
        last_end = self._last_end[k]
        for end_time in end_times:
            elapsed = end_time - last_end
            if math.isfinite(elapsed) and elapsed > 0.0:
                last_end = end_time
            else:  # out-of-order or non-finite times: no budget, and the clock stays where it was
                elapsed = 0.0
            alphas.append(min(self._max_alpha,
                              self._weight * elapsed / self._config.false_alarm_every))
        self._last_end[k] = last_end
        levels = window_levels(np.array(alphas), singles, pairs)
        return alphas, cast(list[float], levels.tolist())

    def _statistics(self, k: int, stops: IntArray, ranked: bool) -> tuple[FloatArray, FloatArray]:
        """KS statistics and rank sums (when ranked) of scale k's windows ending at ``stops``."""
        n1, n2, every = self._rows, self._scales[k], self._steps[k]
        columns = len(self._columns)
        windows = stops.shape[0]
        statistics = np.empty((windows, columns))
        ranks = np.empty((windows, columns))
        # Windows of a scale start every ``every`` records: a strided view of the buffer, sorted
        # in chunks of about _SORT_CHUNK counts (bounded memory, whatever the call's size).
        merged = self._sorted_steps is not None and k >= (self._sorted_scale or 0)
        source = self._sorted_steps if merged and self._sorted_steps is not None else self._below
        rows, records = source.strides
        chunk = max(1, _SORT_CHUNK // (columns * n2))
        for at in range(0, windows, chunk):
            part = stops[at:at + chunk]
            start = int(part[0]) - n2
            if part.shape[0] == 1:  # the usual case of a small call
                view = source[np.newaxis, :, start:start + n2]
            else:
                view = np.lib.stride_tricks.as_strided(
                    source[:, start:], shape=(part.shape[0], columns, n2),
                    strides=(every * records, rows, records), writeable=False)
            # Sorted runs are merged by the stable sort (timsort): a pass per halving of runs.
            ordered = np.sort(view, axis=-1, kind="stable" if merged else None)
            statistics[at:at + chunk] = _ks_of_sorted(ordered, n1)
            if ranked:
                ranks[at:at + chunk] = ordered.sum(axis=-1, dtype=np.int64)
        return statistics, ranks

    def _conclude(self, k: int, outcome: _Outcome, t: int) -> None:
        """Window t of scale k: its exceedances (min_effect), its result and the alarm's state."""
        stop = outcome.stops[t]
        exceeded: list[int] = []
        if outcome.any_exceeds[t]:
            exceeded = [int(j) for j in np.flatnonzero(outcome.exceeds[t])
                        if self._effect(int(j), stop) >= self._config.min_effect]
        self._blocks_tested += 1
        end_time = outcome.end_times[t]
        if self._keep:
            self.results.append(BlockResult(
                self._scales[k], end_time, outcome.alphas[t], outcome.statistics[t].copy(),
                outcome.pvalues[t].copy(), outcome.rank_pvalues[t].copy(), tuple(exceeded),
                outcome.share_pvalues[t].copy()))
        self._update(k, self._offset + stop - self._scales[k], end_time, exceeded,
                     outcome.smallest[t], outcome.tests)

    def _effect(self, j: int, stop: int) -> float:
        """Column j's effect size over the last records (up to the largest block size).

        KS statistic (numerical, missing values as a value above all) or Jensen-Shannon
        distance (categorical). Over the largest block rather than the block tested: a small
        block's effect size is mostly noise (a KS statistic of ~0.09 on 100 records of the
        reference's own distribution), and min_effect is about the population.
        """
        if self._config.min_effect <= 0.0:
            return 1.0  # no floor: skip the computation
        column = self._columns[j]
        groups = self._groups[j, max(0, stop - self._scales[-1]):stop]
        if column.categorical:
            counts = np.bincount(groups, minlength=column.shares.shape[0]).astype(np.float64)
            return jensen_shannon(column.shares, counts / counts.sum())
        return ks_statistic(column.sorted_groups(), np.sort(groups).astype(np.float64))

    def _update(self, k: int, first_record: int, end_time: float, exceeded: list[int],
                smallest: float, tests: float) -> None:
        """Raise on an exceedance; lower once every scale has seen clean records since."""
        size = self._scales[k]
        raised = self._raised
        if raised is None:
            if exceeded:
                self._raised = _Raised(k, end_time, first_record + size - 1, set(exceeded),
                                       [0] * len(self._scales))
                self._raised_total += 1
            return
        # While raised an exceedance is no new raise, but its columns take part.
        raised.columns.update(exceeded)
        if first_record <= raised.last_record:
            # A block holding records up to the raise (a larger block around the raising one)
            # says nothing about whether the change is over.
            return
        # Šidák; every p-value at 1 (a window with nothing to test: only unseen-category bins
        # with no unseen record) is as clean as can be (log1p(-1) is a math domain error).
        combined = 1.0 if smallest >= 1.0 else -math.expm1(tests * math.log1p(-smallest))
        clean = combined >= CLEAR_LEVEL and not exceeded
        raised.clean[k] = raised.clean[k] + 1 if clean else 0
        if min(raised.clean) >= 1 and raised.clean[raised.scale] >= CLEAR_BLOCKS:
            self._raised = None


def block_statistics(below: NDArray[np.integer[Any]], n1: int) -> FloatArray:
    """KS statistic of each row's block against its reference, from the keys-below counts.

    ``below[..., i]``: reference keys (of n1) below the i-th record's key in the block (last
    axis; sorted or not). Keys are distinct, so sorted counts give the block's ECDF steps: in
    integers n1 * n2 * D, the block's ECDF above the reference's just after each block key,
    and below it just before.
    """
    return _ks_of_sorted(np.sort(below, axis=-1), n1)


@functools.lru_cache(maxsize=64)
def _steps_after(n1: int, n2: int, dtype: np.dtype[Any]) -> NDArray[np.integer[Any]]:
    """``j * n1`` for j = 1..n2 (read-only: shared by the detectors)."""
    after: NDArray[np.integer[Any]] = np.arange(1, n2 + 1, dtype=dtype)
    after *= n1
    after.flags.writeable = False
    return after


def _ks_of_sorted(ordered: NDArray[np.integer[Any]], n1: int) -> FloatArray:
    """``block_statistics`` of counts already sorted along the last axis."""
    n2 = int(ordered.shape[-1])
    # The integers reach n1 * n2: 32 bits hold them for all but the largest windows of the
    # largest references, and run about twice as fast as 64.
    wide = np.dtype(np.int64 if n1 * n2 >= 2**31 else np.int32)
    gaps: NDArray[np.integer[Any]] = ordered.astype(wide, copy=True)
    gaps *= n2
    np.subtract(_steps_after(n1, n2, wide), gaps, out=gaps)  # j n1 - count n2
    upper = gaps.max(axis=-1)
    lower = n1 - gaps.min(axis=-1)  # count n2 - (j - 1) n1
    result: FloatArray = np.maximum(np.maximum(upper, lower), 0) / (n1 * n2)
    return result
