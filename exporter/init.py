"""``drift-exporter init``: a starting config inferred from the reference, as commented YAML.

Each column of the reference is given one role, with the reason shown beside it:

- numbers are numerical features, except integers with at most FEW_DISTINCT distinct values,
  which are categorical: a flag, a code or a small count has too few values for quantile bins
  and a KS test full of ties, while its categories are compared value by value (and a value
  never seen in the reference is counted); the comment says to switch to numerical when the
  order of the values matters;
- strings and booleans are categorical features;
- a column unique per row (strings, or integers that count up or are named like an id) is an
  id: left out of the features, offered as ``id_column``;
- a timestamp (a datetime column, RFC 3339 text, or epoch seconds in a column named like a
  time) is left out of the features, offered as ``timestamp_column``;
- the ``--prediction`` and ``--label`` columns go under ``prediction`` and ``label`` (the task
  inferred from the label's values), never among the features;
- a column without any value is left out.

Without the flags, a feature named like a prediction or a label gets a comment saying which
flag would monitor it as one.

The module is pure: a DataFrame in, YAML text out (``render``); ``init_config`` reads the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exporter.errors import ExporterError

if TYPE_CHECKING:
    import pandas as pd

FEW_DISTINCT = 10  # integers with at most this many distinct values are categorical
MIN_ROWS_FOR_ID = 20  # fewer rows say nothing about a column being unique per row
MAX_CATEGORIES = 20  # the config's default ``max_categories``, named in comments
EPOCH_RANGE = (946_684_800, 4_102_444_800)  # epoch seconds of 2000-01-01 .. 2100-01-01
_TIME_NAME = re.compile(r"(^|_)(ts|time|timestamp|date|datetime|created|updated)($|_)|_at$",
                        re.IGNORECASE)
_PREDICTION_NAME = re.compile(r"(^|_)(pred|prediction|predicted|proba|score|output)($|_)",
                              re.IGNORECASE)
_LABEL_NAME = re.compile(r"^(label|target|y|y_true|truth|ground_truth|actual)$", re.IGNORECASE)
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key)$", re.IGNORECASE)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                      r"([Zz]|[+-]\d{2}:?\d{2})?)?")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:-]+")
_PATH = re.compile(r"[A-Za-z0-9_.\-/*?\[\]]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")

NUMERICAL, CATEGORICAL, ID, TIMESTAMP, EMPTY, SKIPPED = (
    "numerical", "categorical", "id", "timestamp", "empty", "skipped")


@dataclass(frozen=True)
class Column:
    """What ``init`` makes of one reference column, and why."""

    name: str
    role: str  # NUMERICAL, CATEGORICAL, ID, TIMESTAMP, EMPTY or SKIPPED
    why: str


@dataclass(frozen=True)
class InitOptions:
    """The command's flags."""

    reference: str
    logs: str | None = None
    name: str | None = None
    prediction: str | None = None
    label: str | None = None


def infer(frame: pd.DataFrame) -> list[Column]:
    """The role of every column of a reference, in its order."""
    return [_infer_column(str(name), frame[name]) for name in frame.columns]


def _infer_column(name: str, values: pd.Series) -> Column:
    import pandas as pd

    present = values.dropna()
    rows = len(values)
    distinct = int(present.nunique())
    if present.empty:
        return Column(name, EMPTY, "no value in the reference")
    if pd.api.types.is_bool_dtype(present) or _all_booleans(present):
        return Column(name, CATEGORICAL, "true/false")
    if pd.api.types.is_datetime64_any_dtype(present):
        return Column(name, TIMESTAMP, "date and time")
    if pd.api.types.is_numeric_dtype(present):
        return _infer_number(name, present, rows, distinct)
    return _infer_text(name, present, rows, distinct)


def _infer_text(name: str, present: pd.Series, rows: int, distinct: int) -> Column:
    text = present.astype(str)
    if text.map(lambda v: _RFC3339.fullmatch(v) is not None).all():
        return Column(name, TIMESTAMP, "RFC 3339 time text")
    if rows >= MIN_ROWS_FOR_ID and distinct == rows:
        return Column(name, ID, "text unique per row")
    more = (f"; max_categories keeps the {MAX_CATEGORIES} most frequent"
            if distinct > MAX_CATEGORIES else "")
    return Column(name, CATEGORICAL, f"text, {distinct} distinct values{more}")


def _infer_number(name: str, present: pd.Series, rows: int, distinct: int) -> Column:
    import numpy as np

    numbers = present.to_numpy(dtype=float)
    finite = numbers[np.isfinite(numbers)]
    whole = bool(finite.size) and bool(np.all(finite == np.round(finite)))
    low, high = EPOCH_RANGE
    if _TIME_NAME.search(name) and finite.size:
        if low <= finite.min() and finite.max() <= high:
            return Column(name, TIMESTAMP, "epoch seconds, named like a time")
        return Column(name, SKIPPED, "named like a time, but not epoch seconds of 2000-2100 "
                      "(the timestamp column must be epoch seconds or RFC 3339 text)")
    if whole and rows >= MIN_ROWS_FOR_ID and distinct == rows:
        counts_up = finite.max() - finite.min() + 1 == rows
        if counts_up or _ID_NAME.search(name):
            return Column(name, ID, "integers unique per row"
                          + (", counting up" if counts_up else ", named like an id"))
    if whole and distinct <= FEW_DISTINCT:
        return Column(name, CATEGORICAL,
                      f"integers, {distinct} distinct values: categorical (a bin each); "
                      "numerical if their order matters")
    kind = "integers" if whole else "numbers"
    return Column(name, NUMERICAL, f"{kind}, {distinct} distinct values")


