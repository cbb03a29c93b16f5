"""CBPE (SPEC 6.10) on synthetic populations whose truth is known, beside NannyML's CBPE.

For each case of ``tests/cbpe_cases.py``: a reference of 20,000 labelled records, then
``--windows`` windows of 1,000 records from the case's window population. Prints, per case and
metric, the reference's realized and estimated value, the windows' mean estimate and mean
realized value, the sampling error, and the share of windows whose estimate lies within 3
sampling errors of the realized metric. Then, when NannyML runs (here or in
``bench/.venv-peers``, see bench/README.md), NannyML's CBPE on the same reference and the same
windows as chunks: the mean absolute difference between its estimates and ours, its coverage,
and both timings. NannyML's ``f1`` is the positive class's F1, so it is compared with ours for
that class (from the same expected confusion matrix); the exporter publishes the macro F1.

    python bench/cbpe.py [--windows 200] [--no-peers] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from cbpe_cases import CASES, REFERENCE_ROWS, THRESHOLD, WINDOW_ROWS, Case  # noqa: E402

from exporter.stats import cbpe  # noqa: E402

VENV_PYTHON = HERE / ".venv-peers" / "bin" / "python"
RESULTS = HERE / "results"
METRICS = ("accuracy", "f1", "roc_auc")
SEED = 20261206


def positive_f1(confusion: cbpe.ExpectedConfusion) -> float:
    """F1 of the positive class from a (possibly expected) confusion matrix."""
    denominator = 2 * confusion.tp + confusion.fp + confusion.fn
    return 2 * confusion.tp / denominator if denominator > 0 else 0.0


def run_case(c: Case, windows: int) -> dict[str, object]:
    """Our estimates and the realized metrics of every window of the case."""
    rng = np.random.default_rng(SEED)
    scores, positive = c.reference.draw(REFERENCE_ROWS, rng)
    started = time.perf_counter()
    reference = cbpe.prepare_reference(scores, positive, THRESHOLD, seed=7)
    prepare_s = time.perf_counter() - started
    window_scores, window_labels = [], []
    for _ in range(windows):
        s, y = c.window.draw(WINDOW_ROWS, rng)
        window_scores.append(s)
        window_labels.append(y)
    started = time.perf_counter()
    estimates = [cbpe.estimate_window(reference, s) for s in window_scores]
    estimate_s = time.perf_counter() - started
    rows: dict[str, dict[str, float]] = {}
    for metric in (*METRICS, "f1_positive"):
        est, real, err = [], [], []
        for window, s, y in zip(estimates, window_scores, window_labels, strict=True):
            assert window is not None
            if metric == "f1_positive":
                est.append(positive_f1(window.estimate.confusion))
                real.append(positive_f1(cbpe.realized_confusion(y, s, THRESHOLD)))
                err.append(float("nan"))
                continue
            est.append(getattr(window.estimate.metrics, metric))
            real.append(getattr(cbpe.realized(y, s, THRESHOLD), metric))
            err.append(getattr(window.sampling_errors, metric))
        e, r, se = np.array(est), np.array(real), np.array(err)
        rows[metric] = {
            "reference_realized": getattr(reference.realized, metric, float("nan")),
            "reference_estimated": getattr(reference.estimated, metric, float("nan")),
            "estimate": float(e.mean()), "realized": float(r.mean()),
            "mean_abs_diff": float(np.mean(np.abs(e - r))), "sampling_error": float(se[0]),
            "coverage": float(np.mean(np.abs(e - r) <= 3 * se)),
            "per_window": e.tolist(), "realized_per_window": r.tolist()}
    return {"calibrated": reference.calibration.calibrated, "prepare_s": prepare_s,
            "estimate_s": estimate_s, "metrics": rows, "scores": scores, "positive": positive,
            "window_scores": window_scores, "window_labels": window_labels}


def save_for_peers(name: str, result: dict[str, object], folder: Path) -> None:
    """The case's reference and windows as NannyML reads them."""
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    scores = np.asarray(result["scores"])
    pd.DataFrame({"score": scores, "predicted": (scores >= THRESHOLD).astype(int),
                  "label": np.asarray(result["positive"]).astype(int)}).to_parquet(
        target / "reference.parquet", index=False)
    s = np.concatenate(result["window_scores"])  # type: ignore[arg-type]
    y = np.concatenate(result["window_labels"])  # type: ignore[arg-type]
    pd.DataFrame({"score": s, "predicted": (s >= THRESHOLD).astype(int),
                  "label": y.astype(int)}).to_parquet(target / "analysis.parquet", index=False)


def peers_python() -> str | None:
    """An interpreter where NannyML imports, or None."""
    if importlib.util.find_spec("nannyml") is not None:
        return sys.executable
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else None


