"""Generates deploy/prometheus/drift-fleet-rules.yml: fleet-wide drift from mergeable counts.

Every drift-exporter replica exports, per numerical feature (and numerical prediction), a
cumulative histogram whose bucket bounds are the reference's quantiles, per categorical feature
a counter per category, and the reference side as gauges (SPEC 6.8, docs/fleet.md). These
rules sum the replicas' counts over a range and compute, per model and feature, the fleet's
CDF at the bucket bounds, its KS statistic against the reference there, PSI and
Jensen-Shannon distance over the buckets (over the categories for categorical features) and
the category shares; then alert on them.

    python deploy/prometheus/fleet_rules.py                       # rewrite the shipped file
    python deploy/prometheus/fleet_rules.py --range 6h --step 5m  # another range, to stdout
    python deploy/prometheus/fleet_rules.py --check               # exit 1 if it is stale

The range is a subquery, ``increase(x[RANGE:STEP])``, not a plain ``increase(x[RANGE])``: the
subquery samples every replica's counters at the same aligned steps, so Prometheus's
extrapolation scales every replica (and every bucket) by the same factor and the fleet shares
are exact ratios of counts. A plain range extrapolates each replica by its own scrape phase,
which weights the replicas unequally (a relative error of about scrape_interval / range).
``increase()`` handles counter resets (replica restarts).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIPPED = HERE / "drift-fleet-rules.yml"
DEFAULT_RANGE = "1h"
DEFAULT_STEP = "1m"
DEFAULT_MIN_RECORDS = 1000
DEFAULT_PSI_THRESHOLD = 0.2
EMPTY_SHARE = "0.0001"  # SPEC 6.5: empty-bin proportions are replaced by 1e-4 before PSI
LN2 = "0.6931471805599453"
# sqrt(-ln(alpha / 2) / 2) for alpha = 0.001: the asymptotic two-sample KS critical value.
KS_CRITICAL_0_001 = "1.9494"


@dataclass(frozen=True)
class _Kind:
    """Names for one kind of numerical column: features ({model, feature}) or the prediction."""

    what: str  # "feature" or "prediction"
    by: str  # the grouping labels

    @property
    def bucket(self) -> str:
        return f"drift_{self.what}_values_bucket"

    @property
    def ref_cdf(self) -> str:
        return f"drift_reference_{self.what}_cdf"

    @property
    def ref_bucket(self) -> str:
        return f"drift_reference_{self.what}_bucket_ratio"

    def record(self, what: str) -> str:
        return f"drift:{self.what}_{what}:sum"


FEATURE = _Kind("feature", "model, feature")
PREDICTION = _Kind("prediction", "model")


def _floored(expr: str) -> str:
    """``expr`` with zero shares replaced by 1e-4 (SPEC 6.5), as PSI needs."""
    return f"(({expr}) > 0 or ({expr}) * 0 + {EMPTY_SHARE})"


def _psi(window: str, reference: str, by: str, on: str) -> str:
    w, r = _floored(window), _floored(reference)
    return (f"sum by ({by}) (\n  ({w} - on ({on}) {r})\n"
            f"  * ln({w} / on ({on}) {r})\n)")


def _jensen_shannon(window: str, reference: str, by: str, on: str) -> str:
    middle = f"(({window}) + on ({on}) ({reference})) / 2"
    half = ("sum by ({by}) (\n    (({p}) > 0)\n"
            "    * on ({on}) ln((({p}) > 0) / on ({on}) ({m}))\n  )")
    left = half.format(by=by, p=window, on=on, m=middle)
    right = half.format(by=by, p=reference, on=on, m=middle)
    return (f"sqrt(clamp_min(\n  (\n  {left}\n  + on ({by})\n  {right}\n  )"
            f" / 2 / {LN2},\n  0\n))")


def _numerical_rules(kind: _Kind, window: str) -> list[tuple[str, str, str]]:
    """(comment, record name, expression) of one kind's numerical fleet rules."""
    by = kind.by
    on = f"{by}, le"
    buckets, count = kind.record("values_bucket_increase"), kind.record("values_count_increase")
    cdf, share = kind.record("values_cdf"), kind.record("values_ratio")
    ref_cdf = f"drift:reference_{kind.what}_cdf:max"
    ref_share = f"drift:reference_{kind.what}_bucket_ratio:max"
    previous = (f"max by ({on}) (\n    group by ({on}, lower) ({kind.ref_bucket})\n"
                f"    * on ({by}, lower) group_left ()\n"
                f"    label_replace({cdf}, \"lower\", \"$1\", \"le\", \"(.*)\")\n  )")
    return [
        ("The reference side, once per model (every replica exports the same values).",
         ref_cdf, f"max by ({on}) ({kind.ref_cdf})"),
        ("", ref_share, f"max by ({on}) ({kind.ref_bucket})"),
        ("Counts per bucket and in all, summed over the replicas, over the range.",
         buckets, f"sum by ({on}) (increase({kind.bucket}[{window}]))"),
        ("Records: the +Inf bucket, not _count, which OpenMetrics leaves out of a histogram\n"
         "with negative bounds (the exporter serves that format to Prometheus).",
         count, f"sum by ({by}) (increase({kind.bucket}{{le=\"+Inf\"}}[{window}]))"),
        ("The fleet's CDF at the bucket bounds (absent without records).",
         cdf, f"{buckets}\n/ on ({by}) group_left ()\n({count} > 0)"),
        ("The share of each bucket: the CDF minus the CDF at the bucket below (its `lower`\n"
         "label, from the reference's bucket gauge); the first bucket's lower bound is -Inf.",
         share,
         f"(\n  {cdf}\n  - on ({on})\n  {previous}\n)\nor\n"
         f"({cdf} and on ({on}) {kind.ref_bucket}{{lower=\"-Inf\"}})"),
        ("KS statistic at the bucket bounds: a lower bound of the exact KS of the pooled\n"
         "records (docs/fleet.md measures how close it gets).",
         kind.record("ks_statistic"),
         f"max by ({by}) (\n  abs({cdf} - on ({on}) {ref_cdf})\n)"),
        ("The KS statistic's critical value at alpha = 0.001 for these counts (reference\n"
         "rows as the reference sample size).",
         kind.record("ks_threshold"),
         f"{KS_CRITICAL_0_001} * sqrt(\n  1 / ({count} > 0)\n"
         f"  + on (model) group_left ()\n  (1 / max by (model) (drift_reference_rows))\n)"),
        ("PSI and Jensen-Shannon distance (base 2) over the buckets.",
         kind.record("psi"), _psi(share, ref_share, by, on)),
        ("", kind.record("jensen_shannon_distance"),
         _jensen_shannon(share, ref_share, by, on)),
    ]


