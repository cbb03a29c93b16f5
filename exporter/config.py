"""The YAML configuration: frozen dataclasses, `load_config` and `parse_config`.

Every key, its type, default and meaning is a row of the schema tables below (`MODEL` and the
sections under it); `exporter.schema` validates a document against them and the README's
configuration reference is rendered from them (`python -m exporter.config --markdown`). Adding a
key is a table row plus a field of the section's dataclass, which `Node.build` fills by name.

Validation collects every problem and raises one ConfigError listing them all, model by model,
each prefixed by its YAML path (`models[0].features[2].type: expected 'numerical' or
'categorical', got 'numeric'`). YAML syntax errors and duplicate keys in one mapping are
ConfigErrors too, with line and column. Unknown keys are errors at every level; a key set to
`null` counts as absent; booleans are not numbers and numbers are not strings (quote a column
named `2024` or `no`); `1e-3` is read as a number. Relative paths resolve against the config
file's directory (`base_dir`; the working directory when `parse_config` gets none), with no `~`
or `$VAR` expansion.

The rules that relate several keys are plain code here:

- Model names are unique. A log or feedback `format` defaults from the path's extension (`.jsonl`,
  `.ndjson` -> jsonl, also followed by `.gz`; `.parquet` -> parquet) and is required otherwise.
  The reference file must exist; with `check_reference`, `exporter.checking` reads its column
  names and every feature and prediction column it lacks is a problem (the label column may be
  missing: reference quality metrics are then not computed), as is an unreadable reference.
- A `statistic` must fit the type, and a `threshold` is `auto` or a number > 0 within the
  statistic's range: both as each statistic declares them (`exporter.stats.registry`; e.g.
  < 1 for the p-values ks and chi2, <= 1 for jensen_shannon, a base-2 distance).
  Resolution: without `statistic` a feature (or the prediction) uses its type's `drift` default,
  and a `threshold` alone overrides that default's threshold. With a `statistic` that differs
  from the default, the threshold is the given one, else `auto` (the default's number belongs to
  another scale); with the default's own statistic it inherits the default's threshold.
- Every column plays one role: a feature may not also be the prediction, label, id, version or
  timestamp column, and those five are distinct from each other; feature names are unique.
- `window` takes `rows` or `duration`, not both; `duration` requires `timestamp_column`.
  `label.feedback` requires `id_column` (records are joined by id).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from exporter.alarm import DEFAULT_FALSE_ALARM_EVERY, AlarmConfig
from exporter.errors import ConfigError
from exporter.schema import (
    Choice,
    CrossField,
    Duration,
    Integer,
    Key,
    ListOf,
    Mapping,
    Node,
    Number,
    Text,
    alternatives,
    is_number,
    markdown_table,
    replace_between,
    report,
    show,
    validate,
)
from exporter.stats import registry
from exporter.stats.statistic import KINDS, ThresholdRange
from exporter.tables import TABLE_EXTENSIONS, table_format

if TYPE_CHECKING:
    from collections.abc import Hashable, Sequence

FEATURE_TYPES: tuple[str, ...] = KINDS
TASKS: tuple[str, ...] = ("classification", "regression")
LOG_FORMATS: tuple[str, ...] = ("jsonl", "parquet")

_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]+")
_LOG_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_ROLE_KEYS = ("id_column", "version_column", "timestamp_column")

README_START = "<!-- config-reference:start -->"
README_END = "<!-- config-reference:end -->"


@dataclass(frozen=True)
class StatisticConfig:
    """A drift statistic and its threshold; a threshold of None means `auto` (calibrated)."""

    statistic: str
    threshold: float | None


DEFAULT_NUMERICAL = StatisticConfig("ks", None)
DEFAULT_CATEGORICAL = StatisticConfig("jensen_shannon", None)
_DEFAULTS = {"numerical": DEFAULT_NUMERICAL, "categorical": DEFAULT_CATEGORICAL}


def statistics_for(kind: str | None) -> tuple[str, ...]:
    """The statistics a column of this kind accepts (any kind: all), its default first."""
    default = _DEFAULTS.get(kind or "")
    return registry.names(kind, first=default.statistic if default else None)


@dataclass(frozen=True)
class FeatureConfig:
    """One monitored input column; `statistic` is already resolved against the drift defaults."""

    name: str
    type: str
    statistic: StatisticConfig


@dataclass(frozen=True)
class LogsConfig:
    """Where a model's prediction logs are: an absolute glob and its file format."""

    path: str
    format: str
    max_line_bytes: int = 1048576


