"""The YAML configuration: frozen dataclasses, `load_config` and `parse_config`.

Validation collects every problem and raises one ConfigError listing them all, each prefixed by
its YAML path (`models[0].features[2].type: expected 'numerical' or 'categorical', got 'numeric'`).
YAML syntax errors and duplicate keys in one mapping are ConfigErrors too, with line and column.

Rules and defaults:

- Unknown keys are errors at every level. The top level holds only `models`, a non-empty list.
  An optional key set to `null` counts as absent. Booleans are not numbers; numbers are not
  strings (quote a column named `2024` or `no`). `1e-3` is read as a number, not as a string.
- `name`: required, matches `[A-Za-z0-9_.:-]+`, unique across models.
- `logs.path`: required glob; a relative path is resolved against the config file's directory
  (`base_dir`; the working directory when `parse_config` gets none); no `~` or `$VAR` expansion.
  A glob is bad when `[`/`]` are unbalanced (or a class spans `/`) or `**` is not a whole path
  component. `logs.format` (jsonl | parquet) defaults from the extension (`.jsonl`, `.ndjson` ->
  jsonl, `.parquet` -> parquet) and is required otherwise; an explicit format wins over the
  extension. `logs.max_line_bytes`: integer >= 1024, default 1048576.
- `reference.path`: required, resolved like `logs.path`, extension .parquet, .csv, .jsonl or
  .ndjson, and the file must exist. With `check_reference` its column names are read and every
  feature and prediction column missing from it is a problem (the label column may be missing:
  reference quality metrics are then not computed). An unreadable reference is a problem.
- `features`: required non-empty list of `{name, type, statistic?, threshold?}`; `type` is
  numerical or categorical; names are unique within the model.
- `statistic` must fit the type: numerical ks | psi | wasserstein | jensen_shannon, categorical
  jensen_shannon | psi | chi2. `threshold` is `auto` or a number > 0; < 1 for the p-value
  statistics (ks, chi2); <= 1 for jensen_shannon (a base-2 distance never exceeds 1).
  Resolution: without `statistic` the feature uses its type's `drift` default, and a `threshold`
  alone overrides that default's threshold. With a `statistic` that differs from the default,
  the threshold is the given one, else `auto` (the default's number belongs to another scale);
  with the default's own statistic it inherits the default's threshold.
- `prediction`: optional `{column, type = numerical, statistic?, threshold?}`, resolved like a
  feature.
- `label`: optional `{column, task, threshold = 0.5, feedback?}`; task is classification or
  regression; threshold any finite number. `feedback: {path, format?}` (a glob, like `logs`)
  requires the model's `id_column`.
- Every column plays one role: a feature may not also be the prediction, label, id, version or
  timestamp column, and those five are distinct from each other.
- `window`: default `{rows: 5000}`; `rows` integer >= 1 or `duration` > 0 (Prometheus syntax,
  requires `timestamp_column`), not both. An empty `window: {}` means the default.
- `update_interval`: duration > 0, default 5s.
- `drift`: `numerical` default `{statistic: ks, threshold: auto}`; `categorical` default
  `{statistic: jensen_shannon, threshold: auto}` (a default given with only `statistic` gets
  `threshold: auto`); `min_rows` integer >= 1, default 100 (2 or more recommended: a statistic
  over one value means little); `dataset_share` in (0, 1], default 0.5; `bins` integer >= 2,
  default 10.
- `max_categories` integer >= 1, default 20; `max_versions` integer >= 1, default 3;
  `fleet: {buckets: integer >= 2, default 20}`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import yaml

from exporter.durations import parse_duration
from exporter.errors import ConfigError, ReferenceDataError
from exporter.tables import TABLE_EXTENSIONS, read_column_names, table_format

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator, Mapping

Statistic = Literal["ks", "psi", "wasserstein", "jensen_shannon", "chi2"]
NUMERICAL_STATISTICS: tuple[str, ...] = ("ks", "psi", "wasserstein", "jensen_shannon")
CATEGORICAL_STATISTICS: tuple[str, ...] = ("jensen_shannon", "psi", "chi2")
P_VALUE_STATISTICS: tuple[str, ...] = (
    "ks",
    "chi2",
)  # drift when score < threshold; others: score >= threshold
FEATURE_TYPES: tuple[str, ...] = ("numerical", "categorical")
TASKS: tuple[str, ...] = ("classification", "regression")
LOG_FORMATS: tuple[str, ...] = ("jsonl", "parquet")

_ALL_STATISTICS = ("ks", "psi", "wasserstein", "jensen_shannon", "chi2")
_STATISTICS_BY_TYPE = {"numerical": NUMERICAL_STATISTICS, "categorical": CATEGORICAL_STATISTICS}
_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]+")
_LOG_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_MISSING = "required key is missing"
_DURATION_HINT = "a Prometheus duration such as 500ms, 30s, 5m or 1h30m"

_MODEL_KEYS = (
    "name", "logs", "reference", "features", "prediction", "label",
    "id_column", "version_column", "timestamp_column",
    "window", "update_interval", "drift", "max_categories", "max_versions", "fleet",
)  # fmt: skip
_FEATURE_KEYS = ("name", "type", "statistic", "threshold")
_PREDICTION_KEYS = ("column", "type", "statistic", "threshold")
_ROLE_KEYS = ("id_column", "version_column", "timestamp_column")


@dataclass(frozen=True)
class StatisticConfig:
    """A drift statistic and its threshold; a threshold of None means `auto` (calibrated)."""

    statistic: str
    threshold: float | None


DEFAULT_NUMERICAL = StatisticConfig("ks", None)
DEFAULT_CATEGORICAL = StatisticConfig("jensen_shannon", None)


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

    @property
    def columns(self) -> tuple[str, ...]:
        """Every log column the model reads: features, prediction, label, id, version, timestamp."""
        names = [feature.name for feature in self.features]
        names.append(self.prediction.column if self.prediction else "")
        names.append(self.label.column if self.label else "")
        names.extend(c or "" for c in (self.id_column, self.version_column, self.timestamp_column))
        return tuple(name for name in dict.fromkeys(names) if name)


@dataclass(frozen=True)
class Config:
    """The whole configuration: the models and where it was read from."""

    models: tuple[ModelConfig, ...]
    source: str


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
    ctx = _Context(Path(base_dir or Path.cwd()).absolute(), check_reference=check_reference)
    models: list[ModelConfig] = []
    if data is None:
        ctx.add("", "the configuration is empty; expected a mapping with a 'models' list")
    root = _open(ctx, data, "", ("models",)) if data is not None else None
    if root is not None:
        items = list(root.items("models"))
        models = [m for path, raw in items if (m := _parse_model(ctx, raw, path)) is not None]
        _check_model_names(ctx, items)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    return Config(models=tuple(models), source="<memory>")


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


# --- validation machinery --------------------------------------------------------------------


class _Context:
    """Problems found so far, plus what path resolution and reference checks need."""

    def __init__(self, base_dir: Path, *, check_reference: bool) -> None:
        self.base_dir = base_dir
        self.check_reference = check_reference
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '(top level)'}: {message}")

    def resolve(self, path: str) -> str:
        return os.path.normpath(self.base_dir / path)


class _Section:
    """A YAML mapping under validation: typed getters that report problems under its path."""

    def __init__(self, ctx: _Context, data: Mapping[Any, Any], path: str) -> None:
        self.ctx = ctx
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def report(self, key: str | None, message: str) -> None:
        self.ctx.add(self.at(key) if key else self.path, message)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def text_or_none(self, key: str) -> str | None:
        """Return the key's value if it is a non-empty string, silently (for cross-checks)."""
        value = self.data.get(key)
        return value if isinstance(value, str) and value else None

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.report(key, _MISSING)
            return None
        if not isinstance(value, str) or not value:
            self.report(key, f"expected a non-empty string, got {_show(value)}")
            return None
        return value

    def choice(
        self, key: str, options: tuple[str, ...], *, required: bool = False, context: str = ""
    ) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.report(key, _MISSING)
            return None
        if value not in options:
            self.report(key, f"expected {_alternatives(options)}{context}, got {_show(value)}")
            return None
        return str(value)

    def integer(self, key: str, default: int, minimum: int) -> int:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.report(key, f"expected an integer >= {minimum}, got {_show(value)}")
            return default
        return value

    def number(
        self, key: str, default: float, accept: Callable[[float], bool], expected: str
    ) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        if not _is_number(value) or not accept(float(value)):
            self.report(key, f"expected {expected}, got {_show(value)}")
            return default
        return float(value)

    def duration(self, key: str, default: float | None) -> float | None:
        value = self.data.get(key)
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except (TypeError, ValueError):
            self.report(key, f"expected {_DURATION_HINT}, got {_show(value)}")
            return default
        if seconds <= 0:
            self.report(key, f"expected a duration > 0, got {_show(value)}")
            return default
        return seconds

    def section(
        self, key: str, allowed: tuple[str, ...], *, required: bool = False
    ) -> _Section | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.report(key, _MISSING)
            return None
        return _open(self.ctx, value, self.at(key), allowed)

    def items(self, key: str) -> Iterator[tuple[str, object]]:
        """Yield (path, item) for a required non-empty list."""
        value = self.data.get(key)
        if value is None:
            self.report(key, _MISSING)
        elif not isinstance(value, list) or not value:
            self.report(key, f"expected a non-empty list, got {_show(value)}")
        else:
            yield from ((f"{self.at(key)}[{index}]", item) for index, item in enumerate(value))


