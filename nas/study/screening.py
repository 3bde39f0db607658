"""Multi-fidelity search: NSGA-II screens predicted candidates, the promising ones are really evaluated.

Once the study holds ``min_trials`` complete trials, every time its queue runs dry a screening round:

1. refits the surrogate of :mod:`nas.study.prescreen` (ridge regression on one-hot parameters,
   minimised positive objectives in log space) and a ridge model of the constraint values on every
   complete trial;
2. runs ``candidates`` trials of an Optuna study in memory (NSGA-II, the study's directions, the same
   pinned parameters and the same constraints mechanism) whose first generation is the real trials
   with their real values (``rivals="evaluated"``) or with the values the surrogate predicts for each
   when fit without it (``rivals="predicted"``: predictions shrink towards the mean, so candidates
   then meet rivals that shrink alike), and whose objective and constraints are the predictions
   (milliseconds a candidate: its study lives in :class:`PredictedTrialsStorage`, which writes
   NSGA-II's sample at once);
3. enqueues in the real study up to ``picks`` candidates of that study's feasible Pareto front that
   were predicted, not evaluated, spread along the front, each with the user attribute
   ``screening``: the round, the predicted values and the number of candidates screened.

The real study holds really evaluated trials only (so its Pareto front does too); each records its
``fidelity`` (``"evaluated"``). The study's user attribute ``screened_candidates`` counts the predicted
candidates of all rounds, ``screening_rounds`` the rounds. Pre-screening (:mod:`nas.study.prescreen`)
is the other use of the same surrogate: it prunes a sampled candidate, while this proposes them.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

from nas.study.predictors import RidgePredictor
from nas.study.prescreen import Surrogate
from search_spaces import SearchSpace

SCREENED = "screened_candidates"  # study user attribute: predicted candidates of every round
ROUNDS = "screening_rounds"  # study user attribute: rounds run


def params_key(params: dict[str, Any]) -> str:
    """One string per parameter assignment (to tell whether a candidate was evaluated)."""
    return json.dumps(params, sort_keys=True, default=str)


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """A trial's parameters; for a trial still waiting in the queue, the ones it was enqueued with."""
    return trial.params or dict(trial.system_attrs.get("fixed_params", {}))


def feasible_front(trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection]
                   ) -> list[FrozenTrial]:
    """The non-dominated trials among those whose stored constraints are all <= 0 (vectorised: the
    screening study's thousands of trials, where ``Study.best_trials`` copies every trial)."""
    ok = [t for t in trials if t.values is not None and all(c <= 0 for c in t.system_attrs.get("constraints", ()))]
    if not ok:
        return []
    signs = np.array([1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in directions])
    v = np.array([t.values for t in ok]) * signs  # all minimised
    no_worse = (v[:, None, :] <= v[None, :, :]).all(-1)  # [i, j]: i is nowhere worse than j
    better = (v[:, None, :] < v[None, :, :]).any(-1)
    dominated = (no_worse & better).any(0)
    return [t for t, d in zip(ok, dominated) if not d]


def spread(items: Sequence[FrozenTrial], k: int) -> list[FrozenTrial]:
    """``k`` of ``items`` (sorted by their first objective) at evenly spaced positions, ends included."""
    ordered = sorted(items, key=lambda t: t.values[0])
    if len(ordered) <= k:
        return ordered
    picks = np.unique(np.linspace(0, len(ordered) - 1, k).round().astype(int))
    return [ordered[i] for i in picks]


class KnownSpaceNSGAII(optuna.samplers.NSGAIISampler):
    """NSGA-II told its search space up front. The spaces here ask for the same parameters in every
    trial; Optuna's NSGA-II infers the space again before each one (a deep copy of ~150
    distributions), about a third of a screened candidate's cost."""

    def __init__(self, search_space: dict[str, BaseDistribution], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._known_space = dict(sorted(search_space.items()))  # by name, as Optuna orders an inferred space

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._known_space)  # a copy: PartialFixedSampler deletes the pinned ones from it

    @classmethod
    def _get_generation_key(cls) -> str:
        """NSGA-II's. Optuna's GA samplers name the system attribute holding a trial's generation after
        their class: under its own name ("KnownSpaceNSGAII:generation") this sampler would not see the
        real trials, tagged as NSGA-II's first generation, and would screen from random candidates."""
        return optuna.samplers.NSGAIISampler._get_generation_key()


