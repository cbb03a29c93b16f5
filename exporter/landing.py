"""The HTML landing page at ``/`` (SPEC 5): per model its windows, alarms and every monitored
column with its score and a chart of the reference's and the window's bin proportions.

The page only lays out what the snapshots and the reference profile hold; it computes no
statistic. It is self-contained: one inline style sheet and inline SVG, nothing fetched from
any host, no script (the exporter often runs air-gapped, and column names and categories come
from user data: every one is escaped, and the Content-Security-Policy forbids scripts anyway).
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from exporter import __version__
from exporter.reference import CategoricalReference, ColumnReference, NumericalReference
from exporter.snapshot import ColumnSnapshot
from exporter.state import ModelState, VersionState
from exporter.stats import registry

REFRESH_SECONDS = 30  # the page reloads itself: an open tab follows the drift
MAX_CHART_CATEGORIES = 20  # category bars per chart (top reference categories), then "other"
MAX_CHART_BINS = 40  # numerical bars per chart; more bins are merged in neighbouring groups
NOT_COMPUTED = "not computed yet"
PREDICTION_ALARM_NAME = "__prediction__"  # the prediction's name in the alarm (SPEC 6.9)

_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212529;
background:#fff;margin:0 auto;max-width:1280px;padding:8px 12px}
h1{font-size:1.35em;margin:.2em 0}
h2{font-size:1.2em;margin:.6em 0 .2em;overflow-wrap:anywhere}
h3{font-size:1.05em;margin:.5em 0 .2em;overflow-wrap:anywhere}
p{margin:.2em 0}
a{color:#1864ab}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.2em 1em}
section.model{border-top:2px solid #dee2e6;margin-top:.8em}
.facts{display:flex;flex-wrap:wrap;gap:.1em 1.2em;margin:.2em 0 .5em}
.facts b{font-weight:600}
.muted{color:#6c757d}
.alarm{font-weight:600;padding:0 .35em;border-radius:3px;background:#ebfbee;color:#2b8a3e}
.alarm.raised{background:#ffe3e3;color:#c92a2a}
.alarm.off{background:#f1f3f5;color:#495057}
.legend{font-size:.85em;color:#495057}
.key{display:inline-block;width:.8em;height:.8em;margin:0 .25em;vertical-align:-.05em}
.key.ref{background:#adb5bd}.key.win{background:#1c7ed6}.key.hot{background:#e8590c}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:10px;
align-items:start}
.card{border:1px solid #dee2e6;border-radius:6px;padding:6px 8px 4px;min-width:0}
.card.drift{border-color:#e8590c;box-shadow:inset 4px 0 #e8590c;padding-left:12px}
.name{font-weight:600;overflow-wrap:anywhere}
.role{font-size:.8em;color:#6c757d;margin-left:.4em}
.score{font-size:.85em;color:#495057}
.state{font-weight:600}
.drift .state{color:#c92a2a}
.tag{font-size:.75em;font-weight:600;color:#c92a2a;border:1px solid #c92a2a;border-radius:3px;
padding:0 .3em;margin-left:.4em}
svg.chart{display:block;width:100%;height:auto;margin-top:4px}
svg.chart text{font-size:9px;fill:#495057}
svg.chart text.agg{font-style:italic}
svg.chart .ref{fill:#adb5bd}
svg.chart .win{fill:#1c7ed6}
.drift svg.chart .win{fill:#e8590c}
svg.chart .axis{stroke:#ced4da;stroke-width:1}
""".strip()

# The one inline style sheet is allowed by its hash, everything else (scripts, images, fonts,
# frames, other style sheets, form targets) by nothing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _e(text: str) -> str:
    """Text or attribute value from anywhere (names and categories are user data)."""
    return html.escape(text, quote=True)


@dataclass(frozen=True)
class Bar:
    """One bin of a chart: its label, its tooltip and the two proportions (window None when
    the window's are not computed yet)."""

    label: str
    title: str
    reference: float
    window: float | None
    aggregate: bool = False  # "other" or "unseen": not a bin of its own name
    low: float | None = None  # a numerical bin's lower edge (None: from -inf)


