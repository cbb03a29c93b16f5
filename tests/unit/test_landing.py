"""exporter/landing.py: what the page at / shows, in which order, and that user data (model,
column and category names) never becomes markup nor makes the page fetch anything."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re

import numpy as np
import pytest

from exporter import __version__
from exporter.alarm import AlarmState
from exporter.counters import CounterValues
from exporter.landing import (
    CONTENT_SECURITY_POLICY,
    MAX_CHART_BINS,
    MAX_CHART_CATEGORIES,
    NOT_COMPUTED,
    REFRESH_SECONDS,
    chart_bars,
    landing_page,
)
from exporter.reference import (
    ColumnReference,
    ReferenceProfile,
    profile_categorical,
    profile_numerical,
)
from exporter.snapshot import ColumnSnapshot, ModelSnapshot
from exporter.state import ModelState, VersionState

SCRIPT = "<script>alert('x')</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
NUMBERS = np.arange(1.0, 101.0)


def _column(name: str, detected: bool | None, bins: tuple[float, ...] = (),
            kind: str = "numerical") -> ColumnSnapshot:
    if detected is None:
        return ColumnSnapshot(name, kind, "ks", usable=42, bins=bins)
    return ColumnSnapshot(name, kind, "ks", usable=250, score=0.0001 if detected else 0.5,
                          threshold=0.001, detected=detected, bins=bins or (0.5, 0.5))


def _state(name: str, features: tuple[ColumnSnapshot, ...] | None,
           prediction: ColumnSnapshot | None = None, *, names: tuple[str, ...] = (),
           references: dict[str, ColumnReference] | None = None) -> ModelState:
    names = names or tuple(f.name for f in features or ())
    columns: dict[str, ColumnReference] = {n: profile_numerical(n, NUMBERS, 2) for n in names}
    if prediction is not None:
        columns[prediction.name] = profile_numerical(prediction.name, NUMBERS, 2)
    columns.update(references or {})
    profile = ReferenceProfile(name, 100, columns)
    snapshot = None if features is None else ModelSnapshot(
        name, 250, features, prediction, None, None, computed_at=0.0, duration_seconds=0.0)
    counters = CounterValues(0, {}, {}, {}, {}, 0, None)
    return ModelState(name, profile, names, None if prediction is None else prediction.name,
                      (VersionState("", snapshot),), counters)


def _alarm(raised: bool, columns: tuple[str, ...] = (), scales: tuple[int, ...] = (100,),
           ) -> AlarmState:
    return AlarmState(raised, int(raised), columns, None, None, scales, 0)


def _names(page: str) -> list[str]:
    """Column names in the order of their cards."""
    return re.findall(r'<span class="name">(.*?)</span>', page)


def _charts(page: str) -> int:
    return page.count('<svg class="chart"')


class TestEscaping:
    """Names and categories come from user data: shown as text, never as markup."""

    def test_model_feature_and_category_names_are_escaped(self) -> None:
        categories = np.array([SCRIPT, 'say "hi"', "it's", "a&b"] * 5, dtype=object)
        hostile = profile_categorical('c"<i>', categories, 20)
        state = _state(f"m&{SCRIPT}", (_column(SCRIPT, True), _column('a"b', False)),
                       names=(SCRIPT, 'a"b', 'c"<i>'), references={'c"<i>': hostile})
        page = landing_page([state])
        assert "<script" not in page
        assert "<i>" not in page
        assert f"m&amp;{ESCAPED_SCRIPT}" in page
        assert _names(page) == [ESCAPED_SCRIPT, "a&quot;b", "c&quot;&lt;i&gt;"]
        assert "say &quot;hi&quot;" in page
        assert "it&#x27;s" in page
        assert "a&amp;b" in page
        assert f"<title>category &quot;{ESCAPED_SCRIPT}&quot;" in page, "the tooltip too"

    def test_nothing_on_the_page_points_to_another_host(self) -> None:
        categories = np.array(['<img src="http://203.0.113.7/x.png">', "b"] * 5, dtype=object)
        reference = profile_categorical("c", categories, 20)
        state = _state("m", (_column("http://203.0.113.7/x", True),),
                       names=("http://203.0.113.7/x", "c"), references={"c": reference})
        page = landing_page([state])
        targets = re.findall(r'\s(?:src|href|xlink:href|action)\s*=\s*"([^"]*)"', page)
        assert targets == ["/metrics", "/-/healthy", "/-/ready"]
        assert not re.search(r"<(?:script|img|link|iframe|object|embed|image)\b", page)
        assert "@import" not in page
        assert "url(" not in page

    def test_the_policy_allows_the_inline_style_sheet_and_nothing_else(self) -> None:
        style = re.search(r"<style>(.*?)</style>", landing_page([]), re.S)
        assert style is not None
        digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
        assert CONTENT_SECURITY_POLICY.startswith("default-src 'none'; ")
        assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
        assert "script-src" not in CONTENT_SECURITY_POLICY


class TestColumns:
    """Every monitored column gets a card: its score, threshold and chart."""

    def test_each_feature_and_the_prediction_has_a_chart(self) -> None:
        page = landing_page([_state("m", (_column("x", False), _column("y", None)),
                                    prediction=_column("p", False))])
        assert _charts(page) == 3
        assert _names(page) == ["x", "y", "p"]
        assert "prediction &middot; numerical" in page

    def test_drifting_columns_come_first_in_config_order(self) -> None:
        page = landing_page([_state("m", (_column("a", False), _column("b", True),
                                          _column("c", None), _column("d", True)),
                                    prediction=_column("p", True))])
        assert _names(page) == ["b", "d", "p", "a", "c"]
        assert "<b>Drifting now:</b> b, d, the prediction (p)" in page

    def test_a_column_in_the_raised_alarm_comes_first_and_says_so(self) -> None:
        state = _state("m", (_column("a", False), _column("b", False)),
                       prediction=_column("p", False))
        state = dataclasses.replace(state, versions=(VersionState(
            "", state.snapshot, _alarm(raised=True, columns=("b", "__prediction__"))),))
        page = landing_page([state])
        assert _names(page) == ["b", "p", "a"]
        assert page.count('<span class="tag">in alarm</span>') == 2
        assert '<span class="alarm raised">RAISED (b, the prediction (p))</span>' in page

    def test_the_score_and_the_side_of_the_threshold_that_drifts_are_shown(self) -> None:
        psi = dataclasses.replace(_column("x", True), statistic="psi", score=0.31, threshold=0.2)
        page = landing_page([_state("m", (psi, _column("y", False)))])
        assert "drifting</span>: psi 0.31, drift at 0.2 or above" in page
        assert "no drift</span>: ks p-value 0.5, drift below 0.001" in page

    def test_a_model_not_computed_yet_says_so_and_charts_the_reference_alone(self) -> None:
        page = landing_page([_state("m", None, names=("x",))])
        assert f"<b>Window:</b> {NOT_COMPUTED}" in page
        assert f'<span class="state">{NOT_COMPUTED}</span>' in page
        assert f"window: {NOT_COMPUTED}" in page
        assert _charts(page) == 1
        assert 'class="ref"' in page
        assert 'class="win"' not in page
        assert "<b>Drifting now:</b> none" in page

    def test_a_column_below_min_rows_says_not_computed_yet_with_its_usable_values(self) -> None:
        page = landing_page([_state("m", (_column("x", None),))])
        assert f'{NOT_COMPUTED}</span> (42 usable values in the window)' in page
        assert "<b>Window:</b> 250 rows" in page

    def test_a_versioned_model_shows_each_window_and_its_own_alarm(self) -> None:
        base = _state("m", (_column("x", False),))
        state = dataclasses.replace(base, versioned=True, versions=(
            VersionState("v1", base.snapshot, _alarm(raised=False)),
            VersionState("v<2>", None, _alarm(raised=True, columns=("x",))),
            VersionState("v3", None, _alarm(raised=False, scales=()))))
        page = landing_page([state])
        assert "<h3>Version v1</h3>" in page
        assert "<h3>Version v&lt;2&gt;</h3>" in page
        assert '<span class="alarm raised">RAISED (x)</span>' in page
        assert '<span class="alarm off">off (reference too small)</span>' in page
        assert _charts(page) == 3


class TestCharts:
    """The bars are the SPEC 6.5 bins of the reference, with the window's shares beside."""

    def test_numerical_bins_are_labelled_by_their_edges(self) -> None:
        reference = profile_numerical("x", NUMBERS, 4)  # edges 25.75, 50.5, 75.25
        bars = chart_bars(reference, (0.1, 0.2, 0.3, 0.4))
        assert [b.label for b in bars] == ["\u2264 25.8", "(25.8, 50.5]", "(50.5, 75.2]",
                                           "> 75.2"]
        assert [b.reference for b in bars] == [0.25] * 4
        assert [b.window for b in bars] == [0.1, 0.2, 0.3, 0.4]
        page = landing_page([_state("m", (_column("x", False, (0.1, 0.2, 0.3, 0.4)),),
                                    references={"x": reference})])
        assert "<title>(25.75, 50.5]: reference 25.0%, window 20.0%</title>" in page
        assert ">25.8</text>" in page, "an edge under the axis"

    def test_many_numerical_bins_are_merged_into_neighbouring_groups(self) -> None:
        reference = profile_numerical("x", np.arange(1000.0), 100)
        window = tuple([0.01] * len(reference.bin_proportions))
        bars = chart_bars(reference, window)
        assert len(bars) <= MAX_CHART_BINS
        assert sum(b.reference for b in bars) == sum(reference.bin_proportions)
        assert sum(b.window or 0.0 for b in bars) == sum(window)
        assert bars[0].label.startswith("\u2264")
        assert bars[-1].label.startswith(">")

    def test_categories_are_capped_with_the_rest_as_other_and_unseen_shown_when_seen(
            self) -> None:
        values = np.array([f"c{i:02d}" for i in range(30) for _ in range(30 - i)], dtype=object)
        reference = profile_categorical("c", values, 100)
        window = tuple([0.0] * 30 + [0.5])
        bars = chart_bars(reference, window)
        assert len(bars) == MAX_CHART_CATEGORIES + 2
        assert bars[0].label == "c00"
        assert bars[MAX_CHART_CATEGORIES].label == "other (10)"
        assert bars[-1].label == "unseen"
        assert bars[-1].window == 0.5
        few = chart_bars(profile_categorical("c", values, 5), tuple([1 / 30] * 30 + [0.0]))
        assert [b.label for b in few] == ["c00", "c01", "c02", "c03", "c04", "other (25)"]
        assert few[-1].window == pytest.approx(25 / 30)

    def test_a_window_in_another_bin_layout_is_not_drawn(self) -> None:
        bars = chart_bars(profile_numerical("x", NUMBERS, 4), (0.5, 0.5))
        assert all(b.window is None for b in bars)


class TestPage:
    """The page as a whole."""

    def test_it_refreshes_itself_fits_a_phone_and_shows_the_version_and_links(self) -> None:
        page = landing_page([])
        assert f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' in page
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
        assert f"Version {__version__}" in page
        assert '<a href="/metrics">Metrics</a>' in page
        assert "No models configured." in page

    def test_non_finite_scores_are_written_out(self) -> None:
        odd = dataclasses.replace(_column("x", True), statistic="psi", score=float("inf"))
        assert "psi inf, drift at 0.001 or above" in landing_page([_state("m", (odd,))])