def _all_booleans(present: pd.Series) -> bool:
    return bool(present.map(lambda v: isinstance(v, bool)).all())


def _task(label: Column, values: pd.Series | None) -> tuple[str, str]:
    """The label's task and why: numbers with many distinct values are a regression target."""
    import pandas as pd

    if values is None or label.role == EMPTY:
        return "classification", "no label in the reference: check the task"
    if label.role == NUMERICAL or (label.role == ID and pd.api.types.is_numeric_dtype(values)):
        return "regression", f"{label.why}: a quantity"
    return "classification", f"{int(values.dropna().nunique())} classes"


def render(frame: pd.DataFrame, options: InitOptions) -> str:
    """The commented YAML config for a reference table."""
    columns = {c.name: c for c in infer(frame)}
    if options.prediction is not None and options.prediction not in columns:
        known = ", ".join(columns) or "none"
        msg = (f"--prediction: column {options.prediction!r} is not in the reference "
               f"(its columns: {known})")
        raise ExporterError(msg)
    roles = {options.prediction, options.label}
    features = [c for c in columns.values()
                if c.name not in roles and c.role in (NUMERICAL, CATEGORICAL)]
    if not features:
        msg = (f"no column of {options.reference} can be a feature: every one is an id, a "
               "time, empty, or the prediction or label")
        raise ExporterError(msg)
    left_out = [c for c in columns.values() if c.name not in roles
                and c.role not in (NUMERICAL, CATEGORICAL)]
    ids = [c for c in left_out if c.role == ID]
    times = [c for c in left_out if c.role == TIMESTAMP]
    model = options.name or _model_name(options.reference)

    out = [f"# drift-exporter config written by `drift-exporter init` from {options.reference}",
           f"# ({len(frame)} rows, {len(columns)} columns). Review the types, then check it:",
           "#   drift-exporter check --config.file=THIS_FILE",
           "# Relative paths are relative to the directory of this file.",
           "models:",
           f"  - name: {_scalar(model)}",
           "    logs:",
           f"      path: {_scalar(options.logs or 'logs/*.jsonl')}"
           + ("" if options.logs else "  # where the app appends its predictions"),
           "    reference:",
           f"      path: {_scalar(options.reference)}",
           "    features:"]
    out += _hints(features, options)
    for column in features:
        out += [f"      - name: {_scalar(column.name)}  # {_comment(column.why)}",
                f"        type: {column.role}"]
    if left_out:
        out.append("    # not features:")
        out += [f"    #   {_comment(_scalar(column.name))}: {_comment(column.why)} "
                f"({_role_text(column.role)})" for column in left_out]
    if options.prediction is not None:
        prediction = columns[options.prediction]
        kind = NUMERICAL if prediction.role == NUMERICAL else CATEGORICAL
        out += ["    prediction:",
                f"      column: {_scalar(prediction.name)}  # {_comment(prediction.why)}",
                f"      type: {kind}"]
    if options.label is not None:
        label = columns.get(options.label, Column(options.label, EMPTY, "not in the reference"))
        task, why = _task(label, frame[options.label] if options.label in columns else None)
        out += ["    label:",
                f"      column: {_scalar(label.name)}",
                f"      task: {task}  # {_comment(why)}"]
    if ids:
        out.append(f"    id_column: {_scalar(ids[0].name)}")
    if times:
        out.append(f"    timestamp_column: {_scalar(times[0].name)}")
    out += ["    window:",
            "      rows: 5000  # the last N records"
            + ("; or duration: 1h" if times else "")]
    return "\n".join(out) + "\n"


def _hints(features: list[Column], options: InitOptions) -> list[str]:
    """Comments naming features that look like the prediction or the label by their name,
    when the flag was not given."""
    hints = []
    for column in features:
        if options.prediction is None and _PREDICTION_NAME.search(column.name):
            hints.append(f"      # {_comment(column.name)} is named like a prediction: "
                         f"--prediction={_comment(column.name)} monitors it as one")
        elif options.label is None and _LABEL_NAME.fullmatch(column.name):
            hints.append(f"      # {_comment(column.name)} is named like a label: "
                         f"--label={_comment(column.name)} computes the model's quality")
    return hints


def _role_text(role: str) -> str:
    return {ID: "an id", TIMESTAMP: "a time", EMPTY: "nothing to compare",
            SKIPPED: "left out"}[role]


def _model_name(reference: str) -> str:
    """A model name from the reference's file name, in the characters a name may hold."""
    stem = Path(reference).name.split(".")[0]
    return _NAME_CHARS.sub("-", stem).strip("-") or "model"


def _scalar(text: str) -> str:
    """A YAML scalar for ``text``: plain when unambiguous (a name, a path), else double-quoted
    (JSON is YAML)."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    if _PATH.fullmatch(text) and "/" in text and not text.startswith(("*", "[", "?")):
        return text
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    """Text that stays inside a one-line YAML comment."""
    return _CONTROL.sub(" ", text)


def init_config(options: InitOptions) -> str:
    """Read the reference and return the config for it."""
    from exporter.tables import read_table

    return render(read_table(options.reference), options)
