"""Tests for exporter.parsing: JSONL bytes and Parquet files to columnar batches (SPEC 2)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter import parsing
from exporter.parsing import (
    CATEGORY,
    NUMBER,
    TIME,
    Batch,
    Coded,
    ColumnSpec,
    Rejection,
    batch_from_table,
    concat_batches,
    parse_jsonl,
    parse_parquet,
    parse_timestamps,
)

COLUMNS = [ColumnSpec("x", NUMBER), ColumnSpec("c", CATEGORY), ColumnSpec("t", TIME)]
T0 = 1_700_000_000.0

Parse = Callable[..., tuple[Batch, list[Rejection]]]


def lines(*records: object) -> bytes:
    """JSONL bytes of the given records; str items are written as they are."""
    return b"".join(
        (r if isinstance(r, str) else json.dumps(r)).encode("utf-8") + b"\n" for r in records
    )


def records(n: int, start: int = 0) -> list[dict[str, object]]:
    """Well-formed records with every kind of value the fast path reads."""
    return [{"x": i * 0.5, "c": ["a", "b", 1, 1.0, True, 2.5][i % 6], "t": T0 + i,
             "other": {"nested": [i]}} for i in range(start, start + n)]


@pytest.fixture
def slow_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many lines went through the line-by-line path."""
    calls: list[int] = []
    original = parsing._parse_lines_slowly

    def spy(raw: bytes, first_line: int, builder: parsing._Builder) -> None:
        calls.append(raw.count(b"\n"))
        original(raw, first_line, builder)

    monkeypatch.setattr(parsing, "_parse_lines_slowly", spy)
    return calls


