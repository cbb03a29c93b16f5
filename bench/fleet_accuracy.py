"""Accuracy of the fleet-wide "bucketed KS" against the exact two-sample KS statistic.

A fleet of replicas cannot merge raw windows, only the cumulative histograms that each exporter
exports per numerical feature. The buckets' upper bounds are the reference data's quantiles
``np.quantile(reference, [k / B for k in 1..B-1])`` (numpy's default method, duplicates
dropped), then ``+Inf``. Prometheus sums the bucket counts across replicas, and the bucketed KS
is ``max over the bounds le of |F_window(le) - F_reference(le)|``, F being the empirical CDF
(share of values <= le). It evaluates the CDF difference at a subset of points, so it is a lower
bound of ``scipy.stats.ks_2samp(reference, window).statistic``; the gap is at most the largest
share of the reference in one bucket.

For each seeded scenario and each number of buckets B, the script prints the exact KS, the
bucketed KS, their ratio, the gap, that bound, and whether the exact test (p < 0.001) and the
bucketed rule ``bucketed > 1.949 * sqrt((n + m) / (n * m))`` (the asymptotic critical value at
alpha = 0.001) flag drift. Then per B: the worst ratio over the drift scenarios and the largest
gap. Output is Markdown, to paste into the docs.

    python bench/fleet_accuracy.py [--seed 20240601] [--buckets 10 20 50 100] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]
Draw = Callable[[np.random.Generator, np.random.Generator], tuple[FloatArray, FloatArray]]

REFERENCE_SIZE = 100_000
WINDOW_SIZE = 100_000
SMALL_WINDOW_SIZE = 1_000
DEFAULT_BUCKETS = (10, 20, 50, 100)
HEADLINE_BUCKETS = (20, 50, 100)
DEFAULT_SEED = 20240601
ALPHA = 0.001
CRITICAL_COEFFICIENT = 1.949  # sqrt(-ln(ALPHA / 2) / 2): asymptotic KS critical value at ALPHA
TOLERANCE = 1e-12
TAIL_QUANTILE = float(stats.norm.ppf(0.98))  # window values above it are moved further right


@dataclass(frozen=True)
class Scenario:
    """A named way to draw a reference and a window, and whether it is drift at all."""

    name: str
    description: str
    drift: bool
    draw: Draw


@dataclass(frozen=True)
class Row:
    """The figures of one scenario at one number of buckets."""

    scenario: str
    drift: bool
    buckets: int
    bounds: int
    reference_size: int
    window_size: int
    exact_ks: float
    exact_pvalue: float
    bucketed_ks: float
    ratio: float
    gap: float
    max_bucket_mass: float
    critical_value: float
    exact_flag: bool
    bucketed_flag: bool


def _normal(mean: float, sd: float, window_size: int = WINDOW_SIZE) -> Draw:
    def draw(ref: np.random.Generator, win: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        return ref.normal(0.0, 1.0, REFERENCE_SIZE), win.normal(mean, sd, window_size)

    return draw


def _lognormal_shape(reference_sigma: float, window_sigma: float) -> Draw:
    def draw(ref: np.random.Generator, win: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        return (
            ref.lognormal(0.0, reference_sigma, REFERENCE_SIZE),
            win.lognormal(0.0, window_sigma, WINDOW_SIZE),
        )

    return draw


def _right_tail_moved(shift: float) -> Draw:
    def draw(ref: np.random.Generator, win: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        window = win.normal(0.0, 1.0, WINDOW_SIZE)
        window[window > TAIL_QUANTILE] += shift
        return ref.normal(0.0, 1.0, REFERENCE_SIZE), window

    return draw


def _poisson(reference_rate: float, window_rate: float) -> Draw:
    def draw(ref: np.random.Generator, win: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        return (
            ref.poisson(reference_rate, REFERENCE_SIZE).astype(np.float64),
            win.poisson(window_rate, WINDOW_SIZE).astype(np.float64),
        )

    return draw


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("normal shift 0.1 sd", "N(0,1) -> N(0.1,1)", True, _normal(0.1, 1.0)),
    Scenario("normal shift 0.5 sd", "N(0,1) -> N(0.5,1)", True, _normal(0.5, 1.0)),
    Scenario("normal scale x1.2", "N(0,1) -> N(0,1.2)", True, _normal(0.0, 1.2)),
    Scenario("lognormal shape", "LogN(0,1) -> LogN(0,1.25)", True, _lognormal_shape(1.0, 1.25)),
    Scenario(
        "right tail moved",
        "N(0,1); window values above the 98th percentile (2% of them) moved +3 sd",
        True,
        _right_tail_moved(3.0),
    ),
    Scenario("poisson ties shift", "Poisson(3) -> Poisson(3.3)", True, _poisson(3.0, 3.3)),
    Scenario(
        "small window 0.2 sd",
        f"N(0,1) -> N(0.2,1), window of {SMALL_WINDOW_SIZE:,}",
        True,
        _normal(0.2, 1.0, SMALL_WINDOW_SIZE),
    ),
    Scenario("no drift", "N(0,1) -> N(0,1), another seed", False, _normal(0.0, 1.0)),
)


def bucket_bounds(reference: FloatArray, buckets: int) -> FloatArray:
    """Return the finite bucket upper bounds: the reference's k/B quantiles, duplicates dropped."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    levels = np.arange(1, buckets, dtype=np.float64) / buckets
    return np.unique(np.quantile(reference, levels))


