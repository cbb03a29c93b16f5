"""Tests for exporter.tailing: following log files through partial lines, rotation, truncation.

Scenario names follow mtail's tailer tests. Time never passes by sleeping: each test calls
``poll()`` itself, and gives the follower a FakeClock to advance where time matters.
"""

from __future__ import annotations

import errno
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_clock import FakeClock

from exporter import parsing, tail_jsonl, tailing
from exporter.tail_jsonl import JsonlFormat
from exporter.tail_parquet import ParquetFormat
from exporter.tailing import (
    Event,
    FileCorrupt,
    FileReady,
    Follower,
    LineChunk,
    LongLine,
    Truncated,
    ignored,
)

LIMIT = 1 << 20


def jsonl(limit: int) -> JsonlFormat:
    """JSONL as the exporter follows it, with the parser's rule for which lines are records."""
    return JsonlFormat(limit, lambda data, most: parsing.record_lines(data, max_line_bytes=most))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def record(i: int, **extra: object) -> bytes:
    return json.dumps({"i": i, **extra}, ensure_ascii=False).encode("utf-8") + b"\n"


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def set_mtime(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def ids(events: list[Event]) -> list[int]:
    """The ``i`` of every complete line in the LineChunks, in order."""
    out: list[int] = []
    for event in events:
        if isinstance(event, LineChunk):
            assert event.data.endswith(b"\n")
            out.extend(json.loads(line)["i"] for line in event.data.splitlines() if line.strip())
    return out


def of_type(events: list[Event], kind: type) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


@pytest.fixture
def follow(tmp_path: Path, clock: FakeClock) -> Iterator[Follower]:
    follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT), clock=clock)
    yield follower
    follower.close()


def poll(follower: Follower) -> list[Event]:
    return list(follower.poll())


class TestPartialLine:
    def test_partial_line_waits_for_its_newline_and_is_read_once(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + b'{"i": 1')
        assert ids(poll(follow)) == [0]
        assert poll(follow) == []
        append(log, b', "late": true}')
        assert poll(follow) == []
        append(log, b"\n")
        events = poll(follow)
        assert ids(events) == [1]
        assert isinstance(events[0], LineChunk)
        assert events[0].first_line == 2
        assert poll(follow) == []

    @pytest.mark.parametrize("seed", range(5))
    def test_appends_in_random_chunks_give_every_record_exactly_once(
        self, tmp_path: Path, follow: Follower, seed: int
    ) -> None:
        rng = random.Random(seed)
        n = 300
        # multi-byte characters and CRLF endings, so cuts fall inside both
        data = b"".join(record(i, text="é€😀"[i % 3] * (i % 7)).replace(b"\n", b"\r\n")
                        for i in range(n))
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"")
        got: list[int] = []
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 97)
            append(log, data[pos:pos + step])
            pos += step
            for event in poll(follow):
                assert isinstance(event, LineChunk)
                assert event.data.endswith(b"\r\n")
                event.data.decode("utf-8")  # never cut inside a character
                got.extend(ids([event]))
        assert got == list(range(n))

    def test_line_numbers_continue_across_polls(self, tmp_path: Path, follow: Follower) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + record(1))
        first = poll(follow)
        append(log, record(2) + b"\n" + record(3))
        second = poll(follow)
        assert [e.first_line for e in first + second if isinstance(e, LineChunk)] == [1, 3]


