"""WindowRouter: rows split by window key, keys admitted and evicted, windows and snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from exporter import routing
from exporter.parsing import CATEGORY, NUMBER, ColumnSpec, batch_from_records
from exporter.routing import UNKNOWN_VERSION, WindowKey, WindowRouter
from exporter.segments import NO_SEGMENT, OTHER_SEGMENT, Segmentation, choose
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


SEGMENTED = [ColumnSpec("x", NUMBER), ColumnSpec("v", CATEGORY), ColumnSpec("c", CATEGORY)]


def segmentation(*rows: str | None, max_segments: int = 2, min_rows: int = 2) -> Segmentation:
    return choose("c", np.array(rows, dtype=object), max_segments, min_rows)


class TestSegmentChoice:
    """The segments come from the reference: the most frequent values, the rest __other__."""

    def test_the_most_frequent_values_get_a_window_and_the_rest_share_other(self) -> None:
        chosen = segmentation("fr", "fr", "fr", "de", "de", "it", "it", "es", "es", None)
        assert chosen.own == ("fr", "de")  # it and es tie with de's rank below: by value
        assert chosen.names == ("fr", "de", OTHER_SEGMENT)
        assert dict(chosen.sizes) == {"fr": 3, "de": 2, OTHER_SEGMENT: 5}

    def test_ties_are_broken_by_value(self) -> None:
        assert segmentation("b", "b", "a", "a", "c", "c").own == ("a", "b")

    def test_a_value_with_fewer_reference_rows_than_min_rows_is_counted_in_other(self) -> None:
        chosen = segmentation("fr", "fr", "fr", "de", "x", "y", min_rows=2)
        assert chosen.own == ("fr",)
        assert chosen.small == ("de",)
        assert chosen.sizes[OTHER_SEGMENT] == 3

    def test_other_has_no_window_when_the_rest_of_the_reference_is_below_min_rows(self) -> None:
        chosen = segmentation("fr", "fr", "fr", "de", "de", "it", max_segments=2, min_rows=2)
        assert not chosen.other
        assert chosen.names == ("fr", "de")
        assert chosen.codes(np.array(["it", "fr"], dtype=object)).tolist() == [NO_SEGMENT, 0]

    def test_empty_and_reserved_values_never_get_their_own_window(self) -> None:
        chosen = segmentation("", "", "", OTHER_SEGMENT, OTHER_SEGMENT, OTHER_SEGMENT, "a", "a")
        assert chosen.own == ("a",)

    def test_missing_and_unknown_values_belong_to_other(self) -> None:
        chosen = segmentation("fr", "fr", "fr", "de", "de", "x", "y")
        codes = chosen.codes(np.array(["de", None, "zz", "fr"], dtype=object))
        assert codes.tolist() == [1, 2, 2, 0]


class TestSegmentRouting:
    """A record goes to its version's whole-model window and to its segment's window."""

    def segmented(self, version_column: str | None = None, max_versions: int = 2,
                  evicted: list[WindowKey] | None = None) -> WindowRouter:
        sink = evicted if evicted is not None else []
        return WindowRouter("m", version_column, max_versions, new_window, on_evict=sink.append,
                            segmentation=segmentation("fr", "fr", "fr", "de", "de", "x", "y"))

    def test_every_row_is_in_the_whole_window_and_in_one_segment_window(self) -> None:
        batch = batch_from_records([{"x": 1.0, "c": "de"}, {"x": 2.0, "c": "fr"},
                                    {"x": 3.0}, {"x": 4.0, "c": "de"}], SEGMENTED)
        split = dict(self.segmented().split(batch))
        assert split[WindowKey()].tolist() == [True, True, True, True]
        assert split[WindowKey("", "de")].tolist() == [True, False, False, True]
        assert split[WindowKey("", "fr")].tolist() == [False, True, False, False]
        assert split[WindowKey("", OTHER_SEGMENT)].tolist() == [False, False, True, False]

    def test_an_unversioned_model_admits_every_segment_window_at_start(self) -> None:
        keys = [k for k, _ in self.segmented().windows()]
        assert keys == [WindowKey(), WindowKey("", "fr"), WindowKey("", "de"),
                        WindowKey("", OTHER_SEGMENT)]

    def test_segment_labels_never_exceed_max_segments_plus_one(self) -> None:
        records = [{"x": float(i), "c": f"c{i}"} for i in range(50)]
        split = self.segmented().split(batch_from_records(records, SEGMENTED))
        assert {k.segment for k, _ in split} == {"", OTHER_SEGMENT}

    def test_versions_times_segments_a_version_comes_and_goes_with_its_segments(self) -> None:
        evicted: list[WindowKey] = []
        versioned = self.segmented("v", max_versions=2, evicted=evicted)
        for version in ("v1", "v2", "v3"):
            batch = batch_from_records([{"x": 1.0, "v": version, "c": "fr"}], SEGMENTED)
            for key, _ in versioned.split(batch):
                assert versioned.window(key) is not None
        assert {k.version for k, _ in versioned.windows()} == {"v2", "v3"}
        assert len(versioned.windows()) == 2 * 4  # max_versions * (whole + 2 own + __other__)
        assert {k.version for k in evicted} == {"v1"}
        assert len(evicted) == 4
        assert versioned.window(WindowKey("v1", "fr")) is None  # retired with its segments
