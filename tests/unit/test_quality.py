"""Model quality reads a categorical prediction under its own column name (SPEC 6.4), in the
window and in the reference alike: no hidden column stands in for it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exporter.config import ModelConfig, parse_config
from exporter.pipeline import ModelPipeline
from exporter.quality import compute_quality
from exporter.reference import load_reference
from exporter.sources import ModelSource, feed

TRUTH = ["a", "b", "c", "a", "b", "c", "a", None]
GUESS = ["a", "b", "a", "a", "c", "c", None, "b"]  # 4 right of the 6 with a label and a guess


def model(tmp_path: Path, reference: pd.DataFrame) -> ModelConfig:
    """A classifier with a categorical prediction ``guess`` and the label ``truth``."""
    reference.to_parquet(tmp_path / "ref.parquet", index=False)
    entry = {"name": "m", "logs": {"path": str(tmp_path / "*.jsonl")},
             "reference": {"path": str(tmp_path / "ref.parquet")},
             "features": [{"name": "x", "type": "numerical"}],
             "prediction": {"column": "guess", "type": "categorical"},
             "label": {"column": "truth", "task": "classification"},
             "window": {"rows": 100}, "drift": {"min_rows": 1}}
    return parse_config({"models": [entry]}, base_dir=tmp_path).models[0]


def frame() -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(len(TRUTH), dtype=float), "truth": TRUTH,
                         "guess": GUESS})


def test_compute_quality_reads_the_prediction_and_the_label_by_their_column_names(
        tmp_path: Path) -> None:
    config = model(tmp_path, frame())
    objects = {"truth": np.array(TRUTH, dtype=object), "guess": np.array(GUESS, dtype=object)}
    quality = compute_quality(len(TRUTH), {}, objects, config, None, min_rows=1)
    assert quality is not None
    assert quality.labeled == 7
    assert quality.accuracy == pytest.approx(4 / 6)


def test_the_reference_quality_compares_the_prediction_column_with_the_label(
        tmp_path: Path) -> None:
    quality = load_reference(model(tmp_path, frame())).quality
    assert quality is not None
    assert quality.accuracy == pytest.approx(4 / 6)


def test_the_window_keeps_the_predictions_text_under_its_column_name(tmp_path: Path) -> None:
    config = model(tmp_path, frame())
    pipeline = ModelPipeline(config, load_reference(config))
    (tmp_path / "a.jsonl").write_text("".join(
        json.dumps({"x": 1.0, "truth": t, "guess": g}) + "\n"
        for t, g in zip(TRUTH, GUESS, strict=True)))
    source = ModelSource.of(pipeline)
    try:
        assert feed(source, pipeline, lambda: 0.0) == len(TRUTH)
    finally:
        source.close()
    view = pipeline.window.view(0.0)
    assert set(view.objects) == {"truth", "guess"}
    assert view.objects["guess"].tolist() == GUESS
    snapshot = pipeline.recompute(0.0)[0]
    assert snapshot.quality is not None
    assert snapshot.quality.accuracy == pytest.approx(4 / 6)
    assert snapshot.quality.error_change_ratio == 0.0  # the window is the reference