def _open(ctx: _Context, value: object, path: str, allowed: tuple[str, ...]) -> _Section | None:
    """Wrap a mapping for validation, reporting a non-mapping and every unknown key."""
    if not isinstance(value, dict):
        keys = f" with keys {', '.join(allowed)}" if len(allowed) <= 5 else ""
        ctx.add(path, f"expected a mapping{keys}, got {_show(value)}")
        return None
    section = _Section(ctx, value, path)
    for key in value:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            ctx.add(section.at(str(key)), f"unknown key{hint}")
    return section


def _show(value: object) -> str:
    """Describe a YAML value the way the user wrote it, for `got ...` in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return repr(value)
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    return f"a {type(value).__name__}"


def _alternatives(options: tuple[str, ...]) -> str:
    quoted = [repr(option) for option in options]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- models ----------------------------------------------------------------------------------


def _check_model_names(ctx: _Context, items: list[tuple[str, object]]) -> None:
    """Report model names used twice; the format of each name is checked with its model."""
    first: dict[str, str] = {}
    for path, raw in items:
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            continue
        if name in first:
            ctx.add(f"{path}.name", f"duplicate model name {name!r} (also {first[name]})")
        else:
            first[name] = f"{path}.name"


def _parse_model(ctx: _Context, raw: object, path: str) -> ModelConfig | None:
    m = _open(ctx, raw, path, _MODEL_KEYS)
    if m is None:
        return None
    name = _parse_name(m)
    drift = _parse_drift(m)
    features = _parse_features(m, drift)
    prediction = _parse_prediction(m, drift)
    label = _parse_label(m)
    id_column, version_column, timestamp_column = (m.text(key) for key in _ROLE_KEYS)
    _check_roles(m)
    logs = _parse_logs(m)
    reference_path = _parse_reference(m)
    _check_reference_columns(m, reference_path)
    window = _parse_window(m)
    update_interval = m.duration("update_interval", 5.0) or 5.0
    if name is None or logs is None or reference_path is None:
        return None
    return ModelConfig(
        name=name,
        logs=logs,
        reference_path=reference_path,
        features=tuple(features),
        prediction=prediction,
        label=label,
        id_column=id_column,
        version_column=version_column,
        timestamp_column=timestamp_column,
        window=window,
        update_interval=update_interval,
        drift=drift,
        max_categories=m.integer("max_categories", 20, 1),
        max_versions=m.integer("max_versions", 3, 1),
        fleet=_parse_fleet(m),
    )


def _parse_name(m: _Section) -> str | None:
    name = m.text("name", required=True)
    if name is not None and not _NAME_RE.fullmatch(name):
        m.report("name", f"expected a name matching [A-Za-z0-9_.:-]+, got {name!r}")
        return None
    return name


def _parse_fleet(m: _Section) -> FleetConfig:
    section = m.section("fleet", ("buckets",))
    return FleetConfig(buckets=section.integer("buckets", 20, 2)) if section else FleetConfig()


def _parse_window(m: _Section) -> WindowConfig:
    section = m.section("window", ("rows", "duration"))
    if section is None:
        return WindowConfig(rows=5000, duration=None)
    if section.has("rows") and section.has("duration"):
        section.report(None, "set either rows or duration, not both")
    rows = section.integer("rows", 5000, 1)
    duration = section.duration("duration", None)
    if section.has("duration") and not m.has("timestamp_column"):
        section.report("duration", "requires timestamp_column to be set on the model")
    if duration is not None:
        return WindowConfig(rows=None, duration=duration)
    return WindowConfig(rows=rows, duration=None)


# --- drift statistics ------------------------------------------------------------------------


def _parse_drift(m: _Section) -> DriftConfig:
    section = m.section("drift", ("numerical", "categorical", "min_rows", "dataset_share", "bins"))
    if section is None:
        return DriftConfig()
    return DriftConfig(
        numerical=_parse_default_statistic(section, "numerical", DEFAULT_NUMERICAL),
        categorical=_parse_default_statistic(section, "categorical", DEFAULT_CATEGORICAL),
        min_rows=section.integer("min_rows", 100, 1),
        dataset_share=section.number(
            "dataset_share", 0.5, lambda x: 0 < x <= 1, "a number in (0, 1]"
        ),
        bins=section.integer("bins", 10, 2),
    )


def _parse_default_statistic(
    drift: _Section, kind: str, default: StatisticConfig
) -> StatisticConfig:
    section = drift.section(kind, ("statistic", "threshold"))
    if section is None:
        return default
    return _parse_statistic(section, kind, default, f" for {kind} features")


def _default_for(drift: DriftConfig, kind: str | None) -> StatisticConfig:
    return drift.categorical if kind == "categorical" else drift.numerical


def _parse_statistic(
    section: _Section, kind: str | None, default: StatisticConfig, context: str
) -> StatisticConfig:
    """Resolve a section's optional `statistic` and `threshold` against the default for its type."""
    options = _STATISTICS_BY_TYPE.get(kind or "", _ALL_STATISTICS)
    chosen = section.choice("statistic", options, context=context if kind else "")
    if chosen is None and section.has("statistic"):
        if section.has("threshold"):  # the statistic is wrong; still check the threshold's type
            _parse_threshold(section, None)
        return default
    statistic = chosen or default.statistic
    if section.has("threshold"):
        threshold = _parse_threshold(section, statistic)
    elif statistic == default.statistic:
        threshold = default.threshold
    else:
        threshold = None
    return StatisticConfig(statistic=statistic, threshold=threshold)


