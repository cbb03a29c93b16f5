"""Time the peers of benchmark (d) on the arrays ``peers.py`` saved: Evidently's
``DataDriftPreset`` report and NannyML's ``UnivariateDriftCalculator``.

Runs under whichever interpreter has the peers installed (the exporter's own, or
``bench/.venv-peers`` when they cannot be installed beside its numpy/pandas); it imports nothing
from the exporter.

    python bench/peers_runner.py INPUT_DIR OUT.json [--runs 3]

INPUT_DIR holds ``reference.parquet``, ``current.parquet`` and ``columns.json``
(``{"numerical": [...], "categorical": [...]}``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd


def best_of(runs: int, func: Callable[[], object]) -> tuple[float, float, list[float]]:
    """Fastest wall time, its CPU time, and every wall time."""
    best, cpu, walls = math.inf, math.nan, []
    for _ in range(runs):
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        func()
        wall = time.perf_counter() - started
        walls.append(wall)
        if wall < best:
            best, cpu = wall, time.process_time() - cpu_started
    return best, cpu, walls


def evidently_run(reference: pd.DataFrame, current: pd.DataFrame, numerical: list[str],
                  categorical: list[str]) -> Callable[[], object]:
    """A callable building and running a DataDriftPreset report (Evidently >= 0.7 API)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)

    def run() -> object:
        ref = Dataset.from_pandas(reference, data_definition=definition)
        cur = Dataset.from_pandas(current, data_definition=definition)
        return Report([DataDriftPreset()]).run(cur, ref)

    return run


def nannyml_calculator(numerical: list[str], categorical: list[str]) -> Any:
    """A UnivariateDriftCalculator over every column, one chunk (the whole window)."""
    import nannyml as nml

    return nml.UnivariateDriftCalculator(
        column_names=numerical + categorical, treat_as_categorical=categorical,
        continuous_methods=["kolmogorov_smirnov", "jensen_shannon", "wasserstein"],
        categorical_methods=["chi2", "jensen_shannon"], chunk_number=1)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    columns = json.loads((args.input / "columns.json").read_text())
    numerical, categorical = columns["numerical"], columns["categorical"]
    reference = pd.read_parquet(args.input / "reference.parquet")
    current = pd.read_parquet(args.input / "current.parquet")
    out: dict[str, Any] = {"python": sys.executable, "errors": {}}
    try:
        import evidently

        out["evidently_version"] = evidently.__version__
        run = evidently_run(reference, current, numerical, categorical)
        out["evidently_s"], out["evidently_cpu_s"], out["evidently_runs_s"] = best_of(
            args.runs, run)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        out["errors"]["evidently"] = f"{type(exc).__name__}: {exc}"[:500]
    try:
        import nannyml

        out["nannyml_version"] = nannyml.__version__
        fit_s, _, _ = best_of(1, lambda: nannyml_calculator(numerical, categorical).fit(
            reference))
        calc = nannyml_calculator(numerical, categorical).fit(reference)
        out["nannyml_fit_s"] = fit_s
        out["nannyml_s"], out["nannyml_cpu_s"], out["nannyml_runs_s"] = best_of(
            args.runs, lambda: calc.calculate(current))
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        out["errors"]["nannyml"] = f"{type(exc).__name__}: {exc}"[:500]
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
