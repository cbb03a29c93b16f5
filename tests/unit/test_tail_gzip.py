"""Tests for exporter.tail_gzip and the follower on compressed logs: complete gzip files read
once, corrupt and truncated ones rejected, logrotate's ``compress`` never counted twice.

As in test_tailing, time never passes by sleeping: the follower is given a FakeClock.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_clock import FakeClock

from exporter import parsing, tail_gzip
from exporter.reader import compressed_formats, file_format
from exporter.tail_gzip import GzipFormat, Incomplete, decompressed
from exporter.tailing import (
    CorruptFile,
    Event,
    FileCorrupt,
    FileReady,
    Follower,
    LineChunk,
    LongLine,
)

LIMIT = 1 << 20


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def gz_format(limit: int = LIMIT) -> GzipFormat:
    return GzipFormat(limit, lambda data, most: parsing.record_lines(data, max_line_bytes=most))


def records(first: int, count: int) -> bytes:
    return b"".join(json.dumps({"i": i}).encode() + b"\n" for i in range(first, first + count))


def ids_of(events: Iterator[LineChunk | LongLine] | list[Event]) -> list[int]:
    out: list[int] = []
    for event in events:
        if isinstance(event, LineChunk):
            for line in event.data.splitlines():
                obj = json.loads(line) if line.strip() else None
                if isinstance(obj, dict):
                    out.append(obj["i"])
    return out


def read_ready(follower: Follower, events: list[Event]) -> list[int]:
    """The records the reader would take from the events, in order: lines, and ready gzip
    files."""
    out: list[int] = []
    for event in events:
        out.extend(ids_of([event]))
        if isinstance(event, FileReady):
            fmt = follower.format_for(event.path)
            assert isinstance(fmt, GzipFormat)
            out.extend(ids_of(fmt.chunks(event.path, event.offset, event.line)))
    return out


def poll(follower: Follower) -> list[Event]:
    return list(follower.poll())


@pytest.fixture
def follow(tmp_path: Path, clock: FakeClock) -> Iterator[Follower]:
    """JSONL and gzip JSONL in one glob, as the exporter reads ``logs/*.jsonl*``."""
    follower = Follower(str(tmp_path / "*.jsonl*"), file_format("jsonl", LIMIT),
                        by_suffix=compressed_formats("jsonl", LIMIT), clock=clock)
    yield follower
    follower.close()


class TestCompressed:
    def test_a_complete_gzip_file_is_ready_once_and_all_its_records_are_read(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        path = tmp_path / "old.jsonl.gz"
        path.write_bytes(gzip.compress(records(0, 50)))
        events = poll(follow)
        assert events == [FileReady(str(path))]
        assert read_ready(follow, events) == list(range(50))
        os.utime(path)  # touched later: not read again
        assert poll(follow) == []
        assert follow.open_files == 0

    def test_a_gzip_file_being_written_is_read_only_once_its_trailer_is_there(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        whole = gzip.compress(records(0, 200))
        path = tmp_path / "a.jsonl.1.gz"
        path.write_bytes(whole[: len(whole) // 2])
        assert poll(follow) == []
        path.write_bytes(whole[:-4])  # all but the length in the trailer
        assert poll(follow) == []
        path.write_bytes(whole)
        assert read_ready(follow, poll(follow)) == list(range(200))

    def test_a_corrupt_gzip_file_is_rejected_at_once_and_never_retried(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        whole = bytearray(gzip.compress(records(0, 200)))
        whole[len(whole) // 2] ^= 0xFF
        path = tmp_path / "bad.jsonl.gz"
        path.write_bytes(bytes(whole))
        assert poll(follow) == [FileCorrupt(str(path), "corrupt")]
        assert poll(follow) == []
        os.utime(path)
        assert poll(follow) == []

    def test_a_file_that_is_not_gzip_at_all_is_rejected(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        path = tmp_path / "plain.jsonl.gz"
        path.write_bytes(records(0, 3))
        assert poll(follow) == [FileCorrupt(str(path), "corrupt")]

    def test_a_wrong_crc_in_the_trailer_is_corrupt(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        whole = bytearray(gzip.compress(records(0, 20)))
        whole[-8] ^= 0x01
        path = tmp_path / "crc.jsonl.gz"
        path.write_bytes(bytes(whole))
        assert poll(follow) == [FileCorrupt(str(path), "corrupt")]

    def test_a_truncated_gzip_file_is_rejected_after_the_give_up_time(
        self, tmp_path: Path, follow: Follower, clock: FakeClock
    ) -> None:
        whole = gzip.compress(records(0, 200))
        path = tmp_path / "cut.jsonl.gz"
        path.write_bytes(whole[:-20])
        assert poll(follow) == []
        clock.advance(GzipFormat.give_up_seconds - 1)
        assert poll(follow) == []
        clock.advance(1)
        assert poll(follow) == [FileCorrupt(str(path), "corrupt")]
        clock.advance(GzipFormat.give_up_seconds)
        assert poll(follow) == []

    def test_a_truncated_gzip_file_unchanged_for_long_already_is_rejected_at_once(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        whole = gzip.compress(records(0, 200))
        path = tmp_path / "cut.jsonl.gz"
        path.write_bytes(whole[:-20])
        when = time.time() - GzipFormat.give_up_seconds - 5
        os.utime(path, (when, when))
        assert poll(follow) == [FileCorrupt(str(path), "corrupt")]

    def test_concatenated_gzip_members_are_one_file(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        path = tmp_path / "cat.jsonl.gz"
        path.write_bytes(gzip.compress(records(0, 5)) + gzip.compress(records(5, 5)) + b"\0" * 8)
        assert read_ready(follow, poll(follow)) == list(range(10))

    def test_logrotate_compress_counts_every_record_exactly_once(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        # logrotate: rename x.jsonl to x.jsonl.1, create x.jsonl, gzip x.jsonl.1 into
        # x.jsonl.1.gz (written while x.jsonl.1 still exists), delete x.jsonl.1.
        log = tmp_path / "x.jsonl"
        log.write_bytes(records(0, 10))
        seen = read_ready(follow, poll(follow))
        with log.open("ab") as f:
            f.write(records(10, 5))  # written just before the rotation
        rotated = tmp_path / "x.jsonl.1"
        log.rename(rotated)
        log.write_bytes(records(100, 3))
        seen += read_ready(follow, poll(follow))
        compressed = tmp_path / "x.jsonl.1.gz"
        compressed.write_bytes(gzip.compress(rotated.read_bytes()))
        seen += read_ready(follow, poll(follow))  # the original is still there: read from it
        rotated.unlink()
        for _ in range(3):
            seen += read_ready(follow, poll(follow))
        assert sorted(seen) == [*range(15), 100, 101, 102]

    def test_a_compressed_copy_holding_more_than_was_read_is_read_beyond_that(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        # The rotated file grew after it was last read, and was compressed and deleted while
        # closed: what it gained is read from the compressed copy, nothing twice.
        follower = Follower(str(tmp_path / "*.jsonl*"), file_format("jsonl", LIMIT),
                            by_suffix=compressed_formats("jsonl", LIMIT), clock=clock,
                            idle_seconds=5)
        log = tmp_path / "x.jsonl"
        log.write_bytes(records(0, 10))
        seen = read_ready(follower, poll(follower))
        clock.advance(6)
        poll(follower)  # closed, idle
        assert follower.open_files == 0
        rotated = tmp_path / "x.jsonl.1"
        log.rename(rotated)
        with rotated.open("ab") as f:
            f.write(records(10, 4))
        (tmp_path / "x.jsonl.1.gz").write_bytes(gzip.compress(rotated.read_bytes()))
        rotated.unlink()
        for _ in range(3):
            seen += read_ready(follower, poll(follower))
        assert sorted(seen) == list(range(14))
        follower.close()

    @pytest.mark.parametrize(("content", "expected"), [
        (records(0, 10) + records(50, 3), list(range(50, 53))),  # longer: read beyond
        (records(0, 6), []),  # shorter: a beginning of what was read, counted already
        (records(0, 1) + records(70, 12), [0, *range(70, 82)]),  # same first line: read whole
    ])
    def test_a_compressed_file_starting_like_a_released_one_is_read_beyond_what_was_read(
        self, tmp_path: Path, follow: Follower, content: bytes, expected: list[int]
    ) -> None:
        log = tmp_path / "x.jsonl"
        log.write_bytes(records(0, 10))
        assert read_ready(follow, poll(follow)) == list(range(10))
        log.unlink()
        poll(follow)  # released: where it stopped is remembered
        (tmp_path / "y.jsonl.gz").write_bytes(gzip.compress(content))
        assert read_ready(follow, poll(follow)) == expected

    def test_a_compressed_file_unlike_any_read_is_read_whole(
        self, tmp_path: Path, follow: Follower
    ) -> None:
        (tmp_path / "x.jsonl").write_bytes(records(0, 10))
        poll(follow)
        (tmp_path / "y.jsonl.gz").write_bytes(gzip.compress(records(50, 10)))
        assert read_ready(follow, poll(follow)) == list(range(50, 60))

    def test_start_up_counts_the_records_of_compressed_files_towards_the_window(
        self, tmp_path: Path
    ) -> None:
        old = tmp_path / "x.jsonl.2.gz"
        old.write_bytes(gzip.compress(records(0, 10)))
        middle = tmp_path / "x.jsonl.1.gz"
        middle.write_bytes(gzip.compress(records(10, 10) + b"[1]\n\n"))  # no records: not counted
        log = tmp_path / "x.jsonl"
        log.write_bytes(records(20, 5))
        for path, ago in ((old, 30), (middle, 20), (log, 10)):
            when = time.time() - ago
            os.utime(path, (when, when))
        follower = Follower(str(tmp_path / "*.jsonl*"), file_format("jsonl", LIMIT),
                            by_suffix=compressed_formats("jsonl", LIMIT))
        follower.start(12, None)
        events = poll(follower)
        assert [e for e in events if isinstance(e, FileReady)] == [FileReady(str(middle))]
        assert read_ready(follower, events)[-12:] == list(range(13, 25))
        follower.close()

    def test_a_glob_of_parquet_files_reads_no_gzip_files(self, tmp_path: Path) -> None:
        assert compressed_formats("parquet", LIMIT) == ()


class TestDecompressing:
    def test_lines_keep_their_numbers_and_a_last_line_without_newline_counts(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "a.jsonl.gz"
        path.write_bytes(gzip.compress(records(0, 3) + b'{"i": 3}'))
        chunks = list(gz_format().chunks(str(path)))
        assert ids_of(chunks) == [0, 1, 2, 3]
        assert [c.first_line for c in chunks if isinstance(c, LineChunk)] == [1, 4]

    def test_reading_from_an_offset_skips_what_was_read(self, tmp_path: Path) -> None:
        path = tmp_path / "a.jsonl.gz"
        path.write_bytes(gzip.compress(records(0, 10)))
        offset = len(records(0, 4))
        chunks = list(gz_format().chunks(str(path), offset, 5))
        assert ids_of(chunks) == list(range(4, 10))
        assert next(c for c in chunks if isinstance(c, LineChunk)).first_line == 5
        assert list(gz_format().chunks(str(path), offset * 10, None)) == []

    def test_a_line_longer_than_the_limit_is_skipped_without_holding_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(tail_gzip, "OUT_BLOCK", 1000)
        path = tmp_path / "a.jsonl.gz"
        path.write_bytes(gzip.compress(records(0, 2) + b'{"x": "' + b"y" * 5000 + b'"}\n'
                                       + records(2, 2) + b"z" * 3000))
        chunks = list(gz_format(limit=1024).chunks(str(path)))
        assert ids_of(chunks) == [0, 1, 2, 3]
        assert [(c.line, c.length) for c in chunks if isinstance(c, LongLine)] == [
            (3, 5009), (6, 3000)]

    def test_records_are_counted_by_the_parsers_rule(self, tmp_path: Path) -> None:
        path = tmp_path / "a.jsonl.gz"
        path.write_bytes(gzip.compress(records(0, 7) + b"[1]\n\n  \n" + records(7, 1)))
        assert gz_format().records(str(path)) == 8
        path.write_bytes(gzip.compress(records(0, 7))[:-3])
        assert gz_format().records(str(path)) is None

    def test_a_large_file_is_decompressed_in_bounded_memory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(tail_gzip, "OUT_BLOCK", 1 << 20)
        path = tmp_path / "big.jsonl.gz"
        line = json.dumps({"i": 1, "pad": "x" * 200}).encode() + b"\n"
        with gzip.open(path, "wb", compresslevel=1) as f:
            for _ in range(64):
                f.write(line * ((1 << 20) // len(line)))  # 64 MiB decompressed
        tracemalloc.start()
        try:
            count = gz_format().records(str(path))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count == 64 * ((1 << 20) // len(line))
        assert peak < 8 << 20  # an eighth of the content: it is never held whole

    def test_the_end_of_the_stream_tells_incomplete_from_corrupt(self, tmp_path: Path) -> None:
        whole = gzip.compress(records(0, 50))
        path = tmp_path / "a.gz"
        for data, error in ((whole[:30], Incomplete), (b"", Incomplete),
                            (whole + b"garbage", CorruptFile),
                            (whole + b"\0\0x", CorruptFile)):
            path.write_bytes(data)
            fd = os.open(path, os.O_RDONLY)
            try:
                with pytest.raises(error):
                    for _ in decompressed(fd, len(data)):
                        pass
            finally:
                os.close(fd)

    def test_output_held_back_by_the_block_bound_is_not_lost(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(tail_gzip, "OUT_BLOCK", 4096)
        data = b"a" * 100_000  # compresses to far less than one output block's input
        path = tmp_path / "a.gz"
        path.write_bytes(gzip.compress(data))
        fd = os.open(path, os.O_RDONLY)
        try:
            assert b"".join(decompressed(fd, path.stat().st_size)) == data
        finally:
            os.close(fd)