def _parse_threshold(section: _Section, statistic: str | None) -> float | None:
    """Return the threshold in force for `statistic`: None for `auto` (and after a mistake)."""
    value = section.raw("threshold")
    if value == "auto":
        return None
    expected, accept = _THRESHOLD_RULES.get(statistic or "", _ANY_THRESHOLD)
    if not _is_number(value) or not accept(float(value)):
        section.report("threshold", f"expected {expected}, got {_show(value)}")
        return None
    return float(value)


_ANY_THRESHOLD: tuple[str, Callable[[float], bool]] = ("'auto' or a number > 0", lambda x: x > 0)
_THRESHOLD_RULES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "ks": ("'auto' or a number > 0 and < 1 (ks is a p-value)", lambda x: 0 < x < 1),
    "chi2": ("'auto' or a number > 0 and < 1 (chi2 is a p-value)", lambda x: 0 < x < 1),
    "jensen_shannon": (
        "'auto' or a number > 0 and <= 1 (a jensen_shannon distance is at most 1)",
        lambda x: 0 < x <= 1,
    ),
}


# --- columns ---------------------------------------------------------------------------------


def _parse_features(m: _Section, drift: DriftConfig) -> list[FeatureConfig]:
    features: list[FeatureConfig] = []
    for path, raw in m.items("features"):
        section = _open(m.ctx, raw, path, _FEATURE_KEYS)
        if section is None:
            continue
        name = section.text("name", required=True)
        kind = section.choice("type", FEATURE_TYPES, required=True)
        statistic = _parse_statistic(
            section, kind, _default_for(drift, kind), f" for a {kind} feature"
        )
        if name is not None and kind is not None:
            features.append(FeatureConfig(name=name, type=kind, statistic=statistic))
    return features