@pytest.fixture(params=["fast", "slow"])
def path_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once with the polars path wherever it applies, once line by line only."""
    force_path(monkeypatch, request.param)
    return str(request.param)


def force_path(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    if mode == "fast":  # polars for every block, down to single lines after bisection
        monkeypatch.setattr(parsing, "SLOW_PATH_LINES", 0)
        monkeypatch.setattr(parsing, "SLOW_PATH_BYTES", 0)
    else:
        monkeypatch.setattr(parsing, "SLOW_PATH_LINES", 1 << 40)
        monkeypatch.setattr(parsing, "SLOW_PATH_BYTES", 1 << 62)


def assert_same(a: tuple[Batch, list[Rejection]], b: tuple[Batch, list[Rejection]]) -> None:
    (batch_a, rej_a), (batch_b, rej_b) = a, b
    assert batch_a.rows == batch_b.rows
    assert dict(batch_a.invalid) == dict(batch_b.invalid)
    assert dict(batch_a.rejected) == dict(batch_b.rejected)
    assert [(r.line, r.reason) for r in rej_a] == [(r.line, r.reason) for r in rej_b]
    assert batch_a.numbers.keys() == batch_b.numbers.keys()
    for name in batch_a.numbers:
        np.testing.assert_array_equal(batch_a.numbers[name], batch_b.numbers[name])
    assert batch_a.categories.keys() == batch_b.categories.keys()
    for name in batch_a.categories:
        assert list(batch_a.categories[name]) == list(batch_b.categories[name])


def both_paths(monkeypatch: pytest.MonkeyPatch, data: bytes,
               columns: list[ColumnSpec] = COLUMNS) -> Iterator[tuple[Batch, list[Rejection]]]:
    for mode in ("fast", "slow"):
        with monkeypatch.context() as patch:
            force_path(patch, mode)
            yield parse_jsonl(data, columns)


class TestFastAndSlowPathsAgree:
    def test_clean_records_give_the_same_batch_on_both_paths(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fast, slow = both_paths(monkeypatch, lines(*records(200)))
        assert fast[0].rows == 200
        assert_same(fast, slow)

    def test_a_nan_token_line_in_front_only_sends_its_neighbours_line_by_line(
        self, slow_calls: list[int]
    ) -> None:
        data = lines(*records(2000))
        reference = parse_jsonl(data, COLUMNS)
        assert slow_calls == []  # the clean block never leaves polars
        forced = parse_jsonl(lines({"x": math.nan}) + data, COLUMNS)
        assert 0 < sum(slow_calls) <= 4 * parsing.SLOW_PATH_LINES  # a few small pieces, not 2001
        batch = forced[0]
        assert batch.rows == 2001
        assert math.isnan(batch.numbers["x"][0])
        np.testing.assert_array_equal(batch.numbers["x"][1:], reference[0].numbers["x"])
        assert list(batch.categories["c"][1:]) == list(reference[0].categories["c"])
        np.testing.assert_array_equal(batch.numbers["t"][1:], reference[0].numbers["t"])

    def test_categorical_numbers_are_canonicalised_identically(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        values = ["1", "1.0", '"1"', "1e0", "-0.0", "-0", "0e5", "1e-7", "1e23", "2.50",
                  "123456789012345678901234567890", "true", '"true"', "false", "null",
                  "5e-324", "1.7976931348623157e308", '"[18, 25)"', '"-0"', "-1.5"]
        data = b"".join(b'{"c": %s}\n' % v.encode() for v in values)
        fast, slow = both_paths(monkeypatch, data)
        assert_same(fast, slow)
        got = list(fast[0].categories["c"])
        assert got[:6] == ["1", "1", "1", "1", "0", "0"]
        assert got[6:9] == ["0", "0.0000001", "100000000000000000000000"]
        assert got[9:15] == ["2.5", "123456789012345678901234567890", "true", "true", "false",
                             None]
        assert got[17:] == ["[18, 25)", "-0", "-1.5"]

    def test_nested_values_in_a_categorical_column_are_invalid_on_both_paths(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = lines(*({"c": v} for v in ([1, 2], {"a": 1}, [], {}, "[1, 2]", "x")))
        for batch, _ in both_paths(monkeypatch, data):
            assert list(batch.categories["c"]) == [None, None, None, None, "[1, 2]", "x"]
            assert batch.invalid == {"c": 4}

    def test_bracketed_category_strings_stay_on_the_fast_path(
        self, slow_calls: list[int]
    ) -> None:
        data = lines(*({"c": "[18, 25)", "x": i, "meta": [i]} for i in range(100)))
        batch, _ = parse_jsonl(data, COLUMNS)
        assert slow_calls == []
        assert set(batch.categories["c"]) == {"[18, 25)"}

    def test_numbers_of_every_kind_agree(self, monkeypatch: pytest.MonkeyPatch) -> None:
        values = ["1", "-0.0", "1e-7", "1e308", "123456789012345678901234567890",
                  '"1.5"', '" 1.5"', '"1_000"', '"nan"', '"inf"', '"1e400"', "true", "[1]",
                  "{}", "null", "NaN", "Infinity", "-Infinity", "1e400",
                  "1" * 400]
        data = b"".join(b'{"x": %s}\n' % v.encode() for v in values)
        fast, slow = both_paths(monkeypatch, data)
        assert_same(fast, slow)
        x = fast[0].numbers["x"]
        np.testing.assert_array_equal(x[:6], [1.0, -0.0, 1e-7, 1e308, 1.2345678901234568e29, 1.5])
        assert np.isnan(x[6:]).all()
        assert fast[0].invalid == {"x": 12}  # all but null and NaN

    def test_duplicated_keys_keep_the_first_value_on_both_paths(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = (b'{"x": 1, "x": 2, "c": "a", "c": "b"}\n{"x": null, "x": 3}\n'
                b'{"\\u0078": 4, "x": 5}\n')
        for batch, _ in both_paths(monkeypatch, data):
            assert batch.numbers["x"][:1].tolist() == [1.0]
            assert np.isnan(batch.numbers["x"][1])
            assert batch.numbers["x"][2] == 4.0
            assert batch.categories["c"].tolist()[0] == "a"

    def test_a_line_nested_100000_deep_is_malformed_on_both_paths(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        deep = b'{"x": 1, "d": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        data = lines(*records(3)) + deep + b"\n" + lines(*records(3, start=3))
        for batch, rejections in both_paths(monkeypatch, data):
            assert batch.rows == 6
            assert [(r.line, r.reason) for r in rejections] == [(4, "malformed")]

    def test_a_line_nested_just_under_the_json_loads_limit_with_a_surrogate_is_malformed(
        self
    ) -> None:
        # json.loads reads it; checking that it can be written back (lone surrogate) recursed
        deep = b'{"c": "\\ud800", "d": ' + b"[" * 990 + b"]" * 990 + b"}\n"
        batch, rejections = parse_jsonl(deep, COLUMNS)
        assert batch.rows == 0
        assert [r.reason for r in rejections] == ["malformed"]

    def test_a_lone_surrogate_escape_rejects_the_line_on_both_paths(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = b'{"c": "a\\ud800b"}\n{"c": "\\udc00"}\n{"c": "\\ud83d\\ude00"}\n{"t": "\\ud800"}\n'
        for batch, rejections in both_paths(monkeypatch, data):
            assert batch.categories["c"].tolist() == ["\U0001f600"]
            assert [(r.line, r.reason) for r in rejections] == [
                (1, "malformed"), (2, "malformed"), (4, "malformed")]


class TestParseJsonl:
    def test_every_line_is_a_row_in_order(self) -> None:
        batch, rejections = parse_jsonl(lines(*records(100)), COLUMNS)
        assert rejections == []
        assert batch.rows == 100
        assert batch.numbers["x"].tolist() == [i * 0.5 for i in range(100)]
        assert batch.categories["c"][:6].tolist() == ["a", "b", "1", "1", "true", "2.5"]
        assert batch.numbers["t"].tolist() == [T0 + i for i in range(100)]

    def test_malformed_lines_are_rejected_with_their_line_numbers(self, path_mode: str) -> None:
        good = records(1000)
        data = list(good)
        for where, bad in [(0, "{"), (499, "not json"), (998, '{"x": 1} trailing')]:
            data[where] = bad  # type: ignore[call-overload]
        batch, rejections = parse_jsonl(lines(*data), COLUMNS, first_line=1)
        assert [(r.line, r.reason) for r in rejections] == [
            (1, "malformed"), (500, "malformed"), (999, "malformed")]
        assert batch.rows == 997
        assert batch.rejected == {"malformed": 3}
        kept = [r["x"] for i, r in enumerate(good) if i not in (0, 499, 998)]
        assert batch.numbers["x"].tolist() == kept

    def test_line_numbers_start_at_first_line(self) -> None:
        data = lines(*records(50), "[1]", *records(50))
        _, rejections = parse_jsonl(data, COLUMNS, first_line=1001)
        assert [r.line for r in rejections] == [1051]

    @pytest.mark.parametrize("line", ["[1, 2]", "[]", "3", '"text"', "null", "true"])
    def test_a_json_value_that_is_not_an_object_is_malformed(
        self, path_mode: str, line: str
    ) -> None:
        batch, rejections = parse_jsonl(lines(*records(40), line, *records(3)), COLUMNS)
        assert batch.rows == 43
        assert [(r.line, r.reason) for r in rejections] == [(41, "malformed")]
        assert rejections[0].detail.startswith("expected a JSON object, got ")

    def test_a_bom_at_the_start_of_the_file_is_skipped(self, path_mode: str) -> None:
        data = b"\xef\xbb\xbf" + lines(*records(40))
        batch, rejections = parse_jsonl(data, COLUMNS)
        assert rejections == []
        assert batch.rows == 40
        assert batch.numbers["x"][0] == 0.0

    def test_invalid_utf8_rejects_only_its_line(self, path_mode: str) -> None:
        data = lines(*records(40)) + b'{"x": 1, "c": "\xff"}\n' + lines(*records(2))
        batch, rejections = parse_jsonl(data, COLUMNS)
        assert batch.rows == 42
        assert [(r.line, r.reason) for r in rejections] == [(41, "malformed")]

    def test_crlf_line_endings_read_like_lf(self, path_mode: str) -> None:
        data = lines(*records(60))
        crlf = parse_jsonl(data.replace(b"\n", b"\r\n"), COLUMNS)
        assert crlf[1] == []
        assert_same(crlf, parse_jsonl(data, COLUMNS))

    def test_blank_lines_are_ignored_not_rejected(self, path_mode: str) -> None:
        data = b"\n" + lines(*records(20)) + b"\n   \n\t\r\n\r\n" + lines(*records(20))
        batch, rejections = parse_jsonl(data, COLUMNS)
        assert rejections == []
        assert batch.rows == 40
        assert batch.rejected == {}

    def test_a_form_feed_line_is_not_blank_for_json(self, path_mode: str) -> None:
        _, rejections = parse_jsonl(lines(*records(40)) + b"\x0c\n", COLUMNS)
        assert [(r.line, r.reason) for r in rejections] == [(41, "malformed")]

    def test_nan_is_missing_and_infinities_are_invalid(self, path_mode: str) -> None:
        data = lines(*records(40)) + b'{"x": NaN}\n{"x": Infinity}\n{"x": -Infinity}\n'
        batch, rejections = parse_jsonl(data, COLUMNS)
        assert rejections == []
        assert np.isnan(batch.numbers["x"][40:]).all()
        assert batch.invalid == {"x": 2}

    def test_numeric_strings_are_read_on_the_columnar_path(self, slow_calls: list[int]) -> None:
        data = lines(*({"x": str(i / 4), "c": "a"} for i in range(500)))
        batch, _ = parse_jsonl(data, COLUMNS)
        assert slow_calls == []
        assert batch.numbers["x"].tolist() == [i / 4 for i in range(500)]
        assert batch.invalid == {}

    def test_wrong_types_in_a_numerical_column_are_counted_on_the_columnar_path(
        self, slow_calls: list[int]
    ) -> None:
        bad = ["abc", True, [1], {"a": 1}, "", "nan"]
        data = lines(*({"x": bad[i % 6] if i % 10 == 0 else i} for i in range(600)))
        batch, _ = parse_jsonl(data, COLUMNS)
        assert slow_calls == []
        assert batch.invalid == {"x": 60}
        assert int(np.isnan(batch.numbers["x"]).sum()) == 60

    def test_invalid_values_are_counted_per_column(self, path_mode: str) -> None:
        data = lines(*records(40), {"x": "a", "c": [1], "t": "soon"}, {"x": True, "t": True},
                     {"c": math.inf})
        batch, _ = parse_jsonl(data, COLUMNS)
        assert batch.invalid == {"x": 2, "c": 2, "t": 2}

    def test_a_too_long_line_inside_a_block_is_rejected_and_the_rest_read(
        self, path_mode: str
    ) -> None:
        long_line = {"x": 1, "pad": "p" * 5000}
        data = lines(*records(100), long_line, *records(100), long_line)
        batch, rejections = parse_jsonl(data, COLUMNS, max_line_bytes=2048)
        assert [(r.line, r.reason) for r in rejections] == [(101, "too_long"), (202, "too_long")]
        assert batch.rows == 200
        assert batch.rejected == {"too_long": 2}
        assert batch.numbers["x"].tolist() == [r["x"] for r in records(100) * 2]

    def test_a_line_of_exactly_max_line_bytes_is_read(self) -> None:
        line = json.dumps({"x": 1, "pad": ""})
        line = line[:-2] + "p" * (2048 - len(line)) + '"}'
        assert len(line) == 2048
        batch, rejections = parse_jsonl(lines(line), COLUMNS, max_line_bytes=2048)
        assert rejections == []
        assert batch.rows == 1

    def test_an_unterminated_last_line_is_still_one_line(self, path_mode: str) -> None:
        batch, rejections = parse_jsonl(lines(*records(40)) + b'{"x": 99}', COLUMNS)
        assert rejections == []
        assert batch.rows == 41
        assert batch.numbers["x"][-1] == 99.0

    def test_keys_the_config_does_not_name_are_ignored(self, path_mode: str) -> None:
        batch, _ = parse_jsonl(lines(*({"y": i, "z": [i]} for i in range(40))), COLUMNS)
        assert batch.rows == 40
        assert np.isnan(batch.numbers["x"]).all()
        assert batch.invalid == {}

    def test_deep_nesting_is_rejected_or_read_but_never_raises(self, path_mode: str) -> None:
        deep = '{"x": 1, "y": ' + "[" * 100_000 + "]" * 100_000 + "}"
        batch, rejections = parse_jsonl(lines(*records(40), deep), COLUMNS)
        assert batch.rows + len(rejections) == 41

    def test_empty_input_gives_an_empty_batch(self) -> None:
        batch, rejections = parse_jsonl(b"", COLUMNS)
        assert (batch.rows, rejections) == (0, [])
        assert batch.numbers["x"].shape == (0,)
        assert batch.categories["c"].shape == (0,)


class TestRecordLines:
    """``record_lines`` says which lines ``parse_jsonl`` reads a record from (start-up uses it
    to read back exactly the last N records)."""

    BAD = (b"", b"  \t", b"[1, 2]", b'{"x": ', b'"text"', b'{"x": 1}{"x": 2}', b"NaN",
           b'{"x": 1, "s": "\xff\xfe"}', b'{"x": "\\ud800"}', b"\xef\xbb\xbf")
    GOOD = (b'{"x": 1}', b"\xef\xbb\xbf" + b'{"x": 2}', b'{"x": NaN, "c": [1]}', b"{}",
            b'  {"x": "abc"}  ', b'{"x": 1, "x": 2}')

    @pytest.mark.parametrize("size", [40, 3000])  # the line-by-line and the columnar path
    def test_flags_match_the_records_parse_jsonl_reads(self, size: int) -> None:
        rng = np.random.default_rng(size)
        chosen, expected = [], []
        for _ in range(size):
            good = bool(rng.random() < 0.7)
            pool = self.GOOD if good else self.BAD
            chosen.append(pool[int(rng.integers(len(pool)))])
            expected.append(good)
        data = b"\n".join(chosen) + b"\n"
        flags = parsing.record_lines(data)
        assert flags.tolist() == expected
        batch, rejections = parse_jsonl(data, COLUMNS)
        assert batch.rows == int(flags.sum())
        assert len(rejections) == sum(1 for c, g in zip(chosen, expected, strict=True)
                                      if not g and c.strip(b" \t"))

    def test_lines_over_the_limit_hold_no_record(self) -> None:
        data = lines({"x": 1, "pad": "p" * 100}, {"x": 2})
        assert parsing.record_lines(data, max_line_bytes=50).tolist() == [False, True]

    def test_nothing_holds_nothing(self) -> None:
        assert parsing.record_lines(b"").tolist() == []


class TestTimestamps:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2024-01-01T00:00:00Z", 1704067200.0),
            ("2024-01-01T02:00:00+02:00", 1704067200.0),
            ("2023-12-31T18:30:00.25-05:30", 1704067200.25),
            ("2024-01-01t00:00:00.5z", 1704067200.5),
            ("2024-01-01T00:00:00.123456Z", 1704067200.123456),
            (1704067200, 1704067200.0),
            (1704067200.75, 1704067200.75),
            ("1704067200", 1704067200.0),
        ],
    )
    def test_rfc3339_text_and_epoch_seconds_are_read(
        self, path_mode: str, value: object, expected: float
    ) -> None:
        batch, _ = parse_jsonl(lines(*records(40), {"t": value}), COLUMNS)
        assert batch.numbers["t"][-1] == pytest.approx(expected, abs=1e-6)
        assert batch.invalid == {}

    @pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", True, [1], "",
                                       "Infinity", 10**400])
    def test_anything_else_is_invalid(self, path_mode: str, value: object) -> None:
        batch, _ = parse_jsonl(lines(*records(40), {"t": value}), COLUMNS)
        assert math.isnan(batch.numbers["t"][-1])
        assert batch.invalid == {"t": 1}

    def test_null_and_nan_timestamps_are_missing(self, path_mode: str) -> None:
        batch, _ = parse_jsonl(lines(*records(40), {"t": None}, "{}") + b'{"t": NaN}\n', COLUMNS)
        assert np.isnan(batch.numbers["t"][-3:]).all()
        assert batch.invalid == {}

    def test_mixed_offsets_in_one_batch_are_all_converted(self) -> None:
        out, bad = parse_timestamps(pa.array(["2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00Z",
                                              "bad", None, "1704067200"]))
        assert out[:2].tolist() == [1704067200.0, 1704067200.0]
        assert math.isnan(out[2])
        assert math.isnan(out[3])
        assert out[4] == 1704067200.0
        assert bad == 1


def write_parquet(path: Path, table: pa.Table, **kwargs: object) -> str:
    pq.write_table(table, path, **kwargs)
    return str(path)


class TestParseParquet:
    def test_typed_columns_are_read(self, tmp_path: Path) -> None:
        table = pa.table({
            "x": pa.array([1.5, None, float("nan"), float("inf")]),
            "n": pa.array([1, 2, None, 4], pa.int32()),
            "c": pa.array(["a", None, "b", "a"]),
            "t": pa.array([0, 1000, None, 2000], pa.timestamp("ms", tz="UTC")),
        })
        cols = [ColumnSpec("x", NUMBER), ColumnSpec("n", NUMBER), ColumnSpec("c", CATEGORY),
                ColumnSpec("t", TIME)]
        batch = parse_parquet(write_parquet(tmp_path / "a.parquet", table), cols)
        assert batch.rows == 4
        np.testing.assert_array_equal(batch.numbers["x"], [1.5, np.nan, np.nan, np.nan])
        np.testing.assert_array_equal(batch.numbers["n"], [1, 2, np.nan, 4])
        assert batch.categories["c"].tolist() == ["a", None, "b", "a"]
        np.testing.assert_array_equal(batch.numbers["t"], [0.0, 1.0, np.nan, 2.0])
        assert batch.invalid == {"x": 1}  # the infinity; NaN is missing

    def test_string_numbers_are_parsed_and_other_strings_invalid(self, tmp_path: Path) -> None:
        table = pa.table({"x": ["1.5", "-2e3", None, "abc", " 1", "nan", "1e400"]})
        batch = parse_parquet(write_parquet(tmp_path / "a.parquet", table),
                              [ColumnSpec("x", NUMBER)])
        np.testing.assert_array_equal(batch.numbers["x"][:3], [1.5, -2000.0, np.nan])
        assert np.isnan(batch.numbers["x"][3:]).all()
        assert batch.invalid == {"x": 4}

    def test_a_categorical_column_of_numeric_strings_is_read_as_numbers(
        self, tmp_path: Path
    ) -> None:
        frame = pd.DataFrame({"x": pd.Categorical(["1", "2.5", "1", None])})
        frame.to_parquet(tmp_path / "a.parquet")
        batch = parse_parquet(str(tmp_path / "a.parquet"), [ColumnSpec("x", NUMBER)])
        np.testing.assert_array_equal(batch.numbers["x"], [1.0, 2.5, 1.0, np.nan])
        assert batch.invalid == {}

    def test_booleans_in_a_categorical_column_match_json_true(self, tmp_path: Path) -> None:
        table = pa.table({"c": [True, False, None]})
        batch = parse_parquet(write_parquet(tmp_path / "a.parquet", table),
                              [ColumnSpec("c", CATEGORY)])
        assert batch.categories["c"].tolist() == ["true", "false", None]
        json_batch, _ = parse_jsonl(b'{"c": true}\n{"c": "true"}\n', [ColumnSpec("c", CATEGORY)])
        assert json_batch.categories["c"].tolist() == ["true", "true"]

    def test_numbers_in_a_categorical_column_are_canonical(self, tmp_path: Path) -> None:
        table = pa.table({"f": [1.0, 2.5, -0.0, 1e-7], "i": pa.array([1, 2, 0, 3], pa.int64())})
        cols = [ColumnSpec("f", CATEGORY), ColumnSpec("i", CATEGORY)]
        batch = parse_parquet(write_parquet(tmp_path / "a.parquet", table), cols)
        assert batch.categories["f"].tolist() == ["1", "2.5", "0", "0.0000001"]
        assert batch.categories["i"].tolist() == ["1", "2", "0", "3"]

    def test_booleans_in_a_numerical_column_are_invalid(self, tmp_path: Path) -> None:
        table = pa.table({"x": [True, None, False]})
        batch = parse_parquet(write_parquet(tmp_path / "a.parquet", table),
                              [ColumnSpec("x", NUMBER)])
        assert np.isnan(batch.numbers["x"]).all()
        assert batch.invalid == {"x": 2}

    def test_a_missing_column_is_all_missing_and_not_an_error(self, tmp_path: Path) -> None:
        table = pa.table({"x": [1.0, 2.0]})
        cols = [ColumnSpec("x", NUMBER), ColumnSpec("gone", NUMBER),
                ColumnSpec("c", CATEGORY), ColumnSpec("t", TIME)]
        batch = parse_parquet(write_parquet(tmp_path / "a.parquet", table), cols)
        assert batch.rows == 2
        assert np.isnan(batch.numbers["gone"]).all()
        assert np.isnan(batch.numbers["t"]).all()
        assert batch.categories["c"].tolist() == [None, None]
        assert batch.invalid == {}

    def test_a_list_column_configured_as_a_category_is_invalid_not_an_error(
        self, tmp_path: Path
    ) -> None:
        table = pa.table({"c": [[1, 2], None, []]})
        batch = parse_parquet(write_parquet(tmp_path / "a.parquet", table),
                              [ColumnSpec("c", CATEGORY)])
        assert batch.categories["c"].tolist() == [None, None, None]
        assert batch.invalid == {"c": 2}

    def test_row_groups_with_different_dictionaries_keep_their_values(
        self, tmp_path: Path
    ) -> None:
        table = pa.table({"c": ["a", "b"] * 50 + ["z", "y"] * 50})
        path = write_parquet(tmp_path / "a.parquet", table, row_group_size=100)
        batch = parse_parquet(path, [ColumnSpec("c", CATEGORY)])
        assert batch.categories["c"].tolist() == table.column("c").to_pylist()

    def test_timestamps_far_in_the_future_do_not_overflow(self, tmp_path: Path) -> None:
        when = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)
        table = pa.table({"t": pa.array([when], pa.timestamp("ms", tz="UTC"))})
        batch = parse_parquet(write_parquet(tmp_path / "a.parquet", table),
                              [ColumnSpec("t", TIME)])
        assert batch.numbers["t"][0] == when.timestamp()

    def test_timestamps_as_text_and_as_naive_utc_are_read(self) -> None:
        table = pa.table({
            "text": ["2024-01-01T00:00:00Z", "later"],
            "naive": pa.array([dt.datetime(2024, 1, 1)] * 2, pa.timestamp("us")),
        })
        batch = batch_from_table(table, [ColumnSpec("text", TIME), ColumnSpec("naive", TIME)])
        assert batch.numbers["text"][0] == 1704067200.0
        assert batch.numbers["naive"].tolist() == [1704067200.0] * 2
        assert batch.invalid == {"text": 1}

    def test_a_corrupt_file_raises_for_the_caller_to_count(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.parquet"
        path.write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1")
        with pytest.raises((OSError, pa.ArrowException)):
            parse_parquet(str(path), [ColumnSpec("x", NUMBER)])


class TestPlainNumpy:
    """Arrow -> numpy without pyarrow's to_numpy (which imports pandas)."""

    def test_sliced_chunked_arrays_with_nulls_equal_pyarrows_own_conversion(self) -> None:
        import pyarrow as pa

        from exporter.parsing import plain_numpy

        first = pa.array([1.5, None, 3.0, 4.0, None, 6.0, 7.0, 8.0, 9.0, 10.0])[3:]
        second = pa.array([None, 2.0, -1.0])
        chunked = pa.chunked_array([first, second])
        expected = chunked.to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(plain_numpy(chunked, null=np.nan), expected)
        codes = pa.array([3, None, 1, 0], pa.int32())[1:]
        np.testing.assert_array_equal(plain_numpy(codes, null=-1), [-1, 1, 0])
        assert plain_numpy(pa.chunked_array([], pa.int64())).shape == (0,)

    def test_an_array_with_nulls_needs_a_value_for_them(self) -> None:
        import pyarrow as pa

        from exporter.parsing import plain_numpy

        with pytest.raises(ValueError, match="nulls"):
            plain_numpy(pa.array([1.0, None]))

    def test_integers_beyond_two_to_the_53_become_the_nearest_float(self) -> None:
        import pyarrow as pa

        from exporter.parsing import arrow_numbers

        values, invalid = arrow_numbers(pa.chunked_array([pa.array([2**60 + 1, None])]))
        assert values[0] == float(2**60)
        assert np.isnan(values[1])
        assert invalid == 0


