"""The drift alarm (SPEC 6.9): false alarms in time, exceedance vs alpha, detection delay.

Parts, each printed as Markdown tables (docs/alarms.md quotes them):

0. **The KS p-value in the tail**: the exact two-sample tail (`ks_tail_exact`, no cap) over
   the screening value the detector uses (Stephens' corrected Kolmogorov limit), and over
   scipy's asymptotic ``kstwo`` at the rounded effective size, at 1e-3 .. 1e-10.

1. **False alarms in time.** Null streams (fresh samples of the population each reference was
   drawn from, never resampled reference rows) for several populations (normal, Student t with 3
   d.f., Poisson(3) integers with ties, a categorical column with a 1% class, and 20 columns
   mixing all four), 1 and 20 columns, Poisson arrivals at 1, 10 and 100 records/s, several
   fresh references per case. The target T is accelerated so that ~40 false alarms are expected
   per case; the alarm's arithmetic is scale-free (alpha = w * dt / T), so what matters is the
   per-block alpha, which part 2 checks at every level. Printed: measured mean time between
   raises / T, over the time the alarm was down (a raise is only possible then; at T = 30 d the
   alarm is up ~1e-5 of the time, here up to ~40%) and over all time, and exceedances (all
   blocks below their level, raised or not) per T.
   1b. **The accelerated gap closes**: one column, streams 4x and 16x longer for the same
   expected count: raises per down time approach exceedances as the per-block alpha falls.
2. **Per-block exceedance vs alpha.** For each block size with a 25,000-row reference: the
   share of blocks whose exact p-value is below alpha, for alpha = 0.1, 0.01, 0.001, pooled over
   fresh references (simulated, with the detector's own tie groups and statistic).
   2c. **KS and Mann-Whitney on the same window**: their joint null (distribution-free)
   simulated for windows of 100-1,600 records; f(l) = P(either p < l) / (2 l) and the fit of
   ``1 - f`` as a power of l that the detector's level uses (``exporter.alarm.pair_factor``).
   2b. **The rate given one reference**, exactly (a dynamic programme over the block's counts,
   no simulation), at alpha down to 1e-7: its mean over references (1 if the p-values are
   exact in the tail) and its spread (how far one fixed reference moves the rate).
3. **Detection delay** at the default target (30 d) at 10 records/s with 20 columns, records
   from the change to the raise, against (a) per-window ``drift_detected`` (KS p < 0.001 on a
   5,000-row sliding window recomputed every 250 records, "for: 15m"), (b) the same with
   Bonferroni over the columns, (c) a textbook two-sided CUSUM per column (k = 0.5 sd, the
   textbook design for a 1 sd shift), and (c') the same CUSUM tuned to a 0.25 sd shift (k =
   0.125 sd), the categorical column's CUSUMs on the indicator of each of its categories;
   thresholds set for the same false-alarm rate averaged over references (Siegmund's
   approximation, checked by simulation at an accelerated level). And the baselines' false
   alarms on a null stream.

    python bench/alarms.py [--quick] [--seed 7] [--json OUT] [--only PART]

``--quick`` (~20 s) runs smaller versions of each part, for tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.sparse.linalg import spsolve
from scipy.special import gammaln, ndtr, ndtri
from scipy.stats import kstwo

from exporter.alarm import (
    PAIR_EXPONENT,
    PAIR_OVERLAP,
    RANK_MAX_SHARE,
    AlarmConfig,
    AlarmDetector,
    ReferenceColumn,
    block_statistics,
    ks_tail_exact,
    ks_tail_screen,
    pair_factor,
    rank_tail_exact,
    window_levels,
)
from exporter.stats.chi2 import chi2_pvalue
from exporter.stats.ecdf import SortedSample
from exporter.stats.ks import ks_statistic

FloatArray = npt.NDArray[np.float64]
Draw = Callable[[np.random.Generator, int], npt.NDArray[Any]]

REFERENCE_ROWS = 25_000
DAY = 86400.0
RARE_SHARES = np.array([0.55, 0.25, 0.12, 0.07, 0.01])
PART3_SHARES = np.array([0.4, 0.3, 0.2, 0.1])


@dataclass(frozen=True)
class Population:
    """A column's population: how to draw fresh values, and its kind."""

    name: str
    kind: str
    draw: Draw


def _categorical(shares: FloatArray) -> Draw:
    def draw(rng: np.random.Generator, n: int) -> npt.NDArray[Any]:
        return rng.choice(shares.shape[0], size=n, p=shares).astype(np.int64)
    return draw


POPULATIONS = {
    "normal": Population("normal", "numerical", lambda r, n: r.normal(size=n)),
    "t3": Population("t3", "numerical", lambda r, n: r.standard_t(3, size=n)),
    "poisson": Population("poisson", "numerical",
                          lambda r, n: r.poisson(3.0, size=n).astype(np.float64)),
    "categorical": Population("categorical", "categorical", _categorical(RARE_SHARES)),
}


def columns_for(case: str, count: int) -> list[Population]:
    """The populations of a case's columns: one family, or the four mixed."""
    if case == "mixed":
        names = list(POPULATIONS)
        return [POPULATIONS[names[j % len(names)]] for j in range(count)]
    return [POPULATIONS[case]] * count


# ------------------------------------------------------------ part 0: the p-value in the tail


def part_tail(quick: bool) -> list[dict[str, Any]]:
    """Exact two-sample tail vs the screening value and vs scipy's asymptotic ``kstwo``."""
    sizes = [(25_000, 100), (25_000, 400), (25_000, 1600), (100_000, 6400), (5000, 400)]
    if quick:
        sizes = sizes[:2]
    targets = (1e-3, 1e-5, 1e-7, 1e-10)
    print("\n## 0. The KS p-value in the tail: exact / screening (exact / scipy asymptotic)\n")
    print("| reference N | block m | " + " | ".join(f"at {t:g}" for t in targets) + " |")
    print("|---|---|" + "---|" * len(targets))
    rows = []
    for n1, n2 in sizes:
        en = round(n1 * n2 / (n1 + n2))
        lcm = math.lcm(n1, n2)
        cells = []
        for t in targets:
            d = round(float(kstwo.isf(t, en)) * lcm) / lcm
            exact = ks_tail_exact(d, n1, n2, max_cells=math.inf)  # past the exporter's cap
            screen = exact / ks_tail_screen(d, n1, n2)
            asymp = exact / float(kstwo.sf(d, en))
            rows.append({"n1": n1, "n2": n2, "target": t, "exact_over_screen": screen,
                         "exact_over_scipy_asymp": asymp})
            cells.append(f"{screen:.3f} ({asymp:.3f})")
        print(f"| {n1:,} | {n2:,} | " + " | ".join(cells) + " |", flush=True)
    return rows


