"""A hand-built data set where we know which features drift and when: the exporter's pipeline
(real files, follower, parser, window, statistics with `auto` thresholds) flags exactly those,
only after the drift starts, and nothing else. Prints the detection delay in records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from exporter.config import parse_config
from exporter.pipeline import ModelPipeline
from exporter.reference import load_reference
from exporter.sources import ModelSource, feed

DRIFT_AT = 4000  # records before this one come from the reference distribution
TOTAL = 8000
BATCH = 100
WINDOW = 1000

DRIFTING = {"amount", "latency", "plan", "country"}
STABLE = {"age", "score_in", "device"}


def _records(rng: np.random.Generator, n: int, drifted: bool) -> pd.DataFrame:
    frame = pd.DataFrame({
        "age": rng.normal(40, 10, n).round(),
        "score_in": rng.beta(2, 5, n),
        "amount": rng.lognormal(3.0 + (0.3 if drifted else 0.0), 0.5, n),  # mean shift
        "latency": rng.gamma(2.0, 1.0 * (1.6 if drifted else 1.0), n),  # scale change
        "plan": rng.choice(["basic", "plus", "pro"], n,
                           p=[0.3, 0.5, 0.2] if drifted else [0.6, 0.3, 0.1]),
        "country": rng.choice(["de", "fr", "it", "es", "nl"] if drifted
                              else ["de", "fr", "it", "es"], n,
                              p=[0.35, 0.25, 0.15, 0.1, 0.15] if drifted
                              else [0.4, 0.3, 0.2, 0.1]),  # a new, unseen category
        "device": rng.choice(["ios", "android", "web"], n, p=[0.4, 0.4, 0.2]),
    })
    frame["pred"] = 1 / (1 + np.exp(-(frame["score_in"] * 3 - 1)))  # depends on a stable input
    return frame


def test_exactly_the_drifting_features_are_flagged_and_only_after_the_drift(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(2024)
    _records(rng, 20000, False).to_parquet(tmp_path / "ref.parquet", index=False)
    features = [{"name": n, "type": "numerical"} for n in ("age", "score_in", "amount",
                                                            "latency")]
    features += [{"name": n, "type": "categorical"} for n in ("plan", "country", "device")]
    config = parse_config({"models": [{
        "name": "known", "logs": {"path": str(tmp_path / "logs" / "*.jsonl")},
        "reference": {"path": str(tmp_path / "ref.parquet")}, "features": features,
        "prediction": {"column": "pred", "type": "numerical"},
        "window": {"rows": WINDOW}, "update_interval": "1s"}]}, base_dir=tmp_path)
    model = config.models[0]
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "predictions.jsonl"
    pipeline = ModelPipeline(model, load_reference(model))
    source = ModelSource.of(pipeline)
    source.start(0.0)
    first_flag: dict[str, int] = {}
    written = 0
    with log.open("a") as out:
        while written < TOTAL:
            batch = _records(rng, BATCH, written >= DRIFT_AT)
            out.write("".join(json.dumps(r) + "\n" for r in batch.to_dict("records")))
            out.flush()
            written += BATCH
            assert feed(source, pipeline, lambda: 0.0) == BATCH
            snapshot = pipeline.recompute(0.0)[0]
            for column in snapshot.features:
                if column.detected and column.name not in first_flag:
                    first_flag[column.name] = written
    source.close()
    delays = {name: at - DRIFT_AT for name, at in first_flag.items()}
    print("detection delay in records after the drift started:", delays)
    assert set(first_flag) == DRIFTING
    assert all(at > DRIFT_AT for at in first_flag.values())
    assert all(delay <= WINDOW for delay in delays.values())
