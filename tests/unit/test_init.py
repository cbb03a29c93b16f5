"""Tests for exporter.init: column roles inferred from a reference, and the YAML written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from exporter.config import parse_config
from exporter.errors import ExporterError
from exporter.init import (
    CATEGORICAL,
    EMPTY,
    FEW_DISTINCT,
    ID,
    NUMERICAL,
    SKIPPED,
    TIMESTAMP,
    InitOptions,
    infer,
    render,
)

ROWS = 200


def roles(frame: pd.DataFrame) -> dict[str, str]:
    return {column.name: column.role for column in infer(frame)}


def reference() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "request_id": [f"req-{i}" for i in range(ROWS)],
        "ts": pd.date_range("2026-01-01", periods=ROWS, freq="min").strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "income": rng.normal(50_000, 9_000, ROWS),
        "doors": rng.integers(2, 6, ROWS),
        "age": rng.integers(18, 90, ROWS),
        "owner": rng.random(ROWS) < 0.5,
        "color": rng.choice(["red", "blue"], ROWS),
        "score": rng.random(ROWS),
        "repaid": rng.integers(0, 2, ROWS),
    })


class TestTypeInference:
    def test_floats_are_numerical(self) -> None:
        assert roles(pd.DataFrame({"x": np.linspace(0, 1, ROWS)}))["x"] == NUMERICAL

    def test_integers_with_many_distinct_values_are_numerical(self) -> None:
        frame = pd.DataFrame({"age": np.arange(ROWS) % 70})
        assert roles(frame)["age"] == NUMERICAL

    def test_integers_with_few_distinct_values_are_categorical_and_the_comment_says_why(
        self
    ) -> None:
        (column,) = infer(pd.DataFrame({"doors": np.arange(ROWS) % FEW_DISTINCT}))
        assert column.role == CATEGORICAL
        assert f"{FEW_DISTINCT} distinct values" in column.why
        assert "numerical if their order matters" in column.why
        assert roles(pd.DataFrame({"n": np.arange(ROWS) % (FEW_DISTINCT + 1)}))["n"] == NUMERICAL

    def test_whole_floats_with_few_values_count_as_integers(self) -> None:
        assert roles(pd.DataFrame({"k": [1.0, 2.0, np.nan, 3.0] * 50}))["k"] == CATEGORICAL

    def test_booleans_are_categorical_also_from_jsonl_objects(self) -> None:
        frame = pd.DataFrame({"b": [True, False] * 100,
                              "o": pd.Series([True, None] * 100, dtype=object)})
        assert roles(frame) == {"b": CATEGORICAL, "o": CATEGORICAL}

    def test_strings_are_categorical(self) -> None:
        assert roles(pd.DataFrame({"c": ["a", "b", "c", "d"] * 50}))["c"] == CATEGORICAL

    def test_strings_unique_per_row_are_an_id(self) -> None:
        assert roles(pd.DataFrame({"uuid": [f"u{i}" for i in range(ROWS)]}))["uuid"] == ID

    def test_integers_unique_per_row_are_an_id_when_counting_up_or_named_so(self) -> None:
        rng = np.random.default_rng(1)
        scattered = rng.choice(10**9, ROWS, replace=False)
        frame = pd.DataFrame({"row": np.arange(ROWS) + 7, "user_id": scattered,
                              "amount": scattered})
        assert roles(frame) == {"row": ID, "user_id": ID, "amount": NUMERICAL}

    def test_a_few_rows_unique_per_row_are_not_taken_for_an_id(self) -> None:
        assert roles(pd.DataFrame({"c": ["a", "b", "c"]}))["c"] == CATEGORICAL

    def test_rfc3339_text_is_a_timestamp(self) -> None:
        frame = pd.DataFrame({"when": ["2026-01-01T10:00:00Z", "2026-01-01T10:00:01.5+02:00",
                                       "2026-01-02 11:00:00", None] * 5})
        assert roles(frame)["when"] == TIMESTAMP

    def test_epoch_seconds_named_like_a_time_are_a_timestamp(self) -> None:
        epoch = 1.7e9 + np.arange(ROWS)
        frame = pd.DataFrame({"event_time": epoch, "created_at": epoch.astype(np.int64),
                              "ts": epoch, "amount": epoch * 1.5})
        assert roles(frame) == {"event_time": TIMESTAMP, "created_at": TIMESTAMP,
                                "ts": TIMESTAMP, "amount": NUMERICAL}

    def test_a_time_column_not_in_epoch_seconds_is_left_out(self) -> None:
        frame = pd.DataFrame({"ts_ms": (1.7e12 + np.arange(ROWS)).astype(np.int64)})
        (column,) = infer(frame)
        assert column.role == SKIPPED
        assert "epoch seconds" in column.why

    def test_datetime_columns_are_a_timestamp(self) -> None:
        frame = pd.DataFrame({"at": pd.date_range("2026-01-01", periods=ROWS, freq="h")})
        assert roles(frame)["at"] == TIMESTAMP

    def test_a_column_without_values_is_left_out(self) -> None:
        assert roles(pd.DataFrame({"e": [None] * ROWS, "x": np.arange(ROWS) * 0.5}))["e"] == EMPTY


class TestRender:
    def config(self, frame: pd.DataFrame, **options: str) -> dict[str, object]:
        text = render(frame, InitOptions(reference="ref.parquet", **options))
        loaded = yaml.safe_load(text)
        assert isinstance(loaded, dict)
        return loaded

    def test_features_roles_prediction_and_label_are_placed_where_they_belong(self) -> None:
        (model,) = self.config(reference(), prediction="score", label="repaid",
                               logs="logs/*.jsonl", name="loans")["models"]
        assert model["name"] == "loans"
        assert model["logs"] == {"path": "logs/*.jsonl"}
        assert model["features"] == [{"name": "income", "type": "numerical"},
                                     {"name": "doors", "type": "categorical"},
                                     {"name": "age", "type": "numerical"},
                                     {"name": "owner", "type": "categorical"},
                                     {"name": "color", "type": "categorical"}]
        assert model["prediction"] == {"column": "score", "type": "numerical"}
        assert model["label"] == {"column": "repaid", "task": "classification"}
        assert model["id_column"] == "request_id"
        assert model["timestamp_column"] == "ts"

    def test_the_comments_say_which_type_was_chosen_and_why(self) -> None:
        text = render(reference(), InitOptions(reference="ref.parquet"))
        assert "- name: doors  # integers, 4 distinct values: categorical" in text
        assert "#   request_id: text unique per row (an id)" in text
        assert "#   ts: RFC 3339 time text (a time)" in text

    def test_the_config_is_valid(self, tmp_path: Path) -> None:
        reference().to_parquet(tmp_path / "ref.parquet", index=False)
        data = self.config(reference(), prediction="score", label="repaid")
        config = parse_config(data, base_dir=tmp_path)
        assert config.models[0].name == "ref"
        assert config.models[0].logs.format == "jsonl"

    def test_a_numeric_label_with_many_values_is_a_regression_target(self) -> None:
        frame = reference().assign(price=np.linspace(1, 2, ROWS))
        (model,) = self.config(frame, prediction="score", label="price")["models"]
        assert model["label"]["task"] == "regression"
        assert "price" not in [f["name"] for f in model["features"]]

    def test_a_label_absent_from_the_reference_is_classification_with_a_comment(self) -> None:
        text = render(reference(), InitOptions(reference="ref.parquet", label="late"))
        assert "task: classification  # no label in the reference: check the task" in text

    def test_a_categorical_prediction_is_categorical(self) -> None:
        (model,) = self.config(reference(), prediction="color")["models"]
        assert model["prediction"] == {"column": "color", "type": "categorical"}

    def test_a_prediction_not_in_the_reference_is_an_error_naming_the_columns(self) -> None:
        with pytest.raises(ExporterError, match=r"--prediction: column 'nope' is not in the "
                                                r"reference \(its columns: request_id, ts"):
            render(reference(), InitOptions(reference="ref.parquet", prediction="nope"))

    def test_a_reference_without_any_possible_feature_is_an_error(self) -> None:
        frame = pd.DataFrame({"id": [f"x{i}" for i in range(ROWS)]})
        with pytest.raises(ExporterError, match=r"no column of ref\.parquet can be a feature"):
            render(frame, InitOptions(reference="ref.parquet"))

    def test_names_from_user_data_stay_valid_yaml(self) -> None:
        odd = ["yes", "a: b", "# x", "line\nbreak", "123", "*star", "ü"]
        frame = pd.DataFrame({name: np.linspace(0, i + 1, ROWS) for i, name in enumerate(odd)})
        frame["id\nrow"] = [f"r{i}" for i in range(ROWS)]
        (model,) = self.config(frame, logs="/data/my logs/*.jsonl")["models"]
        assert [f["name"] for f in model["features"]] == odd
        assert model["logs"]["path"] == "/data/my logs/*.jsonl"
        assert model["id_column"] == "id\nrow"

    def test_columns_named_like_a_prediction_or_label_are_pointed_out_without_the_flags(
        self
    ) -> None:
        frame = reference().rename(columns={"repaid": "target"})
        text = render(frame, InitOptions(reference="ref.parquet"))
        assert "# score is named like a prediction: --prediction=score" in text
        assert "# target is named like a label: --label=target" in text
        text = render(frame, InitOptions(reference="ref.parquet", prediction="score"))
        assert "named like a prediction" not in text

    def test_the_model_name_comes_from_the_reference_file(self) -> None:
        text = render(reference(), InitOptions(reference="data/car loan.v2.parquet"))
        assert yaml.safe_load(text)["models"][0]["name"] == "car-loan"
