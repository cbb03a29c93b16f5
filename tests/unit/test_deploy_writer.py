"""exporter_client: the prediction-log writers apps use (JSONL with roll-over, Parquet batches)."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_clock import FakeClock

from exporter.tailing import ignored
from exporter_client import JsonlLogWriter, LogFileNamer, ParquetLogWriter, encode_record

THREADS = 8
PER_THREAD = 1500


def read_lines(directory: Path) -> list[dict[str, Any]]:
    """Every record of every .jsonl file, files in name order; fails on a partial line."""
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        data = path.read_bytes()
        assert data.endswith(b"\n") or not data, f"{path.name} ends in a partial line"
        records.extend(json.loads(line) for line in data.splitlines())
    return records


def read_parquet(directory: Path) -> list[dict[str, Any]]:
    """Every row of every .parquet file, files in name order."""
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Writers stop their flush threads on close."""
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


class TestEncodeRecord:
    """One record becomes one JSON line the exporter can read."""

    def test_a_record_is_one_line_even_with_newlines_in_its_strings(self) -> None:
        line = encode_record({"text": "a\nb", "x": 1})
        assert line.count(b"\n") == 1
        assert line.endswith(b"\n")
        assert json.loads(line) == {"text": "a\nb", "x": 1}

    def test_nan_is_written_as_the_token_the_exporter_reads_as_missing(self) -> None:
        assert b"NaN" in encode_record({"x": math.nan})

    def test_numpy_scalars_datetimes_and_arrays_are_converted(self) -> None:
        when = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.UTC)
        naive = dt.datetime(2026, 11, 23, 10, 0, 0)  # naive on purpose: taken as UTC
        record = json.loads(encode_record({"f": np.float32(0.5), "i": np.int64(3),
                                           "b": np.bool_(True), "t": when, "n": naive,
                                           "v": np.arange(2)}))
        assert record == {"f": 0.5, "i": 3, "b": True, "t": "2026-11-23T10:00:00Z",
                          "n": "2026-11-23T10:00:00Z", "v": [0, 1]}

    def test_a_value_json_cannot_hold_is_a_type_error_naming_its_type(self) -> None:
        with pytest.raises(TypeError, match="object"):
            encode_record({"x": object()})

    def test_a_record_that_is_not_a_mapping_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="mapping"):
            encode_record([1, 2])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="keys must be strings"):
            encode_record({1: 2})  # type: ignore[dict-item]


class TestLogFileNamer:
    """File names sort in creation order and are never reused."""

    def test_names_sort_in_creation_order(self, tmp_path: Path) -> None:
        clock = FakeClock(1_800_000_000.0)
        namer = LogFileNamer(tmp_path, "p", ".jsonl", clock)
        names = []
        for step in range(12):
            clock.now += step % 2
            path = namer.next_path()
            path.touch()
            names.append(path.name)
        assert names == sorted(names)
        assert len(set(names)) == len(names)

    def test_a_restarted_app_in_the_same_second_does_not_reuse_a_name(
            self, tmp_path: Path) -> None:
        clock = FakeClock(1_800_000_000.0)
        first = LogFileNamer(tmp_path, "p", ".jsonl", clock).next_path()
        first.touch()
        second = LogFileNamer(tmp_path, "p", ".jsonl", clock).next_path()
        assert second != first
        assert second.name > first.name

    @pytest.mark.parametrize("prefix", ["", ".hidden", "_private", "a/b"])
    def test_a_prefix_the_exporter_would_ignore_is_refused(self, tmp_path: Path,
                                                            prefix: str) -> None:
        with pytest.raises(ValueError, match="prefix"):
            LogFileNamer(tmp_path, prefix, ".jsonl")