def _categorical_rules(window: str) -> list[tuple[str, str, str]]:
    """(comment, record name, expression) of the categorical features' fleet rules."""
    by = "model, feature"
    on = f"{by}, category"
    values, count = "drift:feature_category_values_increase:sum", \
        "drift:feature_category_count_increase:sum"
    share = "drift:feature_category_ratio:sum"
    # Categories the reference never had a label for (only __other__ can be missing there)
    # count as reference share 0.
    reference = "drift:reference_feature_category_ratio:max"
    return [
        ("Categorical features: counts per category (the exporter's top max_categories\n"
         "reference categories and __other__), summed over the replicas, over the range.",
         values, f"sum by ({on}) (increase(drift_feature_category_values_total[{window}]))"),
        ("", count, f"sum by ({by}) ({values})"),
        ("The fleet's share of each category.",
         share, f"{values}\n/ on ({by}) group_left ()\n({count} > 0)"),
        ("The reference's share of each category; a category the reference has no label\n"
         "for (only __other__ can be missing there) counts as share 0.",
         reference, f"max by ({on}) (drift_reference_feature_category_ratio)\n"
                    f"or on ({on}) {share} * 0"),
        ("PSI and Jensen-Shannon distance (base 2) over the categories.",
         "drift:feature_category_psi:sum", _psi(share, reference, by, on)),
        ("", "drift:feature_category_jensen_shannon_distance:sum",
         _jensen_shannon(share, reference, by, on)),
    ]


