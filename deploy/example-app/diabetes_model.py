"""The example model: a ridge regression of diabetes progression, trained at start-up on the
data set scikit-learn ships (442 patients; nothing is downloaded), and the input shift the
load generator applies on demand."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

MODEL_NAME = "diabetes-progression"
MODEL_VERSION = "ridge-1"
NUMERICAL = ("age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
CATEGORICAL = ("sex",)
FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
TARGET = "progression"  # the label: disease progression one year after baseline
PREDICTION = "prediction"
ID = "request_id"
TIMESTAMP = "timestamp"

# What "shift" does to the inputs: an older, heavier, more often male population with higher
# blood pressure and triglycerides and lower HDL. Six of the ten features move, so the dataset
# drift share (0.6) passes the default dataset_share of 0.5, and the prediction moves with them.
SHIFTED = ("age", "sex", "bmi", "bp", "s3", "s5")
SHIFTED_SEX_SHARE = 0.85  # share of sex == 2 under the shift (0.47 in the data)


def load_data() -> pd.DataFrame:
    """The 442 patients in original units: ``FEATURES`` and the ``progression`` target."""
    data = load_diabetes(as_frame=True, scaled=False)
    frame = data.frame.rename(columns={"target": TARGET})
    frame["sex"] = frame["sex"].round().astype(int)
    result: pd.DataFrame = frame[[*FEATURES, TARGET]].reset_index(drop=True)
    return result


def train(frame: pd.DataFrame) -> Pipeline:
    """Fit the model (deterministic: the same data always gives the same model)."""
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    model.fit(frame[list(FEATURES)].astype(float), frame[TARGET])
    return model


def predict(model: Pipeline, rows: pd.DataFrame) -> np.ndarray:
    """Predicted progression for each row of ``FEATURES``."""
    return np.asarray(model.predict(rows[list(FEATURES)].astype(float)), dtype=float)


def reference_frame(model: Pipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """The training data with the model's predictions: what the exporter compares against."""
    reference = frame.copy()
    reference[PREDICTION] = predict(model, frame)
    return reference


def write_reference_once(path: Path, reference: pd.DataFrame) -> bool:
    """Write the reference unless it exists; atomically (temporary name, then rename).

    Returns whether it was written. Training is deterministic, so a restarted app and an
    existing reference agree.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    reference.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return True


def sample(frame: pd.DataFrame, rng: np.random.Generator, rows: int,
           shifted: bool = False) -> pd.DataFrame:
    """``rows`` patients drawn with replacement from the data, shifted on demand."""
    picked = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    return shift(picked, rng) if shifted else picked


def shift(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The shifted population (see ``SHIFTED``); the target is left as it was."""
    out = rows.copy()
    out["age"] = np.clip(out["age"] + 12, 19, 95)
    out["bmi"] = out["bmi"] * 1.25
    out["bp"] = out["bp"] + 15
    out["s3"] = np.clip(out["s3"] - 12, 15, None)
    out["s5"] = out["s5"] + 0.5
    out["sex"] = np.where(rng.random(len(out)) < SHIFTED_SEX_SHARE, 2, 1)
    return out
