"""NannyML's CBPE on the data ``cbpe.py`` saved, timed; imports nothing from the exporter.

    python bench/cbpe_nannyml.py INPUT_DIR OUT.json --chunk 1000

INPUT_DIR holds one folder per case with ``reference.parquet`` and ``analysis.parquet``
(columns ``score``, ``predicted``, ``label``). Writes, per case, NannyML's estimate of every
analysis chunk (accuracy, binary F1, ROC AUC, each with its sampling error) and the fit and
estimate times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

METRICS = ("accuracy", "f1", "roc_auc")


def run_case(folder: Path, chunk: int) -> dict[str, object]:
    """Fit on the case's reference, estimate its analysis data chunk by chunk."""
    import nannyml

    reference = pd.read_parquet(folder / "reference.parquet")
    analysis = pd.read_parquet(folder / "analysis.parquet").drop(columns=["label"])
    estimator = nannyml.CBPE(y_pred_proba="score", y_pred="predicted", y_true="label",
                             problem_type="classification_binary", metrics=list(METRICS),
                             chunk_size=chunk)
    started = time.perf_counter()
    estimator.fit(reference)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    result = estimator.estimate(analysis)
    estimate_s = time.perf_counter() - started
    frame = result.filter(period="analysis").to_df()
    chunks = {m: [float(v) for v in frame[(m, "value")]] for m in METRICS}
    errors = {m: [float(v) for v in frame[(m, "sampling_error")]] for m in METRICS}
    return {"estimates": chunks, "sampling_errors": errors, "fit_s": fit_s,
            "estimate_s": estimate_s}


def main() -> int:
    """Run every case folder under INPUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("input", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--chunk", type=int, default=1000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import nannyml

    out: dict[str, object] = {"version": nannyml.__version__, "cases": {}}
    cases: dict[str, object] = {}
    for folder in sorted(p for p in args.input.iterdir() if p.is_dir()):
        cases[folder.name] = run_case(folder, args.chunk)
    out["cases"] = cases
    args.out.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
