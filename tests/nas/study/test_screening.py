"""Multi-fidelity screening: predicted candidates proposed, only evaluated ones in the study."""

from __future__ import annotations

import math
import random

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from nas.study.predictors import RIDGE_GRID
from nas.study.screening import ROUNDS, SCREENED, Screener, params_key, trial_params
from search_spaces.registry import space_from_config
from tests.helpers import record_attributes

SPACE = {"name": "mobilenetv2_cifar", "options": {"width_mult": 0.25, "bits_choices": [4, 8]}}


def truth(params: dict) -> tuple[float, float, float]:
    """An additive model of the parameters (what the surrogate can learn): accuracy rises with later
    exits and with the threshold, expected EDP rises with the threshold and with every exit mounted;
    the constraint is violated by candidates with fewer than two exits."""
    exits = [k for k, v in params.items() if k.startswith("exit_") and len(k) == 6 and v]
    threshold = float(params.get("threshold", 0.9))
    accuracy = 0.6 + 0.02 * len(exits) + 0.2 * threshold
    edp = math.exp(1.0 + 0.1 * len(exits) + 2.0 * threshold)
    return accuracy, edp, 1.5 - len(exits)


def real_study(space, n: int, seed: int = 0) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    rng = random.Random(seed)
    for _ in range(n):
        params = space.encode(space.sample(rng))
        dists: dict = {}

        def choose(name, options, params=params, dists=dists):  # the distributions decode asks for
            dists[name] = CategoricalDistribution(list(options))
            return params[name]

        space.decode(choose)
        acc, edp, c = truth(params)
        study.add_trial(create_trial(params=params, distributions=dists, values=[acc, edp],
                                     user_attrs=record_attributes(acc, edp, constraints={"exits": c})))
    return study


def dominated(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether b dominates a (accuracy maximised, EDP minimised)."""
    return b[0] >= a[0] and b[1] <= a[1] and b != a


def test_a_round_enqueues_new_predicted_front_candidates_and_counts_what_it_screened():
    space = space_from_config(SPACE)
    study = real_study(space, 30)
    screener = Screener(candidates=300, picks=4, min_trials=10, population_size=30)
    assert screener.due(study)
    picks = screener.round(study, space)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert 1 <= len(waiting) == len(picks) <= 4
    evaluated = {params_key(t.params) for t in study.get_trials(states=(TrialState.COMPLETE,))}
    for t in waiting:
        assert params_key(trial_params(t)) not in evaluated  # a new candidate, proposed, not yet a trial's result
        info = t.user_attrs["screening"]
        assert info["round"] == 0 and info["candidates"] == 300 and info["fit_trials"] == 30
        assert len(info["predicted"]) == 2 and set(info["predicted_constraints"]) == {"exits"}
    assert study.user_attrs[SCREENED] == 300 and study.user_attrs[ROUNDS] == 1
    assert not screener.due(study)  # its picks wait in the queue

    # what it proposes is better than what random search would try: fewer of its picks are dominated by
    # the trials so far (true values) than of random candidates, and every pick is feasible
    front = [tuple(t.values) for t in study.get_trials(states=(TrialState.COMPLETE,))]
    picked = [truth(trial_params(t)) for t in waiting]
    rng = random.Random(1)
    randoms = [truth(space.encode(space.sample(rng))) for _ in range(200)]

    def share_dominated(points):
        return sum(any(dominated(p[:2], f) for f in front) for p in points) / len(points)

    assert all(p[2] <= 0 for p in picked)
    assert share_dominated(picked) < share_dominated(randoms)


def test_no_round_before_enough_trials():
    space = space_from_config(SPACE)
    study = real_study(space, 5)
    screener = Screener(candidates=50, min_trials=10)
    assert not screener.due(study) and screener.round(study, space) == []
    assert not study.get_trials(states=(TrialState.WAITING,)) and SCREENED not in study.user_attrs


def test_a_screened_search_holds_evaluated_trials_only(tiny_run, tmp_path):
    from dataclasses import replace

    from nas import api
    from nas.study.study import pareto_trials

    cfg, supernet, _study, data = tiny_run
    cfg = replace(cfg, run_dir=str(tmp_path), search=replace(
        cfg.search, n_trials=9, study_name="screened", screening=True, screening_candidates=300, screening_picks=2,
        screening_min_trials=4, trial_plots=False, surrogate_ridge="loo", screening_rivals="predicted"))
    assert api.screener(cfg, data[1]).ridge == RIDGE_GRID  # each objective's strength by leave-one-out
    assert api.screener(cfg, data[1]).rivals == "predicted"
    study = api.search(cfg, supernet, progress=False, data=data)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) >= 9 - len(study.get_trials(states=(TrialState.FAIL,)))
    assert all(t.user_attrs["fidelity"] == "evaluated" for t in complete)
    screened = [t for t in complete if "screening" in t.user_attrs]
    assert screened and study.user_attrs[SCREENED] >= 300 * study.user_attrs[ROUNDS] >= 300
    assert {t.number for t in pareto_trials(study, feasible_only=False)} <= {t.number for t in complete}


def test_telling_nsga2_the_space_changes_no_proposal(monkeypatch):
    """KnownSpaceNSGAII skips Optuna's per-trial inference of the search space; it proposes what
    Optuna's own NSGA-II proposes (which also needs it to find the real trials' generation tags)."""
    from nas.study import screening

    space = space_from_config(SPACE)

    def picks() -> list[dict]:
        screener = Screener(candidates=200, picks=4, population_size=20)
        return [p.params for p in screener.round(real_study(space, 30), space)]

    told = picks()
    monkeypatch.setattr(screening, "KnownSpaceNSGAII", lambda space, **kw: optuna.samplers.NSGAIISampler(**kw))
    assert told and told == picks()


def test_the_real_trials_are_the_screening_studys_first_generation(monkeypatch):
    """NSGA-II breeds the screening study's second generation from the real trials: with as many real
    trials as its population, the first predicted candidate is of generation 1 and its parents real."""
    from nas.study import screening

    space = space_from_config(SPACE)
    studies: list[optuna.Study] = []
    make = screening.Screener._screening_study
    monkeypatch.setattr(screening.Screener, "_screening_study",
                        lambda self, *a: studies.append(make(self, *a)) or studies[-1])
    Screener(candidates=40, picks=4, population_size=20).round(real_study(space, 20), space)
    trials = studies[0].get_trials(deepcopy=False)
    assert [t.system_attrs[screening.GENERATION] for t in trials[:21]] == [0] * 20 + [1]
    assert all("real" in t.user_attrs for t in trials[:20])


def test_the_screening_storage_changes_no_proposal_and_leaves_the_real_trials_alone(monkeypatch):
    """PredictedTrialsStorage writes NSGA-II's sample at once and copies the real trials one level deep;
    Optuna's InMemoryStorage (every parameter suggested, deep copies) proposes the same candidates, and
    the round changes nothing in the real study's trials."""
    import copy

    space = space_from_config(SPACE)
    fixed = {"exit_A": True}

    def picks() -> list[dict]:
        study = real_study(space, 30)
        before = copy.deepcopy(study.get_trials(deepcopy=False))
        screener = Screener(candidates=200, picks=4, population_size=20, fixed=fixed)
        picked = [p.params for p in screener.round(study, space)]
        after = study.get_trials(deepcopy=False)[: len(before)]
        assert [(t.params, t.distributions, t.user_attrs, t.system_attrs) for t in after] == \
            [(t.params, t.distributions, t.user_attrs, t.system_attrs) for t in before]
        return picked

    fast = picks()
    assert fast and all(p["exit_A"] is True for p in fast)  # pinned parameters still pinned
    create_study = optuna.create_study
    monkeypatch.setattr(optuna, "create_study",
                        lambda **kw: create_study(**{**kw, "storage": optuna.storages.InMemoryStorage()}))
    assert fast == picks()


