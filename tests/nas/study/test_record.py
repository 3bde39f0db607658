"""The typed trial record and the one feasibility rule every reader shares."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from nas.study.hypervolume import hypervolume_curve
from nas.study.prescreen import Prescreener
from nas.study.record import TrialRecord, is_feasible, records, satisfied
from nas.study.study import pareto_trials
from tests.helpers import record_attributes


def test_records_of_a_real_study_match_what_the_objective_stored(tiny_run):
    _cfg, _supernet, study, (_splits, space) = tiny_run
    held = records(study.get_trials())
    assert held and len(held) == len(study.get_trials(states=(TrialState.COMPLETE,)))
    for r in held:
        t = study.trials[r.number]
        a = t.user_attrs
        assert r.genotype.to_dict() == a["genotype"] and space.encode(r.genotype)
        assert (r.accuracy == a["accuracy"] and list(r.exit_ratios) == a["exit_ratios"]
                and r.exits == "".join(a["exit_labels"]))
        assert r.metric("expected_edp_j_cycles") == t.values[1] and r.metric("accuracy") == t.values[0]
        # the one rule agrees with the attribute shown in the dashboard and with Optuna's own record
        assert r.feasible == a["feasible"] == all(v <= 0 for v in t.constraints.values())
    assert next(r for r in held if r.number == 0).baseline == "static"


def test_trials_without_an_evaluated_candidate_have_no_record():
    for state in (TrialState.PRUNED, TrialState.FAIL):
        t = create_trial(state=state, user_attrs={"genotype": record_attributes(0.9, 1.0)["genotype"]})
        assert TrialRecord.of(t) is None and not is_feasible(t)
    assert TrialRecord.of(create_trial(values=[0.9, 1.0])) is None  # complete, but no candidate recorded


def test_a_record_names_what_it_lacks():
    attrs = record_attributes(0.9, 1.0)
    del attrs["static_edp_j_cycles"]
    with pytest.raises(KeyError, match="trial 7.*static_edp_j_cycles"):
        TrialRecord.from_attributes(7, attrs)
    with pytest.raises(KeyError, match="trial 7 records no metric 'expected_power'"):
        TrialRecord.from_attributes(7, record_attributes(0.9, 1.0)).metric("expected_power")


def test_feasibility_is_the_constraints_everywhere_whatever_the_stored_flag_says():
    """A trial whose constraint is violated is infeasible for the Pareto front, the hypervolume and
    the pre-screen alike, even where a stale ``feasible`` attribute claims otherwise."""
    assert satisfied({}) and satisfied({"a": 0.0, "b": -1.0}) and not satisfied([0.0, 1e-9])
    dist = {"x": CategoricalDistribution([0, 1, 2])}
    study = optuna.create_study(directions=["maximize", "minimize"])
    for x, acc, edp, ok in ((0, 0.95, 1.0, False), (1, 0.90, 2.0, True), (2, 0.80, 3.0, True)):
        study.add_trial(create_trial(params={"x": x}, distributions=dist, values=[acc, edp],
                                     user_attrs=record_attributes(acc, edp, feasible=ok) | {"feasible": True}))
    assert [t.number for t in pareto_trials(study)] == [1]  # trial 0 dominates it but violates its constraint
    assert {t.number for t in pareto_trials(study, feasible_only=False)} == {0}
    curve = hypervolume_curve(study.trials, 0.0, 10.0)
    assert curve[0] == 0.0 and curve[1] == pytest.approx(0.9 * 0.8)
    verdict = Prescreener(min_trials=2, margin=0.0, ridge=1e-6).verdict(study, {"x": 2})
    assert verdict is not None and verdict["dominated_by"] == 1  # trial 0 dominates too, but is infeasible
    assert sum(is_feasible(t) for t in study.trials) == 2
