"""Tests for exporter.values: one value to a number or a category (SPEC 2)."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from exporter.values import INVALID, format_float, to_category, to_number


class TestToNumber:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (1, 1.0),
            (-5, -5.0),
            (1.5, 1.5),
            (1e-7, 1e-7),
            (0, 0.0),
            (10**30, 1e30),
            (np.float32(0.5), 0.5),
            (np.int64(7), 7.0),
            (Decimal("2.25"), 2.25),
        ],
    )
    def test_json_numbers_are_numbers(self, value: object, expected: float) -> None:
        assert to_number(value) == expected

    def test_negative_zero_stays_a_zero(self) -> None:
        number = to_number(-0.0)
        assert number == 0.0
        assert isinstance(number, float)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1.5", 1.5),
            ("-2", -2.0),
            ("+3", 3.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e5", 1e5),
            ("1E-07", 1e-7),
            ("-0.5e-3", -0.0005),
            ("00012", 12.0),
            ("123456789012345678901234567890", 1.2345678901234568e29),
        ],
    )
    def test_numeric_strings_are_numbers(self, text: str, expected: float) -> None:
        assert to_number(text) == expected

    @pytest.mark.parametrize(
        "text",
        ["", " ", "abc", "1.5 ", " 1.5", "1_000", "0x10", "1,5", "1e", "e5", ".", "-",
         "nan", "NaN", "inf", "-Infinity", "1e400", "١٢", "true", "[1]"],
    )
    def test_other_strings_are_invalid(self, text: str) -> None:
        assert to_number(text) is INVALID

    @pytest.mark.parametrize("value", [True, False, np.bool_(True)])
    def test_booleans_in_a_numerical_column_are_invalid(self, value: object) -> None:
        assert to_number(value) is INVALID

    @pytest.mark.parametrize("value", [[1], [], {"a": 1}, {}, b"1", (1,)])
    def test_nested_values_are_invalid(self, value: object) -> None:
        assert to_number(value) is INVALID

    def test_none_and_nan_are_missing(self) -> None:
        assert to_number(None) is None
        assert to_number(math.nan) is None
        assert to_number(np.float64("nan")) is None
        assert to_number(Decimal("NaN")) is None

    @pytest.mark.parametrize("value", [math.inf, -math.inf, np.float64("inf")])
    def test_infinities_are_invalid(self, value: float) -> None:
        assert to_number(value) is INVALID

    def test_an_int_beyond_the_float_range_is_invalid(self) -> None:
        assert to_number(10**400) is INVALID
        assert to_number(-(10**400)) is INVALID

    def test_a_big_int_within_the_float_range_is_a_number(self) -> None:
        assert to_number(2**1023) == 2.0**1023
        assert to_number(10**308) == 1e308

    def test_a_signalling_decimal_nan_is_invalid_not_an_error(self) -> None:
        assert to_number(Decimal("sNaN")) is INVALID


class TestToCategory:
    @pytest.mark.parametrize("value", [1, 1.0, "1", np.int64(1), np.float64(1.0), Decimal("1.0")])
    def test_one_as_int_float_and_string_is_one_category(self, value: object) -> None:
        assert to_category(value) == "1"

    @pytest.mark.parametrize("value", [True, np.bool_(True)])
    def test_booleans_become_lower_case_words(self, value: object) -> None:
        assert to_category(value) == "true"
        assert to_category(not value) == "false"

    def test_the_string_true_and_the_boolean_true_are_one_category(self) -> None:
        assert to_category("true") == to_category(True)

    def test_strings_are_kept_verbatim(self) -> None:
        assert to_category("True") == "True"
        assert to_category("1.0") == "1.0"
        assert to_category(" a ") == " a "
        assert to_category("") == ""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (1e-7, "0.0000001"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e16, "10000000000000000"),
            (1e23, "100000000000000000000000"),
            (123456.789e3, "123456789"),
        ],
    )
    def test_floats_use_the_shortest_round_trip_positional_form(
        self, value: float, expected: str
    ) -> None:
        assert to_category(value) == expected

    def test_negative_zero_is_the_category_zero(self) -> None:
        assert to_category(-0.0) == "0"
        assert to_category(0.0) == "0"
        assert to_category(0) == "0"

    def test_big_ints_keep_every_digit(self) -> None:
        assert to_category(123456789012345678901234567890) == "123456789012345678901234567890"

    def test_a_whole_float_and_the_same_int_are_one_category(self) -> None:
        assert to_category(1e23) == to_category(100000000000000000000000)

    def test_none_and_nan_are_missing(self) -> None:
        assert to_category(None) is None
        assert to_category(math.nan) is None
        assert to_category(np.float32("nan")) is None

    @pytest.mark.parametrize("value", [math.inf, -math.inf, [1, 2], {"a": 1}, [], b"x"])
    def test_infinities_and_nested_values_are_invalid(self, value: object) -> None:
        assert to_category(value) is INVALID


class TestFormatFloat:
    def test_whole_numbers_lose_their_fraction(self) -> None:
        assert format_float(3.0) == "3"
        assert format_float(-3.0) == "-3"

    def test_the_text_reads_back_as_the_same_float(self) -> None:
        for value in (1 / 3, 2.5e-300, 1.7976931348623157e308, 5e-324, -123.456):
            assert float(format_float(value)) == value


class TestMissingObjects:
    def test_it_agrees_with_pandas_isna_on_every_kind_of_parsed_value(self) -> None:
        import pandas as pd

        from exporter.values import INVALID, missing_objects

        values = np.array(["a", None, float("nan"), 1.5, INVALID, [1], {"a": 1}, True, "",
                           np.float64("nan"), 0], dtype=object)
        np.testing.assert_array_equal(missing_objects(values), pd.isna(values))
        floats = np.array([1.0, np.nan])
        np.testing.assert_array_equal(missing_objects(floats), [False, True])