def test_predicted_rivals_enter_the_first_generation_at_their_leave_one_out_predictions(monkeypatch):
    """``rivals="predicted"``: each real trial meets the candidates at the values the surrogate predicts for
    it when fit without it (objectives and constraints), so both sides shrink alike; the round still
    proposes new candidates of the predicted front, and its picks beat random ones as before."""
    from nas.study import screening
    from nas.study.prescreen import Surrogate

    space = space_from_config(SPACE)
    study = real_study(space, 30)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    studies: list[optuna.Study] = []
    make = screening.Screener._screening_study
    monkeypatch.setattr(screening.Screener, "_screening_study",
                        lambda self, *a: studies.append(make(self, *a)) or studies[-1])
    picks = Screener(candidates=300, picks=4, population_size=30, rivals="predicted").round(study, space)
    first = studies[0].get_trials(deepcopy=False)[:30]
    expected = Surrogate(complete, study.directions).loo_values()
    for t, real, predicted in zip(first, complete, expected):
        assert t.user_attrs["real"] == real.number and t.values == pytest.approx(predicted)
        assert t.values != real.values
        assert len(t.system_attrs["constraints"]) == 1  # the "exits" constraint, predicted too
    assert 1 <= len(picks) <= 4
    evaluated = {params_key(t.params) for t in complete}
    assert all(params_key(p.params) not in evaluated for p in picks)


def test_leave_one_out_predictions_are_fits_without_the_candidate():
    from nas.study.predictors import RidgePredictor

    space = space_from_config(SPACE)
    trials = real_study(space, 25).trials
    params, y = [t.params for t in trials], np.array([t.values for t in trials])
    full = RidgePredictor(params, y, ridge=2.0)
    for i in (0, 7):  # the closed form equals refitting without candidate i (up to the shared mean)
        rest = [j for j in range(25) if j != i]
        alone = RidgePredictor([params[j] for j in rest], y[rest], ridge=2.0)
        unseen = alone.predict([params[i]])[0]
        assert full.loo_predictions[i] == pytest.approx(unseen, rel=1e-3)
        assert full.predict([params[i]])[0] != pytest.approx(unseen, rel=0.05)  # the fit that saw it differs