# ---------------------------------------------------------------- part 1: false alarms in time


def draw_columns(pops: list[Population], rng: np.random.Generator, n: int,
                 rho: float) -> list[npt.NDArray[Any]]:
    """Independent columns, or (rho > 0, normal columns) equicorrelated ones."""
    values = [p.draw(rng, n) for p in pops]
    if rho > 0.0:
        shared = rng.normal(size=n)
        values = [rho * shared + math.sqrt(1.0 - rho * rho) * v for v in values]
    return values


def null_run(pops: list[Population], rate: float, records: int, expected: float,
             rng: np.random.Generator, seed: int, chunk: int = 500,
             rho: float = 0.0) -> tuple[int, int, float, float, float]:
    """One fresh reference and one null stream: (raises, exceedances, time, down time, T)."""
    reference = [ReferenceColumn(f"c{j}", p.kind, v) for j, (p, v) in enumerate(
        zip(pops, draw_columns(pops, rng, REFERENCE_ROWS, rho), strict=True))]
    times = np.cumsum(rng.exponential(1.0 / rate, size=records))
    target = float(times[-1]) / expected
    detector = AlarmDetector(reference, AlarmConfig(false_alarm_every=target), seed=seed,
                             max_block_alpha=1.0, keep_results=True)
    values = draw_columns(pops, rng, records, rho)
    down = 0.0
    previous = 0.0
    raised = False
    for start in range(0, records, chunk):
        stop = min(start + chunk, records)
        detector.add([v[start:stop] for v in values], times[start:stop])
        now = float(times[stop - 1])
        if not raised:
            down += now - previous
        previous = now
        raised = detector.state().raised
    exceedances = sum(1 for r in detector.results if r.exceeded)
    return detector.state().raised_total, exceedances, float(times[-1]), down, target


