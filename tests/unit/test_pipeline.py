"""ModelPipeline, the core: batches and a clock in, snapshots and states out; no files, no
threads, no wall clock (NOW is far from the wall clock, so any use of it would show)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest
from pipeline_models import NOW, batch, feedback_batch, model, rows, with_feedback

import exporter
from exporter.pipeline import ModelPipeline


def pipeline(tmp_path: Path, **extra: object) -> ModelPipeline:
    return ModelPipeline(*model(tmp_path, **extra))


class TestAdd:
    """Records in: encoded, routed, counted."""

    def test_added_records_are_in_the_window_and_counted(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path)
        assert core.add(batch(core, rows(5)), NOW) == 5
        assert len(core.window) == 5
        counters = core.counters.values()
        assert counters.rows_ingested == 5
        assert counters.last_record_timestamp == NOW  # no timestamp column: the time read
        fleet = core.state().fleet
        assert fleet is not None

    def test_a_duration_window_ages_its_records_out_as_the_clock_advances(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, window={"duration": "1m"}, timestamp_column="ts")
        core.add(batch(core, rows(3, ts=NOW - 50)), NOW)
        core.add(batch(core, rows(2, ts=NOW)), NOW)
        assert [s.window_rows for s in core.recompute(NOW)] == [5]
        assert [s.window_rows for s in core.recompute(NOW + 30)] == [2]
        assert [s.window_rows for s in core.recompute(NOW + 61)] == [0]

    def test_a_new_version_beyond_max_versions_evicts_the_oldest_and_its_records_are_rejected(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, version_column="v", max_versions=2)
        core.add(batch(core, rows(2, v="v1") + rows(3, v="v2")), NOW)
        assert core.add(batch(core, rows(1, v="v3") + rows(4, v="v1")), NOW) == 1
        counters = core.counters.values()
        assert counters.rows_ingested == 6
        assert counters.rows_rejected["old_version"] == 4
        core.recompute(NOW)
        versions = core.state().versions
        assert [(v.name, v.snapshot.window_rows if v.snapshot else None)
                for v in versions] == [("v2", 3), ("v3", 1)]

    def test_a_record_without_a_version_goes_to_the_unknown_version(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, version_column="v", max_versions=2)
        core.add(batch(core, rows(2)), NOW)
        core.recompute(NOW)
        assert [v.name for v in core.state().versions] == ["unknown"]


class TestFeedback:
    """Late labels through the core: before and after their prediction."""

    def test_feedback_after_its_prediction_joins_and_makes_the_window_due(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, **with_feedback(tmp_path))
        core.add(batch(core, [{"x": 1.0, "city": "a", "score": 0.5, "id": "r1"}]), NOW)
        core.recompute(NOW)
        assert not core.due(NOW + 20)
        core.add_feedback(feedback_batch(core, [{"id": "r1", "y": 0.25}]), NOW + 1)
        assert core.window.view(NOW).numbers["y"].tolist() == [0.25]
        assert core.counters.values().feedback_matched == 1
        assert core.due(NOW + 20)

    def test_feedback_before_its_prediction_fills_the_prediction_when_it_arrives(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, **with_feedback(tmp_path))
        core.add_feedback(feedback_batch(core, [{"id": "r1", "y": 0.75}]), NOW)
        core.add(batch(core, [{"x": 1.0, "city": "a", "score": 0.5, "id": "r1"}]), NOW + 1)
        assert core.window.view(NOW + 1).numbers["y"].tolist() == [0.75]

    def test_feedback_for_a_model_without_it_is_refused(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path)
        with pytest.raises(ValueError, match="no label feedback"):
            core.add_feedback(batch(core, []), NOW)


class TestRecompute:
    """Snapshots out, when the scheduler says so, stamped with the given clock."""

    def test_recompute_stamps_each_snapshot_with_the_clock_it_was_given(
            self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, version_column="v")
        core.add(batch(core, rows(3, v="a") + rows(3, v="b")), NOW)
        snapshots = core.recompute(NOW + 7)
        assert [(s.version, s.computed_at) for s in snapshots] == [("a", NOW + 7), ("b", NOW + 7)]
        assert [v.snapshot for v in core.state().versions] == snapshots

    def test_due_follows_the_update_interval_of_the_given_clock(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path, update_interval="10s")
        assert core.due(NOW)  # never computed
        core.recompute(NOW)
        core.add(batch(core, rows(1)), NOW + 1)
        assert not core.due(NOW + 9)
        assert core.due(NOW + 10)
        assert core.recompute(NOW + 9, force=False) == []
        assert len(core.recompute(NOW + 10, force=False)) == 1
        assert not core.due(NOW + 30)  # nothing new since

    def test_nothing_is_due_while_the_caller_catches_up(self, tmp_path: Path) -> None:
        core = pipeline(tmp_path)
        core.set_catching_up(True)
        assert not core.due(NOW)
        core.set_catching_up(False)
        assert core.due(NOW)

    def test_the_core_leaves_no_thread_behind(self, tmp_path: Path) -> None:
        before = set(threading.enumerate())
        core = pipeline(tmp_path, **with_feedback(tmp_path))
        core.add(batch(core, rows(50)), NOW)
        core.recompute(NOW)
        assert set(threading.enumerate()) == before


CORE = ("pipeline", "encoding", "routing", "feedback", "scheduling", "alarming", "alarm")
NOT_IN_THE_CORE = {"time", "os", "exporter.reader", "exporter.tailing", "exporter.sources",
                   "exporter.watching"}


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_neither_files_nor_the_wall_clock(module: str) -> None:
    path = Path(exporter.__file__).parent / f"{module}.py"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not imported & NOT_IN_THE_CORE
