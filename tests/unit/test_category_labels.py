"""Category label values are unique (issue 13, item 15): the empty category is rendered as
``__empty__``, so a real data category named ``__empty__`` (like one named ``__other__``) is
summed into ``__other__`` instead of rendering a second, identical series."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collector import DriftCollector
from exporter.counters import ModelCounters
from exporter.fleet import FleetCounts
from exporter.reference import OTHER, ReferenceProfile, profile_categorical
from exporter.snapshot import ColumnSnapshot, ModelSnapshot
from exporter.state import ModelState, VersionState

promtool = shutil.which("promtool")
REFERENCE = np.array(["a"] * 4 + [""] * 3 + ["__empty__"] * 2 + ["__other__"] * 2 + ["b"],
                     dtype=object)
WINDOW = np.array(["a", "", "", "__empty__", "__other__", "b", "new"], dtype=object)


def _exposition() -> str:
    ref = profile_categorical("plan", REFERENCE, max_categories=20)
    profile = ReferenceProfile("m", REFERENCE.shape[0], {"plan": ref})
    codes = ref.encode(WINDOW)
    counts = np.bincount(codes[codes >= 0], minlength=len(ref.categories) + 1)
    column = ColumnSnapshot("plan", "categorical", "jensen_shannon", int(counts.sum()),
                            category_ratios=ref.label_ratios(counts))
    snapshot = ModelSnapshot("m", WINDOW.shape[0], (column,), None, None, None, 0.0, 0.0)
    fleet = FleetCounts({}, {"plan": ref.fleet_slots()})
    fleet.add({}, {"plan": codes})
    state = ModelState("m", profile, ("plan",), None, (VersionState("", snapshot),),
                       ModelCounters(["plan"], ["plan"]).values(), fleet=fleet.values())
    registry = CollectorRegistry()
    registry.register(DriftCollector(lambda: [state]))
    return generate_latest(registry).decode()


def _category_samples(text: str, name: str) -> dict[str, float]:
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name]
    labels = Counter(s.labels["category"] for s in samples)
    duplicates = [label for label, n in labels.items() if n > 1]
    assert not duplicates, f"{name}: duplicate series for {duplicates}"
    return {s.labels["category"]: s.value for s in samples}


class TestCategoryLabels:
    @pytest.mark.parametrize("name", ["drift_feature_category_ratio",
                                      "drift_reference_feature_category_ratio",
                                      "drift_feature_category_values_total"])
    def test_the_empty_category_and_a_real_empty_label_render_as_distinct_series(
            self, name: str) -> None:
        values = _category_samples(_exposition(), name)
        assert set(values) == {"a", "__empty__", "b", OTHER}

    def test_a_real_empty_label_is_summed_into_other_like_a_real_other(self) -> None:
        text = _exposition()
        reference = _category_samples(text, "drift_reference_feature_category_ratio")
        assert reference["__empty__"] == pytest.approx(3 / 12)  # the empty category only
        assert reference[OTHER] == pytest.approx(4 / 12)  # "__empty__" and "__other__" values
        window = _category_samples(text, "drift_feature_category_ratio")
        assert window["__empty__"] == pytest.approx(2 / 7)
        assert window[OTHER] == pytest.approx(3 / 7)  # "__empty__", "__other__" and unseen
        counts = _category_samples(text, "drift_feature_category_values_total")
        assert counts == {"a": 1, "__empty__": 2, "b": 1, OTHER: 3}

    @pytest.mark.skipif(promtool is None, reason="promtool not installed (bash .ci/run)")
    def test_the_exposition_passes_promtool(self) -> None:
        result = subprocess.run([str(promtool), "check", "metrics"], input=_exposition(),
                                capture_output=True, text=True, check=False, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