class TestLogRotation:
    def test_log_rotation_drains_the_old_file_and_reads_the_new_one_from_the_start(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + record(1))
        assert ids(poll(follow)) == [0, 1]
        append(log, record(2) + record(3))
        log.rename(tmp_path / "app.jsonl.1")  # out of the glob
        (tmp_path / "app.jsonl").write_bytes(record(4))
        events = poll(follow)
        assert ids(events) == [2, 3, 4]
        assert of_type(events, Truncated) == []
        assert poll(follow) == []

    def test_log_rotation_reads_what_the_writer_adds_before_it_reopens_its_log(
        self, tmp_path: Path, follow: Follower, clock: FakeClock
    ) -> None:
        log = tmp_path / "app.jsonl"
        with log.open("ab", buffering=0) as writer:
            writer.write(record(0))
            assert ids(poll(follow)) == [0]
            log.rename(tmp_path / "app.jsonl.1")
            assert poll(follow) == []
            writer.write(record(1))  # the writer has not reopened app.jsonl yet
            assert ids(poll(follow)) == [1]
            assert follow.open_files == 1
        (tmp_path / "app.jsonl").write_bytes(record(2))
        assert ids(poll(follow)) == [2]
        assert follow.open_files == 2  # the rotated file is held until it settles
        clock.advance(tailing.RELEASE_AFTER_SECONDS)
        append(tmp_path / "app.jsonl", record(3))  # written to: not closed for being idle
        assert ids(poll(follow)) == [3]
        assert follow.open_files == 1

    def test_log_rotation_twice_between_two_polls_loses_and_repeats_nothing(
        self, tmp_path: Path
    ) -> None:
        follower = Follower(str(tmp_path / "app*.jsonl"), jsonl(LIMIT))
        a = tmp_path / "app.jsonl"
        a.write_bytes(record(0))
        assert ids(poll(follower)) == [0]
        append(a, record(1))
        a.rename(tmp_path / "app-1.jsonl")
        (tmp_path / "app.jsonl").write_bytes(record(2) + record(3))
        (tmp_path / "app-1.jsonl").rename(tmp_path / "app-2.jsonl")
        (tmp_path / "app.jsonl").rename(tmp_path / "app-1.jsonl")
        (tmp_path / "app.jsonl").write_bytes(record(4))
        got = ids(poll(follower))
        assert sorted(got) == [1, 2, 3, 4]
        assert got.index(2) < got.index(3)
        append(tmp_path / "app.jsonl", record(5))
        assert ids(poll(follower)) == [5]
        follower.close()

    def test_a_renamed_file_keeps_its_offset(self, tmp_path: Path) -> None:
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT))
        log = tmp_path / "a.jsonl"
        log.write_bytes(record(0))
        assert ids(poll(follower)) == [0]
        log.rename(tmp_path / "b.jsonl")
        append(tmp_path / "b.jsonl", record(1))
        assert ids(poll(follower)) == [1]
        follower.close()

    def test_a_rotated_file_whose_writer_finishes_its_last_line_is_read_completely(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        with log.open("ab", buffering=0) as writer:
            writer.write(record(0) + b'{"i": 1')
            assert ids(poll(follow)) == [0]
            log.rename(tmp_path / "app.jsonl.1")
            assert poll(follow) == []
            assert follow.open_files == 1  # held: its writer may still finish the line
            writer.write(b"}\n")
        assert ids(poll(follow)) == [1]


class TestLogTruncation:
    def test_copy_truncate_below_the_offset_is_reported_and_read_again(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(record(i) for i in range(10)))
        assert ids(poll(follow)) == list(range(10))
        shutil.copy(log, tmp_path / "app.jsonl.1")
        with log.open("r+b") as f:
            f.truncate(0)
        append(log, record(10) + record(11))
        events = poll(follow)
        assert isinstance(events[0], Truncated)
        assert ids(events) == [10, 11]
        assert [e.first_line for e in events if isinstance(e, LineChunk)] == [1]

    def test_truncate_and_refill_past_the_old_offset_is_detected_by_the_fingerprint(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(record(i) for i in range(10)))
        assert ids(poll(follow)) == list(range(10))
        with log.open("r+b") as f:
            f.truncate(0)
        append(log, b"".join(record(100 + i, pad="x" * 10) for i in range(20)))
        events = poll(follow)
        assert len(of_type(events, Truncated)) == 1
        assert ids(events) == [100 + i for i in range(20)]

    def test_refill_is_detected_after_short_lines_read_one_per_poll(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        assert ids(poll(follow)) == [0]
        append(log, record(1))  # a chunk shorter than the fingerprint
        assert ids(poll(follow)) == [1]
        with log.open("r+b") as f:
            f.truncate(0)
        append(log, b"".join(record(50 + i) for i in range(5)))
        events = poll(follow)
        assert of_type(events, Truncated) != []
        assert ids(events) == [50, 51, 52, 53, 54]

    def test_appending_is_never_mistaken_for_truncation(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"")
        for i in range(50):
            append(log, record(i, pad="y" * (i % 90)))
            assert ids(evs := poll(follow)) == [i]
            assert of_type(evs, Truncated) == []


class TestDeletedFile:
    def test_a_deleted_file_is_drained_then_its_descriptor_released(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        assert ids(poll(follow)) == [0]
        assert follow.open_files == 1
        append(log, record(1) + record(2))
        log.unlink()
        assert ids(poll(follow)) == [1, 2]
        assert follow.open_files == 0

    def test_a_deleted_file_held_by_a_reader_elsewhere_is_drained_and_released(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        assert ids(poll(follow)) == [0]
        with log.open("ab", buffering=0) as writer:
            log.unlink()
            writer.write(record(1))
            assert ids(poll(follow)) == [1]
            assert follow.open_files == 0

    def test_a_deleted_file_with_a_partial_line_is_released_after_the_grace_time(
        self, tmp_path: Path, follow: Follower, clock: FakeClock
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + b'{"i": 1')
        assert ids(poll(follow)) == [0]
        log.unlink()
        assert poll(follow) == []
        assert follow.open_files == 1
        clock.advance(tailing.RELEASE_AFTER_SECONDS)
        assert poll(follow) == []
        assert follow.open_files == 0


def write_parquet(path: Path, rows: int = 3) -> None:
    pq.write_table(pa.table({"x": list(range(rows))}), path)


def fixed_width_parquet(path: Path, seed: int, rows: int = 50) -> None:
    """Float columns, uncompressed, no dictionary: the size depends on the row count only."""
    values = random.Random(seed)
    table = pa.table({"x": [values.random() for _ in range(rows)]})
    pq.write_table(table, path, compression="none", use_dictionary=False)


class TestParquetFiles:
    @pytest.fixture
    def follow_parquet(self, tmp_path: Path, clock: FakeClock) -> Iterator[Follower]:
        follower = Follower(str(tmp_path / "*.parquet*"), ParquetFormat(), clock=clock)
        yield follower
        follower.close()

    def test_a_tmp_file_renamed_into_place_is_read_exactly_once(
        self, tmp_path: Path, follow_parquet: Follower
    ) -> None:
        tmp = tmp_path / "a.parquet.tmp"
        write_parquet(tmp)
        assert poll(follow_parquet) == []
        tmp.rename(tmp_path / "a.parquet")
        assert poll(follow_parquet) == [FileReady(str(tmp_path / "a.parquet"))]
        assert poll(follow_parquet) == []
        os.utime(tmp_path / "a.parquet")  # touching it later does not re-read it
        assert poll(follow_parquet) == []

    def test_a_read_file_releases_its_descriptor(
        self, tmp_path: Path, follow_parquet: Follower
    ) -> None:
        for i in range(5):
            write_parquet(tmp_path / f"{i}.parquet")
        assert len(poll(follow_parquet)) == 5
        assert follow_parquet.open_files == 0
        assert poll(follow_parquet) == []

    def test_a_file_without_footer_is_corrupt_only_after_the_give_up_time(
        self, tmp_path: Path, follow_parquet: Follower, clock: FakeClock
    ) -> None:
        path = tmp_path / "a.parquet"
        path.write_bytes(b"PAR1" + b"\x00" * 100)
        assert poll(follow_parquet) == []
        clock.advance(tailing.GIVE_UP_SECONDS - 1)
        assert poll(follow_parquet) == []
        clock.advance(1)
        assert poll(follow_parquet) == [FileCorrupt(str(path), "corrupt")]
        assert poll(follow_parquet) == []  # counted once, never retried

    def test_a_file_whose_footer_arrives_in_time_is_read(
        self, tmp_path: Path, follow_parquet: Follower
    ) -> None:
        whole = tmp_path / "whole.bin"
        write_parquet(whole)
        data = whole.read_bytes()
        whole.unlink()
        path = tmp_path / "a.parquet"
        path.write_bytes(data[: len(data) // 2])
        assert poll(follow_parquet) == []
        append(path, data[len(data) // 2:])
        assert poll(follow_parquet) == [FileReady(str(path))]

    def test_complete_magic_with_corrupt_content_is_left_to_the_reader(
        self, tmp_path: Path, follow_parquet: Follower
    ) -> None:
        path = tmp_path / "a.parquet"
        path.write_bytes(b"PAR1" + b"\x07" * 100 + b"PAR1")
        assert poll(follow_parquet) == [FileReady(str(path))]

    def test_another_file_in_a_released_inode_is_read(
        self, tmp_path: Path, follow_parquet: Follower
    ) -> None:
        path = tmp_path / "a.parquet"
        write_parquet(path, rows=3)
        assert poll(follow_parquet) == [FileReady(str(path))]
        other = tmp_path / "other.bin"
        write_parquet(other, rows=300)
        with path.open("r+b") as f:  # same inode, other content and size
            f.truncate(0)
            f.write(other.read_bytes())
        assert poll(follow_parquet) == [FileReady(str(path))]

    def test_another_file_of_the_same_size_in_a_released_inode_is_read(
        self, tmp_path: Path, follow_parquet: Follower
    ) -> None:
        # A file deleted and written again often gets the freed inode back, and fixed-width
        # columns give it the same size: only its footer tells it apart.
        path = tmp_path / "a.parquet"
        fixed_width_parquet(path, seed=1)
        assert poll(follow_parquet) == [FileReady(str(path))]
        other = tmp_path / "other.bin"
        fixed_width_parquet(other, seed=2)
        assert other.stat().st_size == path.stat().st_size
        with path.open("r+b") as f:
            f.truncate(0)
            f.write(other.read_bytes())
        assert poll(follow_parquet) == [FileReady(str(path))]
        assert poll(follow_parquet) == []

    def test_a_read_file_renamed_or_touched_is_not_read_again(
        self, tmp_path: Path, follow_parquet: Follower
    ) -> None:
        path = tmp_path / "a.parquet"
        fixed_width_parquet(path, seed=1)
        assert poll(follow_parquet) == [FileReady(str(path))]
        path.rename(tmp_path / "b.parquet")
        assert poll(follow_parquet) == []
        os.utime(tmp_path / "b.parquet", ns=(1, 1))
        (tmp_path / "b.parquet").chmod(0o600)
        assert poll(follow_parquet) == []

    def test_a_corrupt_file_touched_later_is_not_retried(
        self, tmp_path: Path, follow_parquet: Follower, clock: FakeClock
    ) -> None:
        path = tmp_path / "a.parquet"
        path.write_bytes(b"PAR1" + b"\x00" * 100)
        assert poll(follow_parquet) == []
        clock.advance(tailing.GIVE_UP_SECONDS)
        assert poll(follow_parquet) == [FileCorrupt(str(path), "corrupt")]
        os.utime(path)
        assert poll(follow_parquet) == []


class TestIgnoredNames:
    @pytest.mark.parametrize("name", [".x.jsonl", "_x.jsonl", "x.jsonl.tmp", ".x.parquet",
                                      "x.parquet.tmp"])
    def test_names_a_writer_uses_while_writing_are_ignored(self, name: str) -> None:
        assert ignored(f"/logs/{name}")

    @pytest.mark.parametrize("name", ["x.jsonl", "x_y.jsonl", "x.tmp.jsonl", "x.parquet"])
    def test_ordinary_names_are_not_ignored(self, name: str) -> None:
        assert not ignored(f"/logs/.hidden-dir/{name}")

    def test_ignored_files_are_never_read(self, tmp_path: Path) -> None:
        for name in (".x", "_x", "x.tmp", "ok"):
            (tmp_path / name).write_bytes(record(0))
        follower = Follower(str(tmp_path / ".*"), jsonl(LIMIT))
        assert poll(follower) == []
        follower.close()
        follower = Follower(str(tmp_path / "*"), jsonl(LIMIT))
        events = poll(follower)
        assert [e.path for e in events] == [str(tmp_path / "ok")]
        follower.close()


class TestStartUp:
    @pytest.fixture
    def three_files(self, tmp_path: Path) -> list[Path]:
        paths = []
        for n, age in enumerate((300, 200, 100)):
            path = tmp_path / f"app-{n}.jsonl"
            path.write_bytes(b"".join(record(100 * n + i, pad="z" * 40) for i in range(100)))
            set_mtime(path, age)
            paths.append(path)
        return paths

    def test_rows_needed_reads_only_the_last_lines_across_files(
        self, tmp_path: Path, three_files: list[Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        read: dict[int, int] = {}
        real_pread = os.pread

        def spy(fd: int, size: int, offset: int) -> bytes:
            read[fd] = read.get(fd, 0) + size
            return real_pread(fd, size, offset)

        monkeypatch.setattr(tail_jsonl, "TAIL_STEP", 512)
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT))
        monkeypatch.setattr(os, "pread", spy)
        follower.start(150, None)
        events = poll(follower)
        assert ids(events) == list(range(150, 300))
        assert [e.first_line for e in events if isinstance(e, LineChunk)] == [51, 1]
        sizes = [p.stat().st_size for p in three_files]
        by_path = {t.path: read.get(t.fd, 0) for t in follower._files.values()}
        # the oldest: only its tail looked at, and its head (learnt, then checked before reading)
        assert by_path[str(three_files[0])] <= 1024 + 2 * tailing.HEAD_BYTES
        assert by_path[str(three_files[1])] < 2 * sizes[1] + 2 * tailing.HEAD_BYTES
        follower.close()

    def test_a_skipped_file_that_grows_is_read_with_its_line_numbers(
        self, tmp_path: Path, three_files: list[Path]
    ) -> None:
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT))
        follower.start(10, None)
        assert ids(poll(follower)) == list(range(290, 300))
        append(three_files[0], record(7))
        events = poll(follower)
        assert ids(events) == [7]
        assert [e.first_line for e in events if isinstance(e, LineChunk)] == [101]
        follower.close()

    def test_newer_than_skips_files_last_written_before_it(
        self, tmp_path: Path, three_files: list[Path]
    ) -> None:
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT))
        follower.start(None, time.time() - 150)
        assert ids(poll(follower)) == list(range(200, 300))
        follower.close()

    def test_more_rows_needed_than_exist_reads_everything_in_file_order(
        self, tmp_path: Path, three_files: list[Path]
    ) -> None:
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT))
        follower.start(10_000, None)
        assert ids(poll(follower)) == list(range(300))
        follower.close()

    def test_a_partial_last_line_at_start_up_is_read_when_completed(
        self, tmp_path: Path
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + record(1) + b'{"i": 2')
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT))
        follower.start(1, None)
        assert ids(poll(follower)) == [1]
        append(log, b"}\n")
        assert ids(poll(follower)) == [2]
        follower.close()

    def test_parquet_files_beyond_rows_needed_are_skipped(self, tmp_path: Path) -> None:
        for n, age in enumerate((300, 200, 100)):
            write_parquet(tmp_path / f"{n}.parquet", rows=10)
            set_mtime(tmp_path / f"{n}.parquet", age)
        follower = Follower(str(tmp_path / "*.parquet"), ParquetFormat())
        follower.start(15, None)
        events = poll(follower)
        assert events == [FileReady(str(tmp_path / "1.parquet")),
                          FileReady(str(tmp_path / "2.parquet"))]
        assert follower.open_files == 0
        follower.close()


