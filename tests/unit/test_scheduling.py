"""Scheduler: when a window is recomputed, by the clock it is given."""

from __future__ import annotations

from exporter.routing import WindowKey
from exporter.scheduling import Scheduler

V1, V2 = WindowKey("v1"), WindowKey("v2")


def computed(scheduler: Scheduler, key: WindowKey, now: float) -> None:
    scheduler.begin(key, now)
    scheduler.done(key)


class TestScheduler:
    """Pending counts, update_interval, ageing windows and catching up."""

    def test_a_key_never_computed_is_due_at_once(self) -> None:
        assert Scheduler(10.0, ages=False).due(V1, 0.0)

    def test_a_rows_window_is_due_when_the_interval_elapsed_and_records_arrived(self) -> None:
        scheduler = Scheduler(10.0, ages=False)
        computed(scheduler, V1, 100.0)
        assert not scheduler.due(V1, 200.0)  # nothing new
        scheduler.added(V1, 3)
        assert not scheduler.due(V1, 109.9)  # too soon
        assert scheduler.due(V1, 110.0)
        computed(scheduler, V1, 110.0)
        assert scheduler.pending(V1) == 0

    def test_a_duration_window_is_due_every_interval_as_its_records_age(self) -> None:
        scheduler = Scheduler(10.0, ages=True)
        computed(scheduler, V1, 100.0)
        assert not scheduler.due(V1, 105.0)
        assert scheduler.due(V1, 110.0)

    def test_records_noted_during_a_computation_count_for_the_next(self) -> None:
        scheduler = Scheduler(10.0, ages=False)
        scheduler.added(V1, 5)
        scheduler.begin(V1, 100.0)
        scheduler.added(V1, 2)  # arrived while computing
        scheduler.done(V1)
        assert scheduler.pending(V1) == 2
        assert scheduler.due(V1, 110.0)

    def test_a_failed_computation_leaves_a_new_key_due(self) -> None:
        scheduler = Scheduler(10.0, ages=False)
        scheduler.begin(V1, 100.0)  # no done(): it raised
        assert scheduler.due(V1, 100.1)

    def test_nothing_is_due_while_catching_up(self) -> None:
        scheduler = Scheduler(10.0, ages=False)
        scheduler.catching_up = True
        assert not scheduler.any_due([V1, V2], 0.0)
        scheduler.catching_up = False
        assert scheduler.any_due([V1, V2], 0.0)

    def test_a_forgotten_key_starts_afresh(self) -> None:
        scheduler = Scheduler(10.0, ages=False)
        scheduler.added(V1, 4)
        computed(scheduler, V1, 100.0)
        scheduler.added(V1, 4)
        scheduler.forget(V1)
        assert scheduler.pending(V1) == 0
        assert scheduler.due(V1, 100.0)  # never computed, as far as it knows
