"""Surrogate pre-screening of candidates (the reference's "progressive predictors").

Before a sampled candidate is evaluated (batch-norm recalibration, validation inference, cost model),
a ridge-regression surrogate refit on every complete trial so far predicts its objective values
from its parameters (one-hot per categorical choice; minimised positive objectives such as EDP in
log space). A candidate whose prediction, made optimistic by ``margin`` leave-one-out standard
errors on every objective, is still dominated by a feasible trial already evaluated is pruned
without evaluation (``TrialState.PRUNED``, reason in ``user_attrs["prescreen"]``). Nothing is
screened until ``min_trials`` trials have completed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.study.predictors import RidgePredictor
from nas.study.record import is_feasible


@dataclass
class Prediction:
    """Predicted objective values (study units) and their leave-one-out standard errors."""

    values: list[float]
    errors: list[float]


class Surrogate:
    """Ridge regression of each objective on one-hot encoded parameters (minimised positive
    objectives in log space)."""

    def __init__(self, trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection],
                 ridge: float | Sequence[float] = 1.0) -> None:
        values = np.array([t.values for t in trials], dtype=float)
        minimise = [d == optuna.study.StudyDirection.MINIMIZE for d in directions]
        self.logged = [m and bool((values[:, i] > 0).all()) for i, m in enumerate(minimise)]
        y = np.where(self.logged, np.log(np.where(self.logged, values, 1.0)), values)
        self.ridge = RidgePredictor([t.params for t in trials], y, ridge)

    def predict(self, params: dict[str, Any]) -> Prediction:
        return Prediction(self._values(self.ridge.predict([params])[0]), [float(s) for s in self.ridge.loo_std])

    def loo_values(self) -> list[list[float]]:
        """Each training trial's objective values as the surrogate fit without it predicts them (study units)."""
        return [self._values(y) for y in self.ridge.loo_predictions]

    def _values(self, y: np.ndarray) -> list[float]:
        return [math.exp(v) if lg else float(v) for v, lg in zip(y, self.logged)]


@dataclass(frozen=True)
class Prescreener:
    """Screens candidates of a study (see the module docstring)."""

    min_trials: int = 10
    margin: float = 1.0
    ridge: float | tuple[float, ...] = 1.0  # one strength, or several to pick from (RidgePredictor)

    def verdict(self, study: optuna.Study, params: dict[str, Any]) -> dict[str, Any] | None:
        """None to evaluate the candidate, or the record of why it is skipped."""
        complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.values is not None]
        if len(complete) < self.min_trials:
            return None
        surrogate = Surrogate(complete, study.directions, self.ridge)
        pred = surrogate.predict(params)
        signs = [1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in study.directions]
        # optimistic prediction (smaller is better on every axis after the signs)
        optimistic = []
        for v, err, s, lg in zip(pred.values, pred.errors, signs, surrogate.logged):
            better = v * math.exp(-self.margin * err) if lg else v - s * self.margin * err
            optimistic.append(s * better)
        for t in complete:
            if not is_feasible(t):
                continue
            known = [s * v for s, v in zip(signs, t.values)]
            if all(k <= o for k, o in zip(known, optimistic)) and known != optimistic:
                return {"dominated_by": t.number, "predicted": pred.values, "loo_std": pred.errors,
                        "fit_trials": len(complete)}
        return None