GENERATION = KnownSpaceNSGAII._get_generation_key()  # where the screening study's NSGA-II keeps it


class PredictedTrialsStorage(InMemoryStorage):
    """Optuna's in-memory storage for the screening study, with a bulk write of a trial's parameters.

    A screened candidate has ~150 parameters. Suggesting them one by one costs more than everything
    else a candidate does: ``Trial.suggest_categorical`` re-checks the distribution twice and
    ``InMemoryStorage.set_trial_param`` copies the trial and its parameter dict on every write
    (quadratic in the parameters). :func:`decode_predicted` takes NSGA-II's relative sample (drawn for
    the told space, so already checked against it) and writes it with :meth:`write_params` at once."""

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        """As Optuna's, but a template (a real trial of the first generation) is copied one level deep:
        its parameter values and distributions are immutable, and Optuna's deep copy of ~150
        distributions per real trial grows every round with the study."""
        trial_id = super().create_new_trial(study_id)  # numbered and registered, running
        if template_trial is not None:
            with self._lock:
                trial = copy.copy(template_trial)
                trial.params, trial.distributions = dict(trial.params), dict(trial.distributions)
                trial.user_attrs, trial.system_attrs = dict(trial.user_attrs), dict(trial.system_attrs)
                trial.number, trial._trial_id = self._get_trial(trial_id).number, trial_id
                self._set_trial(trial_id, trial)
                self._update_cache(trial_id, study_id)
        return trial_id

    def write_params(self, trial_id: int, params: dict[str, Any], distributions: dict[str, BaseDistribution]
                     ) -> None:
        """Set ``params`` (external values) of the running trial ``trial_id``, in place."""
        with self._lock:
            trial = self._get_trial(trial_id)
            self.check_trial_is_updatable(trial_id, trial.state)
            known = self._studies[self._trial_id_to_study_id_and_number[trial_id][0]].param_distribution
            for name, value in params.items():
                known.setdefault(name, distributions[name])
                trial.params[name] = value
                trial.distributions[name] = distributions[name]


def decode_predicted(trial: optuna.Trial, space: SearchSpace, distributions: dict[str, BaseDistribution]
                     ) -> dict[str, Any]:
    """Decode a screening trial's candidate; returns its parameters. In a :class:`PredictedTrialsStorage`
    the parameters NSGA-II sampled relatively are written in one call, the others (NSGA-II's first
    generation, pinned parameters) suggested as usual; elsewhere every parameter is suggested."""
    params: dict[str, Any] = {}
    storage = trial.storage
    relative = trial.relative_params if isinstance(storage, PredictedTrialsStorage) else {}
    direct: dict[str, Any] = {}

    def choose(name: str, options: Sequence[Any]) -> Any:
        if name in relative and relative[name] in options:
            params[name] = direct[name] = relative[name]
        else:
            params[name] = trial.suggest_categorical(name, options)
        return params[name]

    space.decode(choose)
    if direct:
        cast(PredictedTrialsStorage, storage).write_params(trial._trial_id, direct, distributions)
    return params