class TestSuspiciousText:
    """One regex over a column's joined distinct texts finds what polars may have stringified."""

    @pytest.mark.parametrize(("text", "suspicious"), [
        ("[1, 2]", True), ("{\"a\": 1}", True), ("-0", True), ("-00", False), ("0", False),
        ("562949953421312.25", True), ("56294995342131.25", True), ("1.5", False),
        ("12345678901234567", False), ("-1234567890123.4567", True), ("a[", False),
        ("x-0", False), ("", False)])
    def test_each_text_is_judged_alone_among_others(self, text: str, suspicious: bool) -> None:
        from exporter.parsing import _SUSPICIOUS_TEXT

        joined = "\n".join(["plain", text, "other text"])
        assert bool(_SUSPICIOUS_TEXT.search(joined)) is suspicious


class TestDictionaryCodes:
    """The columnar path hands its dictionary codes on in ``Batch.coded``, in plain sight."""

    def test_a_columnar_batch_carries_the_codes_and_dictionary_its_categories_came_from(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        force_path(monkeypatch, "fast")
        batch, _ = parse_jsonl(lines({"c": "b"}, {"c": "a"}, {"x": 1}, {"c": "b"}), COLUMNS)
        coded = batch.coded["c"]
        assert isinstance(coded, Coded)
        assert coded.dictionary == ("b", "a")
        assert coded.codes.dtype == np.int32
        assert coded.codes.tolist() == [0, 1, -1, 0]
        assert batch.categories["c"].tolist() == ["b", "a", None, "b"]
        assert type(batch.categories["c"]) is np.ndarray  # a plain object array, no subclass
        assert coded.values().tolist() == batch.categories["c"].tolist()

    def test_each_distinct_text_is_one_python_object(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        force_path(monkeypatch, "fast")
        batch, _ = parse_jsonl(lines(*({"c": "same"} for _ in range(3))), COLUMNS)
        first, second, third = batch.categories["c"]
        assert first is second is third

    def test_line_by_line_batches_have_values_only(self, monkeypatch: pytest.MonkeyPatch) -> None:
        force_path(monkeypatch, "slow")
        batch, _ = parse_jsonl(lines({"c": "a"}, {"c": "b"}), COLUMNS)
        assert batch.categories["c"].tolist() == ["a", "b"]
        assert dict(batch.coded) == {}

    def test_a_concatenation_of_pieces_drops_codes_that_index_different_dictionaries(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        force_path(monkeypatch, "fast")
        one, _ = parse_jsonl(lines({"c": "a"}), COLUMNS)
        two, _ = parse_jsonl(lines({"c": "b"}), COLUMNS)
        assert one.coded["c"].codes.tolist() == two.coded["c"].codes.tolist() == [0]
        joined = concat_batches(COLUMNS, [one, two])
        assert joined.categories["c"].tolist() == ["a", "b"]
        assert dict(joined.coded) == {}
        assert concat_batches(COLUMNS, [one]).coded["c"] is one.coded["c"]

    def test_parquet_batches_have_values_only(self, tmp_path: Path) -> None:
        pq.write_table(pa.table({"c": ["a", "b"]}), tmp_path / "p.parquet")
        batch = parse_parquet(str(tmp_path / "p.parquet"), COLUMNS)
        assert batch.categories["c"].tolist() == ["a", "b"]
        assert dict(batch.coded) == {}
