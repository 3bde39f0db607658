from __future__ import annotations

import json

import pytest

from nas import api
from nas.study.confirm import STUDY_ATTR, Confirmation, confirm_trials, slice_bounds
from nas.study.evaluator import CandidateEvaluator
from nas.study.study import TrialError, pareto_trials


def test_slices_are_disjoint_and_after_the_search_images():
    assert slice_bounds(100, 10, 20, 3) == [(10, 30), (30, 50), (50, 70)]
    with pytest.raises(ValueError, match="at least 90 images, got 80"):
        slice_bounds(80, 10, 20, 4)
    with pytest.raises(ValueError, match="at least one slice"):
        slice_bounds(80, 0, 0, 1)


def test_confirmation_summary_and_round_trip():
    c = Confirmation(3, 0.90, 2.0, (0.86, 0.88), (1.0, 3.0), 500, 1000)
    assert c.accuracy == pytest.approx(0.87) and c.accuracy_std == pytest.approx(0.0141421, rel=1e-5)
    assert c.optimism == pytest.approx(0.03) and c.expected_edp == pytest.approx(2.0)
    d = c.to_dict()
    assert d["accuracy"] == pytest.approx(0.87) and Confirmation.from_dict(json.loads(json.dumps(d))) == c
    assert Confirmation(1, 0.5, 1.0, (0.5,), (1.0,), 0, 10).accuracy_std == 0.0


def _evaluator_for(cfg, supernet, data, cm):
    splits, space = data
    return lambda images: CandidateEvaluator.from_config(cfg, space, supernet, splits.val, cm, images,
                                                         threshold="searched")


def test_the_search_images_reproduce_the_searched_values(tiny_run):
    """Re-estimated on the very images the search used, a trial scores what the search recorded: the
    confirmation runs the search's path, only its batch-norm images differ."""
    cfg, supernet, study, data = tiny_run
    front = pareto_trials(study)
    with api.cost_model(cfg, progress=False) as cm:
        got = confirm_trials(front, _evaluator_for(cfg, supernet, data, cm), data[0].train.images, skip=0,
                             images=cfg.search.bn_recalibration_samples, slices=1)
    assert [c.trial for c in got] == [t.number for t in front]
    for c in got:
        assert c.accuracies == (c.searched_accuracy,)
        assert c.expected_edps[0] == pytest.approx(c.searched_expected_edp, rel=1e-12)


def test_api_confirm_stores_on_the_study_and_the_run_folder(tiny_run):
    cfg, supernet, study, data = tiny_run
    got = api.confirm(cfg, study, slices=2, images=256, supernet=supernet, data=data, progress=False)
    assert [c.trial for c in got] == [t.number for t in pareto_trials(study)]
    assert all(len(c.accuracies) == 2 and c.first_image == cfg.search.bn_recalibration_samples for c in got)
    stored = json.loads((api.paths(cfg).root / "confirmed_front.json").read_text())
    assert [Confirmation.from_dict(d) for d in stored] == got
    assert [Confirmation.from_dict(d) for d in study.user_attrs[STUDY_ATTR]] == got
    other = [t for t in study.get_trials(deepcopy=False) if t.values and t.number not in {c.trial for c in got}]
    assert other, "the tiny study should hold a complete trial off its front"
    one = api.confirm(cfg, study, slices=1, images=256, supernet=supernet, data=data, trials=other[:1],
                      progress=False)
    assert [c.trial for c in one] == [other[0].number]  # returned, not stored over the front's confirmation
    assert [Confirmation.from_dict(d) for d in study.user_attrs[STUDY_ATTR]] == got
    with pytest.raises(TrialError, match="expected a training split of at least 8256 images, got 1024"):
        api.confirm(cfg, study, slices=4, images=2000, supernet=supernet, data=data, progress=False)
