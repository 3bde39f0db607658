"""End-to-end: a tiny study on the synthetic data and the reference accelerator."""

from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import TrialState

from nas import api
from nas.report.pareto import choose_trial
from nas.study.study import METRIC_NAMES, finished_trials, pareto_trials
from nas.supernet.calibrate import early_exit_stats
from tests.helpers import record_attributes, unmappable_system
from tests.nas.conftest import tiny_config


def test_study_records_objectives_attributes_and_constraints(tiny_run):
    cfg, _supernet, study, (_splits, space) = tiny_run
    assert study.metric_names == list(METRIC_NAMES)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(study.trials) == cfg.search.n_trials and len(complete) == cfg.search.n_trials
    assert any(t.user_attrs["feasible"] for t in complete) and pareto_trials(study)
    static = study.trials[0]  # the enqueued baseline: the static network (final exit only)
    assert static.user_attrs["baseline"] == "static" and static.user_attrs["exit_labels"] == ["K"]
    assert static.user_attrs["reduction_factor"] == pytest.approx(1.0)
    for t in complete:
        a = t.user_attrs
        assert sum(a["exit_ratios"]) == pytest.approx(1.0)
        assert a["accuracy"] == pytest.approx(sum(r * x for r, x in zip(a["exit_ratios"], a["exit_accuracy"])))
        assert t.values[0] == pytest.approx(a["accuracy"])
        assert t.values[1] == pytest.approx(a["expected_edp_j_cycles"])
        assert a["expected_edp_j_cycles"] == pytest.approx(
            sum(r * et for r, et in zip(a["exit_ratios"], a["et_j_cycles"])))
        assert a["reduction_factor"] == pytest.approx(a["static_edp_j_cycles"] / a["expected_edp_j_cycles"])
        assert set(a["constraints"]) == {"final_exit_ratio", "exit_overhead"}
        assert a["constraints"]["final_exit_ratio"] == pytest.approx(a["exit_ratios"][-1] - 0.5)
        assert a["feasible"] == all(v <= 0 for v in a["constraints"].values())
        assert len(a["bits"]) == len(space.backbone_layer_names()) + len(a["exit_labels"])
        assert a["exit_labels"][-1] == "K" and a["cost_model_mode"] == "fused"
        # Optuna's own constraint record, which the dashboard shows
        assert t.system_attrs["constraints"] == list(a["constraints"].values())


def test_rerunning_resumes_instead_of_restarting(tiny_run, tmp_path):
    import shutil
    from dataclasses import replace
    from pathlib import Path

    cfg, supernet, study, data = tiny_run
    # on a copy of the study: the shared one stays as the fixture made it, whatever runs after this
    shutil.copy(Path(cfg.run_dir) / "study.db", tmp_path / "study.db")
    cfg = replace(cfg, run_dir=str(tmp_path))
    again = api.search(cfg, supernet, progress=False, data=data)
    assert len(again.trials) == len(study.trials) == cfg.search.n_trials
    more = api.search(replace(cfg, search=replace(cfg.search, n_trials=cfg.search.n_trials + 2)), supernet,
                      progress=False, data=data)
    assert finished_trials(more) == cfg.search.n_trials + 2
    assert len(study.trials) == cfg.search.n_trials  # the original is untouched


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    cfg, supernet, study, data = tiny_run
    trial = choose_trial(study)
    return trial, api.export(cfg, study, trial, tmp_path_factory.mktemp("export") / "net", supernet=supernet, data=data)


def test_export_reload_reproduces_accuracy_and_exit_ratios(tiny_run, exported):
    _cfg, _supernet, _study, (splits, _space) = tiny_run
    trial, path = exported
    assert {p.name for p in path.iterdir()} == {"weights.pt", "architecture.json", "metrics.json", "modes.json",
                                                "model.onnx", "ribbon.png", "exit_costs.png"}
    loaded = api.load(path)
    stats = early_exit_stats(loaded.network, splits.val)
    assert stats.accuracy == pytest.approx(trial.user_attrs["accuracy"], abs=1e-12)
    assert list(stats.ratios) == pytest.approx(trial.user_attrs["exit_ratios"], abs=1e-12)
    assert loaded.metrics["trial"] == trial.number
    assert loaded.genotype.to_dict() == trial.user_attrs["genotype"]