def run_nannyml(results: dict[str, dict[str, object]]) -> dict[str, object] | None:
    """NannyML's CBPE on the same data, or None when it cannot run."""
    python = peers_python()
    if python is None:
        return None
    folder = RESULTS / "cbpe_input"
    for name, result in results.items():
        save_for_peers(name, result, folder)
    out = RESULTS / "cbpe_nannyml.json"
    done = subprocess.run([python, str(HERE / "cbpe_nannyml.py"), str(folder), str(out),
                           "--chunk", str(WINDOW_ROWS)], check=False, capture_output=True,
                          text=True)
    if done.returncode != 0:
        print(f"NannyML did not run: {done.stderr.strip()[-500:]}")
        return None
    loaded: dict[str, object] = json.loads(out.read_text())
    return loaded


def main() -> int:
    """Print the estimate-vs-realized table, and NannyML beside it when it runs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results = {c.name: run_case(c, args.windows) for c in CASES}
    print(f"reference {REFERENCE_ROWS} rows, {args.windows} windows of {WINDOW_ROWS} rows, "
          f"threshold {THRESHOLD}\n")
    print("| case | calibrated | metric | reference realized | reference estimated | "
          "window estimate | window realized | sampling error | within 3 errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in CASES:
        result = results[c.name]
        for metric in METRICS:
            m = result["metrics"][metric]  # type: ignore[index]
            print(f"| {c.name} | {'yes' if result['calibrated'] else 'no'} | {metric} | "
                  f"{m['reference_realized']:.4f} | {m['reference_estimated']:.4f} | "
                  f"{m['estimate']:.4f} | {m['realized']:.4f} | {m['sampling_error']:.4f} | "
                  f"{100 * m['coverage']:.1f}% |")
    peers = None if args.no_peers else run_nannyml(results)
    summary: dict[str, object] = {
        name: {"calibrated": r["calibrated"], "prepare_s": r["prepare_s"],
               "estimate_s": r["estimate_s"],
               "metrics": {k: {kk: vv for kk, vv in v.items() if not kk.endswith("window")}
                           for k, v in r["metrics"].items()}}  # type: ignore[attr-defined]
        for name, r in results.items()}
    if peers is None:
        print("\nNannyML: not available (see bench/README.md, bench/.venv-peers); skipped")
    else:
        print(f"\nNannyML {peers['version']} CBPE on the same reference and windows (chunks of "
              f"{WINDOW_ROWS}); f1 = the positive class's F1 for both\n")
        print("| case | metric | ours (mean) | NannyML (mean) | mean abs diff | "
              "NannyML error | NannyML within 3 errors | ours within 3 errors |")
        print("|---|---|---|---|---|---|---|---|")
        for c in CASES:
            theirs = peers["cases"][c.name]  # type: ignore[index]
            ours = results[c.name]["metrics"]  # type: ignore[index]
            for metric, our_key in (("accuracy", "accuracy"), ("f1", "f1_positive"),
                                    ("roc_auc", "roc_auc")):
                their_est = np.array(theirs["estimates"][metric])
                their_err = np.array(theirs["sampling_errors"][metric])
                our_est = np.array(ours[our_key]["per_window"])
                real = np.array(ours[our_key]["realized_per_window"])
                ours_cov = ("" if our_key == "f1_positive"
                            else f"{100 * ours[our_key]['coverage']:.1f}%")
                print(f"| {c.name} | {metric} | {our_est.mean():.4f} | {their_est.mean():.4f} | "
                      f"{np.mean(np.abs(our_est - their_est)):.4f} | {their_err.mean():.4f} | "
                      f"{100 * np.mean(np.abs(their_est - real) <= 3 * their_err):.1f}% | "
                      f"{ours_cov} |")
        print("\n| case | ours: prepare reference | ours: estimate all windows | "
              "NannyML: fit | NannyML: estimate | ratio (NannyML / ours) |")
        print("|---|---|---|---|---|---|")
        for c in CASES:
            theirs = peers["cases"][c.name]  # type: ignore[index]
            r = results[c.name]
            ours_s = float(r["prepare_s"]) + float(r["estimate_s"])  # type: ignore[arg-type]
            theirs_s = theirs["fit_s"] + theirs["estimate_s"]
            print(f"| {c.name} | {r['prepare_s']:.3f} s | {r['estimate_s']:.3f} s | "
                  f"{theirs['fit_s']:.3f} s | {theirs['estimate_s']:.3f} s | "
                  f"{theirs_s / ours_s:.1f}x |")
        summary["nannyml"] = {"version": peers["version"],
                              "cases": {k: {"fit_s": v["fit_s"], "estimate_s": v["estimate_s"]}
                                        for k, v in peers["cases"].items()}}  # type: ignore[attr-defined]
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