@dataclass(frozen=True)
class _Column:
    """One monitored column of a window as the page shows it."""

    name: str
    role: str  # "feature" or "prediction"
    reference: ColumnReference | None
    snapshot: ColumnSnapshot | None
    in_alarm: bool

    @property
    def drifting(self) -> bool:
        """Drifts now, or takes part in the raised alarm."""
        return self.in_alarm or bool(self.snapshot is not None and self.snapshot.detected)


def _alarm_of(version: VersionState, prediction: str | None) -> str:
    """The window's drift alarm: "RAISED (columns)", "down" or "off (reference too small)"."""
    alarm = version.alarm
    if alarm is None:
        return "down"
    if not alarm.scales:
        return "off (reference too small)"
    if not alarm.raised:
        return "down"
    columns = (f"the prediction ({prediction})" if c == PREDICTION_ALARM_NAME else c
               for c in alarm.columns)
    return f"RAISED ({', '.join(columns)})"


def landing_page(states: Sequence[ModelState]) -> str:
    """The HTML landing page: version, models, windows, alarms, every column and its chart."""
    sections = "\n".join(_model(state) for state in states) or "<p>No models configured.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>drift-exporter</title>
<style>{_STYLE}</style>
</head>
<body>
<header><h1>drift-exporter</h1><span class="muted">Version {_e(__version__)}</span>
<span><a href="/metrics">Metrics</a> &middot; <a href="/-/healthy">Health</a> &middot;
<a href="/-/ready">Readiness</a></span></header>
<p class="legend">Charts: share of each bin in the<span class="key ref"></span>reference and \
the<span class="key win"></span>window (<span class="key hot"></span>a drifting column's), \
"reference \u2192 window" per category; a bar's tooltip names its bin.
<span class="muted">This page reloads every {REFRESH_SECONDS} s.</span></p>
{sections}
</body></html>
"""


def _model(state: ModelState) -> str:
    head = f'<section class="model"><h2>{_e(state.name)}</h2>'
    if not state.versions:
        return head + f"<p>Window: {NOT_COMPUTED} (no record of any version yet).</p></section>"
    blocks = [_window(state, version) for version in state.versions]
    return head + "\n".join(blocks) + "</section>"


def _window(state: ModelState, version: VersionState) -> str:
    snap = version.snapshot
    columns = _columns(state, version)
    drifting = [c for c in columns if c.snapshot is not None and c.snapshot.detected]
    names = ", ".join(c.name if c.role == "feature" else f"the prediction ({c.name})"
                      for c in drifting)
    alarm = _alarm_of(version, state.prediction_column)
    alarm_class = "raised" if alarm.startswith("RAISED") else "off" if alarm.startswith(
        "off") else ""
    if snap is None:
        window = NOT_COMPUTED
    else:
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snap.computed_at))
        window = f"{snap.window_rows} rows <span class=\"muted\">(computed {at})</span>"
    parts = [f"Version {_e(version.name)}"] if state.versioned else []
    if version.segment:
        parts.append(f"Segment {_e(version.segment)}")
    title = f"<h3>{' &middot; '.join(parts)}</h3>" if parts else ""
    cards = "\n".join(_card(c) for c in sorted(columns, key=lambda c: not c.drifting))
    return f"""{title}<div class="facts"><span><b>Window:</b> {window}</span>
<span><b>Drift alarm:</b> <span class="alarm {alarm_class}">{_e(alarm)}</span></span>
<span><b>Drifting now:</b> {_e(names) if names else "none"}</span></div>
<div class="cards">
{cards}
</div>"""


def _columns(state: ModelState, version: VersionState) -> list[_Column]:
    """Features in config order, then the prediction; each with its snapshot when computed."""
    snap = version.snapshot
    alarm = version.alarm
    alarmed = set(alarm.columns) if alarm is not None and alarm.raised else set()
    computed = {c.name: c for c in snap.features} if snap is not None else {}
    reference = state.profile.for_segment(version.segment).columns  # a segment: its slice
    columns = [_Column(name, "feature", reference.get(name), computed.get(name),
                       name in alarmed) for name in state.feature_names]
    if state.prediction_column is not None:
        columns.append(_Column(state.prediction_column, "prediction",
                               reference.get(state.prediction_column),
                               snap.prediction if snap is not None else None,
                               PREDICTION_ALARM_NAME in alarmed))
    return columns


def _card(column: _Column) -> str:
    snap = column.snapshot
    if snap is None or snap.detected is None or snap.score is None:
        usable = "" if snap is None else f" ({snap.usable} usable values in the window)"
        verdict = f'<span class="state">{NOT_COMPUTED}</span>{_e(usable)}'
    else:
        state = "drifting" if snap.detected else "no drift"
        verdict = f'<span class="state">{state}</span>: {_e(_score_text(snap))}'
    tag = '<span class="tag">in alarm</span>' if column.in_alarm else ""
    bars = chart_bars(column.reference, snap.bins if snap is not None else ())
    classes = "card drift" if column.drifting else "card"
    kind = "" if column.reference is None else (
        "numerical" if isinstance(column.reference, NumericalReference) else "categorical")
    return (f'<div class="{classes}"><div><span class="name">{_e(column.name)}</span>'
            f'<span class="role">{column.role} &middot; {kind}</span>{tag}</div>'
            f'<div class="score">{verdict}</div>\n{chart_svg(column.name, bars, kind)}</div>')


def _score_text(snap: ColumnSnapshot) -> str:
    """The score and which side of the threshold is drift (p-values drift below theirs)."""
    p_value = snap.statistic in registry.REGISTRY and registry.get(snap.statistic).p_value
    score = f"{snap.statistic} {'p-value ' if p_value else ''}{_number(snap.score)}"
    if snap.threshold is None:
        return score
    limit = _number(snap.threshold)
    side = f"below {limit}" if p_value else f"at {limit} or above"
    return f"{score}, drift {side}"


def chart_bars(reference: ColumnReference | None, window: Sequence[float]) -> list[Bar]:
    """The bars of one column's chart: the SPEC 6.5 bins, the window's proportions in the
    reference's bin order (empty: not computed yet)."""
    if isinstance(reference, NumericalReference):
        return _numerical_bars(reference, window)
    if isinstance(reference, CategoricalReference):
        return _categorical_bars(reference, window)
    return []


def _usable_window(reference: Sequence[float], window: Sequence[float]) -> Sequence[float] | None:
    return window if len(window) == len(reference) and len(window) > 0 else None


def _numerical_bars(ref: NumericalReference, window: Sequence[float]) -> list[Bar]:
    reference = [float(p) for p in ref.bin_proportions]
    ours = _usable_window(reference, window)
    edges = [float(e) for e in ref.edges]
    count = len(reference)
    group = max(1, math.ceil(count / MAX_CHART_BINS))  # merge neighbours past MAX_CHART_BINS
    bars = []
    for start in range(0, count, group):
        stop = min(start + group, count)
        low = edges[start - 1] if start > 0 else None
        high = edges[stop - 1] if stop - 1 < len(edges) else None
        label = _interval(low, high, 3)
        title = _interval(low, high, 6)
        bars.append(Bar(label, title, sum(reference[start:stop]),
                        None if ours is None else sum(ours[start:stop]), low=low))
    return bars


def _interval(low: float | None, high: float | None, digits: int) -> str:
    if low is None and high is None:
        return "all values"
    if low is None:
        return f"\u2264 {_number(high, digits)}"
    if high is None:
        return f"> {_number(low, digits)}"
    return f"({_number(low, digits)}, {_number(high, digits)}]"


def _categorical_bars(ref: CategoricalReference, window: Sequence[float]) -> list[Bar]:
    reference = [float(p) for p in ref.bin_proportions]  # categories, then the unseen bin
    ours = _usable_window(reference, window)
    shown = min(ref.exposed, MAX_CHART_CATEGORIES, len(ref.categories))
    bars = [Bar(_category(c), f"category {c!r}", reference[i],
                None if ours is None else ours[i]) for i, c in enumerate(ref.categories[:shown])]
    rest = len(ref.categories) - shown
    if rest:
        end = len(ref.categories)
        bars.append(Bar(f"other ({rest})", f"{rest} less frequent reference categories",
                        sum(reference[shown:end]), None if ours is None else sum(ours[shown:end]),
                        aggregate=True))
    if ours is not None and ours[-1] > 0:
        bars.append(Bar("unseen", "values never seen in the reference", reference[-1], ours[-1],
                        aggregate=True))
    return bars


def _category(name: str) -> str:
    return "(empty)" if name == "" else name if len(name) <= 13 else name[:12] + "\u2026"


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}g}"
    return text.replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def chart_svg(column: str, bars: Sequence[Bar], kind: str) -> str:
    """An inline SVG of the bars: vertical bins for numerical, one row per category."""
    label = f"Bin proportions of {column}: reference and window"
    if not bars:
        return (f'<svg class="chart" viewBox="0 0 300 20" role="img" aria-label="{_e(label)}">'
                '<text x="2" y="13">no reference profile</text></svg>')
    if kind == "categorical":
        body, height = _rows(bars)
    else:
        body, height = _histogram(bars)
    note = "" if any(b.window is not None for b in bars) else (
        f'<text x="298" y="9" text-anchor="end">window: {NOT_COMPUTED}</text>')
    return (f'<svg class="chart" viewBox="0 0 300 {height}" role="img" '
            f'aria-label="{_e(label)}">{body}{note}</svg>')


