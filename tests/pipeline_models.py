"""Small models for tests that drive the pipeline core with batches and an explicit clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from exporter.collector import DriftCollector
from exporter.config import ModelConfig, parse_config
from exporter.parsing import Batch, batch_from_records
from exporter.pipeline import ModelPipeline
from exporter.reference import ReferenceProfile, load_reference

NOW = 1_000_000.0  # a clock far from the wall clock: nothing may read the wall clock


def write_model(tmp_path: Path, reference: pd.DataFrame, **keys: object) -> ModelConfig:
    """A model of a numerical feature x, a categorical feature city and a numerical prediction
    score, on these reference rows (written to ``tmp_path``); ``keys``: more of its config."""
    reference.to_parquet(tmp_path / "ref.parquet", index=False)
    entry: dict[str, object] = {
        "name": "m", "logs": {"path": str(tmp_path / "logs" / "*.jsonl")},
        "reference": {"path": str(tmp_path / "ref.parquet")},
        "features": [{"name": "x", "type": "numerical"},
                     {"name": "city", "type": "categorical"}],
        "prediction": {"column": "score", "type": "numerical"}, **keys}
    return parse_config({"models": [entry]}, base_dir=tmp_path).models[0]


def model(tmp_path: Path, **extra: object) -> tuple[ModelConfig, ReferenceProfile]:
    """A model with a numerical feature x, a categorical feature city (a, b, c), a numerical
    prediction score and a numerical reference column y (for a label); ``extra`` keys
    override the model's config."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=200), "city": rng.choice(["a", "b", "c"], 200),
                              "score": rng.random(200), "y": rng.random(200)})
    keys: dict[str, object] = {"window": {"rows": 100}, "update_interval": "10s",
                               "drift": {"min_rows": 1}}
    config = write_model(tmp_path, reference, **{**keys, **extra})
    return config, load_reference(config)


def with_feedback(tmp_path: Path, **extra: object) -> dict[str, object]:
    """Config keys for a regression label y joined by id from feedback files."""
    keys: dict[str, object] = {
        "label": {"column": "y", "task": "regression",
                  "feedback": {"path": str(tmp_path / "feedback" / "*.jsonl")}},
        "id_column": "id"}
    keys.update(extra)
    return keys


def batch(pipeline: ModelPipeline, records: Sequence[Mapping[str, object]]) -> Batch:
    """The batch a source would read from these records for this pipeline."""
    return batch_from_records(records, pipeline.columns)


def feedback_batch(pipeline: ModelPipeline, records: Sequence[Mapping[str, object]]) -> Batch:
    """The batch a source would read from these feedback records."""
    assert pipeline.feedback_columns is not None
    return batch_from_records(records, pipeline.feedback_columns)


def rows(n: int, **fields: object) -> list[dict[str, object]]:
    """``n`` prediction records with x = i, city a, score 0.5 and ``fields``."""
    return [{"x": float(i), "city": "a", "score": 0.5, **fields} for i in range(n)]


def collector_registry(core: ModelPipeline) -> CollectorRegistry:
    """A registry rendering this pipeline's latest state, as the exporter's collector does."""
    result = CollectorRegistry(auto_describe=True)
    result.register(DriftCollector(lambda: [core.state()]))
    return result