@dataclass(frozen=True)
class PredictionConfig:
    """The model output column, monitored like a feature of its type."""

    column: str
    type: str
    statistic: StatisticConfig


@dataclass(frozen=True)
class FeedbackConfig:
    """A second glob of files carrying late labels, joined to the window by id."""

    path: str
    format: str


@dataclass(frozen=True)
class LabelConfig:
    """The ground-truth column and how to score predictions against it."""

    column: str
    task: str
    threshold: float = 0.5
    feedback: FeedbackConfig | None = None
    estimate: str = "cbpe"  # performance estimated without labels (SPEC 6.10)
    estimate_given: bool = False  # `estimate` set in the YAML: a warning when it cannot apply


@dataclass(frozen=True)
class WindowConfig:
    """The sliding window: the last `rows` records or those newer than `duration` seconds."""

    rows: int | None
    duration: float | None

    def __post_init__(self) -> None:
        if (self.rows is None) == (self.duration is None):
            msg = "WindowConfig needs exactly one of rows and duration"
            raise ValueError(msg)


@dataclass(frozen=True)
class DriftConfig:
    """Per-model drift settings: statistic defaults per type and dataset-level rules."""

    numerical: StatisticConfig = DEFAULT_NUMERICAL
    categorical: StatisticConfig = DEFAULT_CATEGORICAL
    min_rows: int = 100
    dataset_share: float = 0.5
    bins: int = 10


@dataclass(frozen=True)
class FleetConfig:
    """Settings of the mergeable histograms used for aggregation across replicas."""

    buckets: int = 20


@dataclass(frozen=True)
class SegmentsConfig:
    """Per-segment windows (SPEC 6.11): the segment column and how many values get their own."""

    column: str
    max_segments: int = 10


@dataclass(frozen=True)
class ModelConfig:
    """Everything the exporter needs to monitor one model."""

    name: str
    logs: LogsConfig
    reference_path: str
    features: tuple[FeatureConfig, ...]
    prediction: PredictionConfig | None
    label: LabelConfig | None
    id_column: str | None
    version_column: str | None
    timestamp_column: str | None
    window: WindowConfig
    update_interval: float
    drift: DriftConfig
    max_categories: int
    max_versions: int
    fleet: FleetConfig
    alarm: AlarmConfig = dataclasses.field(default_factory=AlarmConfig)  # alarm.py's own
    segments: SegmentsConfig | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every log column the model reads: features, prediction, label, id, version, timestamp."""
        names = [feature.name for feature in self.features]
        names.append(self.prediction.column if self.prediction else "")
        names.append(self.label.column if self.label else "")
        names.extend(c or "" for c in (self.id_column, self.version_column, self.timestamp_column))
        names.append(self.segments.column if self.segments else "")
        return tuple(name for name in dict.fromkeys(names) if name)


@dataclass(frozen=True)
class Config:
    """The whole configuration: the models and where it was read from."""

    models: tuple[ModelConfig, ...]
    source: str




# --- the schema ------------------------------------------------------------------------------


def _name_problem(name: str) -> str | None:
    if _NAME_RE.fullmatch(name):
        return None
    return f"expected a name matching [A-Za-z0-9_.:-]+, got {name!r}"


def _glob_problem(pattern: str) -> str | None:
    """Say what is wrong with a glob, or return None when it is well formed."""
    if any("**" in part and part != "**" for part in pattern.split("/")):
        reason = "'**' must be a whole path component, as in logs/**/*.jsonl"
        return f"bad glob {pattern!r}: {reason}"
    index = 0
    while index < len(pattern):
        if pattern[index] == "]":
            return f"bad glob {pattern!r}: unbalanced ']' at position {index}"
        if pattern[index] == "[":
            start = index + 1
            start += pattern.startswith("!", start)
            start += pattern.startswith("]", start)  # a leading ']' is a member of the class
            close = pattern.find("]", start)
            if close < 0 or "/" in pattern[index:close]:
                return f"bad glob {pattern!r}: unbalanced '[' at position {index}"
            index = close
        index += 1
    return None


def _table_problem(path: str) -> str | None:
    if table_format(path) is not None:
        return None
    return f"expected a file ending in {', '.join(TABLE_EXTENSIONS)}, got {path!r}"


def _code(options: tuple[str, ...]) -> str:
    return ", ".join(f"`{option}`" for option in options)


TEXT = Text()
DURATION = Duration()
_STATISTIC = CrossField("; ".join(f"{kind}: {_code(statistics_for(kind))}" for kind in KINDS))


def _threshold_text() -> str:
    """The threshold's reference text: the bounds, each with the statistics it applies to."""
    bounds: dict[str, list[str]] = {}
    for statistic in registry.REGISTRY.values():
        if statistic.threshold_range.bound:
            bounds.setdefault(statistic.threshold_range.bound, []).append(statistic.name)
    return "; ".join(["`auto` or a number > 0",
                      *(f"{bound} for {_code(tuple(n))}" for bound, n in bounds.items())])