class TestJsonlLogWriter:
    """JSONL: one complete line per write, roll-over by size and by age, thread-safe."""

    def test_each_write_appends_one_line_visible_at_once(self, tmp_path: Path) -> None:
        with JsonlLogWriter(tmp_path) as writer:
            writer.write({"request_id": "a", "x": 1.5})
            assert read_lines(tmp_path) == [{"request_id": "a", "x": 1.5}]
            writer.write({"request_id": "b", "x": None})
            assert read_lines(tmp_path)[-1] == {"request_id": "b", "x": None}
            assert writer.current_path is not None
            assert writer.current_path.suffix == ".jsonl"
        assert writer.current_path is None

    def test_no_file_is_created_before_the_first_record(self, tmp_path: Path) -> None:
        JsonlLogWriter(tmp_path / "logs").close()
        assert list((tmp_path / "logs").iterdir()) == []

    def test_a_new_file_starts_before_a_record_that_would_pass_max_bytes(
            self, tmp_path: Path) -> None:
        line = len(encode_record({"i": 0, "pad": "x" * 40}))
        with JsonlLogWriter(tmp_path, max_bytes=3 * line) as writer:
            for i in range(10):
                writer.write({"i": i, "pad": "x" * 40})
        files = sorted(tmp_path.glob("*.jsonl"))
        assert [len(f.read_bytes().splitlines()) for f in files] == [3, 3, 3, 1]
        assert all(f.stat().st_size <= 3 * line for f in files)
        assert [r["i"] for r in read_lines(tmp_path)] == list(range(10))

    def test_a_record_larger_than_max_bytes_gets_a_file_of_its_own(
            self, tmp_path: Path) -> None:
        with JsonlLogWriter(tmp_path, max_bytes=50) as writer:
            writer.write({"i": 0})
            writer.write({"i": 1, "pad": "y" * 200})
            writer.write({"i": 2})
        files = sorted(tmp_path.glob("*.jsonl"))
        assert [[json.loads(x)["i"] for x in f.read_bytes().splitlines()] for f in files] == [
            [0], [1], [2]]

    def test_a_new_file_starts_with_the_first_record_after_max_age(
            self, tmp_path: Path) -> None:
        clock = FakeClock(1_800_000_000.0)
        with JsonlLogWriter(tmp_path, max_age=60.0, clock=clock) as writer:
            writer.write({"i": 0})
            clock.now += 59.0
            writer.write({"i": 1})
            clock.now += 1.0
            writer.write({"i": 2})
            clock.now += 3600.0  # a quiet hour makes no empty file: nothing is written
            assert len(list(tmp_path.glob("*.jsonl"))) == 2
            writer.write({"i": 3})
        files = sorted(tmp_path.glob("*.jsonl"))
        assert [len(f.read_bytes().splitlines()) for f in files] == [2, 1, 1]
        assert writer.files_opened == 3

    def test_keep_files_deletes_the_oldest_files_at_roll_over(self, tmp_path: Path) -> None:
        with JsonlLogWriter(tmp_path, max_bytes=10, keep_files=2) as writer:
            for i in range(6):
                writer.write({"i": i})
        assert [r["i"] for r in read_lines(tmp_path)] == [4, 5]

    def test_concurrent_writers_lose_no_record_and_cut_none(self, tmp_path: Path) -> None:
        writer = JsonlLogWriter(tmp_path, max_bytes=20_000)
        start = threading.Barrier(THREADS)

        def work(thread: int) -> None:
            start.wait()
            for i in range(PER_THREAD):
                writer.write({"request_id": f"{thread}-{i}", "value": i * 0.5,
                              "pad": "z" * (i % 50)})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        writer.close()
        records = read_lines(tmp_path)
        ids = [r["request_id"] for r in records]
        assert len(ids) == THREADS * PER_THREAD
        assert len(set(ids)) == len(ids)
        assert writer.records_written == len(ids)
        assert len(list(tmp_path.glob("*.jsonl"))) > 10  # it did roll over under contention
        for thread in range(THREADS):  # each thread's records stay in its own order
            mine = [int(i.split("-")[1]) for i in ids if i.startswith(f"{thread}-")]
            assert mine == list(range(PER_THREAD))

    def test_a_write_after_close_is_refused(self, tmp_path: Path) -> None:
        writer = JsonlLogWriter(tmp_path)
        writer.close()
        writer.close()
        with pytest.raises(ValueError, match="closed"):
            writer.write({"x": 1})

    def test_a_record_that_cannot_be_encoded_writes_nothing(self, tmp_path: Path) -> None:
        with JsonlLogWriter(tmp_path) as writer:
            writer.write({"x": 1})
            with pytest.raises(TypeError):
                writer.write({"x": object()})
            writer.write({"x": 2})
        assert read_lines(tmp_path) == [{"x": 1}, {"x": 2}]

    @pytest.mark.parametrize(("option", "value"), [("max_bytes", 0), ("max_age", 0.0),
                                                   ("keep_files", 0)])
    def test_nonsense_limits_are_refused_by_name(self, tmp_path: Path, option: str,
                                                  value: float) -> None:
        with pytest.raises(ValueError, match=option):
            JsonlLogWriter(tmp_path, **{option: value})  # type: ignore[arg-type]