def ecdf_at(sorted_values: FloatArray, points: FloatArray) -> FloatArray:
    """Return the share of the sorted sample that is <= each point (a Prometheus ``le``)."""
    counts = np.searchsorted(sorted_values, points, side="right")
    return counts.astype(np.float64) / sorted_values.size


def bucketed_ks(reference: FloatArray, window: FloatArray, bounds: FloatArray) -> float:
    """Return max over the bounds (and +Inf) of |F_window(le) - F_reference(le)|."""
    if bounds.size == 0:
        return 0.0  # only +Inf, where both CDFs are 1
    difference = ecdf_at(np.sort(window), bounds) - ecdf_at(np.sort(reference), bounds)
    return float(np.max(np.abs(difference)))


def max_bucket_mass(reference: FloatArray, bounds: FloatArray) -> float:
    """Return the largest share of the reference in one bucket, +Inf bucket included."""
    cumulative = np.concatenate(([0.0], ecdf_at(np.sort(reference), bounds), [1.0]))
    return float(np.max(np.diff(cumulative)))


def exact_ks(reference: FloatArray, window: FloatArray) -> tuple[float, float]:
    """Return scipy's two-sample KS statistic and p-value."""
    result = stats.ks_2samp(reference, window)
    return float(result.statistic), float(result.pvalue)


def critical_value(reference_size: int, window_size: int) -> float:
    """Return the asymptotic KS critical value at alpha = 0.001 for these sample sizes."""
    n, m = reference_size, window_size
    return CRITICAL_COEFFICIENT * math.sqrt((n + m) / (n * m))


def measure(
    scenario: Scenario, reference: FloatArray, window: FloatArray, buckets: Sequence[int]
) -> list[Row]:
    """Return one row per number of buckets for one scenario's samples."""
    exact, pvalue = exact_ks(reference, window)
    threshold = critical_value(reference.size, window.size)
    rows = []
    for count in buckets:
        bounds = bucket_bounds(reference, count)
        bucketed = bucketed_ks(reference, window, bounds)
        mass = max_bucket_mass(reference, bounds)
        assert bucketed <= exact + TOLERANCE, (scenario.name, count, bucketed, exact)
        assert exact - bucketed <= mass + TOLERANCE, (scenario.name, count, exact, bucketed)
        rows.append(
            Row(
                scenario=scenario.name,
                drift=scenario.drift,
                buckets=count,
                bounds=int(bounds.size),
                reference_size=int(reference.size),
                window_size=int(window.size),
                exact_ks=exact,
                exact_pvalue=pvalue,
                bucketed_ks=bucketed,
                ratio=bucketed / exact if exact > 0 else 1.0,
                gap=exact - bucketed,
                max_bucket_mass=mass,
                critical_value=threshold,
                exact_flag=pvalue < ALPHA,
                bucketed_flag=bucketed > threshold,
            )
        )
    return rows