@dataclass(frozen=True)
class Screener:
    """Proposes candidates to evaluate from predicted ones (see the module docstring)."""

    candidates: int = 1000  # predicted candidates per round (milliseconds each, mostly NSGA-II and Optuna's trials)
    picks: int = 8  # candidates enqueued per round (the real evaluations it buys)
    min_trials: int = 10  # complete trials before the first round
    population_size: int = 50  # NSGA-II population of the screening study
    ridge: float | tuple[float, ...] = 1.0  # one strength, or several to pick from (RidgePredictor)
    seed: int = 0
    fixed: dict[str, Any] = field(default_factory=dict)  # parameters pinned in the study (never sampled)
    rivals: Literal["evaluated", "predicted"] = "evaluated"  # the real trials' values in the screening study

    def due(self, study: optuna.Study) -> bool:
        """Whether a round should run now: enough complete trials and nothing waiting in the queue."""
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.WAITING))
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        return complete >= self.min_trials and complete == len(trials)

    def round(self, study: optuna.Study, space: SearchSpace) -> list[FrozenTrial]:
        """Run one screening round and enqueue its picks in ``study``; returns the picked (predicted)
        trials of the screening study, [] when there are too few complete trials or no new candidate."""
        complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.values is not None]
        if len(complete) < self.min_trials:
            return []
        surrogate = Surrogate(complete, study.directions, self.ridge)
        names = sorted({k for t in complete for k in t.user_attrs.get("constraints", {})})
        limits = RidgePredictor([t.params for t in complete],
                                np.array([[t.user_attrs.get("constraints", {}).get(n, 0.0) for n in names]
                                          for t in complete]).reshape(len(complete), -1), self.ridge) if names else None
        rounds = int(study.user_attrs.get(ROUNDS, 0))
        distributions: dict[str, BaseDistribution] = {  # the told space, and what write_params records
            name: CategoricalDistribution(options) for name, options in space.parameters().items()}
        screen = self._screening_study(study, rounds, distributions)
        if self.rivals == "predicted":  # like with like: each real trial as the surrogate predicts it unseen
            values = surrogate.loo_values()
            constraints = limits.loo_predictions.tolist() if limits is not None else [[] for _ in complete]
        else:
            values = [list(t.values) for t in complete]
            constraints = [[t.user_attrs.get("constraints", {}).get(n, 0.0) for n in names] for t in complete]
        screen.add_trials([optuna.trial.create_trial(  # the first generation, with its constraint values
            params=t.params, distributions=t.distributions, values=v, user_attrs={"real": t.number},
            system_attrs={"constraints": c, GENERATION: 0}) for t, v, c in zip(complete, values, constraints)])

        def predicted(trial: optuna.Trial) -> tuple[float, ...]:
            params = decode_predicted(trial, space, distributions)
            if limits is not None:
                trial.set_user_attr("constraints", dict(zip(names, map(float, limits.predict([params])[0]))))
            return tuple(surrogate.predict(params).values)

        previous = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            screen.optimize(predicted, n_trials=self.candidates)
        finally:
            optuna.logging.set_verbosity(previous)
        known = {params_key(trial_params(t)) for t in study.get_trials(deepcopy=False)}
        fresh: dict[str, FrozenTrial] = {}
        for t in feasible_front(screen.get_trials(deepcopy=False), study.directions):  # real trials included
            if "real" not in t.user_attrs and params_key(t.params) not in known:
                fresh.setdefault(params_key(t.params), t)
        picks = spread(list(fresh.values()), self.picks)
        for t in picks:
            study.enqueue_trial(t.params, user_attrs={"screening": {
                "round": rounds, "predicted": list(t.values),
                "predicted_constraints": t.user_attrs.get("constraints", {}),
                "candidates": self.candidates, "fit_trials": len(complete)}})
        study.set_user_attr(ROUNDS, rounds + 1)
        study.set_user_attr(SCREENED, int(study.user_attrs.get(SCREENED, 0)) + self.candidates)
        return picks

    def _screening_study(self, study: optuna.Study, rounds: int, distributions: dict[str, BaseDistribution]
                         ) -> optuna.Study:
        """An in-memory study with ``study``'s directions: NSGA-II told the space's ``distributions``, with
        the constraints recorded as each trial's ``constraints`` user attribute, the pinned parameters fixed."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*constraints_func.*", category=FutureWarning)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler: optuna.samplers.BaseSampler = KnownSpaceNSGAII(
                distributions,
                population_size=self.population_size, seed=self.seed + rounds,
                constraints_func=lambda t: list(t.user_attrs.get("constraints", {}).values()))
            if self.fixed:
                sampler = optuna.samplers.PartialFixedSampler(self.fixed, sampler)
        previous = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "a new study created in memory" line
        try:
            return optuna.create_study(storage=PredictedTrialsStorage(), directions=study.directions, sampler=sampler)
        finally:
            optuna.logging.set_verbosity(previous)
