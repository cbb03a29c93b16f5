"""Tests for exporter.durations: Prometheus duration syntax."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.durations import format_duration, parse_duration


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("500ms", 0.5),
            ("30s", 30.0),
            ("5m", 300.0),
            ("1h", 3600.0),
            ("1d", 86400.0),
            ("1w", 604800.0),
            ("1y", 365 * 86400.0),
            ("1h30m", 5400.0),
            ("1m5ms", 60.005),
            ("2d3h4m5s6ms", 2 * 86400 + 3 * 3600 + 4 * 60 + 5.006),
            ("0", 0.0),
            ("0s", 0.0),
            ("90m", 5400.0),
        ],
    )
    def test_a_valid_duration_is_read_as_seconds(self, text: str, seconds: float) -> None:
        assert parse_duration(text) == pytest.approx(seconds)

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "5",
            "1.5h",
            "5 min",
            " 5s",
            "5s ",
            "-5s",
            "30m1h",
            "1h1h",
            "5S",
            "s",
            "1hour",
            "1ms5s",
        ],
    )
    def test_an_invalid_duration_is_a_value_error_that_shows_the_text_and_the_syntax(
        self, text: str
    ) -> None:
        with pytest.raises(ValueError, match="invalid duration") as info:
            parse_duration(text)
        assert repr(text) in str(info.value)
        assert "500ms" in str(info.value)

    def test_a_number_instead_of_a_string_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="expected a string"):
            parse_duration(5)  # type: ignore[arg-type]


class TestFormatDuration:
    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (0, "0s"),
            (0.5, "500ms"),
            (30, "30s"),
            (300, "5m"),
            (5400, "1h30m"),
            (86400, "1d"),
            (7 * 86400, "1w"),
            (90 * 86400, "90d"),
            (365 * 86400, "1y"),
            (60.005, "1m5ms"),
        ],
    )
    def test_seconds_are_spelled_like_prometheus(self, seconds: float, text: str) -> None:
        assert format_duration(seconds) == text

    def test_fractions_of_a_millisecond_are_rounded(self) -> None:
        assert format_duration(1.0004) == "1s"

    @pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
    def test_a_negative_or_non_finite_duration_cannot_be_formatted(self, seconds: float) -> None:
        with pytest.raises(ValueError, match="cannot format"):
            format_duration(seconds)

    @given(st.integers(min_value=0, max_value=10**13))
    def test_formatting_then_parsing_gives_back_whole_milliseconds(self, milliseconds: int) -> None:
        assert parse_duration(format_duration(milliseconds / 1000)) == milliseconds / 1000
