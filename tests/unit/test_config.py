"""Tests for exporter.config: parsing, defaults and validation of the YAML configuration."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from exporter.alarm import AlarmConfig
from exporter.config import (
    README_END,
    README_START,
    DriftConfig,
    FeatureConfig,
    FleetConfig,
    LabelConfig,
    LogsConfig,
    ModelConfig,
    PredictionConfig,
    SegmentsConfig,
    StatisticConfig,
    WindowConfig,
    load_config,
    markdown_reference,
    parse_config,
)
from exporter.errors import ConfigError, ExporterError
from exporter.schema import replace_between

ROOT = Path(__file__).resolve().parents[2]

REFERENCE = pd.DataFrame(
    {
        "car_value": [1.0, 2.0, 3.0],
        "salary_range": ["low", "high", "low"],
        "y_pred_proba": [0.1, 0.7, 0.4],
    }
)

Data = dict[str, Any]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A config directory holding ref.parquet (no label column in it)."""
    REFERENCE.to_parquet(tmp_path / "ref.parquet", index=False)
    return tmp_path


def model(**overrides: Any) -> Data:
    """A valid model entry; keys given as None are removed."""
    entry: Data = {
        "name": "car-loan",
        "logs": {"path": "logs/*.jsonl"},
        "reference": {"path": "ref.parquet"},
        "features": [
            {"name": "car_value", "type": "numerical"},
            {"name": "salary_range", "type": "categorical"},
        ],
    }
    entry.update(copy.deepcopy(overrides))
    return {key: value for key, value in entry.items() if value is not None}


def parse_model(base: Path, **overrides: Any) -> ModelConfig:
    """Parse a config holding one model and return that model."""
    return parse_config({"models": [model(**overrides)]}, base_dir=base).models[0]


def problems(data: object, base: Path, **kwargs: Any) -> tuple[str, ...]:
    """The problems a ConfigError reports for `data`."""
    with pytest.raises(ConfigError) as info:
        parse_config(data, base_dir=base, **kwargs)
    return info.value.problems


def model_problems(base: Path, **overrides: Any) -> tuple[str, ...]:
    """The problems reported for a config holding one model with `overrides`."""
    return problems({"models": [model(**overrides)]}, base)


class TestConfigError:
    def test_the_message_lists_every_problem_one_per_line(self) -> None:
        error = ConfigError(["a: wrong", "b: missing"])
        assert error.problems == ("a: wrong", "b: missing")
        assert str(error) == "a: wrong\nb: missing"

    def test_a_single_problem_may_be_given_as_a_string(self) -> None:
        assert ConfigError("a: wrong").problems == ("a: wrong",)

    def test_it_is_an_exporter_error(self) -> None:
        assert isinstance(ConfigError("x"), ExporterError)


class TestAllProblemsAtOnce:
    def test_a_config_with_three_mistakes_reports_all_three(self, base: Path) -> None:
        data = {
            "models": [
                model(
                    windw={"rows": 10},
                    features=[
                        {"name": "car_value", "type": "numerical"},
                        {"name": "salary_range", "type": "categorical"},
                        {"name": "car_value", "type": "numeric"},
                    ],
                    update_interval="5 seconds",
                )
            ]
        }
        with pytest.raises(ConfigError) as info:
            parse_config(data, base_dir=base)
        assert sorted(info.value.problems) == sorted(
            [
                "models[0].windw: unknown key (did you mean 'window'?)",
                "models[0].features[2].type: expected 'numerical' or 'categorical', got 'numeric'",
                (
                    "models[0].features[2].name: duplicate feature name 'car_value' "
                    "(also models[0].features[0].name)"
                ),
                (
                    "models[0].update_interval: expected a Prometheus duration such as 500ms, 30s, "
                    "5m or 1h30m, got '5 seconds'"
                ),
            ]
        )
        assert str(info.value).count("\n") == 3

    def test_problems_in_several_models_are_all_reported(self, base: Path) -> None:
        data = {"models": [model(name="a", max_versions=0), model(name="b", max_categories=0)]}
        assert problems(data, base) == (
            "models[0].max_versions: expected an integer >= 1, got 0",
            "models[1].max_categories: expected an integer >= 1, got 0",
        )


