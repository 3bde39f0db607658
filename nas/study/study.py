"""The Optuna multi-objective study: maximise accuracy, minimise expected EDP, under constraints.

Each trial decodes a genotype define-by-run from ``trial.suggest_categorical``, scores it with
:class:`~nas.study.evaluator.CandidateEvaluator`, stores everything as user attributes, and reports its
constraint values through the sampler's ``constraints_func`` (so Optuna and optuna-dashboard mark
infeasible trials). A candidate that cannot be costed or evaluated becomes a FAIL trial whose
``fail_reason`` attribute says why; the study goes on.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import download_artifact, get_all_artifact_meta, upload_artifact
from optuna.artifacts._protocol import ArtifactStore
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hwmodel import MappingError
from nas.config import SearchConfig
from nas.files import process_alive
from nas.report.plots import plot_ribbon
from nas.study.evaluator import CandidateEvaluator, Evaluation
from nas.study.metrics import METRIC_NAMES, OBJECTIVES, Objective  # noqa: F401 - re-exported
from nas.study.prescreen import Prescreener
from nas.study.record import TrialRecord
from nas.study.screening import Screener
from nas.study.storage import StorageError, storage_for, worker_id
from search_spaces import GenotypeError, SearchSpace


class CandidateError(RuntimeError):
    """A candidate that could not be scored; the trial fails with this reason."""


class TrialError(ValueError):
    """A trial asked for by number that the study lacks, or that holds no evaluated candidate."""


class SearchFailedError(RuntimeError):
    """A study whose every finished trial failed (the message counts the reasons)."""


def raise_if_all_failed(study: optuna.Study) -> None:
    """SearchFailedError summing up the reasons when ``study`` has failed trials and no complete one."""
    trials = study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if not failed or any(t.state == TrialState.COMPLETE for t in trials):
        return
    reasons: dict[str, int] = {}
    for t in failed:
        reason = str(t.user_attrs.get("fail_reason", "no reason recorded")).splitlines()[0][:160]
        reasons[reason] = reasons.get(reason, 0) + 1
    summary = "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
    raise SearchFailedError(f"study {study.study_name!r}: all {len(failed)} trials failed ({summary})")


def evaluated_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial ``number`` of ``study``, which must hold an evaluated candidate; TrialError otherwise."""
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise TrialError(f"--trial {number}: expected a trial number of study {study.study_name!r} "
                         f"(0..{len(trials) - 1})" if trials else f"--trial {number}: study {study.study_name!r} "
                         "has no trials yet")
    trial = trials[number]
    if TrialRecord.of(trial) is None:
        reason = trial.user_attrs.get("fail_reason")
        raise TrialError(f"--trial {number}: expected a complete trial with an evaluated candidate; trial {number} "
                         f"is {trial.state.name}" + (f" ({reason})" if reason else ""))
    return trial


def constraints_of(trial: FrozenTrial) -> Sequence[float]:
    """Constraint values recorded by the objective (<= 0 is feasible)."""
    return list(trial.user_attrs.get("constraints", {}).values())


