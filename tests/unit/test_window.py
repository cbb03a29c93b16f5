"""Tests for exporter.window: the bounded sliding window (last N rows, or the last D seconds)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

import exporter.window as window_module
from exporter.window import MAX_FUTURE_SECONDS, Records, Window, record_times


def batch(values: Sequence[float] | np.ndarray,
          times: Sequence[float] | np.ndarray | None = None) -> Records:
    """Records whose number ``x``, code ``c`` and time all follow ``values`` unless told."""
    x = np.asarray(values, dtype=np.float64)
    t = x.copy() if times is None else np.asarray(times, dtype=np.float64)
    return Records(x.shape[0], {"x": x}, {"c": x.astype(np.int32)}, t)


def rows_window(n: int) -> Window:
    return Window(["x"], ["c"], rows=n, duration=None)


def duration_window(seconds: float) -> Window:
    return Window(["x"], ["c"], rows=None, duration=seconds)


def content(w: Window, now: float = 0.0) -> list[float]:
    view = w.view(now)
    assert view.numbers["x"].shape == (view.rows,)
    assert view.codes["c"].tolist() == view.numbers["x"].astype(np.int32).tolist()
    return [float(v) for v in view.numbers["x"]]


class TestRowsWindow:
    def test_it_keeps_every_row_until_it_is_full(self) -> None:
        w = rows_window(10)
        w.append(batch([1, 2, 3]))
        w.append(batch([4]))
        assert content(w) == [1, 2, 3, 4]
        assert len(w) == 4

    def test_it_keeps_exactly_the_last_n_rows_in_order_across_wrap_around(self) -> None:
        w = rows_window(7)
        expected: list[float] = []
        rng = np.random.default_rng(0)
        start = 0
        for _ in range(200):
            n = int(rng.integers(0, 5))
            values = list(range(start, start + n))
            start += n
            w.append(batch(values))
            expected = (expected + [float(v) for v in values])[-7:]
            assert content(w) == expected

    def test_an_append_larger_than_the_window_keeps_its_last_rows(self) -> None:
        w = rows_window(5)
        w.append(batch([100, 101]))
        w.append(batch(list(range(12))))
        assert content(w) == [7, 8, 9, 10, 11]
        w.append(batch([12, 13]))
        assert content(w) == [9, 10, 11, 12, 13]

    def test_an_append_of_exactly_the_window_replaces_it(self) -> None:
        w = rows_window(4)
        w.append(batch([1, 2, 3]))
        w.append(batch([5, 6, 7, 8]))
        assert content(w) == [5, 6, 7, 8]

    def test_an_empty_append_changes_nothing(self) -> None:
        w = rows_window(3)
        w.append(batch([1, 2]))
        w.append(batch([]))
        assert content(w) == [1, 2]

    def test_views_are_copies_that_later_appends_do_not_change(self) -> None:
        w = rows_window(3)
        w.append(batch([1, 2, 3]))
        view = w.view(0.0)
        w.append(batch([4, 5, 6]))
        assert view.numbers["x"].tolist() == [1, 2, 3]
        assert view.times.tolist() == [1, 2, 3]

    def test_the_capacity_is_fixed_by_the_window_size(self) -> None:
        w = rows_window(50)
        for _ in range(10):
            w.append(batch(list(range(30))))
        assert w.capacity == 50

    def test_a_window_needs_either_rows_or_a_duration(self) -> None:
        with pytest.raises(ValueError, match="either rows or a duration"):
            Window(["x"], [], rows=None, duration=None)
        with pytest.raises(ValueError, match="either rows or a duration"):
            Window(["x"], [], rows=5, duration=5.0)


class TestDurationWindow:
    def test_rows_older_than_now_minus_d_leave_the_window(self) -> None:
        w = duration_window(10.0)
        w.append(batch([1, 2, 3, 4, 5], times=[100, 101, 105, 109, 112]))
        assert content(w, now=110.0) == [1, 2, 3, 4, 5]
        assert content(w, now=111.5) == [3, 4, 5]
        assert len(w) == 3  # dropped from the rings, not only from the view
        assert content(w, now=200.0) == []
        assert len(w) == 0

    def test_a_row_exactly_d_old_is_kept(self) -> None:
        w = duration_window(10.0)
        w.append(batch([1, 2], times=[100, 101]))
        assert content(w, now=110.0) == [1, 2]

    def test_out_of_order_times_are_filtered_by_their_own_time(self) -> None:
        w = duration_window(10.0)
        w.append(batch([1, 2, 3, 4, 5], times=[100, 120, 95, 121, 119]))
        assert content(w, now=125.0) == [2, 4, 5]
        assert content(w, now=130.5) == [4]
        view = w.view(130.5)
        assert view.times.tolist() == [121.0]
        assert view.rows == 1

    def test_old_rows_behind_an_out_of_order_row_leave_once_it_leaves(self) -> None:
        w = duration_window(10.0)
        w.append(batch([1, 2, 3, 4], times=[90, 100, 80, 200]))
        assert content(w, now=105.0) == [2, 4]
        assert len(w) == 3  # the leading row left; the one behind the newer row waits
        assert content(w, now=150.0) == [4]
        assert len(w) == 1  # a record time ahead of the clock stays until it is old

    def test_the_capacity_grows_by_doubling(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(window_module, "_INITIAL_CAPACITY", 4)
        monkeypatch.setattr(window_module, "DURATION_MAX_ROWS", 1000)
        w = duration_window(1e9)
        capacities = []
        for i in range(40):
            w.append(batch([i]))
            capacities.append(w.capacity)
        assert sorted(set(capacities)) == [4, 8, 16, 32, 64]
        assert content(w, now=0.0) == list(range(40))

    def test_the_capacity_never_passes_duration_max_rows(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(window_module, "_INITIAL_CAPACITY", 4)
        monkeypatch.setattr(window_module, "DURATION_MAX_ROWS", 10)
        w = duration_window(1e9)
        for i in range(25):
            w.append(batch([i, i + 0.5]))
            assert w.capacity <= 10
        assert w.capacity == 10
        assert content(w) == [20, 20.5, 21, 21.5, 22, 22.5, 23, 23.5, 24, 24.5]

    def test_one_append_beyond_duration_max_rows_keeps_its_newest_rows(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(window_module, "_INITIAL_CAPACITY", 4)
        monkeypatch.setattr(window_module, "DURATION_MAX_ROWS", 10)
        w = duration_window(1e9)
        w.append(batch([1, 2, 3]))
        w.append(batch(list(range(100, 125))))
        assert content(w) == list(range(115, 125))

    def test_growth_keeps_order_after_the_ring_has_wrapped(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(window_module, "_INITIAL_CAPACITY", 4)
        monkeypatch.setattr(window_module, "DURATION_MAX_ROWS", 100)
        w = duration_window(5.0)
        w.append(batch([1, 2, 3, 4]))
        assert content(w, now=7.5) == [3, 4]  # the ring's start is now at 2
        w.append(batch([5, 6, 7]))  # wraps, then grows
        assert content(w, now=7.5) == [3, 4, 5, 6, 7]
        w.append(batch([8, 9, 10, 11]))
        assert content(w, now=11.0) == [6, 7, 8, 9, 10, 11]


class TestRecordTimes:
    NOW = 1_700_000_000.0

    def test_a_record_without_a_timestamp_column_is_timed_when_it_was_read(self) -> None:
        times, future = record_times(None, 3, self.NOW)
        assert times.tolist() == [self.NOW] * 3
        assert future == 0

    def test_missing_and_invalid_timestamps_are_the_time_read_and_not_counted(self) -> None:
        times, future = record_times(np.array([np.nan, self.NOW - 5]), 2, self.NOW)
        assert times.tolist() == [self.NOW, self.NOW - 5]
        assert future == 0

    def test_timestamps_far_in_the_future_are_the_time_read_and_counted(self) -> None:
        own = np.array([1e300, self.NOW + 86_400, self.NOW + MAX_FUTURE_SECONDS + 1,
                        self.NOW + MAX_FUTURE_SECONDS, self.NOW + 1, self.NOW])
        times, future = record_times(own, 6, self.NOW)
        assert times.tolist() == [self.NOW, self.NOW, self.NOW, self.NOW + MAX_FUTURE_SECONDS,
                                  self.NOW + 1, self.NOW]
        assert future == 3

    def test_old_timestamps_are_kept_however_old(self) -> None:
        own = np.array([0.0, -1e300, 946_684_800.0])
        times, future = record_times(own, 3, self.NOW)
        assert times.tolist() == own.tolist()
        assert future == 0

    def test_the_clock_is_the_one_given_not_the_wall_clock(self) -> None:
        replayed = 1_000_000.0  # a replay reads records of long ago by their own time
        times, future = record_times(np.array([replayed + 10, replayed + 3600]), 2, replayed)
        assert times.tolist() == [replayed + 10, replayed]
        assert future == 1

    def test_a_record_once_stamped_in_the_future_leaves_a_duration_window_in_time(
        self
    ) -> None:
        w = duration_window(10.0)
        times, _ = record_times(np.array([1e300, self.NOW]), 2, self.NOW)
        w.append(batch([1, 2], times=times))
        assert content(w, now=self.NOW + 5) == [1, 2]
        assert content(w, now=self.NOW + 11) == []


class TestConcurrency:
    def test_appends_and_views_from_two_threads_never_tear_rows(self) -> None:
        w = rows_window(1000)
        stop = threading.Event()
        errors: list[str] = []

        def reader() -> None:
            while not stop.is_set():
                view = w.view(0.0)
                x = view.numbers["x"]
                if not np.array_equal(x, view.times) or not np.all(np.diff(x) == 1):
                    errors.append("torn view")

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for start in range(0, 50_000, 97):
                w.append(batch(np.arange(start, start + 97)))
        finally:
            stop.set()
            thread.join()
        assert errors == []


class TestRowNumbers:
    """What a view says about which rows it holds, for the statistics that update what they
    derived from the previous view (snapshot.compute_sorted)."""

    def test_a_views_first_row_number_counts_every_row_ever_appended(self) -> None:
        w = rows_window(4)
        w.append(batch([1, 2, 3]))
        assert w.view(0.0).first == 0
        w.append(batch([4, 5, 6, 7, 8, 9]))  # more than fit: rows 0-4 are gone
        view = w.view(0.0)
        assert (view.first, view.rows) == (5, 4)
        assert content(w) == [6, 7, 8, 9]

    def test_rows_skipped_by_a_batch_larger_than_the_window_are_numbered_too(self) -> None:
        w = rows_window(3)
        w.append(batch([1, 2, 3, 4, 5]))
        assert (w.view(0.0).first, content(w)) == (2, [3, 4, 5])

    def test_rows_aged_out_of_a_duration_window_move_its_first_row(self) -> None:
        w = duration_window(10)
        w.append(batch([0, 1, 2, 20, 21]))
        view = w.view(25.0)
        assert (view.first, view.rows) == (3, 2)

    def test_a_duration_view_leaving_out_older_rows_behind_newer_ones_is_not_a_run(
            self) -> None:
        w = duration_window(10)
        w.append(batch([20, 1, 21]))  # 1 arrived after 20: it stays in the rings, not the view
        view = w.view(25.0)
        assert view.numbers["x"].tolist() == [20, 21]
        assert view.first == -1

    def test_changing_values_in_place_counts_an_edit_of_that_column(self) -> None:
        w = Window(["x", "y"], [], rows=5, duration=None, objects=("id",))
        ids = np.array(["a", "b"], dtype=object)
        w.append(Records(2, {"x": np.array([1.0, 2.0]), "y": np.array([np.nan, np.nan])}, {},
                         np.zeros(2), {"id": ids}))
        assert w.view(0.0).edits == {}
        w.assign("id", np.array(["b"], dtype=object), "y", np.array([7.0]))
        view = w.view(0.0)
        assert view.edits == {"y": 1}
        assert view.numbers["y"].tolist()[1] == 7.0
