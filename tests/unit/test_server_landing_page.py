"""exporter/server.py ``landing_page``: what it lists, and that names never become markup."""

from __future__ import annotations

import dataclasses

import numpy as np

from exporter import __version__
from exporter.alarm import AlarmState
from exporter.counters import CounterValues
from exporter.reference import ReferenceProfile, profile_numerical
from exporter.server import landing_page
from exporter.snapshot import ColumnSnapshot, ModelSnapshot
from exporter.state import ModelState, VersionState

SCRIPT = "<script>alert('x')</script>"


def _state(name: str, features: tuple[ColumnSnapshot, ...] | None,
           prediction: ColumnSnapshot | None = None) -> ModelState:
    names = tuple(f.name for f in features or ())
    profile = ReferenceProfile(name, 3, {n: profile_numerical(n, np.array([1.0, 2.0, 3.0]), 2)
                                         for n in names})
    snapshot = None if features is None else ModelSnapshot(
        name, 250, features, prediction, None, None, computed_at=0.0, duration_seconds=0.0)
    counters = CounterValues(0, {}, {}, {}, {}, 0, None)
    return ModelState(name, profile, names, None, (VersionState("", snapshot),), counters)


def _alarm(raised: bool, columns: tuple[str, ...] = (), scales: tuple[int, ...] = (100,),
           ) -> AlarmState:
    return AlarmState(raised, int(raised), columns, None, None, scales, 0)


def _column(name: str, detected: bool | None) -> ColumnSnapshot:
    return ColumnSnapshot(name, "numerical", "ks", usable=250, detected=detected)


class TestLandingPage:
    """The HTML page at /."""

    def test_model_and_feature_names_are_escaped(self) -> None:
        page = landing_page([_state(f"m&{SCRIPT}", (_column(SCRIPT, True),
                                                    _column('a"b', True)))])
        assert "<script>" not in page
        assert "m&amp;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;, a&quot;b" in page

    def test_a_drifting_prediction_is_listed_after_the_features(self) -> None:
        page = landing_page([_state("m", (_column("x", True), _column("y", False)),
                                    prediction=_column("p<1>", True))])
        assert "<td>x, the prediction (p&lt;1&gt;)</td>" in page

    def test_a_model_not_computed_yet_says_so_and_lists_no_drift(self) -> None:
        page = landing_page([_state("m", None)])
        assert "<tr><td>m</td><td>not computed yet</td><td>down</td><td>none</td></tr>" in page

    def test_a_computed_model_shows_its_window_rows(self) -> None:
        page = landing_page([_state("m", (_column("x", None),))])
        assert "<tr><td>m</td><td>250 rows</td><td>down</td><td>none</td></tr>" in page

    def test_a_raised_alarm_shows_its_columns_and_each_version_its_own_alarm(self) -> None:
        state = dataclasses.replace(_state("m", None), versioned=True, versions=(
            VersionState("v1", None, _alarm(raised=False)),
            VersionState("v<2>", None, _alarm(raised=True, columns=("x", "__prediction__"))),
            VersionState("v3", None, _alarm(raised=False, scales=()))))
        page = landing_page([state])
        assert ("<td>v1: down; v&lt;2&gt;: RAISED (x, __prediction__); "
                "v3: off (reference too small)</td>") in page

    def test_no_models_and_the_version_are_shown(self) -> None:
        page = landing_page([])
        assert '<td colspan="4">no models</td>' in page
        assert f"Version {__version__}" in page