def _parse_prediction(m: _Section, drift: DriftConfig) -> PredictionConfig | None:
    section = m.section("prediction", _PREDICTION_KEYS)
    if section is None:
        return None
    column = section.text("column", required=True)
    kind = section.choice("type", FEATURE_TYPES) or (
        "numerical" if not section.has("type") else None
    )
    statistic = _parse_statistic(
        section, kind, _default_for(drift, kind), f" for a {kind} prediction"
    )
    if column is None or kind is None:
        return None
    return PredictionConfig(column=column, type=kind, statistic=statistic)


def _parse_label(m: _Section) -> LabelConfig | None:
    section = m.section("label", ("column", "task", "threshold", "feedback"))
    if section is None:
        return None
    column = section.text("column", required=True)
    task = section.choice("task", TASKS, required=True)
    threshold = section.number("threshold", 0.5, lambda _: True, "a number")
    feedback = None
    feedback_section = section.section("feedback", ("path", "format"))
    if feedback_section is not None:
        feedback = _parse_feedback(feedback_section)
        if not m.has("id_column"):
            section.report(
                "feedback", "requires id_column to be set on the model (records are joined by id)"
            )
    if column is None or task is None:
        return None
    return LabelConfig(column=column, task=task, threshold=threshold, feedback=feedback)


