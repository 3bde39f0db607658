"""The Pareto report: table, files, plots, artifacts and the default pick (nas.report.pareto)."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nas.report.pareto import choose_trial, format_table, pareto_rows, write_report
from nas.study.study import pareto_trials
from tests.helpers import record_attributes


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
    assert (tmp_path / "exit_costs.png").stat().st_size > 10_000
    from optuna.artifacts import get_all_artifact_meta

    def report_artifacts() -> list[str]:
        fresh = optuna.load_study(study_name=study.study_name, storage=study._storage)
        return sorted(m.filename for m in get_all_artifact_meta(fresh) if m.filename.startswith("report-"))

    # (other tests may have reported on this shared study before, with other trials)
    after_first = report_artifacts()
    assert {"report-exit_costs.png", "report-pareto.json", "report-pareto.png"} <= set(after_first)
    write_report(study, tmp_path)  # unchanged files are not uploaded twice
    assert report_artifacts() == after_first
    assert format_table([]).count("\n") == 1


def test_a_network_proposed_again_is_one_row_of_the_table():
    row = {"trial": 19, "accuracy": 0.906, "expected_edp_j_cycles": 0.5485, "reduction_factor": 2.45, "exits": "AEIK",
           "exit_ratios": [0.4, 0.19, 0.11, 0.3], "threshold": 0.9, "expected_energy_uj": 11.0,
           "expected_latency_kcycles": 26.1, "feasible": True}
    other = row | {"trial": 27, "accuracy": 0.9065, "exits": "AEGIK"}
    table = format_table([row, row | {"trial": 50}, row | {"trial": 57}, other])
    lines = table.splitlines()[2:]
    assert len(lines) == 2 and lines[0].split("AEIK")[0].split()[:3] == ["19", "(+50,", "57)"]
    assert lines[1].split()[0] == "27"
    assert format_table([row, other, row | {"trial": 50}]).count("\n") == 4  # not adjacent: kept apart


@pytest.mark.parametrize(("objectives", "picked"), [(("accuracy", "expected_edp"), 0.895),
                                                   (("expected_edp", "accuracy"), 0.895), (("accuracy",), 0.90)])
def test_choose_trial_reads_metrics_by_name_for_any_objectives(objectives, picked):
    """Three feasible trials: the pick is the front's lowest-EDP trial within 1 point of its best accuracy,
    in either objective order; with accuracy alone the front is the most accurate trial."""
    import optuna

    signs = {"accuracy": "maximize", "expected_edp": "minimize"}
    study = optuna.create_study(directions=[signs[o] for o in objectives])
    for acc, edp in ((0.90, 5.0), (0.895, 2.0), (0.80, 1.0)):
        attrs = record_attributes(acc, edp)
        values = [acc if o == "accuracy" else edp for o in objectives]
        study.add_trial(optuna.trial.create_trial(values=values, user_attrs=attrs))
    assert choose_trial(study).user_attrs["accuracy"] == picked


def test_confirmed_table_marks_trials_that_leave_the_front():
    from nas.report.pareto import confirmed_front, format_confirmations
    from nas.study.confirm import Confirmation

    rows = [Confirmation(1, 0.90, 1.0, (0.88, 0.90), (1.0, 1.0), 256, 256),  # cheapest: stays
            Confirmation(2, 0.91, 2.0, (0.87, 0.87), (2.0, 2.0), 256, 256),  # dearer and now worse than 1: leaves
            Confirmation(3, 0.93, 3.0, (0.92, 0.92), (3.0, 3.0), 256, 256)]
    assert confirmed_front(rows) == {1, 3}
    lines = format_confirmations(rows).splitlines()
    assert "searched - confirmed" in lines[0] and len(lines) == 5
    assert lines[3].split() == ["2", "0.9100", "0.8700", "0.0000", "+0.0400", "2", "2", "no"]
    assert lines[2].split()[-1] == "yes" and lines[4].split()[-1] == "yes"
    again = Confirmation(4, 0.93, 3.0, (0.92, 0.92), (3.0, 3.0), 256, 256)  # trial 3's network, proposed again
    lines = format_confirmations([*rows, again]).splitlines()
    assert len(lines) == 5 and lines[4].split()[:3] == ["3", "(+4)", "0.9300"]


def test_choose_trial_uses_a_confirmation_of_this_front_only():
    """The pick moves to the confirmed values when the study holds a confirmation of its current front: the
    cheaper trial, confirmed 2 points lower, is no longer within 1 point of the best; a stale one is ignored."""
    import optuna

    from nas.study.confirm import STUDY_ATTR, Confirmation

    study = optuna.create_study(directions=["maximize", "minimize"])
    for acc, edp in ((0.90, 5.0), (0.895, 2.0), (0.80, 1.0)):
        study.add_trial(optuna.trial.create_trial(values=[acc, edp], user_attrs=record_attributes(acc, edp)))
    assert choose_trial(study).number == 1
    confirmed = [Confirmation(0, 0.90, 5.0, (0.90,), (5.0,), 0, 10),
                 Confirmation(1, 0.895, 2.0, (0.875,), (2.0,), 0, 10),
                 Confirmation(2, 0.80, 1.0, (0.80,), (1.0,), 0, 10)]
    study.set_user_attr(STUDY_ATTR, [c.to_dict() for c in confirmed[:2]])  # not this front's trials: stale
    assert choose_trial(study).number == 1
    study.set_user_attr(STUDY_ATTR, [c.to_dict() for c in confirmed])
    assert choose_trial(study).number == 0