def record_ids(events: list[Event], limit: int) -> list[int]:
    """The ``i`` of every line the parser would read as a record, in order."""
    out: list[int] = []
    for event in events:
        if not isinstance(event, LineChunk):
            continue
        for line in event.data.splitlines():
            try:
                obj = json.loads(line.decode("utf-8").lstrip("\ufeff"))
            except ValueError:
                continue
            if isinstance(obj, dict) and len(line) <= limit:
                out.append(obj["i"])
    return out


class TestStartUpCountsRecords:
    """Start-up reads back the last N *records*: bad lines among them do not count, so the
    window rebuilt after a restart holds what a following exporter holds."""

    def test_blank_malformed_and_too_long_lines_are_no_records(self, tmp_path: Path) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + record(1) + b"\n" + b"[1]\n" + record(2) + b'{"i": 9\n'
                        + b"  \n" + record(3) + record(8, pad="x" * 3000) + record(4)
                        + b'{"i": 7, "s": "\xff"}\n' + b"\xef\xbb\xbf" + record(5))
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(1024))
        follower.start(4, None)
        assert record_ids(poll(follower), 1024) == [2, 3, 4, 5]
        follower.close()

    @pytest.mark.parametrize("seed", range(10))
    def test_the_last_n_records_are_found_among_any_mix_of_lines_and_files(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
    ) -> None:
        # Small blocks: lines, and too long lines, span several of them.
        monkeypatch.setattr(tail_jsonl, "TAIL_STEP", 128)
        monkeypatch.setattr(tail_jsonl, "READ_CHUNK", 1024)
        rng = random.Random(seed)
        limit = 600
        data, wanted = [], []
        for i in range(300):
            roll = rng.random()
            if roll < 0.55:
                data.append(record(i))
                wanted.append(i)
            elif roll < 0.65:
                data.append(record(i, pad="p" * rng.randint(100, 500)))
                wanted.append(i)
            elif roll < 0.72:
                data.append(record(i, pad="z" * rng.randint(600, 4000)))  # too long
            else:
                data.append(rng.choice([b"\n", b" \t\n", b"[1, 2]\n", b'{"i": \n', b'"x"\n',
                                        b'{"i": 1}{"i": 2}\n', b'{"i": 3, "s": "\xc3("}\n']))
        cuts = sorted(rng.sample(range(1, len(data)), 2))
        for n, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(data)], strict=True)):
            path = tmp_path / f"app-{n}.jsonl"
            path.write_bytes(b"".join(data[a:b]))
            set_mtime(path, 100 - n)
        needed = rng.randint(1, len(wanted) + 5)
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(limit))
        follower.start(needed, None)
        assert record_ids(poll(follower), limit) == wanted[-needed:]
        follower.close()

    def test_a_50_mb_line_near_the_end_is_not_held_in_memory(self, tmp_path: Path) -> None:
        log = tmp_path / "app.jsonl"
        with log.open("wb") as f:
            f.write(record(0) + b'{"i": 1, "pad": "')
            for _ in range(50):
                f.write(b"x" * (1 << 20))
            f.write(b'"}\n' + record(2))
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT))
        tracemalloc.start()
        try:
            follower.start(2, None)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2 * tail_jsonl.READ_CHUNK + 2 * LIMIT
        events = poll(follower)
        assert record_ids(events, LIMIT) == [0, 2]
        assert of_type(events, LongLine) == [LongLine(str(log), 2, (50 << 20) + 19)]
        follower.close()