class TestLoadConfig:
    def test_a_valid_file_loads_with_its_path_as_source(self, base: Path) -> None:
        path = base / "drift.yml"
        path.write_text(
            "models:\n"
            "  - name: car-loan\n"
            "    logs: {path: logs/*.jsonl}\n"
            "    reference: {path: ref.parquet}\n"
            "    features:\n"
            "      - {name: car_value, type: numerical}\n"
        )
        config = load_config(path)
        assert config.source == str(path)
        assert [m.name for m in config.models] == ["car-loan"]

    def test_relative_paths_resolve_against_the_config_directory_not_the_working_one(
        self, base: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = base / "drift.yml"
        path.write_text(
            "models:\n"
            "  - name: m\n"
            "    logs: {path: logs/*.jsonl}\n"
            "    reference: {path: ./ref.parquet}\n"
            "    features: [{name: car_value, type: numerical}]\n"
        )
        monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
        loaded = load_config(path).models[0]
        assert loaded.logs.path == str(base / "logs" / "*.jsonl")
        assert loaded.reference_path == str(base / "ref.parquet")

    def test_a_yaml_syntax_error_is_a_config_error_with_its_line(self, tmp_path: Path) -> None:
        path = tmp_path / "drift.yml"
        path.write_text("models:\n  - name: a\n   logs: x\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        (problem,) = info.value.problems
        assert problem.startswith("line 3, column 4: invalid YAML:")

    def test_a_duplicate_key_is_a_config_error_with_its_line(self, tmp_path: Path) -> None:
        path = tmp_path / "drift.yml"
        path.write_text("models:\n  - name: a\n    name: b\n")
        with pytest.raises(ConfigError, match=r"line 3, column 5: .*duplicate key 'name'"):
            load_config(path)

    def test_a_missing_file_is_a_config_error_naming_it(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"absent\.yml: cannot read the config file"):
            load_config(tmp_path / "absent.yml")

    def test_an_empty_file_is_a_config_error(self, tmp_path: Path) -> None:
        path = tmp_path / "drift.yml"
        path.write_text("# nothing yet\n")
        with pytest.raises(ConfigError, match="the configuration is empty"):
            load_config(path)

    def test_a_threshold_in_scientific_notation_is_a_number(self, base: Path) -> None:
        path = base / "drift.yml"
        path.write_text(
            "models:\n"
            "  - name: m\n"
            "    logs: {path: logs/*.jsonl}\n"
            "    reference: {path: ref.parquet}\n"
            "    features: [{name: car_value, type: numerical, threshold: 1e-3}]\n"
        )
        assert load_config(path).models[0].features[0].statistic.threshold == 0.001


class TestTopLevel:
    def test_only_models_is_accepted_at_the_top(self, base: Path) -> None:
        assert problems({"models": [model()], "global": {}}, base) == ("global: unknown key",)

    def test_models_is_required(self, base: Path) -> None:
        assert problems({}, base) == ("models: required key is missing",)

    def test_models_must_be_a_non_empty_list(self, base: Path) -> None:
        assert problems({"models": []}, base) == (
            "models: expected a non-empty list, got an empty list",
        )

    def test_the_document_must_be_a_mapping(self, base: Path) -> None:
        assert problems(["models"], base) == (
            "(top level): expected a mapping with keys models, got a list",
        )

    def test_a_model_must_be_a_mapping(self, base: Path) -> None:
        assert problems({"models": ["car-loan"]}, base) == (
            "models[0]: expected a mapping, got 'car-loan'",
        )

    def test_parse_config_reports_memory_as_its_source(self, base: Path) -> None:
        assert parse_config({"models": [model()]}, base_dir=base).source == "<memory>"


class TestModelName:
    def test_the_name_is_required(self, base: Path) -> None:
        data = model()
        del data["name"]
        assert problems({"models": [data]}, base) == ("models[0].name: required key is missing",)

    @pytest.mark.parametrize("name", ["car-loan", "a.b:c_D-9"])
    def test_a_name_of_letters_digits_and_punctuation_is_accepted(
        self, base: Path, name: str
    ) -> None:
        assert parse_model(base, name=name).name == name

    @pytest.mark.parametrize("name", ["car loan", "café", "a/b"])
    def test_a_name_with_other_characters_is_rejected(self, base: Path, name: str) -> None:
        assert model_problems(base, name=name) == (
            f"models[0].name: expected a name matching [A-Za-z0-9_.:-]+, got {name!r}",
        )

    def test_a_name_must_be_a_string(self, base: Path) -> None:
        assert model_problems(base, name=42) == (
            "models[0].name: expected a non-empty string, got 42",
        )

    def test_two_models_may_not_share_a_name(self, base: Path) -> None:
        data = {"models": [model(name="a"), model(name="b"), model(name="a")]}
        assert problems(data, base) == (
            "models[2].name: duplicate model name 'a' (also models[0].name)",
        )


class TestUnknownKeys:
    def test_an_unknown_model_key_is_reported_with_a_suggestion(self, base: Path) -> None:
        assert model_problems(base, windw={"rows": 5}) == (
            "models[0].windw: unknown key (did you mean 'window'?)",
        )

    @pytest.mark.parametrize(
        ("overrides", "path"),
        [
            ({"logs": {"path": "a.jsonl", "colour": 1}}, "models[0].logs.colour"),
            ({"reference": {"path": "ref.parquet", "sheet": 1}}, "models[0].reference.sheet"),
            (
                {"features": [{"name": "car_value", "type": "numerical", "bins": 3}]},
                "models[0].features[0].bins",
            ),
            ({"drift": {"numerical": {"statistic": "ks", "p": 1}}}, "models[0].drift.numerical.p"),
            ({"fleet": {"bucket": 3}}, "models[0].fleet.bucket"),
            ({"window": {"row": 3}}, "models[0].window.row"),
        ],
    )
    def test_unknown_keys_are_errors_at_every_level(
        self, base: Path, overrides: Data, path: str
    ) -> None:
        (problem,) = model_problems(base, **overrides)
        assert problem.startswith(f"{path}: unknown key")


class TestDefaults:
    def test_a_minimal_model_gets_every_documented_default(self, base: Path) -> None:
        loaded = parse_model(base)
        assert loaded.logs == LogsConfig(str(base / "logs/*.jsonl"), "jsonl", 1048576)
        assert loaded.window == WindowConfig(rows=5000, duration=None)
        assert loaded.update_interval == 5.0
        assert loaded.drift == DriftConfig(
            numerical=StatisticConfig("ks", None),
            categorical=StatisticConfig("jensen_shannon", None),
            min_rows=100,
            dataset_share=0.5,
            bins=10,
        )
        assert loaded.max_categories == 20
        assert loaded.max_versions == 3
        assert loaded.fleet == FleetConfig(buckets=20)
        assert loaded.prediction is None
        assert loaded.label is None
        assert (loaded.id_column, loaded.version_column, loaded.timestamp_column) == (None,) * 3

    def test_features_get_the_drift_default_of_their_type(self, base: Path) -> None:
        assert parse_model(base).features == (
            FeatureConfig("car_value", "numerical", StatisticConfig("ks", None)),
            FeatureConfig("salary_range", "categorical", StatisticConfig("jensen_shannon", None)),
        )

    def test_the_parsed_config_is_frozen(self, base: Path) -> None:
        loaded = parse_model(base)
        with pytest.raises(dataclasses.FrozenInstanceError):
            loaded.name = "other"  # type: ignore[misc]

    def test_an_optional_key_set_to_null_takes_its_default(self, base: Path) -> None:
        data = model()
        data.update(window=None, drift=None, max_categories=None)
        loaded = parse_config({"models": [data]}, base_dir=base).models[0]
        assert loaded.window.rows == 5000
        assert loaded.max_categories == 20


class TestLogs:
    @pytest.mark.parametrize(
        ("path", "fmt"),
        [("a/*.jsonl", "jsonl"), ("a/*.ndjson", "jsonl"), ("a/*.parquet", "parquet"),
         ("a/*.jsonl.gz", "jsonl"), ("a/*.ndjson.GZ", "jsonl")],
    )
    def test_the_format_comes_from_the_extension(self, base: Path, path: str, fmt: str) -> None:
        assert parse_model(base, logs={"path": path}).logs.format == fmt

    def test_an_explicit_format_wins_over_the_extension(self, base: Path) -> None:
        assert parse_model(base, logs={"path": "a/*.log", "format": "jsonl"}).logs.format == "jsonl"

    def test_a_path_without_a_known_extension_needs_a_format(self, base: Path) -> None:
        (problem,) = model_problems(base, logs={"path": "a/*.log"})
        assert problem.startswith("models[0].logs.format: required when the path does not end")

    def test_an_unknown_format_is_rejected(self, base: Path) -> None:
        assert model_problems(base, logs={"path": "a/*.jsonl", "format": "csv"}) == (
            "models[0].logs.format: expected 'jsonl' or 'parquet', got 'csv'",
        )

    def test_the_path_is_required(self, base: Path) -> None:
        assert model_problems(base, logs={"format": "jsonl"}) == (
            "models[0].logs.path: required key is missing",
        )

    def test_logs_are_required(self, base: Path) -> None:
        data = model()
        del data["logs"]
        assert problems({"models": [data]}, base) == ("models[0].logs: required key is missing",)

    def test_an_empty_path_is_rejected(self, base: Path) -> None:
        assert model_problems(base, logs={"path": "", "format": "jsonl"}) == (
            "models[0].logs.path: expected a non-empty string, got ''",
        )

    @pytest.mark.parametrize(
        ("glob", "reason"),
        [
            ("logs/[ab.jsonl", "unbalanced '['"),
            ("logs/ab].jsonl", "unbalanced ']'"),
            ("logs/[a/b].jsonl", "unbalanced '['"),
            ("logs/**x/*.jsonl", "'**' must be a whole path component"),
            ("logs/x**/*.jsonl", "'**' must be a whole path component"),
            ("logs/***.jsonl", "'**' must be a whole path component"),
        ],
    )
    def test_a_bad_glob_is_rejected(self, base: Path, glob: str, reason: str) -> None:
        (problem,) = model_problems(base, logs={"path": glob})
        assert problem.startswith(f"models[0].logs.path: bad glob {glob!r}: {reason}")

    @pytest.mark.parametrize(
        "glob", ["logs/**/*.jsonl", "logs/[ab]*.jsonl", "logs/[!.]*.jsonl", "logs/[]x].jsonl"]
    )
    def test_a_well_formed_glob_is_accepted(self, base: Path, glob: str) -> None:
        assert parse_model(base, logs={"path": glob}).logs.path == str(base / glob)

    def test_a_relative_path_resolves_against_base_dir(self, base: Path) -> None:
        loaded = parse_model(base, logs={"path": "../other/./*.jsonl"})
        assert loaded.logs.path == str(base.parent / "other" / "*.jsonl")

    def test_an_absolute_path_is_kept(self, base: Path) -> None:
        assert parse_model(base, logs={"path": "/logs/*.jsonl"}).logs.path == "/logs/*.jsonl"

    def test_without_base_dir_paths_resolve_against_the_working_directory(
        self, base: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(base)
        config = parse_config({"models": [model()]})
        assert config.models[0].logs.path == str(base / "logs" / "*.jsonl")

    def test_max_line_bytes_is_read(self, base: Path) -> None:
        logs = {"path": "a.jsonl", "max_line_bytes": 4096}
        assert parse_model(base, logs=logs).logs.max_line_bytes == 4096

    @pytest.mark.parametrize(
        ("value", "shown"), [(1023, "1023"), (True, "true"), ("1MiB", "'1MiB'")]
    )
    def test_max_line_bytes_must_be_an_integer_of_at_least_1024(
        self, base: Path, value: object, shown: str
    ) -> None:
        assert model_problems(base, logs={"path": "a.jsonl", "max_line_bytes": value}) == (
            f"models[0].logs.max_line_bytes: expected an integer >= 1024, got {shown}",
        )


class TestReference:
    @pytest.mark.parametrize("name", ["ref.parquet", "ref.csv", "ref.jsonl", "ref.ndjson"])
    def test_missing_feature_and_prediction_columns_are_reported_in_every_format(
        self, tmp_path: Path, name: str
    ) -> None:
        reference = tmp_path / name
        frame = pd.DataFrame({"car_value": [1.0, 2.0], "other": ["a", "b"]})
        if name.endswith(".parquet"):
            frame.to_parquet(reference, index=False)
        elif name.endswith(".csv"):
            frame.to_csv(reference, index=False)
        else:
            frame.to_json(reference, orient="records", lines=True)
        found = model_problems(
            tmp_path,
            reference={"path": name},
            prediction={"column": "score"},
            features=[
                {"name": "car_value", "type": "numerical"},
                {"name": "salary_range", "type": "categorical"},
            ],
        )
        assert found == (
            f"models[0].features[1].name: column 'salary_range' not in reference {reference}",
            f"models[0].prediction.column: column 'score' not in reference {reference}",
        )

    def test_the_label_column_may_be_absent_from_the_reference(self, base: Path) -> None:
        loaded = parse_model(base, label={"column": "repaid", "task": "classification"})
        assert loaded.label is not None
        assert loaded.label.column == "repaid"

    def test_a_relative_reference_resolves_against_base_dir(self, base: Path) -> None:
        assert parse_model(base).reference_path == str(base / "ref.parquet")

    def test_a_missing_reference_file_is_reported(self, base: Path) -> None:
        assert model_problems(base, reference={"path": "gone.parquet"}) == (
            f"models[0].reference.path: reference file {base / 'gone.parquet'} does not exist",
        )

    def test_a_directory_is_not_a_reference_file(self, base: Path) -> None:
        (base / "dir.parquet").mkdir()
        assert model_problems(base, reference={"path": "dir.parquet"}) == (
            f"models[0].reference.path: reference file {base / 'dir.parquet'} is not a file",
        )

    def test_an_unsupported_extension_is_reported(self, base: Path) -> None:
        (problem,) = model_problems(base, reference={"path": "ref.xlsx"})
        assert problem.startswith("models[0].reference.path: expected a file ending in .parquet")

    def test_an_unreadable_reference_is_a_problem_not_a_crash(self, base: Path) -> None:
        (base / "broken.parquet").write_bytes(b"garbage")
        (problem,) = model_problems(base, reference={"path": "broken.parquet"})
        assert problem.startswith(
            f"models[0].reference.path: cannot read {base / 'broken.parquet'}"
        )

    def test_without_check_reference_the_columns_are_not_read(self, base: Path) -> None:
        data = {"models": [model(features=[{"name": "absent", "type": "numerical"}])]}
        config = parse_config(data, base_dir=base, check_reference=False)
        assert config.models[0].features[0].name == "absent"

    def test_the_reference_is_required(self, base: Path) -> None:
        data = model()
        del data["reference"]
        assert problems({"models": [data]}, base) == (
            "models[0].reference: required key is missing",
        )


class TestFeatures:
    def test_features_are_required(self, base: Path) -> None:
        data = model()
        del data["features"]
        assert problems({"models": [data]}, base) == (
            "models[0].features: required key is missing",
        )

    def test_features_must_not_be_empty(self, base: Path) -> None:
        assert model_problems(base, features=[]) == (
            "models[0].features: expected a non-empty list, got an empty list",
        )

    def test_a_wrong_type_is_reported_with_what_was_expected(self, base: Path) -> None:
        features = [{"name": "car_value", "type": "numeric"}]
        assert model_problems(base, features=features) == (
            "models[0].features[0].type: expected 'numerical' or 'categorical', got 'numeric'",
        )

    def test_name_and_type_are_required(self, base: Path) -> None:
        assert model_problems(base, features=[{}]) == (
            "models[0].features[0].name: required key is missing",
            "models[0].features[0].type: required key is missing",
        )

    @pytest.mark.parametrize(
        ("kind", "statistic"),
        [("numerical", s) for s in ("ks", "psi", "wasserstein", "jensen_shannon")]
        + [("categorical", s) for s in ("jensen_shannon", "psi", "chi2")],
    )
    def test_a_statistic_that_fits_the_type_is_accepted(
        self, base: Path, kind: str, statistic: str
    ) -> None:
        features = [{"name": "car_value", "type": kind, "statistic": statistic}]
        assert parse_model(base, features=features).features[0].statistic.statistic == statistic

    @pytest.mark.parametrize(
        ("kind", "statistic", "expected"),
        [
            ("numerical", "chi2", "one of 'ks', 'psi', 'wasserstein', 'jensen_shannon'"),
            ("categorical", "ks", "one of 'jensen_shannon', 'psi', 'chi2'"),
            ("categorical", "wasserstein", "one of 'jensen_shannon', 'psi', 'chi2'"),
        ],
    )
    def test_a_statistic_that_does_not_fit_the_type_is_rejected(
        self, base: Path, kind: str, statistic: str, expected: str
    ) -> None:
        features = [{"name": "car_value", "type": kind, "statistic": statistic}]
        assert model_problems(base, features=features) == (
            (
                f"models[0].features[0].statistic: expected {expected} for a {kind} feature, "
                f"got {statistic!r}"
            ),
        )

    @pytest.mark.parametrize(
        ("statistic", "threshold"),
        [
            ("ks", 0.01),
            ("chi2", 0.999),
            ("psi", 0.25),
            ("psi", 3),
            ("wasserstein", 12.5),
            ("jensen_shannon", 1),
        ],
    )
    def test_a_threshold_in_range_is_accepted(
        self, base: Path, statistic: str, threshold: float
    ) -> None:
        kind = "categorical" if statistic == "chi2" else "numerical"
        features = [{"name": "f", "type": kind, "statistic": statistic, "threshold": threshold}]
        reference = pd.DataFrame({"f": [1.0]})
        reference.to_parquet(base / "f.parquet")
        loaded = parse_model(base, features=features, reference={"path": "f.parquet"})
        assert loaded.features[0].statistic == StatisticConfig(statistic, float(threshold))

    @pytest.mark.parametrize(
        ("statistic", "threshold", "expected"),
        [
            ("ks", 1, "'auto' or a number > 0 and < 1 (ks is a p-value)"),
            ("ks", 0, "'auto' or a number > 0 and < 1 (ks is a p-value)"),
            ("chi2", 1.5, "'auto' or a number > 0 and < 1 (chi2 is a p-value)"),
            ("psi", -0.1, "'auto' or a number > 0"),
            ("psi", "high", "'auto' or a number > 0"),
            ("psi", True, "'auto' or a number > 0"),
            ("psi", float("nan"), "'auto' or a number > 0"),
            ("jensen_shannon", 1.5, "'auto' or a number > 0 and <= 1"),
        ],
    )
    def test_a_threshold_out_of_range_is_rejected(
        self, base: Path, statistic: str, threshold: object, expected: str
    ) -> None:
        kind = "categorical" if statistic == "chi2" else "numerical"
        features = [
            {"name": "car_value", "type": kind, "statistic": statistic, "threshold": threshold}
        ]
        (problem,) = model_problems(base, features=features)
        assert problem.startswith(f"models[0].features[0].threshold: expected {expected}")

    def test_auto_is_a_threshold_of_none(self, base: Path) -> None:
        features = [{"name": "car_value", "type": "numerical", "threshold": "auto"}]
        assert parse_model(base, features=features).features[0].statistic.threshold is None

    def test_a_threshold_alone_overrides_the_default_statistics_threshold(self, base: Path) -> None:
        features = [{"name": "car_value", "type": "numerical", "threshold": 0.01}]
        assert parse_model(base, features=features).features[0].statistic == StatisticConfig(
            "ks", 0.01
        )

    def test_another_statistic_without_threshold_is_calibrated(self, base: Path) -> None:
        drift = {"numerical": {"statistic": "ks", "threshold": 0.05}}
        features = [{"name": "car_value", "type": "numerical", "statistic": "psi"}]
        loaded = parse_model(base, drift=drift, features=features)
        assert loaded.features[0].statistic == StatisticConfig("psi", None)

    def test_the_default_statistic_named_again_keeps_the_default_threshold(
        self, base: Path
    ) -> None:
        drift = {"numerical": {"statistic": "ks", "threshold": 0.05}}
        features = [{"name": "car_value", "type": "numerical", "statistic": "ks"}]
        loaded = parse_model(base, drift=drift, features=features)
        assert loaded.features[0].statistic == StatisticConfig("ks", 0.05)

    def test_feature_names_are_unique_within_a_model(self, base: Path) -> None:
        features = [{"name": "car_value", "type": "numerical"}] * 2
        assert model_problems(base, features=features) == (
            (
                "models[0].features[1].name: duplicate feature name 'car_value' "
                "(also models[0].features[0].name)"
            ),
        )

    def test_the_same_feature_name_in_two_models_is_fine(self, base: Path) -> None:
        config = parse_config({"models": [model(name="a"), model(name="b")]}, base_dir=base)
        assert [m.features[0].name for m in config.models] == ["car_value", "car_value"]

    @pytest.mark.parametrize(
        ("overrides", "role"),
        [
            ({"prediction": {"column": "car_value"}}, "the prediction column"),
            ({"label": {"column": "car_value", "task": "regression"}}, "the label column"),
            ({"id_column": "car_value"}, "the id_column"),
            ({"version_column": "car_value"}, "the version_column"),
            ({"timestamp_column": "car_value"}, "the timestamp_column"),
        ],
    )
    def test_a_feature_may_not_share_a_name_with_another_role(
        self, base: Path, overrides: Data, role: str
    ) -> None:
        assert model_problems(base, **overrides) == (
            f"models[0].features[0].name: 'car_value' is also {role}",
        )

    def test_two_roles_may_not_share_a_column(self, base: Path) -> None:
        assert model_problems(base, id_column="ts", timestamp_column="ts") == (
            "models[0].timestamp_column: 'ts' is also the id_column",
        )


class TestPrediction:
    def test_a_prediction_is_numerical_with_the_numerical_default_by_default(
        self, base: Path
    ) -> None:
        assert parse_model(base, prediction={"column": "y_pred_proba"}).prediction == (
            PredictionConfig("y_pred_proba", "numerical", StatisticConfig("ks", None))
        )

    def test_a_categorical_prediction_gets_the_categorical_default(self, base: Path) -> None:
        prediction = {"column": "salary_range", "type": "categorical"}
        features = [{"name": "car_value", "type": "numerical"}]
        loaded = parse_model(base, prediction=prediction, features=features)
        assert loaded.prediction == PredictionConfig(
            "salary_range", "categorical", StatisticConfig("jensen_shannon", None)
        )

    def test_a_prediction_may_override_its_statistic_and_threshold(self, base: Path) -> None:
        prediction = {"column": "y_pred_proba", "statistic": "psi", "threshold": 0.2}
        loaded = parse_model(base, prediction=prediction)
        assert loaded.prediction is not None
        assert loaded.prediction.statistic == StatisticConfig("psi", 0.2)

    def test_a_prediction_needs_a_column_and_a_known_type(self, base: Path) -> None:
        assert model_problems(base, prediction={"type": "text"}) == (
            "models[0].prediction.column: required key is missing",
            "models[0].prediction.type: expected 'numerical' or 'categorical', got 'text'",
        )

    def test_a_prediction_statistic_must_fit_its_type(self, base: Path) -> None:
        assert model_problems(base, prediction={"column": "y_pred_proba", "statistic": "chi2"}) == (
            (
                "models[0].prediction.statistic: expected one of 'ks', 'psi', 'wasserstein', "
                "'jensen_shannon' for a numerical prediction, got 'chi2'"
            ),
        )


class TestLabel:
    def test_a_label_gets_a_threshold_of_one_half_and_no_feedback_by_default(
        self, base: Path
    ) -> None:
        label = parse_model(base, label={"column": "repaid", "task": "classification"}).label
        assert label is not None
        assert (label.threshold, label.feedback) == (0.5, None)

    def test_column_and_task_are_required(self, base: Path) -> None:
        assert model_problems(base, label={}) == (
            "models[0].label.column: required key is missing",
            "models[0].label.task: required key is missing",
        )

    def test_the_task_is_classification_or_regression(self, base: Path) -> None:
        assert model_problems(base, label={"column": "y", "task": "ranking"}) == (
            "models[0].label.task: expected 'classification' or 'regression', got 'ranking'",
        )

    def test_the_threshold_must_be_a_number(self, base: Path) -> None:
        label = {"column": "y", "task": "classification", "threshold": "half"}
        assert model_problems(base, label=label) == (
            "models[0].label.threshold: expected a number, got 'half'",
        )

    def test_feedback_is_resolved_and_its_format_inferred(self, base: Path) -> None:
        label = {"column": "y", "task": "regression", "feedback": {"path": "fb/*.parquet"}}
        loaded = parse_model(base, label=label, id_column="request_id").label
        assert loaded is not None
        assert loaded.feedback is not None
        assert (loaded.feedback.path, loaded.feedback.format) == (
            str(base / "fb" / "*.parquet"),
            "parquet",
        )

    def test_feedback_requires_an_id_column(self, base: Path) -> None:
        label = {"column": "y", "task": "regression", "feedback": {"path": "fb/*.jsonl"}}
        (problem,) = model_problems(base, label=label)
        assert problem.startswith("models[0].label.feedback: requires id_column")

    def test_a_bad_feedback_glob_is_reported(self, base: Path) -> None:
        label = {"column": "y", "task": "regression", "feedback": {"path": "fb/[x.jsonl"}}
        (problem,) = model_problems(base, label=label, id_column="id")
        assert problem.startswith("models[0].label.feedback.path: bad glob 'fb/[x.jsonl'")


class TestWindow:
    def test_rows_are_read(self, base: Path) -> None:
        assert parse_model(base, window={"rows": 100}).window == WindowConfig(100, None)

    def test_an_empty_window_means_the_default(self, base: Path) -> None:
        assert parse_model(base, window={}).window == WindowConfig(5000, None)

    def test_a_duration_is_read_in_seconds(self, base: Path) -> None:
        loaded = parse_model(base, window={"duration": "1h30m"}, timestamp_column="ts")
        assert loaded.window == WindowConfig(None, 5400.0)

    def test_rows_and_duration_together_are_rejected(self, base: Path) -> None:
        window = {"rows": 10, "duration": "1h"}
        assert model_problems(base, window=window, timestamp_column="ts") == (
            "models[0].window: set either rows or duration, not both",
        )

    def test_a_duration_requires_a_timestamp_column(self, base: Path) -> None:
        assert model_problems(base, window={"duration": "1h"}) == (
            "models[0].window.duration: requires timestamp_column to be set on the model",
        )

    @pytest.mark.parametrize(("rows", "shown"), [(0, "0"), (True, "true"), (2.5, "2.5")])
    def test_rows_must_be_a_positive_integer(self, base: Path, rows: object, shown: str) -> None:
        assert model_problems(base, window={"rows": rows}) == (
            f"models[0].window.rows: expected an integer >= 1, got {shown}",
        )

    def test_a_zero_duration_is_rejected(self, base: Path) -> None:
        assert model_problems(base, window={"duration": "0s"}, timestamp_column="ts") == (
            "models[0].window.duration: expected a duration > 0, got '0s'",
        )

    def test_window_config_insists_on_exactly_one_bound(self) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            WindowConfig(rows=None, duration=None)
        with pytest.raises(ValueError, match="exactly one"):
            WindowConfig(rows=1, duration=1.0)


class TestUpdateInterval:
    @pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("1m", 60.0), ("1h30m", 5400.0)])
    def test_a_prometheus_duration_is_read_in_seconds(
        self, base: Path, text: str, seconds: float
    ) -> None:
        assert parse_model(base, update_interval=text).update_interval == seconds

    @pytest.mark.parametrize(
        ("value", "shown"), [(5, "5"), ("5 sec", "'5 sec'"), ("1.5s", "'1.5s'")]
    )
    def test_anything_else_is_rejected(self, base: Path, value: object, shown: str) -> None:
        assert model_problems(base, update_interval=value) == (
            (
                "models[0].update_interval: expected a Prometheus duration such as "
                f"500ms, 30s, 5m or 1h30m, got {shown}"
            ),
        )

    def test_zero_is_rejected(self, base: Path) -> None:
        assert model_problems(base, update_interval="0s") == (
            "models[0].update_interval: expected a duration > 0, got '0s'",
        )


class TestDrift:
    def test_every_drift_setting_is_read(self, base: Path) -> None:
        drift = {
            "numerical": {"statistic": "wasserstein", "threshold": 0.3},
            "categorical": {"statistic": "chi2"},
            "min_rows": 2,
            "dataset_share": 1,
            "bins": 4,
        }
        assert parse_model(base, drift=drift).drift == DriftConfig(
            numerical=StatisticConfig("wasserstein", 0.3),
            categorical=StatisticConfig("chi2", None),
            min_rows=2,
            dataset_share=1.0,
            bins=4,
        )

    def test_features_follow_the_models_drift_defaults(self, base: Path) -> None:
        drift = {"numerical": {"statistic": "psi", "threshold": 0.2}}
        assert parse_model(base, drift=drift).features[0].statistic == StatisticConfig("psi", 0.2)

    @pytest.mark.parametrize(
        ("drift", "problem"),
        [
            ({"min_rows": 0}, "models[0].drift.min_rows: expected an integer >= 1, got 0"),
            ({"bins": 1}, "models[0].drift.bins: expected an integer >= 2, got 1"),
            (
                {"dataset_share": 0},
                "models[0].drift.dataset_share: expected a number in (0, 1], got 0",
            ),
            (
                {"dataset_share": 1.5},
                "models[0].drift.dataset_share: expected a number in (0, 1], got 1.5",
            ),
            (
                {"categorical": {"statistic": "ks"}},
                (
                    "models[0].drift.categorical.statistic: expected one of "
                    "'jensen_shannon', 'psi', 'chi2' for categorical features, got 'ks'"
                ),
            ),
            (
                {"numerical": {"threshold": 2}},
                (
                    "models[0].drift.numerical.threshold: expected 'auto' or a number > 0 and < 1 "
                    "(ks is a p-value), got 2"
                ),
            ),
            (
                {"numerical": "ks"},
                (
                    "models[0].drift.numerical: expected a mapping with keys "
                    "statistic, threshold, got 'ks'"
                ),
            ),
        ],
    )
    def test_a_bad_drift_setting_is_reported(self, base: Path, drift: Data, problem: str) -> None:
        assert model_problems(base, drift=drift) == (problem,)


class TestLimits:
    def test_limits_and_fleet_buckets_are_read(self, base: Path) -> None:
        loaded = parse_model(base, max_categories=5, max_versions=1, fleet={"buckets": 2})
        assert (loaded.max_categories, loaded.max_versions, loaded.fleet) == (
            5,
            1,
            FleetConfig(buckets=2),
        )

    @pytest.mark.parametrize(
        ("overrides", "problem"),
        [
            ({"max_categories": 0}, "models[0].max_categories: expected an integer >= 1, got 0"),
            (
                {"max_versions": False},
                "models[0].max_versions: expected an integer >= 1, got false",
            ),
            ({"fleet": {"buckets": 1}}, "models[0].fleet.buckets: expected an integer >= 2, got 1"),
        ],
    )
    def test_limits_below_their_minimum_are_rejected(
        self, base: Path, overrides: Data, problem: str
    ) -> None:
        assert model_problems(base, **overrides) == (problem,)


class TestAlarm:
    def test_the_alarm_defaults_to_a_false_alarm_every_30_days_and_no_effect_floor(
        self, base: Path
    ) -> None:
        assert parse_model(base).alarm == AlarmConfig(false_alarm_every=30 * 86400.0,
                                                       min_effect=0.0)

    def test_the_alarm_settings_are_read_with_durations_in_seconds(self, base: Path) -> None:
        loaded = parse_model(base, alarm={"false_alarm_every": "1h30m", "min_effect": 0.1})
        assert loaded.alarm == AlarmConfig(false_alarm_every=5400.0, min_effect=0.1)

    @pytest.mark.parametrize(
        ("alarm", "problem"),
        [
            ({"false_alarm_every": "0s"},
             "models[0].alarm.false_alarm_every: expected a duration > 0, got '0s'"),
            ({"false_alarm_every": 30},
             "models[0].alarm.false_alarm_every: expected a Prometheus duration"),
            ({"min_effect": 1.5}, "models[0].alarm.min_effect: expected a number in [0, 1], "
             "got 1.5"),
            ({"min_effect": -0.1}, "models[0].alarm.min_effect: expected a number in [0, 1], "
             "got -0.1"),
            ({"every": "1d"}, "models[0].alarm.every: unknown key"),
        ],
    )  # fmt: skip
    def test_invalid_alarm_settings_are_refused_with_their_yaml_path(
        self, base: Path, alarm: Data, problem: str
    ) -> None:
        (found,) = model_problems(base, alarm=alarm)
        assert found.startswith(problem)


class TestSegments:
    def test_segments_are_off_unless_configured(self, base: Path) -> None:
        assert parse_model(base).segments is None

    def test_max_segments_defaults_to_10(self, base: Path) -> None:
        loaded = parse_model(base, segments={"column": "salary_range"})
        assert loaded.segments == SegmentsConfig("salary_range", 10)
        assert "salary_range" in loaded.columns

    @pytest.mark.parametrize(
        ("segments", "extra", "problem"),
        [
            ({"column": "country"}, {},
             "models[0].segments.column: column 'country' not in reference"),
            ({"column": "salary_range", "max_segments": 0}, {},
             "models[0].segments.max_segments: expected an integer >= 1"),
            ({"column": "car_value"}, {},
             "models[0].segments.column: 'car_value' is a numerical feature"),
            ({"column": "y_pred_proba"}, {"version_column": "y_pred_proba"},
             "models[0].segments.column: 'y_pred_proba' is also the version_column"),
            ({}, {}, "models[0].segments.column: required"),
        ],
    )  # fmt: skip
    def test_invalid_segments_are_refused_with_their_yaml_path(
        self, base: Path, segments: Data, extra: Data, problem: str
    ) -> None:
        (found,) = model_problems(base, segments=segments, **extra)
        assert found.startswith(problem), found


class TestModelColumns:
    def test_columns_lists_every_column_read_in_role_order(self, base: Path) -> None:
        loaded = parse_model(
            base,
            prediction={"column": "y_pred_proba"},
            label={"column": "repaid", "task": "classification"},
            id_column="request_id",
            version_column="model_version",
            timestamp_column="ts",
        )
        assert loaded.columns == (
            "car_value",
            "salary_range",
            "y_pred_proba",
            "repaid",
            "request_id",
            "model_version",
            "ts",
        )

    def test_columns_leaves_out_roles_that_are_not_configured(self, base: Path) -> None:
        assert parse_model(base, timestamp_column="ts").columns == (
            "car_value",
            "salary_range",
            "ts",
        )


class TestProblemOrder:
    def test_limits_are_checked_even_when_the_name_is_missing(self, base: Path) -> None:
        data = model(max_versions=0, fleet={"buckets": 1})
        del data["name"]
        assert problems({"models": [data]}, base) == (
            "models[0].name: required key is missing",
            "models[0].max_versions: expected an integer >= 1, got 0",
            "models[0].fleet.buckets: expected an integer >= 2, got 1",
        )

    def test_problems_are_listed_model_by_model_in_the_order_of_the_keys(
        self, base: Path
    ) -> None:
        first = model(name="a", window={"rows": 1, "duration": "1h"}, timestamp_column="ts",
                      max_versions=0, features=[{"name": "absent", "type": "numerical"}])
        second = model(name="a", logs={"path": "x.txt"})
        assert problems({"models": [first, second]}, base) == (
            f"models[0].features[0].name: column 'absent' not in reference {base / 'ref.parquet'}",
            "models[0].window: set either rows or duration, not both",
            "models[0].max_versions: expected an integer >= 1, got 0",
            "models[1].name: duplicate model name 'a' (also models[0].name)",
            (
                "models[1].logs.format: required when the path does not end in .jsonl, .ndjson "
                "or .parquet (got 'x.txt')"
            ),
        )


class TestSchemaDefaults:
    def test_the_dataclass_defaults_agree_with_the_schema(self, base: Path) -> None:
        label = {"column": "repaid", "task": "classification"}
        loaded = parse_model(base, label=label)
        assert loaded.drift == DriftConfig()
        assert loaded.fleet == FleetConfig()
        assert loaded.logs.max_line_bytes == LogsConfig("", "").max_line_bytes
        assert loaded.label == LabelConfig("repaid", "classification")


class TestReadmeReference:
    def test_the_readme_holds_the_reference_generated_from_the_schema(self) -> None:
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        generated = replace_between(readme, README_START, README_END, markdown_reference())
        assert readme == generated, "regenerate: python -m exporter.config --markdown README.md"

    def test_the_reference_has_a_row_for_every_key_with_its_default(self) -> None:
        rows = markdown_reference().splitlines()
        assert "| `window.rows` | integer >= 1 | `5000` | the last N records |" in rows
        assert any(row.startswith("| `label.feedback.path` | string | required |") for row in rows)
        top = {row.split("`")[1] for row in rows[2:]} - {
            row.split("`")[1] for row in rows[2:] if "." in row.split("`")[1]
        }
        assert top == {
            "name", "logs", "reference", "features", "prediction", "label", "id_column",
            "version_column", "timestamp_column", "window", "update_interval", "drift",
            "max_categories", "max_versions", "fleet", "alarm", "segments",
        }  # fmt: skip

    def test_the_command_rewrites_the_reference_between_the_markers(self, tmp_path: Path) -> None:
        doc = tmp_path / "doc.md"
        doc.write_text(f"# Title\n\n{README_START}\nold table\n{README_END}\n\nafter\n")
        subprocess.run([sys.executable, "-m", "exporter.config", "--markdown", str(doc)],
                       check=True, timeout=60)
        assert doc.read_text() == (
            f"# Title\n\n{README_START}\n{markdown_reference()}{README_END}\n\nafter\n"
        )

    def test_the_command_prints_the_reference_without_a_file(self) -> None:
        out = subprocess.run([sys.executable, "-m", "exporter.config", "--markdown"],
                             capture_output=True, text=True, check=True, timeout=60)
        assert out.stdout == markdown_reference()