def _feature_names(m: _Section) -> list[tuple[str, str]]:
    """(YAML path, name) of every feature whose name is a non-empty string, even if invalid."""
    raw = m.raw("features")
    items = raw if isinstance(raw, list) else []
    return [
        (f"{m.at('features')}[{index}].name", item["name"])
        for index, item in enumerate(items)
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]
    ]


def _role_columns(m: _Section) -> list[tuple[str, str, str]]:
    """(YAML path, column, role) of the prediction, label, id, version and timestamp columns."""
    roles: list[tuple[str, str, str]] = []
    for key in ("prediction", "label"):
        section = m.raw(key)
        column = section.get("column") if isinstance(section, dict) else None
        if isinstance(column, str) and column:
            roles.append((m.at(f"{key}.column"), column, f"the {key} column"))
    for key in _ROLE_KEYS:
        value = m.text_or_none(key)
        if value is not None:
            roles.append((m.at(key), value, f"the {key}"))
    return roles


def _check_roles(m: _Section) -> None:
    """Report duplicate feature names and any column given two roles."""
    owners: dict[str, str] = {}
    for path, column, role in _role_columns(m):
        if column in owners:
            m.ctx.add(path, f"{column!r} is also {owners[column]}")
        owners.setdefault(column, role)
    seen: dict[str, str] = {}
    for path, name in _feature_names(m):
        if name in owners:
            m.ctx.add(path, f"{name!r} is also {owners[name]}")
        elif name in seen:
            m.ctx.add(path, f"duplicate feature name {name!r} (also {seen[name]})")
        seen.setdefault(name, path)