def _finite(share: float | None) -> float:
    return share if share is not None and math.isfinite(share) and share > 0 else 0.0


def _top(bars: Sequence[Bar]) -> float:
    return max([_finite(b.reference) for b in bars] + [_finite(b.window) for b in bars] + [1e-9])


def _tooltip(bar: Bar) -> str:
    window = NOT_COMPUTED if bar.window is None else _percent(_finite(bar.window))
    return _e(f"{bar.title}: reference {_percent(_finite(bar.reference))}, window {window}")


def _histogram(bars: Sequence[Bar]) -> tuple[str, int]:
    """Numerical bins left to right; bin edges below, the tallest bar's share at the top."""
    left, right, top, bottom = 2.0, 298.0, 14.0, 92.0
    top_share = _top(bars)
    step = (right - left) / len(bars)
    width = step * 0.42
    parts = [f'<text x="{left}" y="9">{_percent(top_share)}</text>',
             f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>']
    for i, bar in enumerate(bars):
        x = left + i * step + step * 0.08
        parts.append(f"<g><title>{_tooltip(bar)}</title>")
        for cls, share, dx in (("ref", bar.reference, 0.0), ("win", bar.window, width)):
            h = (bottom - top) * _finite(share) / top_share
            if share is not None:
                parts.append(f'<rect class="{cls}" x="{x + dx:.1f}" y="{bottom - h:.1f}" '
                             f'width="{width:.1f}" height="{h:.1f}"/>')
        parts.append("</g>")
    edge_every = max(1, math.ceil((len(bars) - 1) / 5))  # at most ~5 edge labels fit
    for i in range(1, len(bars), edge_every):
        parts.append(f'<text x="{left + i * step:.1f}" y="{bottom + 11}" '
                     f'text-anchor="middle">{_number(bars[i].low)}</text>')
    return "".join(parts), int(bottom + 14)


def _rows(bars: Sequence[Bar]) -> tuple[str, int]:
    """Categories top to bottom, most frequent in the reference first; name at the left."""
    row, left, right = 16.0, 86.0, 226.0  # names at the left, "ref% -> window%" at the right
    top_share = _top(bars)
    parts = []
    for i, bar in enumerate(bars):
        y = 2 + i * row
        cls = ' class="agg"' if bar.aggregate else ""
        parts.append(f"<g><title>{_tooltip(bar)}</title>"
                     f'<text x="{left - 4}" y="{y + 10:.1f}" text-anchor="end"{cls}>'
                     f"{_e(bar.label)}</text>")
        for cls_name, share, dy in (("ref", bar.reference, 1.0), ("win", bar.window, 7.0)):
            if share is None:
                continue
            w = (right - left) * _finite(share) / top_share
            parts.append(f'<rect class="{cls_name}" x="{left}" y="{y + dy:.1f}" '
                         f'width="{w:.1f}" height="6"/>')
        shares = _percent(_finite(bar.reference))
        if bar.window is not None:
            shares = f"{shares} \u2192 {_percent(_finite(bar.window))}"
        parts.append(f'<text x="298" y="{y + 10:.1f}" text-anchor="end">{shares}</text></g>')
    parts.append(f'<line class="axis" x1="{left}" y1="1" x2="{left}" '
                 f'y2="{2 + len(bars) * row:.1f}"/>')
    return "".join(parts), int(4 + len(bars) * row)
