"""Tests for exporter.tables: reading reference files by extension."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from exporter.errors import ReferenceDataError
from exporter.parsing import CATEGORY, NUMBER, ColumnSpec, parse_jsonl
from exporter.tables import read_column_names, read_table, table_format

FRAME = pd.DataFrame({"x": [1.5, 2.5, 3.5], "color": ["red", "blue", "red"], "n": [1, 2, 3]})


def write(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` in the format its extension names."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


class TestTableFormat:
    @pytest.mark.parametrize(
        ("name", "fmt"),
        [
            ("a.parquet", "parquet"),
            ("a.csv", "csv"),
            ("a.jsonl", "jsonl"),
            ("a.ndjson", "jsonl"),
            ("A.PARQUET", "parquet"),
            ("a.json", None),
            ("a", None),
        ],
    )
    def test_the_format_follows_the_extension(self, name: str, fmt: str | None) -> None:
        assert table_format(name) == fmt


class TestReadTable:
    @pytest.mark.parametrize("name", ["ref.parquet", "ref.csv", "ref.jsonl", "ref.ndjson"])
    def test_each_format_reads_back_the_same_values(self, tmp_path: Path, name: str) -> None:
        frame = read_table(write(FRAME, tmp_path / name))
        assert list(frame.columns) == ["x", "color", "n"]
        assert frame["x"].tolist() == [1.5, 2.5, 3.5]
        assert frame["color"].tolist() == ["red", "blue", "red"]
        assert frame["n"].tolist() == [1, 2, 3]

    def test_jsonl_accepts_nan_and_infinity_tokens_and_skips_blank_lines(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "ref.jsonl"
        path.write_text('{"x": NaN}\n\n   \n{"x": Infinity}\n{"x": -Infinity, "y": "a"}\n')
        frame = read_table(path)
        assert len(frame) == 3
        assert math.isnan(frame["x"][0])
        assert frame["x"][1] == math.inf
        assert frame["x"][2] == -math.inf
        assert list(frame.columns) == ["x", "y"]

    def test_a_malformed_jsonl_line_names_the_file_and_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "ref.jsonl"
        path.write_text('{"x": 1}\n\n{"x": \n')
        with pytest.raises(ReferenceDataError, match=r"ref\.jsonl, line 3"):
            read_table(path)

    def test_a_jsonl_line_that_is_not_an_object_is_rejected(self, tmp_path: Path) -> None:
        path = tmp_path / "ref.jsonl"
        path.write_text('{"x": 1}\n[1, 2]\n')
        with pytest.raises(
            ReferenceDataError, match="line 2: expected a JSON object, got an array"
        ):
            read_table(path)

    def test_of_duplicated_jsonl_keys_the_first_wins_as_in_the_logs(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "ref.jsonl"
        path.write_text('{"x": 1, "c": "a", "x": 2, "c": "b"}\n{"x": 3}\n')
        frame = read_table(path)
        assert frame["x"].tolist() == [1, 3]
        assert frame["c"].tolist()[0] == "a"
        batch, _ = parse_jsonl(path.read_bytes(), [ColumnSpec("x", NUMBER),
                                                   ColumnSpec("c", CATEGORY)])
        assert batch.numbers["x"].tolist() == [1.0, 3.0]
        assert batch.categories["c"].tolist()[0] == "a"

    def test_a_jsonl_line_nested_100000_deep_is_a_reference_data_error(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "ref.jsonl"
        path.write_text('{"x": 1}\n{"x": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
        with pytest.raises(ReferenceDataError, match=r"ref\.jsonl, line 2"):
            read_table(path)
        with pytest.raises(ReferenceDataError, match=r"ref\.jsonl, line 2"):
            read_column_names(path)

    def test_a_jsonl_line_that_is_not_utf8_is_rejected(self, tmp_path: Path) -> None:
        path = tmp_path / "ref.jsonl"
        path.write_bytes(b'{"x": "\xff"}\n')
        with pytest.raises(ReferenceDataError, match="line 1"):
            read_table(path)

    def test_a_missing_file_is_a_reference_data_error_naming_it(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.parquet"
        with pytest.raises(ReferenceDataError, match=r"absent\.parquet"):
            read_table(path)

    def test_a_corrupt_parquet_file_is_a_reference_data_error(self, tmp_path: Path) -> None:
        path = tmp_path / "ref.parquet"
        path.write_bytes(b"not parquet at all")
        with pytest.raises(ReferenceDataError, match=r"ref\.parquet"):
            read_table(path)

    def test_an_empty_csv_file_is_a_reference_data_error(self, tmp_path: Path) -> None:
        path = tmp_path / "ref.csv"
        path.write_text("")
        with pytest.raises(ReferenceDataError, match=r"ref\.csv"):
            read_table(path)

    def test_an_unsupported_extension_is_rejected_before_reading(self, tmp_path: Path) -> None:
        with pytest.raises(ReferenceDataError, match="unsupported file extension"):
            read_table(tmp_path / "ref.json")

    def test_a_named_parquet_index_comes_back_as_a_column(self, tmp_path: Path) -> None:
        path = tmp_path / "ref.parquet"
        FRAME.set_index("color").to_parquet(path)
        assert sorted(read_table(path).columns) == ["color", "n", "x"]

    def test_an_unnamed_parquet_index_is_dropped(self, tmp_path: Path) -> None:
        path = tmp_path / "ref.parquet"
        FRAME.iloc[[2, 0]].to_parquet(path)  # a non-range index is stored as a column
        frame = read_table(path)
        assert list(frame.columns) == ["x", "color", "n"]
        assert frame["x"].tolist() == [3.5, 1.5]


class TestOneJsonlRule:
    """SPEC 2: references and logs are read alike; one rule (``parsing.decode_record``)."""

    @pytest.mark.parametrize("line", [
        b'{"x": 1}', b'\xef\xbb\xbf{"x": 1}', b'{"x": "\\ud800"}', b"\x0c", b" \t\r",
        b"[1]", b'{"x": NaN}', b'{"x": 1, "x": 2}', b'{"x": 1}{"x": 2}', b'{"x": "\xff"}',
        b'{"x": "\\ud83d\\ude00"}', b"\xc2\xa0",
    ])
    def test_a_line_is_a_record_of_a_reference_exactly_when_it_is_one_of_a_log(
        self, tmp_path: Path, line: bytes
    ) -> None:
        path = tmp_path / "ref.jsonl"
        path.write_bytes(b'{"x": 0}\n' + line + b"\n")
        _, rejections = parse_jsonl(path.read_bytes(), [ColumnSpec("x", NUMBER)])
        try:
            read_table(path)
        except ReferenceDataError:
            accepted = False
        else:
            accepted = True
        assert accepted == (rejections == [])


class TestReadColumnNames:
    @pytest.mark.parametrize("name", ["ref.parquet", "ref.csv", "ref.jsonl", "ref.ndjson"])
    def test_each_format_lists_its_columns(self, tmp_path: Path, name: str) -> None:
        assert read_column_names(write(FRAME, tmp_path / name)) == ["x", "color", "n"]

    def test_jsonl_columns_are_the_union_of_keys_in_first_seen_order(self, tmp_path: Path) -> None:
        path = tmp_path / "ref.jsonl"
        path.write_text('{"a": 1}\n{"b": 2, "a": 3}\n\n{"c": null}\n')
        assert read_column_names(path) == ["a", "b", "c"]

    def test_parquet_columns_agree_with_read_table_whatever_the_index(self, tmp_path: Path) -> None:
        named = tmp_path / "named.parquet"
        FRAME.set_index("color").to_parquet(named)
        unnamed = tmp_path / "unnamed.parquet"
        FRAME.iloc[[1, 0]].to_parquet(unnamed)
        for path in (named, unnamed):
            assert read_column_names(path) == list(read_table(path).columns)

    def test_a_broken_file_is_a_reference_data_error(self, tmp_path: Path) -> None:
        path = tmp_path / "ref.jsonl"
        path.write_text('{"a": 1}\nnope\n')
        with pytest.raises(ReferenceDataError, match="line 2"):
            read_column_names(path)