def test_exported_operating_modes_replay_on_the_validation_split(tiny_run, exported):
    _cfg, _supernet, _study, (splits, _space) = tiny_run
    trial, path = exported
    loaded = api.load(path)
    assert {m.threshold for m in loaded.modes} >= {0.5, 0.75, 0.95, 1.0}
    for name in ("high_accuracy", "balanced", "energy_saving"):
        mode = loaded.set_mode(name)
        stats = early_exit_stats(loaded.network, splits.val)
        assert stats.accuracy == pytest.approx(mode.accuracy, abs=1e-12)
        assert list(stats.ratios) == pytest.approx(list(mode.exit_ratios), abs=1e-12)
    cheapest = min(loaded.modes, key=lambda m: m.expected_energy_j)
    assert (loaded.select_mode(energy_budget_j=cheapest.expected_energy_j).expected_energy_j
            == cheapest.expected_energy_j)
    # the mode at the trial's own threshold is the trial
    own = loaded.set_mode(trial.user_attrs["threshold"])
    assert own.expected_edp_j_cycles == pytest.approx(trial.user_attrs["expected_edp_j_cycles"], rel=1e-9)


def test_onnx_export_matches_the_network_and_carries_precisions(tiny_run, exported):
    import json

    import onnx
    from onnx.reference import ReferenceEvaluator

    _cfg, _supernet, _study, (splits, _space) = tiny_run
    trial, path = exported
    model = onnx.load(str(path / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["eenas.layer_bits"]) == trial.user_attrs["bits"]
    assert json.loads(meta["eenas.exit_labels"]) == trial.user_attrs["exit_labels"]
    assert [o.name for o in model.graph.output] == [f"exit_{e}" for e in trial.user_attrs["exit_labels"]]
    images = splits.val.images[:32]
    got = ReferenceEvaluator(model).run(None, {"input": images.numpy()})
    with torch.no_grad():
        want = api.load(path).network(images)
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape)
        # same formula, other summation order: equal to float precision, except that a value lying on
        # a rounding boundary may land in the neighbouring quantisation bin, which moves every logit of
        # that image, more often the deeper the exit (on this barely trained network up to 12 of 32
        # images at the last exit; on the zoo supernet, benchmarks/onnx_fidelity.py, the predicted class
        # of at least 999 in 1000 test images agrees at every exit). A wrong export moves them all.
        close = (abs(g - w.numpy()) < 1e-4 * (1 + abs(w).max().item())).all(axis=1)
        assert close.mean() >= 0.5, f"{(~close).sum()} of {len(images)} images differ"
        assert (g.argmax(1) == w.argmax(1).numpy()).mean() >= 0.9


def test_trials_and_exports_appear_as_artifacts(tiny_run, exported):
    from optuna.artifacts import get_all_artifact_meta

    _cfg, _supernet, study, _data = tiny_run
    trial, path = exported
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        names = [m.filename for m in get_all_artifact_meta(t, storage=study._storage)]
        # a candidate proposed again is not evaluated again: its trial gets a copy of the earlier trial's plot
        assert names == [f"ribbon_trial_{t.number}.png"]
        assert "artifact_error" not in t.user_attrs
    names = {m.filename for m in get_all_artifact_meta(study)}
    assert {f"trial_{trial.number}-{p.name}" for p in path.iterdir()} <= names
    assert optuna.load_study(study_name=study.study_name, storage=study._storage).user_attrs["exports"][
        str(trial.number)]["folder"] == str(path.resolve())


