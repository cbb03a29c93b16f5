"""The exporter's resident memory: what it imports at start and while computing."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
import exporter.app, exporter.cli
from exporter.stats.chi2 import chi2_pvalue
from exporter.stats.calibration import gamma_tail
from exporter.stats.ks import ks_pvalue
from exporter.stats.quality import roc_auc
for d in (0.0, 0.0005, 0.004, 0.02, 0.3, 0.7):  # every branch a 100k-row window takes
    ks_pvalue(d, 100_000, 100_000)
    ks_pvalue(d, 100_000, 20_000)
chi2_pvalue(np.array([5, 3, 0]), np.array([4, 4, 1]))
chi2_pvalue(np.array([50, 30]), np.array([40, 45]))
gamma_tail(np.array([0.1, 0.2, 0.4]))
roc_auc(np.array([True, False, True]), np.array([0.2, 0.2, 0.9]))
print(sorted(m for m in sys.modules if m == "scipy.stats" or m.startswith("scipy.stats.")))
"""


def test_starting_and_computing_a_large_window_never_import_scipy_stats() -> None:
    # scipy.stats costs ~46 MiB of RSS; only small samples' exact p-values need it
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_small_window_imports_scipy_stats_for_its_exact_pvalue() -> None:
    script = ("import sys\nfrom exporter.stats.ks import ks_pvalue\n"
              "ks_pvalue(0.1, 300, 200)\nprint('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "True"