def _alerts(min_records: int, psi_threshold: float) -> str:
    psi = f"{psi_threshold:g}"
    return f"""\
  - name: drift-exporter-fleet-alerts
    rules:
      - alert: FleetFeatureDrift
        # PSI over the fleet's pooled records; {psi} is the usual "significant shift" mark.
        expr: >-
          (drift:feature_psi:sum or drift:feature_category_psi:sum) > {psi}
          and on (model, feature)
          (drift:feature_values_count_increase:sum >= {min_records}
           or drift:feature_category_count_increase:sum >= {min_records})
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: >-
            {{{{ $labels.model }}}}: feature {{{{ $labels.feature }}}} drifted across the fleet
          description: >-
            Over every replica's records of the range, the PSI of {{{{ $labels.feature }}}}
            against the reference is {{{{ $value | printf "%.3g" }}}} (above {psi}).
      - alert: FleetFeatureDistributionShift
        # The bucketed KS statistic is a lower bound of the exact one, so this errs on the
        # quiet side; with millions of records it still flags small shifts (see docs/fleet.md).
        expr: >-
          drift:feature_ks_statistic:sum
          > on (model, feature) drift:feature_ks_threshold:sum
          and on (model, feature) drift:feature_values_count_increase:sum >= {min_records}
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: >-
            {{{{ $labels.model }}}}: {{{{ $labels.feature }}}} distribution shifted across the
            fleet
          description: >-
            The fleet's KS statistic of {{{{ $labels.feature }}}} at the reference quantiles is
            {{{{ $value | printf "%.3g" }}}}, past its critical value at alpha = 0.001.
      - alert: FleetPredictionDrift
        expr: >-
          drift:prediction_psi:sum > {psi}
          and on (model) drift:prediction_values_count_increase:sum >= {min_records}
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: "{{{{ $labels.model }}}}: the prediction distribution drifted across the fleet"
          description: >-
            Over every replica's records of the range, the prediction's PSI against the
            reference is {{{{ $value | printf "%.3g" }}}} (above {psi}).
"""


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def render(range_: str = DEFAULT_RANGE, step: str = DEFAULT_STEP,
           min_records: int = DEFAULT_MIN_RECORDS,
           psi_threshold: float = DEFAULT_PSI_THRESHOLD) -> str:
    """The rules file for one range and subquery step."""
    window = f"{range_}:{step}"
    lines = [
        "# GENERATED by deploy/prometheus/fleet_rules.py: do not edit; run",
        f"#   python deploy/prometheus/fleet_rules.py --range {range_} --step {step}",
        "# Fleet-wide drift from the replicas' mergeable counts (SPEC 6.8, docs/fleet.md), over",
        f"# the last {range_}, sampled every {step}. Checked by promtool (check rules, and",
        "# test rules drift-fleet-rules.test.yml for the shipped range).",
        "groups:",
        "  - name: drift-exporter-fleet",
        "    rules:",
    ]
    rules = (_numerical_rules(FEATURE, window) + _numerical_rules(PREDICTION, window)
             + _categorical_rules(window))
    for comment, record, expr in rules:
        if comment:
            lines.extend("      # " + c for c in comment.splitlines())
        lines.append(f"      - record: {record}")
        lines.append("        expr: |-")
        lines.append(_indent(expr, 10))
    return "\n".join(lines) + "\n\n" + _alerts(min_records, psi_threshold)


def main(argv: list[str] | None = None) -> int:
    """Write (or check) the fleet rules file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--range", dest="range_", default=DEFAULT_RANGE,
                        help="range the counts are summed over (Prometheus duration)")
    parser.add_argument("--step", default=DEFAULT_STEP, help="subquery step")
    parser.add_argument("--min-records", type=int, default=DEFAULT_MIN_RECORDS,
                        help="records in the range before an alert may fire")
    parser.add_argument("--psi-threshold", type=float, default=DEFAULT_PSI_THRESHOLD)
    parser.add_argument("--output", type=Path,
                        help="file to write (default: the shipped file for the default "
                             "arguments, else standard output)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the shipped file differs from the default output")
    args = parser.parse_args(argv)
    if args.check:
        if SHIPPED.read_text() != render():
            print(f"{SHIPPED} is out of date: run python deploy/prometheus/fleet_rules.py",
                  file=sys.stderr)
            return 1
        return 0
    text = render(args.range_, args.step, args.min_records, args.psi_threshold)
    defaults = (args.range_, args.step, args.min_records, args.psi_threshold) == (
        DEFAULT_RANGE, DEFAULT_STEP, DEFAULT_MIN_RECORDS, DEFAULT_PSI_THRESHOLD)
    target = args.output or (SHIPPED if defaults else None)
    if target is None:
        sys.stdout.write(text)
    else:
        target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
