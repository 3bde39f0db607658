from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from nas.study.prescreen import Prescreener, Surrogate
from tests.helpers import record_attributes

DISTS = {"a": CategoricalDistribution([0, 1]), "b": CategoricalDistribution(["x", "y", "z"])}


def truth(a: int, b: str) -> tuple[float, float]:
    """accuracy +0.3 with a=1; EDP e^1, e^1.5 or e^3 by b."""
    return 0.5 + 0.3 * a, math.exp({"x": 1.0, "y": 1.5, "z": 3.0}[b])


def study_with_all_combinations(repeats: int = 2) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for _ in range(repeats):
        for a in (0, 1):
            for b in "xyz":
                acc, edp = truth(a, b)
                study.add_trial(create_trial(params={"a": a, "b": b}, distributions=DISTS, values=[acc, edp],
                                             user_attrs=record_attributes(acc, edp)))
    return study


def test_surrogate_recovers_an_additive_model():
    study = study_with_all_combinations()
    s = Surrogate(study.trials, study.directions, ridge=1e-6)
    for a in (0, 1):
        for b in "xyz":
            pred = s.predict({"a": a, "b": b})
            assert pred.values[0] == pytest.approx(truth(a, b)[0], abs=1e-4)
            assert pred.values[1] == pytest.approx(truth(a, b)[1], rel=1e-4)
    assert s.logged == [False, True]


def test_prescreener_skips_dominated_candidates_only():
    study = study_with_all_combinations()
    screen = Prescreener(min_trials=4, margin=1.0, ridge=1e-3)
    verdict = screen.verdict(study, {"a": 0, "b": "z"})  # worse on both axes than (a=1, b=x)
    assert verdict is not None and study.trials[verdict["dominated_by"]].params == {"a": 1, "b": "x"}
    assert screen.verdict(study, {"a": 1, "b": "x"}) is None  # the best there is
    assert Prescreener(min_trials=100).verdict(study, {"a": 0, "b": "z"}) is None  # too few trials to fit


def test_infeasible_trials_do_not_screen_anything():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for a in (0, 1):
        for b in "xyz":
            study.add_trial(create_trial(params={"a": a, "b": b}, distributions=DISTS, values=list(truth(a, b)),
                                         user_attrs=record_attributes(*truth(a, b), feasible=False)))
    assert Prescreener(min_trials=2).verdict(study, {"a": 0, "b": "z"}) is None
    assert not study.get_trials(states=(TrialState.PRUNED,))