class TestLongLine:
    def test_a_50_mb_line_is_skipped_as_one_long_line_without_buffering_it(
        self, tmp_path: Path, follow: Follower, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sizes: list[int] = []
        real_pread = os.pread

        def spy(fd: int, size: int, offset: int) -> bytes:
            sizes.append(size)
            return real_pread(fd, size, offset)

        monkeypatch.setattr(os, "pread", spy)
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        length = 50 << 20
        with log.open("ab") as f:
            for _ in range(50):
                f.write(b"x" * (1 << 20))
        events = poll(follow)
        assert ids(events) == [0]
        assert of_type(events, LongLine) == []  # still waiting for its end
        with log.open("ab") as f:
            f.write(b"y" * 1000)  # the writer goes on over several polls
        assert poll(follow) == []  # not mistaken for a truncation
        append(log, b"\n" + record(2))
        events = poll(follow)
        assert events[0] == LongLine(str(log), 2, length + 1000)
        assert ids(events) == [2]
        assert [e.first_line for e in events if isinstance(e, LineChunk)] == [3]
        assert max(sizes) <= tail_jsonl.READ_CHUNK

    def test_a_line_longer_than_the_read_chunk_but_within_the_limit_is_read(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(tail_jsonl, "READ_CHUNK", 1024)
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(8192))
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0, pad="p" * 5000) + record(1))
        assert ids(poll(follower)) == [0, 1]
        follower.close()

    def test_a_deleted_file_ending_in_a_long_line_reports_it_when_released(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(1024), clock=clock)
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + b"x" * 5000)
        assert ids(poll(follower)) == [0]
        log.unlink()
        clock.advance(tailing.RELEASE_AFTER_SECONDS)
        assert poll(follower) == [LongLine(str(log), 2, 5000)]
        assert follower.open_files == 0