def make_sampler(cfg: SearchConfig, fixed: dict[str, Any] | None = None) -> optuna.samplers.BaseSampler:
    """NSGA-II (default), NSGA-III, TPE or random, seeded, with the exit-overhead constraints attached;
    with ``fixed`` (parameter name -> value) wrapped so those parameters are never sampled.

    Constraints go through ``constraints_func``, which Optuna 5 still supports but marks deprecated
    in favour of ``Trial.set_constraint``: optuna-dashboard 0.21 reads only the list that
    ``constraints_func`` stores, and marking infeasible trials in the dashboard matters more here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*constraints_func.*", category=FutureWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # NSGA-III is "experimental"
        sampler: optuna.samplers.BaseSampler
        if cfg.sampler == "nsga2":
            sampler = optuna.samplers.NSGAIISampler(population_size=cfg.population_size, seed=cfg.seed,
                                                    constraints_func=constraints_of)
        elif cfg.sampler == "nsga3":
            sampler = optuna.samplers.NSGAIIISampler(population_size=cfg.population_size, seed=cfg.seed,
                                                     constraints_func=constraints_of)
        elif cfg.sampler == "tpe":
            sampler = optuna.samplers.TPESampler(seed=cfg.seed, constraints_func=constraints_of, multivariate=True)
        else:
            sampler = optuna.samplers.RandomSampler(seed=cfg.seed)
        return optuna.samplers.PartialFixedSampler(fixed, sampler) if fixed else sampler


def open_study(cfg: SearchConfig, storage: str, *, create: bool = True, fixed: dict[str, Any] | None = None
               ) -> optuna.Study:
    """Create or resume the study named ``cfg.study_name`` in ``storage`` (objectives must match);
    ``fixed``: parameters the sampler pins (see :meth:`SearchSpace.fixed_params`)."""
    store = storage_for(storage, cfg.heartbeat_s)
    sampler = make_sampler(cfg, fixed)
    if not create:
        try:
            return optuna.load_study(study_name=cfg.study_name, storage=store, sampler=sampler)
        except KeyError:
            raise StorageError(f"{storage}: expected a study named {cfg.study_name!r}") from None
    objectives = [OBJECTIVES[o] for o in cfg.objectives]
    try:
        study = optuna.create_study(study_name=cfg.study_name, storage=store, sampler=sampler,
                                    directions=[o.direction for o in objectives], load_if_exists=True)
    except ValueError as exc:
        raise StorageError(f"{storage}: study {cfg.study_name!r} exists with other objectives than "
                           f"{list(cfg.objectives)} ({exc})") from None
    resumed = len(study.get_trials(deepcopy=False))
    if resumed:  # a re-seeded sampler would replay the proposals it made before the interruption
        study.sampler = make_sampler(dataclasses.replace(cfg, seed=cfg.seed + resumed), fixed)
    metrics = [o.metric for o in objectives]
    if study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metrics)
    elif list(study.metric_names) != metrics:
        raise StorageError(f"{storage}: study {cfg.study_name!r} optimises {study.metric_names}; the configuration "
                           f"asks for {metrics} (use another search.study_name)")
    return study


def enqueue_baselines(study: optuna.Study, space: SearchSpace, names: Sequence[str]) -> list[str]:
    """On a study without trials, enqueue the space's named baselines (static network, published
    exit sets, ...) so they are evaluated first; returns the names enqueued."""
    if study.get_trials(deepcopy=False):
        return []
    for name, genotype in space.named_baselines(names).items():
        study.enqueue_trial(space.encode(genotype), user_attrs={"baseline": name}, skip_if_exists=True)
    return list(names)


def ribbon_file(number: int) -> str:
    """The file name of trial ``number``'s ribbon plot among its artifacts."""
    return f"ribbon_trial_{number}.png"


def attach_ribbon(trial: optuna.Trial, ev: Evaluation, bits: dict[str, str], store: ArtifactStore) -> None:
    """Upload the candidate's architecture ribbon to its trial (shown by optuna-dashboard)."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        path = plot_ribbon(ev.network, bits, Path(tmp) / ribbon_file(trial.number),
                           f"trial {trial.number}: architecture ribbon")
        upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)


def copy_ribbon(trial: optuna.Trial, earlier: FrozenTrial, store: ArtifactStore) -> None:
    """Give a trial whose candidate ``earlier`` evaluated (proposed again) a copy of that trial's
    ribbon plot, named after this trial, so optuna-dashboard shows it on either."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        metas = get_all_artifact_meta(earlier, storage=trial.study._storage)
        ribbon = next((m for m in metas if m.filename == ribbon_file(earlier.number)), None)
        if ribbon is None:  # the earlier trial has none (no artifact store then, or its plot failed)
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / ribbon_file(trial.number)
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=ribbon.artifact_id)
            upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)