_THRESHOLD = CrossField(_threshold_text())
_FROM_EXTENSION = "from the extension"
_GLOB = "glob, relative to the config file's directory"

LOGS = (
    Key("path", TEXT, f"{_GLOB}: the prediction logs", required=True, check=_glob_problem),
    Key("format", Choice(LOG_FORMATS), "needed when the extension is not `.jsonl`, `.ndjson` or "
        "`.parquet`", shown_default=_FROM_EXTENSION),
    Key("max_line_bytes", Integer(1024), "longer JSONL lines are rejected", default=1048576),
)  # fmt: skip
REFERENCE = (
    Key("path", TEXT, f"{_code(TABLE_EXTENSIONS)} file, relative to the config file's directory; "
        "must hold every feature and the prediction column", required=True, check=_table_problem),
)  # fmt: skip
FEATURE = (
    Key("name", TEXT, "the log and reference column", required=True),
    Key("type", Choice(FEATURE_TYPES), "how its drift is measured", required=True),
    Key("statistic", _STATISTIC, "overrides the type's default", shown_default="`drift.<type>`"),
    Key("threshold", _THRESHOLD, "overrides the statistic's threshold", shown_default="the "
        "default's with its statistic, else `auto`"),
)  # fmt: skip
PREDICTION = (
    Key("column", TEXT, "the model's output", required=True),
    Key("type", Choice(FEATURE_TYPES), "monitored like a feature of this type",
        default="numerical"),
    *FEATURE[2:],
)  # fmt: skip
FEEDBACK = (
    Key("path", TEXT, f"{_GLOB}: files of late labels, joined by `id_column` (required then)",
        required=True, check=_glob_problem),
    Key("format", Choice(LOG_FORMATS), "as for `logs.format`", shown_default=_FROM_EXTENSION),
)  # fmt: skip
LABEL = (
    Key("column", TEXT, "the ground truth; may be absent from the reference", required=True),
    Key("task", Choice(TASKS), "which quality metrics are computed", required=True),
    Key("threshold", Number("number"), "a classification score at or above it predicts the "
        "positive class", default=0.5),
    Key("feedback", Mapping(FEEDBACK), "labels that arrive later, in other files (see "
        "[Ground truth](#ground-truth-model-quality-and-versions))"),
    Key("estimate", Choice(("cbpe", "none")), "performance estimated without labels (SPEC "
        "6.10): applies to classification with a numerical score and a reference carrying the "
        "label; `check` says why when it does not", default="cbpe"),
)  # fmt: skip
WINDOW = (
    Key("rows", Integer(1), "the last N records", default=5000),
    Key("duration", DURATION, "instead of `rows`: the records newer than now - duration; needs "
        "`timestamp_column`"),
)  # fmt: skip
DRIFT_NUMERICAL = (
    Key("statistic", CrossField(_code(statistics_for("numerical"))), "for numerical features",
        default=DEFAULT_NUMERICAL.statistic),
    Key("threshold", _THRESHOLD, "see [Thresholds](#thresholds-auto)", default="auto"),
)  # fmt: skip
DRIFT_CATEGORICAL = (
    Key("statistic", CrossField(_code(statistics_for("categorical"))), "for categorical "
        "features", default=DEFAULT_CATEGORICAL.statistic),
    DRIFT_NUMERICAL[1],
)  # fmt: skip
DRIFT = (
    Key("numerical", Mapping(DRIFT_NUMERICAL), "default statistic of numerical columns",
        default={}),
    Key("categorical", Mapping(DRIFT_CATEGORICAL), "default statistic of categorical columns",
        default={}),
    Key("min_rows", Integer(1), "fewer usable values: the feature's drift gauges are absent",
        default=100),
    Key("dataset_share", Number("number in (0, 1]", lambda x: 0 < x <= 1), "dataset drift when "
        "this share of features drift", default=0.5),
    Key("bins", Integer(2), "reference-quantile bins for PSI and Jensen-Shannon on numerical data",
        default=10),
)  # fmt: skip
FLEET = (
    Key("buckets", Integer(2), "buckets of the fleet-view histograms (the reference's 1/B "
        "quantiles; see [docs/fleet.md](docs/fleet.md))", default=20),
)  # fmt: skip
ALARM = (
    Key("false_alarm_every", DURATION, "mean time between false alarms on data like the "
        "reference (see [docs/alarms.md](docs/alarms.md))",
        default=f"{DEFAULT_FALSE_ALARM_EVERY / 86400:g}d"),
    Key("min_effect", Number("number in [0, 1]", lambda x: 0 <= x <= 1), "the alarm stays down "
        "while every changed column's effect size (KS statistic, or Jensen-Shannon distance for "
        "categorical columns) is below it", default=0),
)  # fmt: skip
SEGMENTS = (
    Key("column", TEXT, "the log and reference column whose values are the segments",
        required=True),
    Key("max_segments", Integer(1), "the most frequent values of the column in the reference "
        "that get their own window; the rest share `__other__`", default=10),
)  # fmt: skip
MODEL = (
    Key("name", TEXT, "the `model` label, `[A-Za-z0-9_.:-]+`, unique", required=True,
        check=_name_problem),
    Key("logs", Mapping(LOGS), "the model's prediction logs", required=True),
    Key("reference", Mapping(REFERENCE), "the data drift is measured against", required=True),
    Key("features", ListOf(FEATURE), "the monitored input columns", required=True),
    Key("prediction", Mapping(PREDICTION), "the model's output column"),
    Key("label", Mapping(LABEL), "ground truth: model quality metrics"),
    Key("id_column", TEXT, "joins feedback labels to records"),
    Key("version_column", TEXT, "one window per model version"),
    Key("timestamp_column", TEXT, "RFC 3339 text or epoch seconds; needed for `window.duration`"),
    Key("window", Mapping(WINDOW), "`rows` or `duration`, not both", default={}),
    Key("update_interval", DURATION, "statistics are recomputed at most this often, and only when "
        "new records came (a duration window is also recomputed as it ages)", default="5s"),
    Key("drift", Mapping(DRIFT), "drift statistics and dataset-level rules", default={}),
    Key("max_categories", Integer(1), "category label values per feature; the rest are summed as "
        "`__other__`", default=20),
    Key("max_versions", Integer(1), "with `version_column`: versions kept, each with its own "
        "window", default=3),
    Key("fleet", Mapping(FLEET, into=FleetConfig), "the fleet view", default={}),
    Key("alarm", Mapping(ALARM, into=AlarmConfig), "the drift alarm, calibrated in time (SPEC "
        "6.9)", default={}),
    Key("segments", Mapping(SEGMENTS, into=SegmentsConfig), "a window per segment too, with a "
        "`segment` label (see [docs/segments.md](docs/segments.md))"),
)  # fmt: skip
ROOT = (Key("models", ListOf(MODEL), "one entry per monitored model", required=True),)


