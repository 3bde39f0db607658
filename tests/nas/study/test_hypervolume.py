from __future__ import annotations

import random

import numpy as np
import pytest
from optuna._hypervolume import compute_hypervolume
from optuna.trial import TrialState, create_trial

from nas.study.hypervolume import hypervolume_2d, hypervolume_curve, trials_to_reach
from tests.helpers import record_attributes


def test_hypervolume_2d_by_hand():
    # one point at accuracy 0.8, EDP half the reference: 0.5 x 0.8
    assert hypervolume_2d([(0.8, 5.0)], 0.0, 10.0) == pytest.approx(0.4)
    # a dominated point adds nothing; a point beyond the reference adds nothing
    assert hypervolume_2d([(0.8, 5.0), (0.7, 6.0), (0.9, 11.0)], 0.0, 10.0) == pytest.approx(0.4)
    # two non-dominated points: strips [0.2, 0.5) at 0.6 and [0.5, 1) at 0.8
    assert hypervolume_2d([(0.6, 2.0), (0.8, 5.0)], 0.0, 10.0) == pytest.approx(0.3 * 0.6 + 0.5 * 0.8)
    assert hypervolume_2d([], 0.0, 1.0) == 0.0


def test_hypervolume_2d_agrees_with_optuna():
    rng = random.Random(0)
    for _ in range(20):
        pts = [(rng.random(), rng.random() * 12) for _ in range(rng.randint(1, 30))]
        inside = np.array([[e / 10.0, -a] for a, e in pts if e < 10.0 and a > 0.1])
        want = compute_hypervolume(inside, np.array([1.0, -0.1])) if len(inside) else 0.0
        assert hypervolume_2d(pts, 0.1, 10.0) == pytest.approx(want, abs=1e-12)


def test_curve_counts_every_trial_and_only_feasible_complete_points():
    def trial(n, acc, edp, feasible=True, state=TrialState.COMPLETE):
        t = create_trial(state=state, values=[acc, edp] if state == TrialState.COMPLETE else None,
                         user_attrs=record_attributes(acc, edp, feasible=feasible))
        t.number = n
        return t

    trials = [trial(0, 0.5, 5.0), trial(1, 0.9, 1.0, feasible=False), trial(2, 0.0, 0.0, state=TrialState.PRUNED),
              trial(3, 0.7, 5.0)]
    curve = hypervolume_curve(trials, 0.0, 10.0)
    assert curve == pytest.approx([0.25, 0.25, 0.25, 0.35])
    assert trials_to_reach(curve, 0.3) == 4 and trials_to_reach(curve, 0.25) == 1 and trials_to_reach(curve, 1) is None