def evaluated_twin(study: optuna.Study, genotype: dict[str, Any], number: int) -> FrozenTrial | None:
    """The first complete trial other than ``number`` that evaluated this genotype (as stored), if any."""
    stored = json.loads(json.dumps(genotype))
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.number != number and t.user_attrs.get("genotype") == stored and TrialRecord.of(t) is not None:
            return t
    return None


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Fail, and queue again once, the RUNNING trials whose worker was a process on this host that no
    longer exists (killed mid-trial): a restart recovers them at once instead of after 3 heartbeats."""
    host = socket.gethostname()
    storage, recovered = study._storage, []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
        if worker_host != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, "fail_reason", f"worker {host}:{pid} died during the trial")
            if not storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process recovered it first
        with warnings.catch_warnings():  # "experimental" in Optuna 5, and the supported way to retry
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=1)(study, storage.get_trial(t._trial_id))
        recovered.append(t.number)
    return recovered


def make_objective(space: SearchSpace, evaluator: CandidateEvaluator,
                   objectives: Sequence[str] = ("accuracy", "expected_edp"),
                   artifacts: ArtifactStore | None = None,
                   prescreen: Prescreener | None = None):
    """The objective: decode, (optionally) pre-screen, evaluate, record, return the configured
    objectives' values (and, with an artifact store, attach the candidate's ribbon plot to its trial)."""
    metrics = [OBJECTIVES[o].metric for o in objectives]

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        # a restart recovers the trial if this process dies: the storages of storage_for stamped the worker
        # in the write that started the trial; a study on any other storage learns it here
        trial.set_user_attr("worker", worker_id())
        genotype = space.decode(trial.suggest_categorical)
        trial.set_user_attr("genotype", genotype.to_dict())
        earlier = evaluated_twin(trial.study, trial.user_attrs["genotype"], trial.number)
        if earlier is not None:  # already evaluated (a resumed or parallel sampler proposed it again)
            for key, value in earlier.user_attrs.items():
                if key not in ("worker", "baseline", "genotype"):
                    trial.set_user_attr(key, value)
            trial.set_user_attr("duplicate_of", earlier.number)
            if artifacts is not None:
                try:
                    copy_ribbon(trial, earlier, artifacts)
                except Exception as exc:  # noqa: BLE001 - a plot must never cost the trial its result
                    trial.set_user_attr("artifact_error", f"{type(exc).__name__}: {exc}")
            record = TrialRecord.from_attributes(earlier.number, earlier.user_attrs)
            return tuple(record.metric(m) for m in metrics)
        if prescreen is not None and "baseline" not in trial.user_attrs:
            verdict = prescreen.verdict(trial.study, trial.params)
            if verdict is not None:
                trial.set_user_attr("prescreen", verdict)
                raise optuna.TrialPruned(f"pre-screened: predicted to be dominated by trial {verdict['dominated_by']}")
        try:
            ev = evaluator(genotype)
        except (MappingError, GenotypeError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason)
            raise CandidateError(reason) from exc
        attributes = {**ev.attributes(space), "fidelity": "evaluated"}  # screened candidates are never trials
        record = TrialRecord.from_attributes(trial.number, attributes)  # the typed record the readers get back
        for key, value in attributes.items():
            trial.set_user_attr(key, value)
        if artifacts is not None:
            try:
                attach_ribbon(trial, ev, dict(record.bits), artifacts)
            except Exception as exc:  # noqa: BLE001 - a plot must never cost the trial its result
                trial.set_user_attr("artifact_error", f"{type(exc).__name__}: {exc}")
        return tuple(record.metric(m) for m in metrics)

    return objective


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def finished_trials(study: optuna.Study, *, running: bool = False) -> int:
    """Trials that count against the budget: complete, pruned or failed (with ``running``: also the
    ones running now), less the failed ones that a retry replaces (a worker died during them)."""
    trials = study.get_trials(deepcopy=False)
    states = (*FINISHED, TrialState.RUNNING) if running else FINISHED
    retried = {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}
    return sum(1 for t in trials if t.state in states and t.number not in retried)


def run_study(study: optuna.Study, space: SearchSpace, evaluator: CandidateEvaluator, n_trials: int,
              *, progress: bool = True, objectives: Sequence[str] = ("accuracy", "expected_edp"),
              artifacts: ArtifactStore | None = None, prescreen: Prescreener | None = None,
              screener: Screener | None = None, timeout_s: float | None = None) -> optuna.Study:
    """Run trials until ``n_trials`` have finished in this study, counting every worker's (a re-run
    resumes; several workers on one storage share the budget). With ``screener``, whenever the queue
    runs dry a screening round enqueues the candidates to evaluate next (:mod:`nas.study.screening`).
    ``timeout_s``: stop starting trials after this many seconds (wall time) as well."""
    from tqdm.auto import tqdm

    with warnings.catch_warnings():  # fail (and retry) trials whose worker died, before counting
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_orphaned_trials(study)
        optuna.storages.fail_stale_trials(study)
    # trials running in other workers count against the budget: N workers overshoot by < N trials
    remaining = max(0, n_trials - finished_trials(study, running=True))
    bar = tqdm(total=remaining, desc="search", unit="trial", disable=not progress)

    def report(study: optuna.Study, trial: FrozenTrial) -> None:
        bar.update()
        done = finished_trials(study, running=True) >= n_trials
        if done:
            study.stop()
        if trial.state == TrialState.FAIL and progress:
            reason = str(trial.user_attrs.get("fail_reason", "see the trial's attributes")).splitlines()[0]
            bar.write(f"trial {trial.number} failed: {reason}")
        elif (record := TrialRecord.of(trial)) is not None:
            bar.set_postfix(acc=f"{record.accuracy:.3f}", edp=f"{record.expected_edp_j_cycles:.3g}",
                            exits=record.exits, feasible=record.feasible)
        if screener is not None and not done and screener.due(study):
            bar.set_postfix_str(f"screening {screener.candidates} predicted candidates")
            screener.round(study, space)

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are reported in one line above
    try:
        if remaining:
            study.optimize(make_objective(space, evaluator, objectives, artifacts, prescreen), n_trials=remaining,
                           catch=(CandidateError,), callbacks=[report], timeout=timeout_s)
    finally:
        optuna.logging.set_verbosity(previous)
        bar.close()
    return study


def pareto_trials(study: optuna.Study, *, feasible_only: bool = True) -> list[FrozenTrial]:
    """Pareto-optimal complete trials under the study's objectives and directions (feasible ones only
    by default, by :attr:`TrialRecord.feasible`), sorted by expected EDP. The front is Optuna's own
    (``Study.best_trials``), taken over the held trials' values in a study in memory: the constraints
    Optuna stores exist only for samplers given ``constraints_func`` (not the random sampler)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    held = {t.number: r for t in complete if (r := TrialRecord.of(t)) is not None and (r.feasible or not feasible_only)}
    by_number = {t.number: t for t in complete if t.number in held}
    front = [by_number[n] for n in pareto_numbers(study.directions, {n: t.values for n, t in by_number.items()})]
    return sorted(front, key=lambda t: held[t.number].expected_edp_j_cycles)


def pareto_numbers(directions: Sequence[StudyDirection], values: Mapping[int, Sequence[float]]) -> list[int]:
    """The keys of ``values`` (trial numbers) whose objective values are Pareto-optimal under ``directions``:
    Optuna's own front (``Study.best_trials``) over a study in memory."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created in memory" line
    try:
        values_only = optuna.create_study(directions=list(directions))
    finally:
        optuna.logging.set_verbosity(previous)
    values_only.add_trials([optuna.trial.create_trial(values=list(v), user_attrs={"trial": n})
                            for n, v in values.items()])
    return [t.user_attrs["trial"] for t in values_only.best_trials]