def markdown_reference() -> str:
    """The README's configuration reference: a table of every key of a model entry."""
    return markdown_table(MODEL)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file; raise ConfigError listing every problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        msg = f"{file}: cannot read the config file: {reason}"
        raise ConfigError(msg) from exc
    config = parse_config(_load_yaml(text), base_dir=file.absolute().parent)
    return dataclasses.replace(config, source=str(path))


def parse_config(
    data: object, *, base_dir: Path | None = None, check_reference: bool = True
) -> Config:
    """Validate already-loaded YAML data; raise ConfigError listing every problem."""
    base = Path(base_dir or Path.cwd()).absolute()
    problems: list[str] = []
    if data is None:
        report(problems, "", "the configuration is empty; expected a mapping with a 'models' list")
        raise ConfigError(problems)
    root = validate(ROOT, data, "", problems)
    nodes: list[Node] = (root["models"] or []) if root is not None else []
    models = [m for node in nodes if (m := _model(node, base, check_reference)) is not None]
    _check_model_names(nodes)
    if problems:
        raise ConfigError(sorted(problems, key=_problem_order))
    return Config(models=tuple(models), source="<memory>")


def _problem_order(problem: str) -> tuple[int, int]:
    """Sort key listing problems model by model, in the order of the schema's keys (stable)."""
    match = _PROBLEM_RE.match(problem)
    if match is None:
        return -1, -1
    key = match.group(2)
    return int(match.group(1)), _MODEL_KEY_ORDER.get(key, -1) if key else -1