def test_a_candidate_that_cannot_be_mapped_becomes_a_failed_trial(tiny_run, tmp_path):
    """A core whose off-chip memory holds no layer: every trial fails with a reason; the study goes on."""
    cfg, supernet, _study, data = tiny_run
    unmappable_system(tmp_path)
    broken = tiny_config(tmp_path / "run", cost={"accelerator": str(tmp_path / "system.yaml"), "cache": None},
                         search={"n_trials": 3})
    study = api.search(broken, supernet, progress=False, data=data)
    assert len(study.trials) == 3
    for t in study.trials:
        assert t.state == TrialState.FAIL
        assert "cannot be mapped" in t.user_attrs["fail_reason"] and "edge_tpu" in t.user_attrs["fail_reason"]
    with pytest.raises(ValueError, match="no complete trial"):
        choose_trial(study)


def test_pareto_front_breaks_accuracy_ties_by_edp(tiny_run):
    _cfg, _supernet, study, _data = tiny_run
    front = pareto_trials(study, feasible_only=False)
    # a candidate proposed again shares its trial's values (the table shows them as one row)
    accuracies = [t.values[0] for t in front if "duplicate_of" not in t.user_attrs]
    assert len(accuracies) == len(set(accuracies)), "two front members with equal accuracy: one dominates"


def test_other_objectives_nsga3_and_journal_storage(tiny_run, tmp_path):
    cfg, supernet, _study, data = tiny_run
    run = tiny_config(tmp_path / "run", search={"n_trials": 3, "sampler": "nsga3", "study_name": "three",
                                                "objectives": ["accuracy", "expected_energy", "expected_latency"]})
    url = f"journal:///{tmp_path / 'study.log'}"
    study = api.search(run, supernet, progress=False, data=data, storage=url)
    assert isinstance(study.sampler, optuna.samplers.NSGAIIISampler)
    assert study.metric_names == ["accuracy", "expected_energy_j", "expected_latency_s"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MINIMIZE"]
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        assert t.values == [a["accuracy"], a["expected_energy_j"], a["expected_latency_s"]]
        assert a["expected_latency_s"] == pytest.approx(a["expected_latency_cycles"] / a["clock_hz"])
    assert len(pareto_trials(study, feasible_only=False)) >= 1
    # the journal file is the study: a second process (here: a fresh storage) reads it back
    from nas.study.study import open_study

    again = open_study(run.search, url, create=False)
    assert len(again.trials) == 3
    # reopening under other objectives is refused with the reason
    from nas.study.storage import StorageError

    other = tiny_config(tmp_path / "run", search={"study_name": "three"})
    with pytest.raises(StorageError, match="objectives|optimises"):
        open_study(other.search, url)


@pytest.mark.parametrize("sampler", ["nsga2", "random"])
def test_search_fixed_pins_the_sampled_parameters(sampler):
    from nas.config import SearchConfig
    from nas.study.study import make_sampler
    from search_spaces import create_space

    space = create_space("mobilenetv2_cifar", width_mult=0.25, kernel_choices=(3, 5, 7), expansion_choices=(3, 4, 6),
                         skippable=True, bits_choices=(4, 8))
    fixed = space.fixed_params({"backbone": "reference", "bits": 8})
    cfg = SearchConfig(sampler=sampler, population_size=4, seed=1)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(cfg, fixed))
    genotypes = []

    def objective(trial):
        g = space.decode(trial.suggest_categorical)
        genotypes.append(g)
        return len(g.exits) + g.threshold, sum(g.branch_depths)

    study.optimize(objective, n_trials=12)
    assert all(space.block_choices(g) == space.reference_choices() for g in genotypes)
    assert all(set(g.weight_bits) | set(g.act_bits) | set(g.exit_act_bits) == {8} for g in genotypes)
    assert len({g.exits for g in genotypes}) > 1  # the exits are still searched


def test_a_bad_search_fixed_key_names_the_config_and_key(tmp_path):
    with pytest.raises(ValueError, match=r"search\.fixed: kernel_b1: not a parameter of mobilenetv2_cifar"):
        tiny_config(tmp_path, search={"fixed": {"kernel_b1": 3}})  # refused when the config is built


# --- losing or duplicating work -------------------------------------------------------------------------

def _new_sqlite_study(url: str) -> int:
    from nas.study.storage import storage_for

    optuna.create_study(storage=storage_for(url), study_name="race", load_if_exists=True)
    return 0


