"""Benchmark (d): one recomputation of every statistic against the peers, on the same arrays:
Evidently's ``DataDriftPreset`` report and NannyML's ``UnivariateDriftCalculator``.

1. The window is built as in ``recompute.py`` (the file's last 100,000 rows through a
   ``ModelPipeline``); ``exporter.snapshot.compute`` from scratch is timed (best of 5, after a
   cold call), then, as in ``recompute.py``, the pipeline's own recomputation after 1,000 new
   records (best of 10; it sorts in only the rows that entered and left).
2. The same arrays go to the peers: the reference (100,000 rows, every monitored column) and
   the window (numbers as read, categories decoded back from the window's codes), saved as
   Parquet under ``bench/results/peers_input/``.
3. ``peers_runner.py`` times the peers (best of 3) in the interpreter that has them: this one
   if ``evidently`` and ``nannyml`` import here, else ``bench/.venv-peers/bin/python``
   (``python -m venv bench/.venv-peers && bench/.venv-peers/bin/pip install evidently
   nannyml "pandas<3"``: Evidently 0.7 fails to import under pandas 3, which pip otherwise
   picks; measured with evidently 0.7.23, nannyml 0.13.1, pandas 2.3.3; or ``pip install -e
   .[bench]`` where they fit beside the exporter's own pins).

Targets (issue 17): the recomputation at least 200x faster than Evidently and 20x faster than
NannyML. The peers have no incremental mode: each evaluation of a window is a full report
over it, which is what they are timed doing; the ratios of compute() from scratch are shown
beside.

    python bench/peers.py [--json OUT] [--runs 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate
from recompute import STEPS, WARM_RUNS, build, timed_compute, timed_recomputes

from exporter.reference import CategoricalReference
from exporter.thresholds import Thresholds

HERE = Path(__file__).resolve().parent
VENV_PYTHON = HERE / ".venv-peers" / "bin" / "python"
TARGET_EVIDENTLY = 200.0
TARGET_NANNYML = 20.0


@dataclass
class PeersResult:
    """Figures of one peers run (seconds)."""

    compute_s: float  # compute() from scratch
    compute_cpu_s: float
    recompute_s: float  # the pipeline's recomputation after new records
    recompute_cpu_s: float
    peers_python: str
    evidently_version: str | None
    evidently_s: float | None
    nannyml_version: str | None
    nannyml_s: float | None
    nannyml_fit_s: float | None
    evidently_ratio: float | None  # peer / recompute
    nannyml_ratio: float | None
    evidently_scratch_ratio: float | None  # peer / compute from scratch
    nannyml_scratch_ratio: float | None
    target_evidently: float
    target_nannyml: float
    passed_evidently: bool
    passed_nannyml: bool
    passed: bool
    errors: dict[str, str] = field(default_factory=dict)


def peers_python() -> str | None:
    """The interpreter that has both peers installed, if any."""
    if all(importlib.util.find_spec(m) is not None for m in ("evidently", "nannyml")):
        return sys.executable
    if VENV_PYTHON.exists():
        return str(VENV_PYTHON)
    return None


def save_inputs(out_dir: Path, pipeline: Any, view: Any, model: Any) -> None:
    """Reference and window of every monitored column as Parquet, plus the column lists."""
    out_dir.mkdir(parents=True, exist_ok=True)
    numerical = [f.name for f in model.features if f.type == "numerical"]
    categorical = [f.name for f in model.features if f.type == "categorical"]
    reference = pd.read_parquet(generate.DATA_DIR / generate.REFERENCE_NAME,
                                columns=numerical + categorical)
    for name in categorical:
        reference[name] = reference[name].astype(object).where(reference[name].notna(), None)
        reference[name] = reference[name].map(lambda v: None if v is None else str(v))
    current: dict[str, Any] = {n: view.numbers[n] for n in numerical}
    for name in categorical:
        ref = pipeline.profile.columns[name]
        assert isinstance(ref, CategoricalReference)
        lookup = np.array([*ref.categories, "__unseen__", None], dtype=object)
        codes = view.codes[name]
        current[name] = lookup[np.where(codes < 0, len(lookup) - 1, codes)]
    pd.DataFrame(current).to_parquet(out_dir / "current.parquet")
    reference.to_parquet(out_dir / "reference.parquet")
    (out_dir / "columns.json").write_text(json.dumps(
        {"numerical": numerical, "categorical": categorical}))


def run(runs: int = 3) -> PeersResult:
    """Time our compute and both peers on the same window."""
    generate.generate(generate.DATA_DIR)
    model, pipeline = build(generate.DATA_DIR)
    view = pipeline.window.view(time.time())
    thresholds = Thresholds(model.name, pipeline.profile.rows)
    timed_compute(view, pipeline, model, thresholds)  # cold
    timed = [timed_compute(view, pipeline, model, thresholds) for _ in range(WARM_RUNS)]
    compute_s, compute_cpu, _ = min(timed, key=lambda t: t[0])
    inputs = HERE / "results" / "peers_input"
    save_inputs(inputs, pipeline, view, model)
    recompute_s, recompute_cpu = min(timed_recomputes(pipeline)[0])
    python = peers_python()
    peer: dict[str, Any] = {"errors": {}}
    if python is None:
        peer["errors"]["peers"] = ("evidently/nannyml not installed here nor in "
                                   f"{VENV_PYTHON.parent.parent}")
    else:
        out = HERE / "results" / "peers_raw.json"
        out.unlink(missing_ok=True)
        done = subprocess.run([python, str(HERE / "peers_runner.py"), str(inputs), str(out),
                               "--runs", str(runs)], check=False, capture_output=True,
                              text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if out.is_file():
            peer = json.loads(out.read_text())
        else:
            peer["errors"]["runner"] = (done.stderr or done.stdout)[-800:]
    ev, nm = peer.get("evidently_s"), peer.get("nannyml_s")
    ev_ratio = ev / recompute_s if ev else None
    nm_ratio = nm / recompute_s if nm else None
    passed_ev = ev_ratio is not None and ev_ratio >= TARGET_EVIDENTLY
    passed_nm = nm_ratio is not None and nm_ratio >= TARGET_NANNYML
    return PeersResult(
        compute_s=compute_s, compute_cpu_s=compute_cpu, recompute_s=recompute_s,
        recompute_cpu_s=recompute_cpu, peers_python=python or "-",
        evidently_version=peer.get("evidently_version"), evidently_s=ev,
        nannyml_version=peer.get("nannyml_version"), nannyml_s=nm,
        nannyml_fit_s=peer.get("nannyml_fit_s"), evidently_ratio=ev_ratio,
        nannyml_ratio=nm_ratio,
        evidently_scratch_ratio=ev / compute_s if ev else None,
        nannyml_scratch_ratio=nm / compute_s if nm else None,
        target_evidently=TARGET_EVIDENTLY, target_nannyml=TARGET_NANNYML,
        passed_evidently=passed_ev, passed_nannyml=passed_nm, passed=passed_ev and passed_nm,
        errors=peer.get("errors", {}))


def report(r: PeersResult) -> str:
    """Human-readable lines."""
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f} ms"

    def x(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}x"

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    lines = [
        "recompute of one 100k window vs peers (same arrays)",
        f"  exporter recompute after 1000 new records (best of {STEPS}): {ms(r.recompute_s)}",
        f"  exporter compute() from scratch (best of {WARM_RUNS}):          {ms(r.compute_s)}",
        f"  Evidently {r.evidently_version} DataDriftPreset: {ms(r.evidently_s)}  "
        f"speed-up {x(r.evidently_ratio)} (target >= {r.target_evidently:.0f}x: "
        f"{verdict(r.passed_evidently)}; from scratch {x(r.evidently_scratch_ratio)})",
        f"  NannyML {r.nannyml_version} UnivariateDriftCalculator.calculate: "
        f"{ms(r.nannyml_s)} (fit {ms(r.nannyml_fit_s)})  speed-up {x(r.nannyml_ratio)} "
        f"(target >= {r.target_nannyml:.0f}x: {verdict(r.passed_nannyml)}; from scratch "
        f"{x(r.nannyml_scratch_ratio)})",
        f"  peers ran under {r.peers_python}",
    ]
    lines += [f"  error ({k}): {v}" for k, v in r.errors.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.runs)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
