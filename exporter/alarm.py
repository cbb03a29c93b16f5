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
exceedance when its smallest p-value (one or two per column) is below Šidák's level for
``alpha``. Summed over windows, the expected number of exceedances per second is at most
``1 / T`` at any traffic (KS and Mann-Whitney being dependent: ~0.88 / T, docs/alarms.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import kolmogorov, ndtr

from exporter.share_test import share_bins, share_bins_tested, share_pvalues, share_uniforms
from exporter.stats.divergence import jensen_shannon
from exporter.stats.ecdf import FloatArray, SortedSample
from exporter.stats.ks import ks_statistic

IntArray = NDArray[np.int64]
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


def sidak_level(alpha: float, columns: int) -> float:
    """Per-column level whose smallest-of-``columns`` independent p-values has rate ``alpha``."""
    if alpha >= 1.0:  # only without the cap (benchmarks): every window exceeds
        return 1.0
    return -math.expm1(math.log1p(-alpha) / columns)


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


@dataclass(frozen=True)
class _Column:
    """A reference column prepared once: its tie groups and jittered, sorted keys."""

    name: str
    categorical: bool
    levels: ColumnArray  # sorted distinct values (codes for categorical)
    rank_of_level: IntArray  # categorical: frequency rank of each level; numerical: unused
    keys: SortedSample  # group + U(0, 1), sorted
    groups: SortedSample  # tie groups as floats, sorted (for the KS effect size)
    shares: FloatArray  # categorical: share per rank, then the unseen slot
    bin_of_group: IntArray  # categorical: share-test bin of each group (rank, then unseen)
    bin_counts: IntArray  # categorical: reference rows per share-test bin
    tested: IntArray  # categorical: the bins whose shares are tested (share_test.share_bins_tested)

    @property
    def size(self) -> int:
        """Rows of the reference (missing values included)."""
        return self.keys.size

    def group_of(self, values: ColumnArray) -> IntArray:
        """Tie group of each value (see ``tie_groups``)."""
        return tie_groups(self.levels, self.rank_of_level, self.categorical, values)


def tie_groups(levels: ColumnArray, rank_of_level: IntArray, categorical: bool,
               values: ColumnArray) -> IntArray:
    """Tie group of each value, ordered like the values; unseen values get groups of their own.

    Numerical: ``2 i + 1`` for the i-th distinct reference value (``levels``, sorted), ``2 i``
    for a value strictly between the (i-1)-th and the i-th, missing (NaN) last. Categorical:
    the category's rank by reference frequency, unseen categories one group after the last.
    """
    n_levels = int(levels.shape[0])
    if n_levels == 0:  # nothing usable in the reference: one group for everything
        return np.zeros(values.shape[0], dtype=np.int64)
    idx = np.searchsorted(levels, values, side="left")
    safe = np.minimum(idx, n_levels - 1)
    seen = (idx < n_levels) & (levels[safe] == values)
    if categorical:
        return np.where(seen, rank_of_level[safe], n_levels).astype(np.int64)
    groups = np.where(seen, 2 * idx + 1, 2 * idx).astype(np.int64)
    return np.where(np.isnan(values), 2 * n_levels + 1, groups)


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
    else:
        values = values.astype(np.float64)
        levels = np.unique(values[~np.isnan(values)])
        rank_of_level = np.zeros(0, dtype=np.int64)
        shares = np.zeros(0)
    groups = tie_groups(levels, rank_of_level, categorical, values)
    keys = groups + rng.random(groups.shape[0])
    ranks = int(levels.shape[0]) if categorical else 0
    bin_of_group = share_bins(ranks)
    bin_counts = np.bincount(bin_of_group[groups], minlength=int(bin_of_group.max()) + 1) \
        if categorical else np.zeros(0, dtype=np.int64)
    tested = share_bins_tested(ranks) if categorical else np.zeros(0, dtype=np.int64)
    return _Column(column.name, categorical, levels, rank_of_level, SortedSample(np.sort(keys)),
                   SortedSample(np.sort(groups.astype(np.float64))), shares, bin_of_group,
                   bin_counts.astype(np.int64), tested)


@dataclass(frozen=True)
class PreparedReference:
    """The reference's side of the tests, prepared once and shared read-only by detectors."""

    columns: tuple[_Column, ...]
    rows: int
    seed: int  # of the reference's tie-breaks


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
    columns = tuple(_prepare(c, np.random.default_rng([seed, j]))
                    for j, c in enumerate(reference))
    return PreparedReference(columns, rows.pop(), seed)


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
    number of reference keys below its key (one binary search per value). A block's KS
    statistic then needs only those counts, sorted, for every column at once, whatever the
    scale: the tie-break of a record is shared by the blocks that hold it (each block's test
    stays exact: its records' tie-breaks are independent of the reference and of each other).
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
        self._share_tests = sum(int(c.tested.shape[0]) for c in self._columns)
        self._scales = plan_scales(self._rows) if scales is None else tuple(scales)
        for small, large in itertools.pairwise(self._scales):
            if large % small:
                raise ValueError(f"block sizes must divide each other, got {self._scales}")
        self._max_alpha = max_block_alpha
        self._weight = 1.0 / len(self._scales) if self._scales else 0.0
        # Each scale's window of m records is tested every m / STEPS_PER_BLOCK records.
        self._steps = tuple(max(1, m // STEPS_PER_BLOCK) for m in self._scales)
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
        self._groups = np.empty((columns, capacity), dtype=np.int64)
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
        groups = np.empty((len(self._columns), count), dtype=np.int64)
        below = np.empty((len(self._columns), count), dtype=np.int64)
        for j, (column, rng) in enumerate(zip(self._columns, self._rngs, strict=True)):
            groups[j] = column.group_of(np.asarray(values[j]))
            keys = groups[j] + rng.random(count)
            # Searched in order: several times faster than in arrival order (cache).
            order = np.argsort(keys)
            below[j, order] = np.searchsorted(column.keys.values, keys[order])
        capacity = int(self._times.shape[0])
        step = self._steps[0]
        done = 0
        while done < count:
            if self._filled == capacity:  # drop the oldest step: the buffer keeps >= size
                keep = capacity - self._shift
                self._below[:, :keep] = self._below[:, self._shift:]
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
            # Every smallest step reached, in record order, then scales small to large: each
            # scale's window of the last m records, every m / STEPS_PER_BLOCK records.
            first = (seen // step + 1) * step
            for boundary in range(first, self._offset + stop + 1, step):
                for k, (scale, every) in enumerate(zip(self._scales, self._steps, strict=True)):
                    if boundary % every == 0 and boundary >= scale:
                        end = boundary - self._offset
                        self._test_block(k, end - scale, end)

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

    def _test_block(self, k: int, start: int, stop: int) -> None:
        end_time = float(self._times[stop - 1])
        elapsed = end_time - self._last_end[k]
        if math.isfinite(elapsed) and elapsed > 0.0:
            self._last_end[k] = end_time
        else:  # out-of-order or non-finite times: no budget, and the clock stays where it was
            elapsed = 0.0
        alpha = min(self._max_alpha, self._weight * elapsed / self._config.false_alarm_every)
        n1, n2 = self._rows, stop - start
        ranked = n2 * RANK_MAX_SHARE <= n1
        # Numerical columns: KS, and Mann-Whitney on small windows; categorical columns: one
        # test per category share (share_test.py), not KS or Mann-Whitney on the frequency order.
        numerical = int(np.count_nonzero(~self._categorical))
        tests = (2 if ranked else 1) * numerical + self._share_tests
        level = sidak_level(alpha, tests) if alpha > 0 else 0.0
        below = self._below[:, start:stop]
        statistics = block_statistics(below, n1)
        pvalues = ks_tail_screen_many(statistics, n1, n2)
        # Only a screening value that could fall on either side of the level gets the exact
        # one: far below it the column exceeds either way, and on drifting data the exact
        # count of every such column would cost the ingest thread ~0.1 s each.
        pvalues[self._categorical] = 1.0
        near = (pvalues < SCREEN_FACTOR * level) & (pvalues * SCREEN_FACTOR >= level)
        for j in np.flatnonzero(near):
            pvalues[j] = ks_tail_exact(float(statistics[j]), n1, n2)
        rank_pvalues = np.ones(len(self._columns))
        if ranked:
            # Mann-Whitney U: pairs (reference key, block key) with the reference key below.
            ranks = below.sum(axis=1).astype(np.float64)
            rank_pvalues = rank_tail_screen_many(ranks, n1, n2)
            # The normal screen overstates the tail: below the level the exact value is too.
            rank_pvalues[self._categorical] = 1.0
            near = (rank_pvalues < RANK_SCREEN_FACTOR * level) & (rank_pvalues >= level)
            for j in np.flatnonzero(near):
                rank_pvalues[j] = rank_tail_exact(float(ranks[j]), n1, n2)
        share = np.ones(len(self._columns))
        window = (self._offset + stop) * len(self._scales) + k  # this window's identity
        for j in np.flatnonzero(self._categorical):
            column = self._columns[j]
            bins = column.bin_of_group[self._groups[j, start:stop]]
            counts = np.bincount(bins, minlength=column.bin_counts.shape[0])[column.tested]
            u = share_uniforms(self._seed, int(j), np.array([window]), column.tested)[0]
            share[j] = float(np.min(share_pvalues(counts, column.bin_counts[column.tested], n2,
                                                  n1, u), initial=1.0))
        smallest = np.minimum(np.minimum(pvalues, rank_pvalues), share)
        exceeded = [int(j) for j in np.flatnonzero(smallest < level)
                    if self._effect(int(j), stop) >= self._config.min_effect]
        self._blocks_tested += 1
        if self._keep:
            self.results.append(BlockResult(n2, end_time, alpha, statistics, pvalues,
                                            rank_pvalues, tuple(exceeded), share))
        self._update(k, self._offset + start, end_time, exceeded, smallest, tests)

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
        return ks_statistic(column.groups, np.sort(groups).astype(np.float64))

    def _update(self, k: int, first_record: int, end_time: float, exceeded: list[int],
                pvalues: FloatArray, tests: int) -> None:
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
        combined = -math.expm1(tests * math.log1p(-float(np.min(pvalues))))  # Šidák
        clean = combined >= CLEAR_LEVEL and not exceeded
        raised.clean[k] = raised.clean[k] + 1 if clean else 0
        if min(raised.clean) >= 1 and raised.clean[raised.scale] >= CLEAR_BLOCKS:
            self._raised = None


def block_statistics(below: NDArray[np.integer[Any]], n1: int) -> FloatArray:
    """KS statistic of each row's block against its reference, from the keys-below counts.

    ``below[j, i]``: reference keys (of n1) below the i-th record's key in column j. Keys are
    distinct, so sorted counts give the block's ECDF steps: in integers n1 * n2 * D, the block's
    ECDF above the reference's just after each block key, and below it just before.
    """
    n2 = int(below.shape[1])
    ordered = np.sort(below, axis=1).astype(np.int64, copy=False)  # n1 * n2 needs 64 bits
    j = np.arange(1, n2 + 1, dtype=np.int64)
    upper = np.max(j * n1 - ordered * n2, axis=1)
    lower = np.max(ordered * n2 - (j - 1) * n1, axis=1)
    result: FloatArray = np.maximum(np.maximum(upper, lower), 0) / (n1 * n2)
    return result
