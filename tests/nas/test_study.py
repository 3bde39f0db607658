"""End-to-end: a tiny study on the synthetic data and the reference accelerator."""

from __future__ import annotations


import optuna
import pytest
from optuna.trial import TrialState

from nas import api
from nas.calibrate import early_exit_stats
from nas.report import choose_trial, format_table, pareto_rows, write_report
from nas.study import METRIC_NAMES, finished_trials, pareto_trials
from tests.helpers import unmappable_system
from tests.nas.conftest import tiny_config


def test_study_records_objectives_attributes_and_constraints(tiny_run):
    cfg, _supernet, study, (_splits, space) = tiny_run
    assert study.metric_names == list(METRIC_NAMES)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(study.trials) == cfg.search.n_trials and len(complete) == cfg.search.n_trials
    assert any(t.user_attrs["feasible"] for t in complete) and pareto_trials(study)
    for t in complete:
        a = t.user_attrs
        assert sum(a["exit_ratios"]) == pytest.approx(1.0)
        assert a["accuracy"] == pytest.approx(sum(r * x for r, x in zip(a["exit_ratios"], a["exit_accuracy"])))
        assert t.values[0] == pytest.approx(a["accuracy"])
        assert t.values[1] == pytest.approx(a["expected_edp_j_cycles"])
        assert a["expected_edp_j_cycles"] == pytest.approx(sum(r * et for r, et in zip(a["exit_ratios"], a["et_j_cycles"])))
        assert a["reduction_factor"] == pytest.approx(a["static_edp_j_cycles"] / a["expected_edp_j_cycles"])
        assert set(a["constraints"]) == {"final_exit_ratio", "exit_overhead"}
        assert a["constraints"]["final_exit_ratio"] == pytest.approx(a["exit_ratios"][-1] - 0.5)
        assert a["feasible"] == all(v <= 0 for v in a["constraints"].values())
        assert len(a["bits"]) == len(space.backbone_layer_names()) + len(a["exit_labels"])
        assert a["exit_labels"][-1] == "K" and a["cost_model_mode"] == "fused"
        # Optuna's own constraint record, which the dashboard shows
        assert t.system_attrs["constraints"] == list(a["constraints"].values())


def test_rerunning_resumes_instead_of_restarting(tiny_run):
    cfg, supernet, study, data = tiny_run
    again = api.search(cfg, supernet, progress=False, data=data)
    assert len(again.trials) == len(study.trials)
    more = api.search(cfg.__class__(**{**cfg.__dict__, "search": cfg.search.__class__(
        **{**cfg.search.__dict__, "n_trials": cfg.search.n_trials + 2})}), supernet, progress=False, data=data)
    assert finished_trials(more) == cfg.search.n_trials + 2


def test_export_reload_reproduces_accuracy_and_exit_ratios(tiny_run, tmp_path):
    cfg, supernet, study, data = tiny_run
    splits, _space = data
    trial = choose_trial(study)
    path = api.export(cfg, study, trial, tmp_path / "net", supernet=supernet, data=data)
    assert {p.name for p in path.iterdir()} == {"weights.pt", "architecture.json", "metrics.json"}
    loaded = api.load(path)
    stats = early_exit_stats(loaded.network, splits.val)
    assert stats.accuracy == pytest.approx(trial.user_attrs["accuracy"], abs=1e-12)
    assert list(stats.ratios) == pytest.approx(trial.user_attrs["exit_ratios"], abs=1e-12)
    assert loaded.metrics["trial"] == trial.number
    assert loaded.genotype.to_dict() == trial.user_attrs["genotype"]


def test_report_table_and_plot(tiny_run, tmp_path):
    _cfg, _supernet, study, _data = tiny_run
    rows = pareto_rows(study)
    front = pareto_trials(study)
    assert [r["trial"] for r in rows] == [t.number for t in front]
    for a in front:  # no feasible trial dominates a front member
        for b in study.get_trials(states=(TrialState.COMPLETE,)):
            if b.user_attrs["feasible"]:
                assert not (b.values[0] > a.values[0] and b.values[1] < a.values[1])
    table, plot = write_report(study, tmp_path)
    assert "E[EDP]" in table and plot.stat().st_size > 10_000
    assert format_table([]).count("\n") == 1


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


def test_storage_url_errors_are_clear():
    from nas.study import StorageError, storage_for

    with pytest.raises(StorageError, match="expected an Optuna storage URL"):
        storage_for("notadb://nowhere")
    assert isinstance(storage_for("sqlite:///:memory:"), optuna.storages.RDBStorage)


def test_pareto_front_breaks_accuracy_ties_by_edp(tiny_run):
    _cfg, _supernet, study, _data = tiny_run
    front = pareto_trials(study, feasible_only=False)
    accuracies = [t.values[0] for t in front]
    assert len(accuracies) == len(set(accuracies)), "two front members with equal accuracy: one dominates"