class TestParquetLogWriter:
    """Parquet: batches written under a temporary name, renamed when complete."""

    def test_a_full_batch_becomes_one_complete_file(self, tmp_path: Path) -> None:
        with ParquetLogWriter(tmp_path, batch_rows=4, background=False) as writer:
            for i in range(9):
                writer.write({"request_id": f"r{i}", "x": float(i)})
            assert len(list(tmp_path.glob("*.parquet"))) == 2
            assert [r["request_id"] for r in read_parquet(tmp_path)] == [
                f"r{i}" for i in range(8)]
        assert [r["x"] for r in read_parquet(tmp_path)] == [float(i) for i in range(9)]
        assert list(tmp_path.glob("*.tmp")) == []
        assert writer.records_written == 9

    def test_each_batch_is_written_under_a_name_the_exporter_ignores_then_renamed(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        seen: list[tuple[str, bool]] = []
        real = pq.write_table

        def spy(table: pa.Table, where: Any, **kwargs: Any) -> None:
            final = Path(str(where)).with_suffix("")
            seen.append((str(where), final.exists()))
            real(table, where, **kwargs)

        monkeypatch.setattr(pq, "write_table", spy)
        with ParquetLogWriter(tmp_path, batch_rows=2, background=False) as writer:
            writer.write({"x": 1})
            writer.write({"x": 2})
        assert len(seen) == 1
        written, final_existed = seen[0]
        assert written.endswith(".parquet.tmp")
        assert ignored(written)
        assert not final_existed
        assert not ignored(str(writer.files_written[0]))

    def test_a_failed_batch_leaves_no_temporary_file(self, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        def broken(table: pa.Table, where: Any, **kwargs: Any) -> None:
            Path(str(where)).write_bytes(b"half a file")
            raise OSError("disk full")

        monkeypatch.setattr(pq, "write_table", broken)
        writer = ParquetLogWriter(tmp_path, batch_rows=1, background=False)
        with pytest.raises(OSError, match="disk full"):
            writer.write({"x": 1})
        monkeypatch.undo()
        writer.close()
        assert list(tmp_path.iterdir()) == []

    def test_a_partial_batch_is_written_on_flush_and_on_close(self, tmp_path: Path) -> None:
        writer = ParquetLogWriter(tmp_path, batch_rows=100, background=False)
        assert writer.flush() is None
        writer.write({"x": 1})
        assert writer.flush() is not None
        writer.write({"x": 2})
        writer.close()
        assert [r["x"] for r in read_parquet(tmp_path)] == [1, 2]
        assert len(writer.files_written) == 2

    def test_a_batch_is_written_when_its_oldest_record_reaches_max_age(
            self, tmp_path: Path) -> None:
        clock = FakeClock(1_800_000_000.0)
        with ParquetLogWriter(tmp_path, batch_rows=100, max_age=30.0, background=False,
                              clock=clock) as writer:
            writer.write({"x": 1})
            clock.now += 29.0
            assert writer.flush_if_due() is None
            writer.write({"x": 2})
            clock.now += 1.0
            assert writer.flush_if_due() is not None
            writer.write({"x": 3})
            clock.now += 30.0
            writer.write({"x": 4})  # a write finds the batch old enough too
            assert len(writer.files_written) == 2
        assert [r["x"] for r in read_parquet(tmp_path)] == [1, 2, 3, 4]

    def test_the_background_thread_flushes_a_quiet_buffer(self, tmp_path: Path) -> None:
        with ParquetLogWriter(tmp_path, batch_rows=100, max_age=0.2) as writer:
            writer.write({"x": 1})
            deadline = threading.Event()
            for _ in range(100):
                if writer.files_written:
                    break
                deadline.wait(0.05)
            assert writer.files_written, "no file within 5 s of a 0.2 s max_age"

    def test_mixed_columns_become_text_and_datetimes_rfc3339(self, tmp_path: Path) -> None:
        when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        with ParquetLogWriter(tmp_path, batch_rows=3, background=False) as writer:
            writer.write({"mixed": 1.0, "t": when, "n": np.float64(2.5)})
            writer.write({"mixed": "abc", "t": when, "n": None})
            writer.write({"mixed": None, "t": when})
        table = pq.read_table(next(tmp_path.glob("*.parquet")))
        assert table.column("mixed").to_pylist() == ["1", "abc", None]
        assert table.column("t").to_pylist() == ["2026-01-02T03:04:05Z"] * 3
        assert table.column("n").to_pylist() == [2.5, None, None]

    def test_a_given_schema_is_used(self, tmp_path: Path) -> None:
        schema = pa.schema([("x", pa.float32()), ("c", pa.string())])
        with ParquetLogWriter(tmp_path, batch_rows=1, schema=schema,
                              background=False) as writer:
            writer.write({"x": 1, "c": "a"})
        assert pq.read_table(writer.files_written[0]).schema.field("x").type == pa.float32()

    def test_keep_files_deletes_the_oldest_batches(self, tmp_path: Path) -> None:
        with ParquetLogWriter(tmp_path, batch_rows=1, keep_files=2,
                              background=False) as writer:
            for i in range(5):
                writer.write({"x": i})
        assert [r["x"] for r in read_parquet(tmp_path)] == [3, 4]

    def test_concurrent_writers_lose_no_record(self, tmp_path: Path) -> None:
        writer = ParquetLogWriter(tmp_path, batch_rows=333, max_age=0.05)
        start = threading.Barrier(THREADS)

        def work(thread: int) -> None:
            start.wait()
            for i in range(PER_THREAD // 3):
                writer.write({"request_id": f"{thread}-{i}", "value": i})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        writer.close()
        ids = [r["request_id"] for r in read_parquet(tmp_path)]
        assert len(ids) == THREADS * (PER_THREAD // 3)
        assert len(set(ids)) == len(ids)
        assert list(tmp_path.glob("*.tmp")) == []

    def test_a_write_after_close_is_refused(self, tmp_path: Path) -> None:
        writer = ParquetLogWriter(tmp_path)
        writer.close()
        writer.close()
        with pytest.raises(ValueError, match="closed"):
            writer.write({"x": 1})
