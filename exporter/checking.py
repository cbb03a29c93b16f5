"""Checks of a configuration against the files it names: the reference's and the logs' columns.

`reference_column_problems` runs whenever the config is validated (`parse_config` with
`check_reference`); `check_logs` runs for ``drift-exporter check``."""

from __future__ import annotations

import glob
import json
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from exporter.config import ModelConfig
from exporter.errors import ReferenceDataError
from exporter.tables import read_column_names
from exporter.tailing import ignored

if TYPE_CHECKING:
    from collections.abc import Sequence

SAMPLE_LINES = 100


def reference_column_problems(
    reference_path: str, columns: Sequence[tuple[str, str]], at: str
) -> list[str]:
    """A problem for each (YAML path, column) the reference lacks; one at `at` if unreadable."""
    try:
        names = set(read_column_names(reference_path))
    except ReferenceDataError as exc:
        return [f"{at}: {exc}"]
    return [f"{path}: column {column!r} not in reference {reference_path}"
            for path, column in columns if column not in names]


def check_logs(index: int, model: ModelConfig) -> list[str]:
    """Problems with the newest existing log file of a model (none if there is no file yet)."""
    files = sorted(p for p in glob.glob(model.logs.path, recursive=True) if not ignored(p))
    if not files:
        return []
    newest = files[-1]
    try:
        found = _columns(newest, model.logs.format)
    except (OSError, ValueError) as exc:
        return [f"models[{index}].logs.path: cannot read {newest}: {exc}"]
    if found is None:
        return []
    wanted = [f.name for f in model.features]
    if model.prediction is not None:
        wanted.append(model.prediction.column)
    # Label, id, version and timestamp keys may legitimately be absent from a record.
    return [f"models[{index}].logs.path: column '{c}' not in the first {SAMPLE_LINES} records "
            f"of {newest}" for c in wanted if c not in found]


def _columns(path: str, fmt: str) -> set[str] | None:
    if fmt == "parquet":
        return set(pq.ParquetFile(path).schema_arrow.names)
    keys: set[str] = set()
    with open(path, "rb") as handle:
        for _, line in zip(range(SAMPLE_LINES), handle, strict=False):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                keys.update(obj)
    return keys or None