_PROBLEM_RE = re.compile(r"models\[(\d+)\](?:\.(\w+))?")
_MODEL_KEY_ORDER = {key.name: index for index, key in enumerate(MODEL)}


# --- the rules relating several keys ---------------------------------------------------------


def _check_model_names(nodes: list[Node]) -> None:
    first: dict[str, str] = {}
    for node in nodes:
        name = node["name"]
        if name is None:
            continue
        if name in first:
            node.report("name", f"duplicate model name {name!r} (also {first[name]})")
        else:
            first[name] = node.at("name")


def _model(m: Node, base_dir: Path, check_reference: bool) -> ModelConfig | None:
    drift = _drift(m["drift"])
    features = _features(m["features"] or [], drift)
    prediction = _prediction(m["prediction"], drift)
    label = _label(m["label"], m, base_dir)
    _check_roles(m)
    logs = _logs(m["logs"], base_dir)
    reference_path = _reference(m["reference"], base_dir)
    if reference_path is not None and check_reference:
        from exporter.checking import reference_column_problems  # the reference's I/O lives there

        columns = _feature_names(m)
        if m["prediction"] is not None and m["prediction"]["column"] is not None:
            columns.append((m.at("prediction.column"), m["prediction"]["column"]))
        if m["segments"] is not None and m["segments"]["column"] is not None:
            columns.append((m["segments"].at("column"), m["segments"]["column"]))
        m.problems += reference_column_problems(reference_path, columns, m.at("reference.path"))
    window = _window(m)
    if m["name"] is None or logs is None or reference_path is None:
        return None
    return m.build(
        ModelConfig,
        logs=logs,
        reference_path=reference_path,
        features=tuple(features),
        prediction=prediction,
        label=label,
        window=window,
        drift=drift,
    )


def _window(m: Node) -> WindowConfig:
    window = m["window"]
    if window.given("rows") and window.given("duration"):
        window.report(None, "set either rows or duration, not both")
    if window.given("duration") and not m.given("timestamp_column"):
        window.report("duration", "requires timestamp_column to be set on the model")
    if window["duration"] is not None:
        return WindowConfig(rows=None, duration=window["duration"])
    return WindowConfig(rows=window["rows"], duration=None)


