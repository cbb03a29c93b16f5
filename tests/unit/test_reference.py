"""The reference profile: computed once, equal to numpy on the raw columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exporter.config import parse_config
from exporter.parsing import Coded
from exporter.reference import OTHER, load_reference, profile_categorical, profile_numerical


def _model(tmp_path: Path, frame: pd.DataFrame, features: list[dict[str, str]],
           suffix: str = "parquet", **extra: object) -> object:
    ref = tmp_path / f"ref.{suffix}"
    if suffix == "parquet":
        frame.to_parquet(ref, index=False)
    elif suffix == "csv":
        frame.to_csv(ref, index=False)
    else:
        frame.to_json(ref, orient="records", lines=True)
    data = {"models": [{"name": "m", "logs": {"path": str(tmp_path / "*.jsonl")},
                        "reference": {"path": str(ref)}, "features": features, **extra}]}
    return parse_config(data, base_dir=tmp_path).models[0]


class TestNumericalProfile:
    """profile_numerical keeps what KS, Wasserstein, PSI and JS need."""

    def test_mean_stddev_and_missing_ratio_equal_numpy_on_the_usable_values(self) -> None:
        values = np.array([1.0, 2.0, np.nan, 4.0, 8.0])
        ref = profile_numerical("x", values, bins=4)
        usable = values[~np.isnan(values)]
        assert ref.mean == pytest.approx(np.mean(usable))
        assert ref.stddev == pytest.approx(np.std(usable, ddof=1))
        assert ref.missing_ratio == pytest.approx(0.2)
        assert np.array_equal(ref.sample.values, np.sort(usable))

    def test_bin_edges_are_numpy_quantiles_without_duplicates(self) -> None:
        values = np.array([0.0] * 50 + list(range(50)), dtype=float)
        ref = profile_numerical("x", values, bins=10)
        expected = np.unique(np.quantile(values, np.arange(1, 10) / 10))
        assert np.array_equal(ref.edges, expected)
        assert ref.bin_proportions.sum() == pytest.approx(1.0)

    def test_the_wasserstein_norm_is_at_least_one_thousandth(self) -> None:
        ref = profile_numerical("x", np.full(10, 3.0), bins=10)
        assert ref.wasserstein_norm == 0.001


class TestCategoricalProfile:
    """Categories are ordered by reference frequency and capped for labels."""

    def test_categories_are_ordered_by_frequency_then_name(self) -> None:
        values = np.array(["b", "a", "b", "c", "a", "b", None], dtype=object)
        ref = profile_categorical("c", values, max_categories=20)
        assert ref.categories == ("b", "a", "c")
        assert list(ref.counts) == [3, 2, 1, 0]
        assert ref.missing_ratio == pytest.approx(1 / 7)

    def test_encoding_marks_unseen_values_and_missing_values_apart(self) -> None:
        ref = profile_categorical("c", np.array(["x", "y"], dtype=object), max_categories=20)
        codes = ref.encode(np.array(["y", "zzz", None, "x"], dtype=object))
        assert list(codes) == [1, 2, -1, 0]

    @pytest.mark.parametrize("distinct", [3, 5000])  # a dict below 4,096 values, pandas above
    def test_encoding_with_the_batchs_dictionary_codes_equals_encoding_the_values(
            self, distinct: int) -> None:
        ref = profile_categorical("c", np.array([f"v{i}" for i in range(0, distinct, 2)],
                                                dtype=object), max_categories=20)
        dictionary = tuple(f"v{i}" for i in range(distinct))
        codes = np.random.default_rng(0).integers(-1, distinct, 2000).astype(np.int32)
        coded = Coded(codes, dictionary)
        assert ref.encode(coded.values(), coded).tolist() == ref.encode(coded.values()).tolist()

    def test_categories_beyond_the_cap_are_summed_as_other(self) -> None:
        values = np.array(list("aaaabbbccd"), dtype=object)
        ref = profile_categorical("c", values, max_categories=2)
        ratios = dict(ref.label_ratios(ref.counts))
        assert ratios == pytest.approx({"a": 0.4, "b": 0.3, OTHER: 0.3})


class TestLoadReference:
    """load_reference reads every supported format into the same profile."""

    @pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
    def test_every_reference_format_gives_the_same_profile(self, tmp_path: Path,
                                                           suffix: str) -> None:
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({"x": rng.normal(size=200), "flag": rng.integers(0, 2, 200) == 1,
                              "n": rng.integers(0, 3, 200)})
        model = _model(tmp_path, frame, [{"name": "x", "type": "numerical"},
                                         {"name": "flag", "type": "categorical"},
                                         {"name": "n", "type": "categorical"}], suffix)
        profile = load_reference(model)  # type: ignore[arg-type]
        assert profile.rows == 200
        x = profile.columns["x"]
        assert x.mean == pytest.approx(frame["x"].mean())  # type: ignore[union-attr]
        flag = profile.columns["flag"]
        assert set(flag.categories) == {"true", "false"}  # type: ignore[union-attr]
        assert set(profile.columns["n"].categories) <= {"0", "1", "2"}  # type: ignore[union-attr]


class TestParquetReference:
    """A Parquet reference is read as a Parquet log is: only the columns used, Arrow types."""

    def test_a_parquet_reference_is_profiled_with_the_parquet_logs_rules(
            self, tmp_path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from exporter.parsing import CATEGORY, NUMBER, ColumnSpec, parse_parquet
        from exporter.reference import CategoricalReference, NumericalReference

        table = pa.table({
            "x": pa.array([1.5, None, 3.0, 2.0, float("inf")], pa.float64()),
            "n": pa.array([1, None, 3, 3, 2], pa.int64()),  # with nulls: still "1", not "1.0"
            "flag": pa.array([True, False, None, True, True]),
            "f32": pa.array([0.1, 0.2, 0.1, None, 0.1], pa.float32()),
            "city": pa.array(["b", "a", None, "b", "c"]).dictionary_encode(),
            "text_num": pa.array(["1.5", "x", None, "2", "3"]),
            "unused": pa.array(["u"] * 5),
        })
        ref = tmp_path / "ref.parquet"
        pq.write_table(table, ref)
        features = [{"name": "x", "type": "numerical"}, {"name": "n", "type": "categorical"},
                    {"name": "flag", "type": "categorical"},
                    {"name": "f32", "type": "categorical"},
                    {"name": "city", "type": "categorical"},
                    {"name": "text_num", "type": "numerical"}]
        data = {"models": [{"name": "m", "logs": {"path": str(tmp_path / "*.jsonl")},
                            "reference": {"path": str(ref)}, "features": features}]}
        model = parse_config(data, base_dir=tmp_path).models[0]
        profile = load_reference(model)
        specs = [ColumnSpec(f["name"], NUMBER if f["type"] == "numerical" else CATEGORY)
                 for f in features]
        as_log = parse_parquet(str(ref), specs)
        for spec in specs:
            column = profile.columns[spec.name]
            if spec.kind == NUMBER:
                assert isinstance(column, NumericalReference)
                values = as_log.numbers[spec.name]
                np.testing.assert_array_equal(column.sample.values,
                                              np.sort(values[~np.isnan(values)]))
            else:
                assert isinstance(column, CategoricalReference)
                expected = profile_categorical(spec.name, as_log.categories[spec.name], 20)
                assert column.categories == expected.categories
                assert list(column.counts) == list(expected.counts)
        n_reference = profile.columns["n"]
        assert isinstance(n_reference, CategoricalReference)
        assert n_reference.categories == ("3", "1", "2")

    def test_only_the_monitored_columns_are_read(self, tmp_path: Path) -> None:
        from exporter.tables import read_parquet_columns

        frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": [3, 4]})
        frame.to_parquet(tmp_path / "r.parquet")  # with an unnamed index column
        table = read_parquet_columns(tmp_path / "r.parquet", ["a", "c", "absent"])
        assert table.column_names == ["a", "c"]

    def test_an_unreadable_parquet_reference_is_a_reference_error(self, tmp_path: Path) -> None:
        from exporter.errors import ReferenceDataError
        from exporter.tables import read_parquet_columns

        (tmp_path / "r.parquet").write_bytes(b"PAR1 not really")
        with pytest.raises(ReferenceDataError, match=r"cannot read .*r\.parquet"):
            read_parquet_columns(tmp_path / "r.parquet", ["a"])