# --- files -----------------------------------------------------------------------------------


def _parse_logs(m: _Section) -> LogsConfig | None:
    section = m.section("logs", ("path", "format", "max_line_bytes"), required=True)
    if section is None:
        return None
    path, fmt = _parse_glob(section)
    max_line_bytes = section.integer("max_line_bytes", 1048576, 1024)
    if path is None or fmt is None:
        return None
    return LogsConfig(path=path, format=fmt, max_line_bytes=max_line_bytes)


def _parse_feedback(section: _Section) -> FeedbackConfig | None:
    path, fmt = _parse_glob(section)
    if path is None or fmt is None:
        return None
    return FeedbackConfig(path=path, format=fmt)


def _parse_glob(section: _Section) -> tuple[str | None, str | None]:
    """Return a section's resolved `path` glob and its `format`, explicit or from the extension."""
    pattern = section.text("path", required=True)
    problem = _glob_problem(pattern) if pattern is not None else None
    if problem is not None:
        section.report("path", f"bad glob {pattern!r}: {problem}")
    fmt = section.choice("format", LOG_FORMATS)
    if pattern is not None and not section.has("format"):
        fmt = _LOG_EXTENSIONS.get(PurePosixPath(pattern).suffix.lower())
        if fmt is None:
            section.report(
                "format",
                f"required when the path does not end in .jsonl, .ndjson or .parquet "
                f"(got {pattern!r})",
            )
    if pattern is None or problem is not None:
        return None, fmt
    return section.ctx.resolve(pattern), fmt


def _glob_problem(pattern: str) -> str | None:
    """Say what is wrong with a glob, or return None when it is well formed."""
    if any("**" in part and part != "**" for part in pattern.split("/")):
        return "'**' must be a whole path component, as in logs/**/*.jsonl"
    index = 0
    while index < len(pattern):
        if pattern[index] == "]":
            return f"unbalanced ']' at position {index}"
        if pattern[index] == "[":
            start = index + 1
            start += pattern.startswith("!", start)
            start += pattern.startswith("]", start)  # a leading ']' is a member of the class
            close = pattern.find("]", start)
            if close < 0 or "/" in pattern[index:close]:
                return f"unbalanced '[' at position {index}"
            index = close
        index += 1
    return None


def _parse_reference(m: _Section) -> str | None:
    """Return the reference file's absolute path if it is well formed and exists."""
    section = m.section("reference", ("path",), required=True)
    if section is None:
        return None
    given = section.text("path", required=True)
    if given is None:
        return None
    path = section.ctx.resolve(given)
    if table_format(path) is None:
        section.report(
            "path", f"expected a file ending in {', '.join(TABLE_EXTENSIONS)}, got {given!r}"
        )
        return None
    if not Path(path).is_file():
        what = "is not a file" if Path(path).exists() else "does not exist"
        section.report("path", f"reference file {path} {what}")
        return None
    return path


def _check_reference_columns(m: _Section, reference_path: str | None) -> None:
    """Report each feature and prediction column the reference file does not have."""
    if reference_path is None or not m.ctx.check_reference:
        return
    try:
        names = set(read_column_names(reference_path))
    except ReferenceDataError as exc:
        m.report("reference.path", str(exc))
        return
    wanted = _feature_names(m)
    wanted += [(path, column) for path, column, role in _role_columns(m) if "prediction" in role]
    for path, column in wanted:
        if column not in names:
            m.ctx.add(path, f"column {column!r} not in reference {reference_path}")