def run(seed: int, buckets: Sequence[int]) -> list[Row]:
    """Draw every scenario from its own seeds and measure it at every number of buckets."""
    rows = []
    for index, scenario in enumerate(SCENARIOS):
        reference_seed, window_seed = np.random.SeedSequence([seed, index]).spawn(2)
        reference, window = scenario.draw(
            np.random.default_rng(reference_seed), np.random.default_rng(window_seed)
        )
        rows.extend(measure(scenario, reference, window, buckets))
    return rows


def summarise(rows: Sequence[Row], buckets: Sequence[int]) -> list[dict[str, object]]:
    """Return, per B, the worst drift-scenario ratio, the largest gap and the flag agreement."""
    summary: list[dict[str, object]] = []
    for count in buckets:
        at_b = [row for row in rows if row.buckets == count]
        drifting = [row for row in at_b if row.drift]
        worst = min(drifting, key=lambda row: row.ratio)
        widest = max(at_b, key=lambda row: row.gap)
        summary.append(
            {
                "buckets": count,
                "worst_ratio": worst.ratio,
                "worst_ratio_scenario": worst.scenario,
                "largest_gap": widest.gap,
                "largest_gap_scenario": widest.scenario,
                "flags_agree": sum(row.exact_flag == row.bucketed_flag for row in at_b),
                "scenarios": len(at_b),
            }
        )
    return summary


def _flag(value: bool) -> str:
    return "yes" if value else "no"


def markdown(rows: Sequence[Row], summary: Sequence[dict[str, object]]) -> str:
    """Return the per-scenario table and the per-B summary as Markdown."""
    lines = [
        "| scenario | n / m | B | bounds | exact KS | bucketed KS | bucketed/exact | gap "
        "| max bucket mass | flags (exact/bucketed) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.scenario} | {row.reference_size:,} / {row.window_size:,} | {row.buckets} "
            f"| {row.bounds} | {row.exact_ks:.5f} | {row.bucketed_ks:.5f} | {row.ratio:.3f} "
            f"| {row.gap:.5f} | {row.max_bucket_mass:.4f} "
            f"| {_flag(row.exact_flag)}/{_flag(row.bucketed_flag)} |"
        )
    lines += [
        "",
        "| B | worst bucketed/exact (drift scenarios) | largest gap (all scenarios) "
        "| flags agree |",
        "|---:|---|---|---:|",
    ]
    for item in summary:
        lines.append(
            f"| {item['buckets']} | {item['worst_ratio']:.3f} ({item['worst_ratio_scenario']}) "
            f"| {item['largest_gap']:.5f} ({item['largest_gap_scenario']}) "
            f"| {item['flags_agree']}/{item['scenarios']} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="base random seed")
    parser.add_argument(
        "--buckets",
        type=int,
        nargs="+",
        default=list(DEFAULT_BUCKETS),
        help="numbers of buckets B to measure (default: 10 20 50 100)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every scenario, print the Markdown tables and optionally write JSON."""
    args = parse_args(argv)
    buckets: list[int] = args.buckets
    if any(count < 1 for count in buckets):
        print("--buckets: every B must be >= 1", file=sys.stderr)
        return 2
    started = time.perf_counter()
    rows = run(args.seed, buckets)
    summary = summarise(rows, buckets)
    elapsed = time.perf_counter() - started
    headline = ", ".join(str(count) for count in HEADLINE_BUCKETS)
    print(
        f"Bucketed KS vs exact KS (seed {args.seed}, alpha {ALPHA}); "
        f"candidates B = {headline}, B = 10 for context\n"
    )
    for scenario in SCENARIOS:
        print(f"- {scenario.name}: {scenario.description}")
    print()
    print(markdown(rows, summary))
    print(f"\n{len(rows)} rows in {elapsed:.1f} s; bucketed <= exact + {TOLERANCE:g} on every row")
    if args.json is not None:
        document = {
            "seed": args.seed,
            "alpha": ALPHA,
            "critical_coefficient": CRITICAL_COEFFICIENT,
            "scenarios": {s.name: s.description for s in SCENARIOS},
            "rows": [asdict(row) for row in rows],
            "summary": summary,
            "seconds": elapsed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