def part_false_alarms(quick: bool, seed: int, cases: list[str] | None = None,
                      rates: tuple[float, ...] | None = None) -> list[dict[str, Any]]:
    """Measured mean time between false alarms / target, per case."""
    rows = []
    if quick:
        cases, rates = cases or ["normal", "categorical"], rates or (1.0, 100.0)
    cases = cases or ["normal", "t3", "poisson", "categorical", "mixed"]
    rates = rates or (1.0, 10.0, 100.0)
    print("\n## 1. False alarms in time (null streams, accelerated target)\n")
    print("| population | columns | records/s | references | raises | (down time per raise) / "
          "T | (time per raise) / T | exceedances per T |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(seed)
    totals = np.zeros(4)  # raises, exceedances, expected, down time in units of T
    for case in cases:
        for count in (1, 20):
            if case == "mixed" and count == 1:
                continue
            # ~32 expected per case, spread over references so that each window's budget stays
            # small (the largest window's alpha <= ~0.016): at larger budgets consecutive
            # windows exceed together and one raise stands for several exceedances (part 1b).
            refs, records, per_ref = (16, 400_000, 2.0) if count == 1 else (8, 200_000, 4.0)
            if quick:
                refs, records, per_ref = (4, 40_000, 6.0) if count == 1 else (2, 15_000, 4.0)
            for rate in rates:
                raises = exceed = 0
                elapsed = down = expected = 0.0
                for r in range(refs):
                    got = null_run(columns_for(case, count), rate, records, per_ref, rng,
                                   seed * 1000 + r)
                    raises += got[0]
                    exceed += got[1]
                    elapsed += got[2]
                    down += got[3]
                    expected += got[2] / got[4]
                row = {"population": case, "columns": count, "rate": rate, "references": refs,
                       "raises": raises, "expected": expected,
                       "ratio_down": (down / max(raises, 1)) / (elapsed / expected),
                       "ratio_all": (elapsed / max(raises, 1)) / (elapsed / expected),
                       "exceedances_per_target": exceed / expected}
                rows.append(row)
                totals += np.array([raises, exceed, expected, down / (elapsed / expected)])
                print(f"| {case} | {count} | {rate:g} | {refs} | {raises} (exp. "
                      f"{expected:.0f}) | {row['ratio_down']:.2f} | {row['ratio_all']:.2f} | "
                      f"{row['exceedances_per_target']:.2f} |", flush=True)
    raises, exceed, expected, down = totals
    print(f"| all cases | | | | {raises:.0f} (exp. {expected:.0f}) | {down / raises:.2f} | "
          f"{expected / raises:.2f} | {exceed / expected:.2f} |")
    # Outside the guarantee: 20 normal columns with correlation 0.8 (docs: "Assumptions").
    raises = exceed = 0
    expected = 0.0
    refs = 2 if quick else 4
    for r in range(refs):
        got = null_run(columns_for("normal", 20), 10.0, 12_000 if quick else 50_000, 10.0, rng,
                       seed * 1000 + 100 + r, rho=0.8)
        raises, exceed, expected = raises + got[0], exceed + got[1], expected + got[2] / got[4]
    print(f"\n20 normal columns with pairwise correlation 0.8, 10 records/s, {refs} references:"
          f" {exceed} exceedances for {expected:.0f} expected ({exceed / expected:.2f} per T), "
          f"{raises} raises.")
    rows.append({"population": "correlated 0.8", "columns": 20, "rate": 10.0,
                 "exceedances_per_target": exceed / expected, "raises": raises})
    return rows


def correlated_ratio(columns: int, rho: float, level: float) -> float:
    """P(any of J equicorrelated two-sided normal tests < level) / Šidák's 1 - (1 - level)^J.

    The statistics as jointly normal with pairwise correlation rho (a rank sum's correlation
    is Spearman's, 6/pi asin(rho/2), for normal columns of correlation rho); one-dimensional
    Gauss-Hermite quadrature over the shared factor.
    """
    c = float(-ndtri(level / 2.0))
    a, b = math.sqrt(rho), math.sqrt(1.0 - rho)

    def outside(x: float) -> float:  # P(some |Z_j| >= c | shared factor x) times x's density
        inside = float(ndtr((c - a * x) / b) - ndtr((-c - a * x) / b))
        return -math.expm1(columns * math.log(max(inside, 1e-300))) * math.exp(-x * x / 2.0)

    total = quad(outside, -12.0, 12.0, points=[-c / a, 0.0, c / a], limit=400,
                 epsabs=0.0, epsrel=1e-10)[0] / math.sqrt(2.0 * math.pi)
    return total / -math.expm1(columns * math.log1p(-level))


def part_correlation() -> list[dict[str, Any]]:
    """How far correlated columns bring the rate below the target, by level (no simulation).

    Extremes of a Gaussian copula with rho < 1 are asymptotically independent: the deeper the
    per-test level, the closer the smallest of J correlated p-values comes to Šidák's rate.
    """
    levels = (1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10)
    print("\n## 1c. Correlated columns: false-alarm rate / target by per-test level (20 columns, "
          "Mann-Whitney as jointly normal rank sums)\n")
    print("| correlation (Spearman) | " + " | ".join(f"{lv:g}" for lv in levels) + " |")
    print("|---|" + "---|" * len(levels))
    rows = []
    for rho in (0.5, 0.8, 0.9, 0.95):
        spearman = 6.0 / math.pi * math.asin(rho / 2.0)
        ratios = [correlated_ratio(20, spearman, lv) for lv in levels]
        rows.append({"rho": rho, "spearman": spearman, "levels": levels, "ratios": ratios})
        print(f"| {rho} ({spearman:.2f}) | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
    return rows


def part_acceleration(quick: bool, seed: int) -> list[dict[str, Any]]:
    """Raises per down time as the acceleration falls: the clustering vanishes as alpha -> 0."""
    rng = np.random.default_rng(seed + 6)
    refs, per_ref = (16, 8.0) if not quick else (3, 8.0)
    lengths = (25_000, 100_000, 400_000) if not quick else (25_000, 100_000)
    print("\n## 1b. Raises vs exceedances as the acceleration falls (one normal column, "
          f"{refs} references, {per_ref:g} expected per reference)\n")
    print("| records per reference | alpha of a 6,400-record window | raises | exceedances | "
          "(down time per raise) / T | exceedances per T |")
    print("|---|---|---|---|---|---|")
    rows = []
    for records in lengths:
        raises = exceed = 0
        down = expected = 0.0
        for r in range(refs):
            got = null_run([POPULATIONS["normal"]], 10.0, records, per_ref, rng, seed + r,
                           chunk=400)
            raises += got[0]
            exceed += got[1]
            down += got[3] / got[4]
            expected += got[2] / got[4]
        alpha = 3200 / 4 * per_ref / records  # tested every 3,200 records, 4 scales
        row = {"records": records, "alpha_6400": alpha, "raises": raises,
               "exceedances": exceed, "ratio_down": down / max(raises, 1),
               "exceedances_per_target": exceed / expected}
        rows.append(row)
        print(f"| {records:,} | {alpha:.3f} | {raises} | {exceed} | {row['ratio_down']:.2f} | "
              f"{row['exceedances_per_target']:.2f} |", flush=True)
    return rows


# --------------------------------------------------------- part 2: per-block exceedance vs alpha


def critical_numerator(n1: int, n2: int, alpha: float) -> int:
    """Smallest n1 * n2 * D (a multiple of gcd) whose exact p-value is below alpha."""
    g = math.gcd(n1, n2)
    product = n1 * n2

    def below(h: int) -> bool:
        return ks_tail_exact(h * g / product, n1, n2) < alpha

    lo, hi = 1, product // g  # in units of g; p(hi) = tiny
    while lo < hi:
        mid = (lo + hi) // 2
        if below(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo * g


def block_statistics_fresh(column: Any, pop: Population, m: int, blocks: int,
                           rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """KS statistics and Mann-Whitney U of fresh blocks of m records, as the detector's."""
    groups = column.group_of(pop.draw(rng, m * blocks))
    keys = groups + rng.random(groups.shape[0])
    below = np.searchsorted(column.keys.values, keys).reshape(blocks, m).astype(np.int64)
    return block_statistics(below, column.size), below.sum(axis=1).astype(np.float64)


def part_exceedance(quick: bool, seed: int) -> list[dict[str, Any]]:
    """Share of blocks with exact p < alpha: KS, Mann-Whitney, and either at Šidák's level."""
    alphas = (0.1, 0.01, 0.001, 0.0001)
    sizes = {100: 40_000, 400: 10_000, 1600: 2_000}
    refs = 10
    pops = ["normal", "poisson", "categorical"]
    if quick:
        sizes, refs, pops = {100: 2_000, 1600: 300}, 4, ["poisson", "categorical"]
    rng = np.random.default_rng(seed + 1)
    rows = []
    print("\n## 2. Per-block exceedance vs alpha (exact p-values, 25,000-row references)\n")
    print("KS / Mann-Whitney / either of the two at the pair's level (part 2c); Mann-Whitney "
          "only on blocks of up to 1/16 of the reference.\n")
    print("| population | block | blocks | " + " | ".join(
        f"rate / alpha at {a:g}" for a in alphas) + " |")
    print("|---|---|---|" + "---|" * len(alphas))
    n1 = REFERENCE_ROWS
    for name in pops:
        pop = POPULATIONS[name]
        for m, blocks in sizes.items():
            ranked = m * RANK_MAX_SHARE <= n1
            pair = {a: float(window_levels(np.array([a]), 0, 1)[0]) for a in alphas}
            crit = {a: critical_numerator(n1, m, a) / (n1 * m) for a in alphas}
            crit2 = {a: critical_numerator(n1, m, pair[a]) / (n1 * m) for a in alphas}
            rcrit = {a: rank_critical(n1, m, a) - n1 * m / 2.0 for a in alphas} if ranked else {}
            rcrit2 = ({a: rank_critical(n1, m, pair[a]) - n1 * m / 2.0 for a in alphas}
                      if ranked else {})
            hits = {a: [0, 0, 0] for a in alphas}
            for r in range(refs):
                detector = AlarmDetector(
                    [ReferenceColumn("c", pop.kind, pop.draw(rng, REFERENCE_ROWS))],
                    AlarmConfig(), seed=seed + r)
                column = detector._columns[0]  # the bench measures the detector's own test
                d, u = block_statistics_fresh(column, pop, m, blocks, rng)
                dist = np.abs(u - n1 * m / 2.0) + 0.5  # >= the critical distance: p <= level
                for a in alphas:
                    hits[a][0] += int(np.sum(d >= crit[a]))
                    if ranked:
                        hits[a][1] += int(np.sum(dist >= rcrit[a]))
                        hits[a][2] += int(np.sum((d >= crit2[a]) | (dist >= rcrit2[a])))
            row: dict[str, Any] = {"population": name, "block": m, "blocks": blocks * refs}
            cells = []
            for a in alphas:
                ratios = [h / (blocks * refs) / a for h in hits[a]]
                row[f"ratio_{a:g}"] = ratios
                cells.append(" / ".join(f"{x:.2f}" for x in ratios) if ranked
                             else f"{ratios[0]:.2f} / - / -")
            rows.append(row)
            print(f"| {name} | {m} | {blocks * refs} | " + " | ".join(cells) + " |", flush=True)
    return rows


# ------------------------------------------ part 2c: the KS and Mann-Whitney pair's joint null


def pair_pvalues(n1: int, n2: int, blocks: int,
                 rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """Exact KS and Mann-Whitney p-values of null windows of n2 records, references of n1.

    Distribution-free (ranks): uniforms stand for any continuous population (and for tied
    ones after the detector's random tie-break). A fresh reference per 250,000 values. The
    exact p-values are read off grids of the statistics (``ks_tail_exact``,
    ``rank_tail_exact``), interpolated in log p.
    """
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
    xs = np.linspace(0.0, 7.5 * sd, 400)
    log_mw = np.log(np.maximum([rank_tail_exact(n1 * n2 / 2 + x + 0.5, n1, n2) if x > 0 else 1.0
                                for x in xs], 1e-300))
    s = math.sqrt(n1 * n2 / (n1 + n2))
    ds = np.linspace(0.0, 3.6 / s, 120)
    log_ks = np.log(np.maximum([ks_tail_exact(d, n1, n2) for d in ds], 1e-300))
    ks, mw = [], []
    per_reference = max(1, 250_000 // n2)
    for at in range(0, blocks, per_reference):
        reference = np.sort(rng.random(n1))
        below = np.searchsorted(reference, rng.random((min(per_reference, blocks - at), n2)))
        d = block_statistics(below, n1)
        x = np.abs(below.sum(axis=1, dtype=np.int64) - n1 * n2 / 2.0) - 0.5
        ks.append(np.exp(np.interp(d, ds, log_ks)))
        mw.append(np.exp(np.interp(x, xs, log_mw)))
    return np.concatenate(ks), np.concatenate(mw)


def part_pair(quick: bool, seed: int) -> dict[str, Any]:
    """f(l) = P(KS or Mann-Whitney p < l) / (2 l), simulated; the fit the detector uses."""
    levels = [10 ** (-x / 2) for x in range(3, 11)]
    sizes = [(25_000, 100, 4_000_000), (1_600, 100, 4_000_000), (25_000, 400, 2_000_000),
             (100_000, 1_600, 500_000)]
    if quick:
        sizes = [(1_600, 100, 200_000)]
    rng = np.random.default_rng(seed + 3)
    print("\n## 2c. KS and Mann-Whitney on the same window: f(l) = P(either p < l) / (2 l)\n")
    print("| reference | window | windows | " + " | ".join(f"{lv:.0e}" for lv in levels) + " |")
    print("|---|---|---|" + "---|" * len(levels))
    rows: list[dict[str, Any]] = []
    for n1, n2, blocks in sizes:
        ks, mw = pair_pvalues(n1, n2, blocks, rng)
        cells = []
        for level in levels:
            a, b = int(np.sum(ks < level)), int(np.sum(mw < level))
            union = int(np.sum((ks < level) | (mw < level)))
            rows.append({"n1": n1, "n2": n2, "blocks": blocks, "level": level, "ks": a,
                         "mw": b, "union": union})
            cells.append(f"{union / max(a + b, 1):.3f} ({union})")
        print(f"| {n1:,} | {n2:,} | {blocks:,} | " + " | ".join(cells) + " |", flush=True)
    # Fit log(1 - f) = log A + b log l, each level weighted by its union count.
    pooled = {}
    for row in rows:
        key = row["level"]
        got = pooled.setdefault(key, [0, 0])
        got[0] += row["union"]
        got[1] += row["ks"] + row["mw"]
    xs = np.array([math.log(lv) for lv, (u, t) in pooled.items() if 0 < u < t])
    ys = np.array([math.log(1.0 - u / t) for lv, (u, t) in pooled.items() if 0 < u < t])
    ws = np.array([u for lv, (u, t) in pooled.items() if 0 < u < t], dtype=np.float64)
    slope, intercept = np.polyfit(xs, ys, 1, w=np.sqrt(ws))
    fit = {"overlap": math.exp(intercept), "exponent": slope}
    print(f"\nFit: f(l) = 1 - {fit['overlap']:.3f} l**{fit['exponent']:.3f} "
          f"(the detector uses {PAIR_OVERLAP} and {PAIR_EXPONENT}).")
    print("| level | simulated f (all sizes) | the detector's f |")
    print("|---|---|---|")
    for lv, (u, t) in pooled.items():
        print(f"| {lv:.0e} | {u / max(t, 1):.3f} ({u}) | "
              f"{float(pair_factor(np.array(lv))):.3f} |")
    return {"rows": rows, "fit": fit}


# ------------------------------------------- part 2b: the conditional rate given one reference


def conditional_exceedance(u: FloatArray, m: int, numerator: int) -> float:
    """P(n1 n2 D >= numerator | the reference), exactly, for a block of m records.

    Distribution-free: after the probability integral transform the reference is N sorted
    uniforms ``u`` and the block m uniforms. With K_i the block's count below u_i, D stays
    below d iff m (i/N - d) < K_i and K_i < m ((i-1)/N + d) at every i; K_i is built up
    interval by interval (the count in the next interval given K is binomial), checking the
    bounds only where they change: ~2m steps over the ~2md+1 feasible counts.
    """
    n = u.shape[0]
    i = np.arange(1, n + 1, dtype=np.int64)
    lo = np.maximum((m * i - numerator) // n + 1, 0)
    hi = np.minimum((m * (i - 1) + numerator - 1) // n, m)
    check = np.zeros(n, dtype=bool)
    check[0] = check[-1] = True
    check[1:] |= lo[1:] != lo[:-1]  # the first boundary of each run of equal lower bounds
    check[:-1] |= hi[1:] != hi[:-1]  # the last of each run of equal upper bounds
    log_factorial = gammaln(np.arange(1, m + 2, dtype=np.float64))  # log k!, k = 0..m
    prob = np.array([1.0])
    first = 0
    previous = 0.0
    for t in np.flatnonzero(check):
        q = (u[t] - previous) / (1.0 - previous)
        counts = np.arange(first, first + prob.shape[0])
        new = np.arange(max(int(lo[t]), first), int(hi[t]) + 1)
        if new.size == 0:
            return 1.0
        # Binomial(m - count, q) probabilities of new - count more records, from a table of
        # log factorials (scipy.stats.binom.pmf is ~10x slower here).
        x = new[:, None] - counts[None, :]
        rest = (m - counts)[None, :]
        valid = (x >= 0) & (x <= rest)
        xs = np.where(valid, x, 0)
        log_pmf = (log_factorial[rest] - log_factorial[xs] - log_factorial[rest - xs]
                   + xs * math.log(q) + (rest - xs) * math.log1p(-q))
        step = np.where(valid, np.exp(log_pmf), 0.0)
        prob = step @ prob
        first = int(new[0])
        previous = float(u[t])
    return 1.0 - float(prob.sum())


def _conditional_rank_tail(spacings: FloatArray, m: int, x: float) -> float:
    """P(U >= x) given the reference: U a sum of m i.i.d. counts with P(k) = spacings[k].

    The Lugannani-Rice saddlepoint of that discrete law (the counts' lattice step, 1, is
    negligible next to U's standard deviation, ~1e5).
    """
    k = np.arange(spacings.shape[0], dtype=np.float64)
    mean = float(np.sum(spacings * k))
    scale = float(k[-1])

    def cgf(s: float) -> tuple[float, float, float]:
        t = s * (k - mean) / scale
        top = float(t.max())
        w = spacings * np.exp(t - top)
        total = float(w.sum())
        m1 = float(np.sum(w * (k - mean))) / total
        m2 = float(np.sum(w * (k - mean) ** 2)) / total
        return math.log(total) + top, m1, m2 - m1 * m1

    target = x / m - mean  # per count, centred
    if target <= 0:
        return 1.0
    s = 0.0
    for _ in range(100):
        _, m1, var = cgf(s)
        step = (m1 - target) / (var / scale)
        s -= step
        if abs(step) <= 1e-12 * max(abs(s), 1e-300):
            break
    value, _, var = cgf(s)
    theta = s / scale  # the saddlepoint in U's own units
    w_ = math.sqrt(max(2.0 * m * (theta * target - value), 1e-300))
    v = theta * math.sqrt(m * var)
    return float(norm_sf(w_) + math.exp(-w_ * w_ / 2) / math.sqrt(2 * math.pi) * (1 / v - 1 / w_))


def norm_sf(z: float) -> float:
    """Upper tail of the standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def rank_critical(n1: int, m: int, level: float) -> float:
    """The U whose exact two-sided Mann-Whitney p-value is ``level``."""
    mean, sd = n1 * m / 2.0, math.sqrt(n1 * m * (n1 + m + 1) / 12.0)
    return float(brentq(lambda u: math.log(rank_tail_exact(u, n1, m)) - math.log(level),
                        mean + sd, mean + 12.0 * sd))


def part_conditional(quick: bool, seed: int) -> list[dict[str, Any]]:
    """How far one fixed 25,000-row reference moves a window's exceedance rate, exactly."""
    rng = np.random.default_rng(seed + 4)
    plan = {100: 20, 400: 12, 1600: 6, 6400: 2} if not quick else {100: 4, 400: 2}
    # The default's per-test levels: 30 d, 10 records/s, one column, four scales, a window
    # every half window, two tests (KS, Mann-Whitney) per column.
    config = {m: (m / 2.0) / 4.0 / (10.0 * 30 * DAY) / 2.0 for m in plan}
    levels = {m: (1e-3, 1e-5, 1e-7, config[m]) if m < 6400 else (config[m],) for m in plan}
    crit = {(m, a): critical_numerator(REFERENCE_ROWS, m, a) for m in plan for a in levels[m]}
    exact = {key: ks_tail_exact(h / (REFERENCE_ROWS * key[0]), REFERENCE_ROWS, key[0])
             for key, h in crit.items()}
    rank_crit = {key: rank_critical(REFERENCE_ROWS, key[0], key[1]) for key in crit}
    rank_exact = {key: rank_tail_exact(u, REFERENCE_ROWS, key[0]) for key, u in rank_crit.items()}
    ratios: dict[tuple[int, float], list[float]] = {key: [] for key in crit}
    rank_ratios: dict[tuple[int, float], list[float]] = {key: [] for key in crit}
    for r in range(max(plan.values())):
        u = np.sort(rng.random(REFERENCE_ROWS))  # a reference, after F: the same for all m
        spacings = np.diff(np.concatenate(([0.0], u, [1.0])))
        for m, refs in plan.items():
            if r < refs:
                for a in levels[m]:
                    got = conditional_exceedance(u, m, crit[(m, a)])
                    ratios[(m, a)].append(got / exact[(m, a)])
                    x = rank_crit[(m, a)]
                    both = (_conditional_rank_tail(spacings, m, x)
                            + _conditional_rank_tail(spacings[::-1], m, x))
                    rank_ratios[(m, a)].append(both / rank_exact[(m, a)])
    print("\n## 2b. The rate given one reference (exact; 25,000-row references)\n")
    print("| test | window | references | alpha | mean over references / alpha | spread "
          "(sd / alpha) | lowest, highest / alpha |")
    print("|---|---|---|---|---|---|---|")
    rows = []

    def line(test: str, label: str, refs: int, a: str, r: FloatArray) -> None:
        row = {"test": test, "block": label, "references": refs, "alpha": a,
               "mean": float(r.mean()), "sd": float(r.std(ddof=1)), "min": float(r.min()),
               "max": float(r.max())}
        rows.append(row)
        print(f"| {test} | {label} | {refs} | {a} | {row['mean']:.3f} | {row['sd']:.3f} | "
              f"{row['min']:.2f}, {row['max']:.2f} |", flush=True)

    for test, table in (("KS", ratios), ("Mann-Whitney", rank_ratios)):
        for m, refs in plan.items():
            for a in levels[m]:
                line(test, str(m), refs, f"{a:.2g}" + (" (30 d)" if a == config[m] else ""),
                     np.array(table[(m, a)]))
    common = min(plan.values())
    # Each window's budget is proportional to its size (a window every m / 2 records), so the
    # one-column model's rate is the mean over scales and both tests.
    combined = np.mean([t[(m, config[m])][:common] for m in plan for t in (ratios, rank_ratios)],
                       axis=0)
    line("both", "all (one column, 30 d, 10/s)", common, "-", combined)
    return rows


# -------------------------------------------------------------------- part 3: detection delay


@dataclass(frozen=True)
class Scenario:
    """A change applied to the stream from the change point on."""

    name: str
    change: Callable[[list[npt.NDArray[Any]], np.random.Generator], None]


def _shift(sd: float) -> Callable[[list[npt.NDArray[Any]], np.random.Generator], None]:
    def change(values: list[npt.NDArray[Any]], rng: np.random.Generator) -> None:
        values[0] += sd
    return change


def _scale(values: list[npt.NDArray[Any]], rng: np.random.Generator) -> None:
    values[0] *= 1.5


def _share(values: list[npt.NDArray[Any]], rng: np.random.Generator) -> None:
    shares = np.array([0.3, 0.3, 0.2, 0.2])  # category 3: 10% -> 20%, taken from category 0
    values[-1] = rng.choice(4, size=values[-1].shape[0], p=shares).astype(np.int64)


SCENARIOS = [
    Scenario("shift 0.1 sd", _shift(0.1)),
    Scenario("shift 0.25 sd", _shift(0.25)),
    Scenario("shift 0.5 sd", _shift(0.5)),
    Scenario("scale x1.5", _scale),
    Scenario("share 10% -> 20%", _share),
]


class PerWindow:
    """drift_detected per column on a sliding window, every ``step`` records, with "for"."""

    def __init__(self, reference: list[npt.NDArray[Any]], window: int, step: int,
                 hold: int, levels: tuple[float, ...]) -> None:
        self.numerical = [SortedSample(np.sort(r)) for r in reference[:-1]]
        self.ref_counts = np.bincount(reference[-1], minlength=4)
        self.window, self.step, self.hold, self.levels = window, step, hold, levels
        self.since: list[list[int | None]] = [[None] * len(reference) for _ in levels]
        self.fired: list[int | None] = [None] * len(levels)

    def evaluate(self, history: list[npt.NDArray[Any]], at: int) -> None:
        """Recompute at record ``at`` (window = the last ``window`` records of ``history``)."""
        pvalues = []
        for j, ref in enumerate(self.numerical):
            win = np.sort(history[j][at - self.window:at])
            d = ks_statistic(ref, win)
            pvalues.append(ks_tail_screen(d, ref.size, self.window))
        counts = np.bincount(history[-1][at - self.window:at], minlength=4)
        pvalues.append(chi2_pvalue(self.ref_counts, counts))
        for i, level in enumerate(self.levels):
            for j, p in enumerate(pvalues):
                if p < level:
                    start = self.since[i][j]
                    if start is None:
                        self.since[i][j] = at
                    elif at - start >= self.hold and self.fired[i] is None:
                        self.fired[i] = at
                else:
                    self.since[i][j] = None


def siegmund_rate(h: float, drift: FloatArray) -> FloatArray:
    """1 / ARL of a one-sided CUSUM with increments of mean ``drift`` (< 0), variance 1."""
    b = h + 1.166
    arl = (np.exp(-2.0 * drift * b) + 2.0 * drift * b - 1.0) / (2.0 * drift**2)
    rate: FloatArray = 1.0 / arl
    return rate


def cusum_threshold(k: float, columns: int, per_record: float, reference_rows: int) -> float:
    """h such that the reference-averaged false-alarm rate per record of the J CUSUMs is given.

    The reference mean is off by e ~ N(0, 1/N) sd: the increments' mean is -k + e on one side
    and -k - e on the other; the rate is averaged over e (Gauss-Hermite, 40 nodes).
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    e = nodes / math.sqrt(reference_rows)
    w = weights / weights.sum()

    def excess(h: float) -> float:
        rate = np.sum(w * (siegmund_rate(h, -k + e) + siegmund_rate(h, -k - e)))
        return math.log(columns * float(rate)) - math.log(per_record)

    return float(brentq(excess, 0.1, 500.0))


def bernoulli_cusum_rate(h: float, k: float, share: float, cells: int = 4000) -> float:
    """1 / ARL of a one-sided CUSUM on a standardised 0/1 indicator (Brook and Evans 1972).

    The CUSUM ``S = max(0, S + z - k)`` on a grid of ``cells`` steps up to h is a Markov chain;
    the ARL from 0 solves ``(I - Q) L = 1`` over the states below h (the textbook method for a
    CUSUM's run length with non-normal increments).
    """
    up = (1.0 - share) / math.sqrt(share * (1.0 - share)) - k
    down = -share / math.sqrt(share * (1.0 - share)) - k
    if up <= 0.0:
        return 0.0  # never moves up: never fires
    step = h / cells
    if round(up / step) <= 0:
        return 0.0  # up-steps below the grid's resolution: it never reaches h in practice
    states = np.arange(cells)
    rows, cols, probs = [], [], []
    for inc, prob in ((up, share), (down, 1.0 - share)):
        target = np.maximum(states + round(inc / step), 0)
        keep = target < cells
        rows.append(states[keep])
        cols.append(target[keep])
        probs.append(np.full(int(keep.sum()), prob))
    q = sparse.csr_matrix((np.concatenate(probs), (np.concatenate(rows),
                                                   np.concatenate(cols))), shape=(cells, cells))
    arl = spsolve((sparse.identity(cells, format="csr") - q).tocsc(), np.ones(cells))
    return 1.0 / float(arl[0])


def indicator_threshold(h: float, k: float, share: float) -> float:
    """The threshold of a CUSUM on a standardised 0/1 indicator with the normal one's rate.

    Its increments are skewed (a rare category's indicator jumps up rarely and far), so at the
    normal CUSUM's h it would page at another rate; this h gives the same rate per record as
    the normal side's at h (Siegmund), by the exact Markov-chain run length. Infinite when no
    increment is positive (that side can never fire).
    """
    if (1.0 - share) / math.sqrt(share * (1.0 - share)) <= k * (1.0 + 1e-9):
        return math.inf
    goal = math.log(float(siegmund_rate(h, np.array([-k]))[0]))

    def excess(x: float) -> float:
        return math.log(max(bernoulli_cusum_rate(x, k, share), 1e-300)) - goal

    if excess(0.5) <= 0.0:
        return 0.5 if bernoulli_cusum_rate(0.5, k, share) > 0.0 else math.inf
    high = h
    while excess(high) > 0.0:
        high *= 1.5
    return float(brentq(excess, 0.5, high, xtol=1e-3))


def cusum_first(z: FloatArray, k: float, h: float, h_down: float | None = None) -> int | None:
    """Index of the first record where a two-sided CUSUM on z reaches h (None if never).

    ``h_down``: the threshold of the downward side when it differs (a skewed indicator).
    """
    best = None
    for sign, limit in ((1.0, h), (-1.0, h if h_down is None else h_down)):
        if not math.isfinite(limit):
            continue
        walk = np.concatenate(([0.0], np.cumsum(sign * z - k)))
        s = walk - np.minimum.accumulate(walk)
        hit = np.flatnonzero(s[1:] >= limit)
        if hit.size and (best is None or hit[0] < best):
            best = int(hit[0])
    return best


def check_cusum(k: float, seed: int, quick: bool) -> str:
    """Simulated vs predicted false-alarm rate at an accelerated level (fresh references)."""
    rng = np.random.default_rng(seed + 5)
    per_record = 1.0 / 4000.0  # one column; mean run length 4,000 records
    h = cusum_threshold(k, 1, per_record, REFERENCE_ROWS)
    runs = 60 if quick else 300
    lengths = []
    for _ in range(runs):
        ref = rng.normal(size=REFERENCE_ROWS)
        mu, sd = ref.mean(), ref.std(ddof=1)
        z = (rng.normal(size=200_000) - mu) / sd
        first = cusum_first(z, k, h)
        lengths.append(first + 1 if first is not None else 200_000)
    measured = float(np.mean(lengths))
    return (f"CUSUM check (k = {k}, h = {h:.2f}, {runs} runs with fresh references): mean run "
            f"length {measured:.0f} records, predicted {1 / per_record:.0f}")


def stream(rng: np.random.Generator, n: int) -> list[npt.NDArray[Any]]:
    """20 columns: 19 standard normal, 1 categorical (shares 40/30/20/10%)."""
    values: list[npt.NDArray[Any]] = [rng.normal(size=n) for _ in range(19)]
    values.append(rng.choice(4, size=n, p=PART3_SHARES).astype(np.int64))
    return values


@dataclass(frozen=True)
class DelaySetup:
    """Part 3's fixed settings."""

    rate: float = 10.0
    target: float = 30 * DAY
    window: int = 5000
    step: int = 250
    columns: int = 20
    # CUSUM reference values (sd): (c) the textbook design (Montgomery: k = 0.5 sd, for a 1 sd
    # shift) and (c') one tuned to a 0.25 sd shift, the middle of the scenarios.
    designs: tuple[float, ...] = (0.5, 0.125)
    cap: int = 150_000

    @property
    def cusums(self) -> int:
        """CUSUMs sharing the budget: one per numerical column, one per category."""
        return self.columns - 1 + PART3_SHARES.shape[0]

    @property
    def hold(self) -> int:
        """"for: 15m" in records at this traffic."""
        return int(15 * 60 * self.rate)


def one_delay(setup: DelaySetup, scenario: Scenario, thresholds: tuple[float, ...],
              rng: np.random.Generator, seed: int) -> list[float]:
    """Records from the change to the alarm, per-window, per-window Bonferroni, CUSUMs."""
    reference = stream(rng, REFERENCE_ROWS)
    ref_cols = [ReferenceColumn(f"c{j}", "numerical" if j < 19 else "categorical", v)
                for j, v in enumerate(reference)]
    detector = AlarmDetector(ref_cols, AlarmConfig(false_alarm_every=setup.target), seed=seed)
    change_at = setup.window + 1000 + int(rng.integers(0, 1600))
    total = change_at + setup.cap
    values = stream(rng, total)
    after = [v[change_at:] for v in values]
    scenario.change(after, rng)
    values = [np.concatenate((v[:change_at], a)) for v, a in zip(values, after, strict=True)]
    times = np.arange(total) / setup.rate
    alarm_delay = math.inf
    for start in range(0, total, 100):  # the alarm, fed 100 records at a time until it raises
        detector.add([v[start:start + 100] for v in values], times[start:start + 100])
        state = detector.state()
        if state.raised and state.raised_at is not None:
            alarm_delay = round(state.raised_at * setup.rate) + 1 - change_at
            break
    per_window = PerWindow(reference, setup.window, setup.step, setup.hold,
                           (0.001, 0.001 / setup.columns))
    for at in range(setup.window, total + 1, setup.step):
        per_window.evaluate(values, at)
        if all(f is not None for f in per_window.fired):
            break
    window_delays = [(f - change_at) if f is not None else math.inf for f in per_window.fired]
    cusum_delays = []
    for k, h in zip(setup.designs, thresholds, strict=True):
        hits = []
        for j in range(setup.columns - 1):
            z = (values[j] - reference[j].mean()) / reference[j].std(ddof=1)
            hits.append(cusum_first(z, k, h))
        for category in range(PART3_SHARES.shape[0]):  # a deployment cannot know which moves
            share = float(np.mean(reference[-1] == category))
            z = ((values[-1] == category) - share) / math.sqrt(share * (1 - share))
            # Each side is the indicator of "in c" or "not in c": each gets its own threshold.
            hits.append(cusum_first(z, k, indicator_threshold(h, k, share),
                                    indicator_threshold(h, k, 1.0 - share)))
        found = [first for first in hits if first is not None]
        cusum_delays.append((min(found) + 1 - change_at) if found else math.inf)
    return [alarm_delay, *window_delays, *cusum_delays]


def part_delay(quick: bool, seed: int, repeats: int = 9) -> dict[str, Any]:
    """Records from change to raise for the alarm and the three baselines."""
    setup = DelaySetup(cap=30_000 if quick else 150_000)
    repeats = 1 if quick else repeats
    scenarios = SCENARIOS[1:4:2] + SCENARIOS[4:] if quick else SCENARIOS
    per_record = 1.0 / (setup.target * setup.rate)
    thresholds = tuple(cusum_threshold(k, setup.cusums, per_record, REFERENCE_ROWS)
                       for k in setup.designs)
    print(f"\n## 3. Detection delay (records from change to raise; {setup.columns} columns, "
          f"{setup.rate:g} records/s, target 30 d, reference {REFERENCE_ROWS:,} rows, median of "
          f"{repeats}, capped at {setup.cap:,})\n")
    for k, h in zip(setup.designs, thresholds, strict=True):
        rare = indicator_threshold(h, k, float(PART3_SHARES[3]))
        print(check_cusum(k, seed, quick) + f"; at 30 d over {setup.cusums} CUSUMs: h = "
              f"{h:.1f} (the 10% category's indicator: {rare:.1f})")
    print("\n| change | alarm | (a) per-window p < 0.001, for 15m | (b) per-window, Bonferroni "
          "| (c) CUSUM, textbook k = 0.5 sd | (c') CUSUM tuned to 0.25 sd |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(seed + 2)
    results: dict[str, Any] = {"cusum_h": dict(zip(("textbook", "tuned"), thresholds,
                                                   strict=True)), "rows": []}
    for scenario in scenarios:
        delays = [one_delay(setup, scenario, thresholds, rng, seed + rep)
                  for rep in range(repeats)]
        medians = [float(np.median([d[i] for d in delays])) for i in range(5)]
        results["rows"].append({"change": scenario.name, "alarm": medians[0],
                                "per_window": medians[1], "per_window_bonferroni": medians[2],
                                "cusum": medians[3], "cusum_tuned": medians[4]})
        cells = [(f"{m:,.0f}" if math.isfinite(m) else f"> {setup.cap:,}") for m in medians]
        print(f"| {scenario.name} | " + " | ".join(cells) + " |", flush=True)
    results["null"] = null_baselines(quick, seed, setup)
    return results


def null_baselines(quick: bool, seed: int, setup: DelaySetup) -> list[dict[str, Any]]:
    """How often the per-window baselines fire on null streams (first firing per stream).

    At the benchmark's traffic and at a tenth of it: "for: 15m" holds for fewer records at
    lower traffic, so the same rule pages more often per hour.
    """
    rng = np.random.default_rng(seed + 3)
    streams = 1 if quick else 6
    length = 15_000 if quick else 60_000
    results = []
    for rate in (setup.rate, setup.rate / 10.0):
        at_rate = dataclasses.replace(setup, rate=rate)
        fired = [0, 0]
        watched = [0.0, 0.0]
        for _ in range(streams):
            reference = stream(rng, REFERENCE_ROWS)
            values = stream(rng, length)
            per_window = PerWindow(reference, at_rate.window, at_rate.step, at_rate.hold,
                                   (0.001, 0.001 / at_rate.columns))
            for at in range(at_rate.window, length + 1, at_rate.step):
                per_window.evaluate(values, at)
                if all(f is not None for f in per_window.fired):
                    break
            for i, f in enumerate(per_window.fired):
                fired[i] += f is not None
                watched[i] += ((f if f is not None else length) - at_rate.window) / rate
        hours = [(f"one per {w / f / 3600:.1f} h" if f else f"none in {w / 3600:.1f} h")
                 for f, w in zip(fired, watched, strict=True)]
        print(f"\nPer-window baselines on null streams ({streams} x {length:,} records at "
              f"{rate:g}/s, 'for: 15m' = {at_rate.hold:,} records, time to the first firing): "
              f"p < 0.001 fired in {fired[0]} of {streams} streams ({hours[0]} watched), "
              f"Bonferroni in {fired[1]} of {streams} ({hours[1]}).", flush=True)
        results.append({"rate": rate, "streams": streams, "records": length, "fired": fired,
                        "watched_seconds": watched})
    return results


def pool_false_alarms(files: list[Path]) -> list[dict[str, Any]]:
    """Part 1's tables of several runs (other seeds: other references and streams), pooled."""
    pooled: dict[tuple[str, int, float], dict[str, float]] = {}
    for path in files:
        for row in json.loads(path.read_text()).get("false_alarms", []):
            if "expected" not in row:
                continue  # the correlated case: outside the guarantee
            key = (row["population"], row["columns"], row["rate"])
            acc = pooled.setdefault(key, dict.fromkeys(
                ("references", "raises", "expected", "down", "exceed"), 0.0))
            acc["references"] += row["references"]
            acc["raises"] += row["raises"]
            acc["expected"] += row["expected"]
            acc["down"] += row["ratio_down"] * row["raises"]  # down time in units of T
            acc["exceed"] += row["exceedances_per_target"] * row["expected"]
    print(f"\n## 1. False alarms in time, {len(files)} runs pooled\n")
    print("| population | columns | records/s | references | raises | (down time per raise) / "
          "T | (time per raise) / T | exceedances per T |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    total = dict.fromkeys(("raises", "expected", "down", "exceed"), 0.0)
    for (population, columns, rate), acc in pooled.items():
        raises = max(acc["raises"], 1.0)
        row = {"population": population, "columns": columns, "rate": rate,
               "references": int(acc["references"]), "raises": int(acc["raises"]),
               "expected": acc["expected"], "ratio_down": acc["down"] / raises,
               "ratio_all": acc["expected"] / raises,
               "exceedances_per_target": acc["exceed"] / acc["expected"]}
        rows.append(row)
        for name in total:
            total[name] += acc[name]
        print(f"| {population} | {columns} | {rate:g} | {row['references']} | {row['raises']} "
              f"(exp. {acc['expected']:.0f}) | {row['ratio_down']:.2f} | {row['ratio_all']:.2f} "
              f"| {row['exceedances_per_target']:.2f} |")
    print(f"| all cases | | | | {total['raises']:.0f} (exp. {total['expected']:.0f}) | "
          f"{total['down'] / total['raises']:.2f} | {total['expected'] / total['raises']:.2f} | "
          f"{total['exceed'] / total['expected']:.2f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the three parts; print Markdown tables; optionally write the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small version (~20 s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    parts = ("tail", "false-alarms", "acceleration", "correlation", "exceedance", "pair",
             "conditional", "delay")
    parser.add_argument("--only", choices=parts, default=None)
    parser.add_argument("--cases", nargs="+", default=None, help="part 1's populations")
    parser.add_argument("--rates", nargs="+", type=float, default=None,
                        help="part 1's records/s")
    parser.add_argument("--repeats", type=int, default=9, help="runs per change in part 3")
    parser.add_argument("--pool", nargs="+", type=Path, default=None,
                        help="only pool part 1 of these --json files (runs of other seeds)")
    args = parser.parse_args(argv)
    if args.pool:
        pooled = pool_false_alarms(args.pool)
        if args.json is not None:
            args.json.write_text(json.dumps({"false_alarms": pooled}, indent=1, default=float))
        return 0
    started = time.perf_counter()
    out: dict[str, Any] = {"quick": args.quick}
    if args.only in (None, "tail"):
        out["tail"] = part_tail(args.quick)
    if args.only in (None, "false-alarms"):
        out["false_alarms"] = part_false_alarms(args.quick, args.seed, args.cases,
                                                args.rates)
    if args.only in (None, "acceleration"):
        out["acceleration"] = part_acceleration(args.quick, args.seed)
    if args.only in (None, "correlation"):
        out["correlation"] = part_correlation()
    if args.only in (None, "exceedance"):
        out["exceedance"] = part_exceedance(args.quick, args.seed)
    if args.only in (None, "pair"):
        out["pair"] = part_pair(args.quick, args.seed)
    if args.only in (None, "conditional"):
        out["conditional"] = part_conditional(args.quick, args.seed)
    if args.only in (None, "delay"):
        out["delay"] = part_delay(args.quick, args.seed, args.repeats)
    out["seconds"] = time.perf_counter() - started
    print(f"\n({out['seconds']:.0f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
