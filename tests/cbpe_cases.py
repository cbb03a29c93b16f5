"""Synthetic populations whose truth is known, for CBPE's tests and bench/cbpe.py.

A record has a latent x ~ Normal(mu, sd); its label is 1 with probability
sigmoid(concept * x); the model's score is sigmoid(x) ** power. With concept = power = 1 the
score is calibrated; power = 3 gives a miscalibrated (but well-ranked) score; a window with
another concept has labels related to the score differently than in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

THRESHOLD = 0.5
REFERENCE_ROWS = 20_000
WINDOW_ROWS = 1_000


@dataclass(frozen=True)
class Population:
    """Where records come from (see the module docstring)."""

    mu: float = 0.0
    sd: float = 2.0
    power: float = 1.0
    concept: float = 1.0

    def draw(self, rows: int, rng: np.random.Generator,
             ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """(scores, is_positive) of ``rows`` records."""
        x = rng.normal(self.mu, self.sd, rows)
        positive = rng.random(rows) < 1.0 / (1.0 + np.exp(-self.concept * x))
        return (1.0 / (1.0 + np.exp(-x))) ** self.power, positive


@dataclass(frozen=True)
class Case:
    """A reference population and the population a window is drawn from."""

    name: str
    reference: Population
    window: Population
    what: str


CASES = (
    Case("calibrated", Population(), Population(),
         "calibrated score, no shift"),
    Case("covariate_shift", Population(), Population(sd=0.8),
         "more mass near the decision boundary (accuracy drops)"),
    Case("covariate_shift_up", Population(), Population(mu=1.0, sd=3.0),
         "mass away from the boundary (accuracy rises)"),
    Case("miscalibrated", Population(power=3.0), Population(power=3.0),
         "score = p^3 (ranked right, calibrated wrong)"),
    Case("miscalibrated_shift", Population(power=3.0), Population(sd=0.8, power=3.0),
         "score = p^3 and the covariate shift"),
    Case("concept_shift", Population(), Population(concept=0.3),
         "labels follow the score less closely (invisible to CBPE)"),
)


def case(name: str) -> Case:
    """The case called ``name``."""
    return next(c for c in CASES if c.name == name)