def _drift(drift: Node) -> DriftConfig:
    numerical = _statistic(drift["numerical"], "numerical", DEFAULT_NUMERICAL, "numerical features")
    categorical = _statistic(
        drift["categorical"], "categorical", DEFAULT_CATEGORICAL, "categorical features"
    )
    return drift.build(
        DriftConfig,
        numerical=numerical or DEFAULT_NUMERICAL,
        categorical=categorical or DEFAULT_CATEGORICAL,
    )


def _default_for(drift: DriftConfig, kind: str | None) -> StatisticConfig:
    return drift.categorical if kind == "categorical" else drift.numerical


def _statistic(
    node: Node, kind: str | None, default: StatisticConfig, what: str
) -> StatisticConfig | None:
    """Resolve a section's `statistic` and `threshold` against the default for its type."""
    options = statistics_for(kind)
    statistic = node["statistic"]
    if statistic is not None and statistic not in options:
        context = f" for {what}" if kind else ""
        expected = f"expected {alternatives(options)}{context}"
        node.report("statistic", f"{expected}, got {show(statistic)}")
        _threshold(node, None)  # the statistic is wrong; still check the threshold's type
        return None
    statistic = statistic or default.statistic
    if node["threshold"] is not None:
        threshold = _threshold(node, statistic)
    elif statistic == default.statistic:
        threshold = default.threshold
    else:
        threshold = None
    return StatisticConfig(statistic=statistic, threshold=threshold)


def _threshold(node: Node, statistic: str | None) -> float | None:
    """Return the threshold in force for `statistic`: None for `auto` (and after a mistake)."""
    value = node["threshold"]
    if value is None or value == "auto":
        return None
    # A statistic that is unknown (already reported) accepts any positive number.
    declared = registry.REGISTRY.get(statistic or "")
    allowed = declared.threshold_range if declared else ThresholdRange()
    if not is_number(value) or not allowed.accepts(float(value)):
        node.report("threshold", f"expected {allowed.expected()}, got {show(value)}")
        return None
    return float(value)


def _features(nodes: list[Node], drift: DriftConfig) -> list[FeatureConfig]:
    features: list[FeatureConfig] = []
    for node in nodes:
        kind = node["type"]
        statistic = _statistic(node, kind, _default_for(drift, kind), f"a {kind} feature")
        if node["name"] is not None and kind is not None and statistic is not None:
            features.append(node.build(FeatureConfig, statistic=statistic))
    return features


def _prediction(node: Node | None, drift: DriftConfig) -> PredictionConfig | None:
    if node is None:
        return None
    kind = None if "type" in node.invalid else node["type"]
    statistic = _statistic(node, kind, _default_for(drift, kind), f"a {kind} prediction")
    if node["column"] is None or kind is None or statistic is None:
        return None
    return node.build(PredictionConfig, statistic=statistic)


def _label(node: Node | None, m: Node, base_dir: Path) -> LabelConfig | None:
    if node is None:
        return None
    feedback = None
    if node["feedback"] is not None:
        path, fmt = _glob(node["feedback"], base_dir)
        feedback = FeedbackConfig(path, fmt) if path is not None and fmt is not None else None
        if not m.given("id_column"):
            node.report(
                "feedback", "requires id_column to be set on the model (records are joined by id)"
            )
    if node["column"] is None or node["task"] is None:
        return None
    return node.build(LabelConfig, feedback=feedback, estimate_given=node.given("estimate"))


def _feature_names(m: Node) -> list[tuple[str, str]]:
    """(YAML path, name) of every feature with a valid name, even if the rest of it is invalid."""
    return [(node.at("name"), node["name"]) for node in m["features"] or [] if node["name"]]


def _role_columns(m: Node) -> list[tuple[str, str, str]]:
    """(YAML path, column, role) of the prediction, label, id, version and timestamp columns."""
    roles: list[tuple[str, str, str]] = []
    for key in ("prediction", "label"):
        section = m[key]
        if section is not None and section["column"] is not None:
            roles.append((section.at("column"), section["column"], f"the {key} column"))
    roles += [(m.at(key), m[key], f"the {key}") for key in _ROLE_KEYS if m[key] is not None]
    return roles