def test_workers_started_together_on_a_new_sqlite_file_do_not_race(tmp_path):
    import multiprocessing as mp

    url = f"sqlite:///{tmp_path / 'study.db'}"
    with mp.get_context("spawn").Pool(4) as pool:
        assert pool.map(_new_sqlite_study, [url] * 4) == [0] * 4
    assert optuna.load_study(study_name="race", storage=url).trials == []


def _start_trial_and_die(url: str) -> None:
    import os

    from nas.study.storage import storage_for

    study = optuna.load_study(study_name="orphans", storage=storage_for(url))
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # the storage stamps its worker
    trial.set_user_attr("held", True)  # held, never sent: the kill must not take the worker with it
    os.kill(os.getpid(), 9)  # kill -9 at once, before the objective could write anything: no cleanup of any kind


STORAGES = {"sqlite": "sqlite:///{}/study.db", "journal": "journal:///{}/study.log"}  # the kinds that name workers


@pytest.mark.parametrize("kind", sorted(STORAGES))
def test_a_trial_whose_worker_was_killed_is_recovered_at_once(tmp_path, kind):
    import multiprocessing as mp

    from nas.study.storage import storage_for
    from nas.study.study import fail_orphaned_trials, finished_trials

    url = STORAGES[kind].format(tmp_path)
    study = optuna.create_study(storage=storage_for(url, heartbeat_s=3600), study_name="orphans")
    proc = mp.get_context("spawn").Process(target=_start_trial_and_die, args=(url,))
    proc.start()
    proc.join()
    assert proc.exitcode == -9
    (dead,) = study.get_trials(states=(TrialState.RUNNING,))
    assert fail_orphaned_trials(study) == [dead.number]  # an hour-long heartbeat: only the pid check helps
    states = {t.number: t.state for t in study.get_trials()}
    assert states[dead.number] == TrialState.FAIL and list(states.values()).count(TrialState.WAITING) == 1
    assert "died during the trial" in study.trials[dead.number].user_attrs["fail_reason"]
    assert finished_trials(study, running=True) == 0  # the retry replaces it in the budget
    assert fail_orphaned_trials(study) == []


def test_a_live_workers_trial_is_left_alone(tmp_path):
    from nas.study.storage import worker_id
    from nas.study.study import fail_orphaned_trials

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")  # Optuna's own storage
    trial = study.ask()
    trial.set_user_attr("worker", worker_id())  # as the objective does
    assert fail_orphaned_trials(study) == []


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # ask() without optimize(), on purpose
@pytest.mark.parametrize("queued", [False, True])
@pytest.mark.parametrize("kind", sorted(STORAGES))
def test_a_started_trial_names_its_worker_in_the_starting_transaction(tmp_path, kind, queued):
    import subprocess

    from nas.study.storage import storage_for, worker_id
    from nas.study.study import fail_orphaned_trials

    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = f"{worker_id().rpartition(':')[0]}:{gone.pid}"
    url = STORAGES[kind].format(tmp_path)
    study = optuna.create_study(storage=storage_for(url), study_name="stamp")
    if queued:  # a retry queued with the dead worker's attributes, taken by this live process
        study.enqueue_trial({"x": 0.5}, user_attrs={"worker": dead})
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert optuna.load_study(study_name="stamp", storage=storage_for(url)).trials[  # another reader: written
        trial.number].user_attrs["worker"] == worker_id()
    assert fail_orphaned_trials(study) == []  # a live worker's trial, however early: left alone
    assert [t.state for t in study.trials] == [TrialState.RUNNING]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # ask() without optimize(), on purpose
def test_a_resumed_study_does_not_replay_its_samplers_proposals(tmp_path):
    from nas.config import SearchConfig
    from nas.study.study import open_study

    cfg = SearchConfig(sampler="random", seed=3, study_name="resume")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    first = open_study(cfg, url)
    proposed = [first.ask(dist).params["x"] for _ in range(3)]
    again = open_study(cfg, url)  # a re-run of the same command
    assert again.ask(dist).params["x"] not in proposed