class TestDiscovery:
    def test_new_files_are_read_from_the_start_oldest_first(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        assert poll(follow) == []
        now = time.time_ns()
        for name, i, age in (("c", 3, 5), ("b", 1, 10), ("a", 2, 5)):
            (tmp_path / f"{name}.jsonl").write_bytes(record(i))
            when = now - age * 10**9
            os.utime(tmp_path / f"{name}.jsonl", ns=(when, when))
        assert ids(poll(follow)) == [1, 2, 3]  # by modification time, then name

    def test_close_releases_every_descriptor(self, tmp_path: Path, follow: Follower) -> None:
        for name in ("a", "b"):
            (tmp_path / f"{name}.jsonl").write_bytes(record(0))
        poll(follow)
        assert follow.open_files == 2
        follow.close()
        assert follow.open_files == 0


def jsonl_follower(tmp_path: Path, clock: FakeClock, max_open: int = 4,
                   pattern: str = "*.jsonl") -> Follower:
    return Follower(str(tmp_path / pattern), jsonl(LIMIT), clock=clock, max_open=max_open)


class TestBoundedDescriptors:
    """Issue 13.7: descriptors stay bounded whatever the number of files."""

    def test_many_files_are_read_with_no_more_than_max_open_descriptors(
        self, tmp_path: Path
    ) -> None:
        follower = jsonl_follower(tmp_path, FakeClock())
        for n in range(50):
            (tmp_path / f"{n:03}.jsonl").write_bytes(record(n))
        assert sorted(ids(poll(follower))) == list(range(50))
        assert follower.open_files <= 4
        for n in range(50):
            append(tmp_path / f"{n:03}.jsonl", record(100 + n))
        assert sorted(ids(poll(follower))) == [100 + n for n in range(50)]
        assert follower.open_files <= 4
        assert poll(follower) == []
        follower.close()

    def test_start_up_with_more_files_than_descriptors_reads_the_window(
        self, tmp_path: Path
    ) -> None:
        for n in range(30):
            path = tmp_path / f"{n:03}.jsonl"
            path.write_bytes(record(2 * n) + record(2 * n + 1))
            set_mtime(path, 100 - n)
        follower = jsonl_follower(tmp_path, FakeClock())
        follower.start(25, None)
        assert follower.open_files <= 4
        assert ids(poll(follower)) == list(range(35, 60))
        assert follower.open_files <= 4
        follower.close()

    def test_a_file_unchanged_for_the_idle_time_is_closed_and_read_on_when_it_grows(
        self, tmp_path: Path
    ) -> None:
        clock = FakeClock()
        follower = jsonl_follower(tmp_path, clock)
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + record(1))
        assert ids(poll(follower)) == [0, 1]
        clock.advance(tailing.IDLE_CLOSE_SECONDS - 1)
        assert poll(follower) == []
        assert follower.open_files == 1
        clock.advance(1)
        assert poll(follower) == []
        assert follower.open_files == 0
        assert poll(follower) == []  # unchanged: not even opened
        assert follower.open_files == 0
        append(log, record(2))
        events = poll(follower)
        assert ids(events) == [2]
        assert [e.first_line for e in events if isinstance(e, LineChunk)] == [3]
        assert of_type(events, Truncated) == []

    def test_a_partial_line_of_a_closed_file_is_read_once_completed(
        self, tmp_path: Path
    ) -> None:
        clock = FakeClock()
        follower = jsonl_follower(tmp_path, clock)
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + b'{"i": 1')
        assert ids(poll(follower)) == [0]
        clock.advance(tailing.IDLE_CLOSE_SECONDS)
        assert poll(follower) == []
        assert follower.open_files == 0
        append(log, b"}\n")
        assert ids(poll(follower)) == [1]

    def test_a_closed_file_overwritten_in_place_is_read_again_from_the_start(
        self, tmp_path: Path
    ) -> None:
        clock = FakeClock()
        follower = jsonl_follower(tmp_path, clock)
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(record(i) for i in range(5)))
        assert ids(poll(follower)) == list(range(5))
        clock.advance(tailing.IDLE_CLOSE_SECONDS)
        poll(follower)
        assert follower.open_files == 0
        with log.open("r+b") as f:  # same inode, other records, longer than the offset
            f.write(b"".join(record(50 + i, pad="q") for i in range(8)))
        events = poll(follower)
        assert len(of_type(events, Truncated)) == 1
        assert ids(events) == [50 + i for i in range(8)]

    def test_a_closed_file_renamed_out_of_the_glob_is_drained_where_it_went(
        self, tmp_path: Path
    ) -> None:
        clock = FakeClock()
        follower = jsonl_follower(tmp_path, clock)
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        assert ids(poll(follower)) == [0]
        clock.advance(tailing.IDLE_CLOSE_SECONDS)
        poll(follower)
        assert follower.open_files == 0
        append(log, record(1))  # the writer's last line, then rotation by rename
        log.rename(tmp_path / "app.jsonl.1")
        (tmp_path / "app.jsonl").write_bytes(record(2))
        assert sorted(ids(poll(follower))) == [1, 2]
        assert poll(follower) == []

    def test_a_closed_file_deleted_is_forgotten(self, tmp_path: Path) -> None:
        clock = FakeClock()
        follower = jsonl_follower(tmp_path, clock)
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        assert ids(poll(follower)) == [0]
        clock.advance(tailing.IDLE_CLOSE_SECONDS)
        poll(follower)
        log.unlink()
        assert poll(follower) == []
        assert follower._files == {}

    def test_rotated_files_still_draining_are_not_closed_for_idleness(
        self, tmp_path: Path
    ) -> None:
        clock = FakeClock()
        follower = jsonl_follower(tmp_path, clock)
        log = tmp_path / "app.jsonl"
        with log.open("ab", buffering=0) as writer:
            writer.write(record(0))
            assert ids(poll(follower)) == [0]
            log.rename(tmp_path / "app.jsonl.1")
            clock.advance(tailing.IDLE_CLOSE_SECONDS)
            assert poll(follower) == []
            assert follower.open_files == 1
            writer.write(record(1))
        assert ids(poll(follower)) == [1]

    def test_a_process_out_of_descriptors_closes_idle_files_and_warns_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        follower = jsonl_follower(tmp_path, FakeClock(), max_open=64)
        for name in ("a", "b"):
            (tmp_path / f"{name}.jsonl").write_bytes(record(0))
        poll(follower)
        assert follower.open_files == 2
        real_open = os.open
        refused = [3]  # the next opens fail as if another part of the process held the rest

        def exhausted(path: str, flags: int, *args: int) -> int:
            if refused[0]:
                refused[0] -= 1
                raise OSError(errno.EMFILE, "Too many open files", path)
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", exhausted)
        (tmp_path / "c.jsonl").write_bytes(record(1))
        assert poll(follower) == []  # refused, retried after closing a and b: refused again
        assert follower.open_files == 0
        assert poll(follower) == []
        assert ids(poll(follower)) == [1]
        append(tmp_path / "a.jsonl", record(2))
        assert ids(poll(follower)) == [2]
        warned = [r for r in caplog.records if "out of file descriptors" in r.getMessage()]
        assert len(warned) == 1
        follower.close()

    def test_more_rotated_files_than_descriptors_stay_within_the_limit(
        self, tmp_path: Path
    ) -> None:
        follower = jsonl_follower(tmp_path, FakeClock())
        for n in range(8):
            (tmp_path / f"{n}.jsonl").write_bytes(record(n))
        assert sorted(ids(poll(follower))) == list(range(8))
        for n in range(8):  # rotated out of the glob, with a last record each
            append(tmp_path / f"{n}.jsonl", record(10 + n))
            (tmp_path / f"{n}.jsonl").rename(tmp_path / f"{n}.jsonl.1")
        got = ids(poll(follower))
        assert follower.open_files <= 4
        got += ids(poll(follower))
        assert sorted(got) == [10 + n for n in range(8)]
        assert follower.open_files <= 4
        follower.close()

    def test_the_default_limit_follows_the_soft_descriptor_limit(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for soft, expected in ((256, 16), (1024, 64), (1 << 20, 64), (16, 4)):
            monkeypatch.setattr(resource, "getrlimit",
                                lambda _which, soft=soft: (soft, soft))
            assert tailing.default_max_open() == expected


class TestCopyInsideTheGlob:
    """Issue 13.10: a copy of a file read before (copytruncate into a name the glob matches) is
    read only from where the original was read."""

    @pytest.fixture
    def follower(self, tmp_path: Path) -> Iterator[Follower]:
        follower = jsonl_follower(tmp_path, FakeClock(), max_open=64)
        yield follower
        follower.close()

    @staticmethod
    def copy_truncate(log: Path, copy: Path) -> None:
        shutil.copyfile(log, copy)
        with log.open("r+b") as f:
            f.truncate(0)

    def test_copy_truncate_into_the_glob_counts_every_record_once(
        self, tmp_path: Path, follower: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(record(i) for i in range(10)))
        assert ids(poll(follower)) == list(range(10))
        append(log, record(10) + record(11))  # not read yet when the copy is made
        self.copy_truncate(log, tmp_path / "app-1.jsonl")
        append(log, record(12))
        events = poll(follower)
        events += poll(follower)
        assert sorted(ids(events)) == [10, 11, 12]
        assert len(of_type(events, Truncated)) == 1
        assert poll(follower) == []

    def test_a_copy_seen_before_its_original_is_truncated_is_not_read_twice(
        self, tmp_path: Path, follower: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(record(i) for i in range(10)))
        assert ids(poll(follower)) == list(range(10))
        append(log, record(10) + record(11))
        shutil.copyfile(log, tmp_path / "app-1.jsonl")
        assert ids(poll(follower)) == [10, 11]  # from the original, the copy waits
        append(log, record(12))  # after the copy: only in the original
        assert ids(poll(follower)) == [12]
        with log.open("r+b") as f:
            f.truncate(0)
        append(log, record(13))
        assert ids(poll(follower) + poll(follower)) == [13]
        append(tmp_path / "app-1.jsonl", record(14))  # the copy goes on by itself now
        assert ids(poll(follower)) == [14]

    def test_a_copy_of_a_file_that_goes_on_is_never_read(
        self, tmp_path: Path, follower: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0) + record(1))
        assert ids(poll(follower)) == [0, 1]
        append(log, record(2))
        shutil.copyfile(log, tmp_path / "backup.jsonl")
        append(log, record(3))
        assert ids(poll(follower)) == [2, 3]
        assert poll(follower) == []

    def test_a_copy_found_after_its_original_was_truncated_is_read_from_the_offset(
        self, tmp_path: Path, follower: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(record(i) for i in range(10)))
        assert ids(poll(follower)) == list(range(10))
        append(log, record(10))
        self.copy_truncate(log, tmp_path / ".app-1.jsonl")  # ignored while being written
        append(log, record(11))
        events = poll(follower)
        assert ids(events) == [11]
        assert len(of_type(events, Truncated)) == 1
        (tmp_path / ".app-1.jsonl").rename(tmp_path / "app-1.jsonl")
        events = poll(follower)
        assert ids(events) == [10]
        assert [e.first_line for e in events if isinstance(e, LineChunk)] == [11]

    @pytest.mark.parametrize("first", [5, 50], ids=["within_the_first_line", "further"])
    def test_a_copy_still_being_written_is_not_read_twice(
        self, tmp_path: Path, follower: Follower, first: int
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(record(i) for i in range(10)))
        assert ids(poll(follower)) == list(range(10))
        append(log, record(10))
        data = log.read_bytes()
        copy = tmp_path / "app-1.jsonl"
        copy.write_bytes(data[:first])  # the first bytes only, so far
        assert ids(poll(follower)) == [10]
        append(copy, data[first:])
        with log.open("r+b") as f:
            f.truncate(0)
        append(log, record(11))
        assert ids(poll(follower) + poll(follower)) == [11]

    @pytest.mark.parametrize("records", [1, 40])
    def test_a_new_file_that_only_starts_like_a_known_one_is_read_whole(
        self, tmp_path: Path, follower: Follower, records: int
    ) -> None:
        # Some writers begin every file with the same line (a header, a warm-up request).
        header = b'{"i": -1, "header": true}\n'
        log = tmp_path / "app.jsonl"
        log.write_bytes(header + b"".join(record(i) for i in range(20)))
        assert ids(poll(follower)) == [-1, *range(20)]
        other = tmp_path / "app-2.jsonl"
        other.write_bytes(header)
        got = ids(poll(follower))
        append(other, b"".join(record(100 + i) for i in range(records)))
        got += ids(poll(follower)) + ids(poll(follower))
        assert got == [-1, *range(100, 100 + records)]


