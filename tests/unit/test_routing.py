"""WindowRouter: rows split by window key, keys admitted and evicted, windows and snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from exporter import routing
from exporter.parsing import CATEGORY, NUMBER, ColumnSpec, batch_from_records
from exporter.routing import UNKNOWN_VERSION, WindowKey, WindowRouter
from exporter.snapshot import ModelSnapshot
from exporter.window import Window

COLUMNS = [ColumnSpec("x", NUMBER), ColumnSpec("v", CATEGORY)]


def new_window() -> Window:
    return Window(["x"], [], rows=10, duration=None)


def snapshot(version: str) -> ModelSnapshot:
    return ModelSnapshot("m", 0, (), None, None, None, 0.0, 0.0, version=version)


def router(max_versions: int = 2, evicted: list[WindowKey] | None = None) -> WindowRouter:
    sink = evicted if evicted is not None else []
    return WindowRouter("m", "v", max_versions, new_window, on_evict=sink.append)


class TestWindowRouter:
    """One router per model; keys are versions today."""

    def test_an_unversioned_model_has_one_window_for_every_row(self) -> None:
        unversioned = WindowRouter("m", None, 3, new_window)
        batch = batch_from_records([{"x": 1.0}, {"x": 2.0}], [ColumnSpec("x", NUMBER)])
        [(key, rows)] = unversioned.split(batch)
        assert key == WindowKey()
        assert rows.tolist() == [True, True]
        assert [k for k, _ in unversioned.windows()] == [WindowKey()]

    def test_rows_are_split_by_version_and_a_missing_version_is_unknown(self) -> None:
        batch = batch_from_records([{"x": 1.0, "v": "b"}, {"x": 2.0, "v": "a"},
                                    {"x": 3.0}, {"x": 4.0, "v": "b"}], COLUMNS)
        split = router().split(batch)
        assert [k.version for k, _ in split] == ["b", "a", UNKNOWN_VERSION]
        assert [r.tolist() for _, r in split] == [[True, False, False, True],
                                                  [False, True, False, False],
                                                  [False, False, True, False]]

    def test_a_new_version_evicts_the_one_that_first_appeared_longest_ago(self) -> None:
        evicted: list[WindowKey] = []
        versions = router(max_versions=2, evicted=evicted)
        first = versions.window(WindowKey("v1"))
        versions.window(WindowKey("v2"))
        assert versions.window(WindowKey("v1")) is first  # seen again: no new window
        versions.window(WindowKey("v3"))
        assert [k.version for k, _ in versions.windows()] == ["v2", "v3"]
        assert evicted == [WindowKey("v1")]

    def test_a_retired_version_is_refused_and_not_admitted_again(self) -> None:
        versions = router(max_versions=1)
        versions.window(WindowKey("v1"))
        versions.window(WindowKey("v2"))
        assert versions.window(WindowKey("v1")) is None
        assert [k.version for k, _ in versions.windows()] == ["v2"]

    def test_the_names_of_retired_versions_are_bounded(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(routing, "RETIRED_VERSIONS_KEPT", 2)
        versions = router(max_versions=1)
        for name in ("v1", "v2", "v3", "v4"):
            versions.window(WindowKey(name))
        # v1, v2, v3 retired; only the last two names are remembered
        assert versions.window(WindowKey("v2")) is None
        assert versions.window(WindowKey("v1")) is not None  # forgotten: a new version again

    def test_snapshots_are_published_per_key_and_dropped_for_an_evicted_key(self) -> None:
        versions = router(max_versions=1)
        versions.window(WindowKey("v1"))
        assert versions.snapshots() == [(WindowKey("v1"), None)]
        assert versions.publish(WindowKey("v1"), snapshot("v1"))
        assert versions.snapshots() == [(WindowKey("v1"), snapshot("v1"))]
        versions.window(WindowKey("v2"))
        assert not versions.publish(WindowKey("v1"), snapshot("v1"))
        assert versions.snapshots() == [(WindowKey("v2"), None)]

    def test_an_empty_batch_is_one_empty_split(self) -> None:
        [(key, rows)] = router().split(batch_from_records([], COLUMNS))
        assert key == WindowKey()
        assert rows.shape == (0,)
        assert rows.dtype == np.bool_