def test_a_genotype_already_evaluated_is_not_evaluated_again(tiny_run, tmp_path, monkeypatch):
    from dataclasses import replace

    from nas import api

    cfg, supernet, _study, data = tiny_run
    space = data[1]
    static = space.encode(space.baselines()["static"])
    run = replace(cfg, run_dir=str(tmp_path / "dups"), search=replace(cfg.search, n_trials=2, enqueue=()))
    study = api.prepare_study(run, space)
    study.enqueue_trial(static)
    study.enqueue_trial(static, skip_if_exists=False)
    calls = []
    original = api.CandidateEvaluator.__call__

    def counting(self, genotype):
        calls.append(genotype)
        return original(self, genotype)

    monkeypatch.setattr(api.CandidateEvaluator, "__call__", counting)  # counts; the real evaluation runs
    api.search(run, supernet, progress=False, data=data)
    first, second = study.get_trials()
    assert len(calls) == 1 and first.state == second.state == TrialState.COMPLETE
    assert second.user_attrs["duplicate_of"] == first.number and second.values == first.values


@pytest.mark.parametrize("order", [("maximize", "minimize"), ("minimize", "maximize")])
def test_pareto_front_of_the_feasible_trials_in_either_objective_order(order):
    """(accuracy, EDP): the infeasible trial dominates everything but is held out; the dominated
    feasible trial is not on the front; with feasible_only=False the infeasible one alone is."""
    study = optuna.create_study(directions=list(order))
    points = [(0.90, 5.0, True), (0.85, 2.0, True), (0.80, 6.0, True), (0.95, 1.0, False)]
    for acc, edp, feasible in points:
        values = [acc, edp] if order[0] == "maximize" else [edp, acc]
        study.add_trial(optuna.trial.create_trial(values=values, user_attrs=record_attributes(acc, edp,
                                                                                              feasible=feasible)))
    assert [t.user_attrs["accuracy"] for t in pareto_trials(study)] == [0.85, 0.90]  # by expected EDP
    assert [t.user_attrs["accuracy"] for t in pareto_trials(study, feasible_only=False)] == [0.95]


def test_a_trial_whose_candidate_was_evaluated_before_gets_a_copy_of_its_ribbon(tmp_path):
    from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta, upload_artifact

    from nas.study.study import copy_ribbon

    store = FileSystemArtifactStore(str(tmp_path / "artifacts"))
    (tmp_path / "artifacts").mkdir()
    study = optuna.create_study()
    first = study.ask()
    plot = tmp_path / "ribbon_trial_0.png"
    plot.write_bytes(b"\x89PNG ribbon of trial 0")
    upload_artifact(artifact_store=store, file_path=str(plot), study_or_trial=first)
    study.tell(first, 1.0)
    again = study.ask()
    copy_ribbon(again, study.trials[0], store)
    metas = get_all_artifact_meta(again)
    assert [m.filename for m in metas] == ["ribbon_trial_1.png"]
    download_artifact(artifact_store=store, file_path=str(tmp_path / "copy.png"), artifact_id=metas[0].artifact_id)
    assert (tmp_path / "copy.png").read_bytes() == plot.read_bytes()
    study.tell(again, 1.0)
    plain = study.ask()  # a trial without a ribbon (its plot failed): nothing to copy from it
    study.tell(plain, 2.0)
    bare = study.ask()
    copy_ribbon(bare, study.trials[plain.number], store)
    assert get_all_artifact_meta(bare) == []


@pytest.mark.parametrize("kind", sorted(STORAGES))
def test_an_optimised_study_names_every_trials_worker(tmp_path, kind):
    from nas.study.storage import storage_for, worker_id

    study = optuna.create_study(storage=storage_for(STORAGES[kind].format(tmp_path)), study_name="named",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"x": 0.5})
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=6)
    trials = optuna.load_study(study_name="named", storage=storage_for(STORAGES[kind].format(tmp_path))).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6 and trials[0].params == {"x": 0.5}
    assert {t.user_attrs["worker"] for t in trials} == {worker_id()}
    assert trials[1].datetime_start <= trials[1].datetime_complete