class TestOverwrittenFile:
    """Issue 13.11: a file is read on from its offset only if it is still the file read."""

    def test_a_file_renamed_out_of_the_glob_and_overwritten_is_not_read_further(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(record(i) for i in range(10)))
        assert ids(poll(follow)) == list(range(10))
        log.rename(tmp_path / "app.jsonl.1")
        with (tmp_path / "app.jsonl.1").open("r+b") as f:  # same inode, foreign records
            f.truncate(0)
            f.write(b"".join(record(1000 + i, pad="foreign") for i in range(30)))
        events = poll(follow)
        assert ids(events) == []
        assert events == [Truncated(str(log))]
        assert follow.open_files == 0

    def test_an_overwritten_file_renamed_back_into_the_glob_is_read_from_the_start(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(record(i) for i in range(10)))
        assert ids(poll(follow)) == list(range(10))
        away = tmp_path / "app.jsonl.1"
        log.rename(away)
        with away.open("r+b") as f:
            f.write(b"".join(record(1000 + i, pad="foreign") for i in range(30)))
        away.rename(tmp_path / "back.jsonl")
        events = poll(follow)
        assert ids(events) == [1000 + i for i in range(30)]
        assert {e.path for e in events if isinstance(e, LineChunk)} == {
            str(tmp_path / "back.jsonl")}

    def test_other_content_that_ends_like_the_old_one_at_the_offset_is_detected(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        # The bytes just before the offset are the same; only the first line tells.
        log = tmp_path / "app.jsonl"
        tail = b"".join(record(i) for i in range(1, 12))
        assert len(tail) > tailing.FINGERPRINT
        log.write_bytes(record(0, who="aaaa") + tail)
        assert ids(poll(follow)) == list(range(12))
        with log.open("r+b") as f:
            f.write(record(7, who="bbbb") + tail + record(8))
        events = poll(follow)
        assert len(of_type(events, Truncated)) == 1
        assert ids(events) == [7, *range(1, 12), 8]


class TestUnreadableFile:
    """Issue 13.13: an unreadable file is reported once per change of state."""

    def test_a_file_that_cannot_be_opened_is_reported_once_then_once_when_readable(
        self, tmp_path: Path, follow: Follower, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        real_open = os.open
        denied = {str(log)}

        def deny(path: str, flags: int, *args: int) -> int:
            if path in denied:
                raise PermissionError(13, "Permission denied", path)
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", deny)
        assert poll(follow) == [tailing.Unreadable(str(log), "Permission denied")]
        assert poll(follow) == []
        assert poll(follow) == []
        denied.clear()
        events = poll(follow)
        assert ids(events) == [0]
        assert events[-1] == tailing.Readable(str(log))
        assert poll(follow) == []

    def test_a_closed_file_that_cannot_be_opened_again_is_reported_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = FakeClock()
        follower = jsonl_follower(tmp_path, clock)
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        assert ids(poll(follower)) == [0]
        clock.advance(tailing.IDLE_CLOSE_SECONDS)
        poll(follower)
        assert follower.open_files == 0
        real_open = os.open
        denied = [True]

        def deny(path: str, flags: int, *args: int) -> int:
            if denied[0] and path == str(log):
                raise PermissionError(13, "Permission denied", path)
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", deny)
        append(log, record(1))
        assert poll(follower) == [tailing.Unreadable(str(log), "Permission denied")]
        assert poll(follower) == []
        denied[0] = False
        assert poll(follower)[-1] == tailing.Readable(str(log))

    def test_a_read_error_is_reported_once_and_the_file_read_on_when_it_passes(
        self, tmp_path: Path, follow: Follower, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        assert ids(poll(follow)) == [0]
        append(log, record(1))
        real_pread = os.pread
        failing = [True]

        def flaky(fd: int, size: int, offset: int) -> bytes:
            if failing[0]:
                raise OSError(5, "Input/output error")
            return real_pread(fd, size, offset)

        monkeypatch.setattr(os, "pread", flaky)
        assert poll(follow) == [tailing.Unreadable(str(log), "Input/output error")]
        assert poll(follow) == []
        assert follow.open_files == 0
        failing[0] = False
        events = poll(follow)
        assert ids(events) == [1]
        assert events[-1] == tailing.Readable(str(log))

    def test_a_file_that_goes_away_while_unreadable_is_forgotten(
        self, tmp_path: Path, follow: Follower, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(record(0))
        real_open = os.open

        def deny(path: str, flags: int, *args: int) -> int:
            if path == str(log):
                raise PermissionError(13, "Permission denied", path)
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", deny)
        assert len(poll(follow)) == 1
        log.unlink()
        assert poll(follow) == []
        assert follow._unreadable == {}


class TestFutureModificationTime:
    """Issue 13.12: a modification time in the future does not make a file the newest."""

    def test_a_file_touched_a_day_ahead_does_not_pass_for_the_newest(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        old = tmp_path / "a-old.jsonl"
        old.write_bytes(record(0) + record(1))
        set_mtime(old, -86400)  # touch -d tomorrow
        new = tmp_path / "b-new.jsonl"  # written after the touch
        new.write_bytes(record(2) + record(3))
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT))
        follower.start(2, None)
        assert ids(poll(follower)) == [2, 3]
        poll(follower)
        warned = [r for r in caplog.records if "in the future" in r.getMessage()]
        assert [r.file for r in warned] == [str(old)]  # type: ignore[attr-defined]
        follower.close()

    def test_a_file_slightly_ahead_is_ordered_by_its_modification_time(
        self, tmp_path: Path
    ) -> None:
        # A writer whose clock is a few seconds ahead: its files keep their order.
        later = tmp_path / "a.jsonl"
        later.write_bytes(record(1))
        set_mtime(later, -20)
        earlier = tmp_path / "b.jsonl"
        earlier.write_bytes(record(0))
        set_mtime(earlier, -10)
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT))
        assert ids(poll(follower)) == [0, 1]
        follower.close()

    def test_the_future_is_judged_by_the_wall_clock_given(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        log = tmp_path / "a.jsonl"
        log.write_bytes(record(0))
        a_day_ago = time.time_ns() - 86400 * 10**9
        follower = Follower(str(tmp_path / "*.jsonl"), jsonl(LIMIT), wall_clock=lambda: a_day_ago)
        assert ids(poll(follower)) == [0]
        warned = [r for r in caplog.records if "in the future" in r.getMessage()]
        assert [r.file for r in warned] == [str(log)]  # type: ignore[attr-defined]
        follower.close()


class TestLayering:
    """Tailing knows file formats, not parsing: the parser's rule is passed in."""

    def test_following_and_reading_back_the_last_records_imports_no_parser(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "a.jsonl").write_bytes(record(0) + record(1) + b"partial")
        code = f"""
import sys, numpy as np
from exporter.tail_jsonl import JsonlFormat
from exporter.tail_parquet import ParquetFormat
from exporter.tailing import Follower
every_line = lambda data, limit: np.ones(data.count(b"\\n"), dtype=bool)
follower = Follower({str(tmp_path / "*.jsonl")!r}, JsonlFormat(1024, every_line))
follower.start(1, None)
events = list(follower.poll())
Follower({str(tmp_path / "*.parquet")!r}, ParquetFormat()).start(1, None)
assert len(events) == 1, events
print(sorted(m for m in ("exporter.parsing", "polars") if m in sys.modules))
"""
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=60)
        assert out.stdout.strip() == "[]"


class Sealed(tailing.ReadOnce):
    """A toy read-once format (as gzip will be): complete once it ends with ``END``."""

    give_up_seconds = 5.0

    def is_complete(self, fd: int, size: int) -> bool:
        return size >= 4 and os.pread(fd, 4, size - 4) == b"END\n"

    def identity(self, fd: int, size: int) -> bytes:
        return os.pread(fd, size, 0)

    def records(self, path: str) -> int | None:
        return Path(path).read_bytes().count(b"\n") - 1


class TestAnotherReadOnceFormat:
    """A new read-once format is one class: the follower does the rest."""

    def test_a_file_is_ready_once_when_complete(self, tmp_path: Path, clock: FakeClock) -> None:
        follower = Follower(str(tmp_path / "*.log"), Sealed(), clock=clock)
        path = tmp_path / "a.log"
        path.write_bytes(b"1\n2\n")
        assert poll(follower) == []
        append(path, b"END\n")
        assert poll(follower) == [FileReady(str(path))]
        os.utime(path)
        assert poll(follower) == []
        assert follower.open_files == 0
        follower.close()

    def test_a_file_never_completed_is_corrupt_after_the_formats_give_up_time(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        follower = Follower(str(tmp_path / "*.log"), Sealed(), clock=clock)
        path = tmp_path / "a.log"
        path.write_bytes(b"1\n")
        assert poll(follower) == []
        clock.advance(Sealed.give_up_seconds)
        assert poll(follower) == [FileCorrupt(str(path), "corrupt")]
        follower.close()

    def test_start_up_counts_its_records_towards_the_window(self, tmp_path: Path) -> None:
        for name, ago in (("a", 30), ("b", 20), ("c", 10)):
            (tmp_path / f"{name}.log").write_bytes(b"1\n2\nEND\n")
            set_mtime(tmp_path / f"{name}.log", ago)
        follower = Follower(str(tmp_path / "*.log"), Sealed())
        follower.start(3, None)
        assert poll(follower) == [FileReady(str(tmp_path / "b.log")),
                                  FileReady(str(tmp_path / "c.log"))]
        follower.close()
