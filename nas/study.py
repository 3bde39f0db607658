"""The Optuna multi-objective study: maximise accuracy, minimise expected EDP, under constraints.

Each trial decodes a genotype define-by-run from ``trial.suggest_categorical``, scores it with
:class:`~nas.objectives.CandidateEvaluator`, stores everything as user attributes, and reports its
constraint values through the sampler's ``constraints_func`` (so Optuna and optuna-dashboard mark
infeasible trials). A candidate that cannot be costed or evaluated becomes a FAIL trial whose
``fail_reason`` attribute says why; the study goes on.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from hwmodel import MappingError
from nas.config import SearchConfig
from nas.objectives import CandidateEvaluator
from search_spaces import GenotypeError, SearchSpace

METRIC_NAMES = ("accuracy", "expected_edp_j_cycles")
DIRECTIONS = ("maximize", "minimize")


class CandidateError(RuntimeError):
    """A candidate that could not be scored; the trial fails with this reason."""


class StorageError(ValueError):
    """A storage URL that Optuna cannot open (names the URL and what was expected)."""


def constraints_of(trial: FrozenTrial) -> Sequence[float]:
    """Constraint values recorded by the objective (<= 0 is feasible)."""
    return list(trial.user_attrs.get("constraints", {}).values())


def make_sampler(cfg: SearchConfig) -> optuna.samplers.BaseSampler:
    """NSGA-II (default), TPE or random, seeded, with the exit-overhead constraints attached.

    Constraints go through ``constraints_func``, which Optuna 5 still supports but marks deprecated
    in favour of ``Trial.set_constraint``: optuna-dashboard 0.21 reads only the list that
    ``constraints_func`` stores, and marking infeasible trials in the dashboard matters more here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*constraints_func.*", category=FutureWarning)
        if cfg.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(population_size=cfg.population_size, seed=cfg.seed,
                                                 constraints_func=constraints_of)
        if cfg.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=cfg.seed, constraints_func=constraints_of, multivariate=True)
    return optuna.samplers.RandomSampler(seed=cfg.seed)


def storage_for(url: str) -> RDBStorage:
    """An RDB storage with heartbeats, so trials of a killed worker are failed and retried."""
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5, and the supported way
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, heartbeat_interval=30, grace_period=90,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many types for bad URLs
        raise StorageError(f"{url}: expected an Optuna storage URL such as sqlite:///path/study.db or "
                           f"postgresql://user@127.0.0.1/db ({type(exc).__name__}: {exc})") from None


def sqlite_url(run_dir: str | Path) -> str:
    """Storage URL of a run folder's study file."""
    return f"sqlite:///{(Path(run_dir) / 'study.db').resolve()}"


def open_study(cfg: SearchConfig, storage: str, *, create: bool = True) -> optuna.Study:
    """Create or resume the study named ``cfg.study_name`` in ``storage``."""
    store = storage_for(storage)
    if not create:
        return optuna.load_study(study_name=cfg.study_name, storage=store, sampler=make_sampler(cfg))
    study = optuna.create_study(study_name=cfg.study_name, storage=store, sampler=make_sampler(cfg),
                                directions=list(DIRECTIONS), load_if_exists=True)
    if study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(METRIC_NAMES))
    return study


def make_objective(space: SearchSpace, evaluator: CandidateEvaluator):  # noqa: ANN201 - Optuna callable
    """The objective: decode, evaluate, record, return (accuracy, expected EDP)."""

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        genotype = space.decode(trial.suggest_categorical)
        trial.set_user_attr("genotype", genotype.to_dict())
        try:
            ev = evaluator(genotype)
        except (MappingError, GenotypeError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason)
            raise CandidateError(reason) from exc
        for key, value in ev.attributes(space).items():
            trial.set_user_attr(key, value)
        return ev.stats.accuracy, ev.expected.expected_edp

    return objective


def finished_trials(study: optuna.Study) -> int:
    """Trials that will not run again (complete, pruned or failed without a retry)."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))


def run_study(study: optuna.Study, space: SearchSpace, evaluator: CandidateEvaluator, n_trials: int,
              *, progress: bool = True) -> optuna.Study:
    """Run trials until ``n_trials`` have finished in this study (a re-run resumes)."""
    from tqdm.auto import tqdm

    remaining = max(0, n_trials - finished_trials(study))
    bar = tqdm(total=remaining, desc="search", unit="trial", disable=not progress)

    def report(_study: optuna.Study, trial: FrozenTrial) -> None:
        bar.update()
        if trial.state == TrialState.FAIL and progress:
            reason = str(trial.user_attrs.get("fail_reason", "see the trial's attributes")).splitlines()[0]
            bar.write(f"trial {trial.number} failed: {reason}")
        elif trial.state == TrialState.COMPLETE:
            a = trial.user_attrs
            bar.set_postfix(acc=f"{a['accuracy']:.3f}", edp=f"{a['expected_edp_j_cycles']:.3g}",
                            exits="".join(a["exit_labels"]), feasible=a["feasible"])

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are reported in one line above
    try:
        study.optimize(make_objective(space, evaluator), n_trials=remaining, catch=(CandidateError,),
                       callbacks=[report])
    finally:
        optuna.logging.set_verbosity(previous)
        bar.close()
    return study


def pareto_trials(study: optuna.Study, *, feasible_only: bool = True) -> list[FrozenTrial]:
    """Pareto-optimal complete trials, sorted by expected EDP (feasible ones only by default)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if feasible_only:
        trials = [t for t in trials if all(v <= 0 for v in constraints_of(t))]
    front = []
    for t in trials:
        acc, edp = t.values
        dominated = any(
            (o.values[0] >= acc and o.values[1] <= edp) and (o.values[0] > acc or o.values[1] < edp) for o in trials
        )
        if not dominated:
            front.append(t)
    return sorted(front, key=lambda t: t.values[1])