def _check_roles(m: Node) -> None:
    """Report duplicate feature names and any column given two roles."""
    owners: dict[str, str] = {}
    for path, column, role in _role_columns(m):
        if column in owners:
            report(m.problems, path, f"{column!r} is also {owners[column]}")
        owners.setdefault(column, role)
    segments = m["segments"]
    if segments is not None and segments["column"] in owners:  # a feature may be the segment
        report(m.problems, segments.at("column"),
               f"{segments['column']!r} is also {owners[segments['column']]}")
    numerical = {node["name"] for node in m["features"] or [] if node["type"] == "numerical"}
    if segments is not None and segments["column"] in numerical:
        report(m.problems, segments.at("column"), f"{segments['column']!r} is a numerical "
               "feature; a segment column holds categories")
    seen: dict[str, str] = {}
    for path, name in _feature_names(m):
        if name in owners:
            report(m.problems, path, f"{name!r} is also {owners[name]}")
        elif name in seen:
            report(m.problems, path, f"duplicate feature name {name!r} (also {seen[name]})")
        seen.setdefault(name, path)


# --- files -----------------------------------------------------------------------------------


def _logs(node: Node | None, base_dir: Path) -> LogsConfig | None:
    if node is None:
        return None
    path, fmt = _glob(node, base_dir)
    if path is None or fmt is None:
        return None
    return node.build(LogsConfig, path=path, format=fmt)


def _glob(node: Node, base_dir: Path) -> tuple[str | None, str | None]:
    """Return a section's resolved `path` glob and its `format`, explicit or from the extension."""
    fmt = node["format"]
    given = node.raw.get("path")  # a bad glob still tells its extension
    if isinstance(given, str) and given and not node.given("format"):
        # a compressed log's format is that of its content: x.jsonl.gz is JSONL
        uncompressed = given[:-3] if given.lower().endswith(".gz") else given
        fmt = _LOG_EXTENSIONS.get(PurePosixPath(uncompressed).suffix.lower())
        if fmt is None:
            node.report(
                "format",
                f"required when the path does not end in .jsonl, .ndjson or .parquet "
                f"(got {given!r})",
            )
    if node["path"] is None:
        return None, fmt
    return os.path.normpath(base_dir / node["path"]), fmt


def _reference(node: Node | None, base_dir: Path) -> str | None:
    """Return the reference file's absolute path if it is well formed and exists."""
    if node is None or node["path"] is None:
        return None
    path = os.path.normpath(base_dir / str(node["path"]))
    if not Path(path).is_file():
        what = "is not a file" if Path(path).exists() else "does not exist"
        node.report("path", f"reference file {path} {what}")
        return None
    return path


# --- YAML loading ----------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads `1e-3` as a number (YAML 1.2)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if (
                not isinstance(key_node, yaml.ScalarNode)
                or key_node.tag == "tag:yaml.org,2002:merge"
            ):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _load_yaml(text: str) -> object:
    try:
        loader = _Loader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(top level)"
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        msg = f"{where}: invalid YAML: {what}"
        raise ConfigError(msg) from exc
    except yaml.YAMLError as exc:
        msg = f"(top level): invalid YAML: {exc}"
        raise ConfigError(msg) from exc


# --- python -m exporter.config ---------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    """`python -m exporter.config [--markdown [FILE]]`: print or rewrite the reference."""
    import argparse  # here: the exporter itself never runs this
    parser = argparse.ArgumentParser(
        prog="python -m exporter.config",
        description="Print the configuration reference, or rewrite it in a Markdown file "
        f"between the lines {README_START} and {README_END}.",
    )
    parser.add_argument("--markdown", metavar="FILE", nargs="?", const="-",
                        help="the file to update (default: print to standard output)")
    args = parser.parse_args(argv)
    if args.markdown in (None, "-"):
        sys.stdout.write(markdown_reference())
        return 0
    path = Path(args.markdown)
    text = path.read_text(encoding="utf-8")
    path.write_text(
        replace_between(text, README_START, README_END, markdown_reference()), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
