from __future__ import annotations

import pytest
import torch

from nas.supernet.calibrate import ExitOutputs, early_exit_stats, exit_outputs, exit_stats


def outputs_from(confidences, predictions, labels):
    """Logits whose softmax top probability equals the given confidence (2 classes)."""
    logits = []
    for conf, pred in zip(confidences, predictions):
        conf, pred = torch.tensor(conf), torch.tensor(pred)
        logit = torch.log(conf / (1 - conf))
        lg = torch.zeros(len(conf), 2)
        lg[torch.arange(len(conf)), pred] = logit
        logits.append(lg)
    return ExitOutputs(torch.stack([lg.argmax(1) for lg in logits]), logits, torch.tensor(labels))


def test_exit_ratios_accuracy_and_top1():
    out = outputs_from(
        confidences=[[0.95, 0.6, 0.6, 0.99], [0.7, 0.9, 0.6, 0.6], [0.6, 0.6, 0.6, 0.6]],
        predictions=[[0, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 1]],
        labels=[0, 1, 0, 0],
    )
    s = exit_stats(out, 0.8)
    # sample 0 and 3 leave at exit 0, sample 1 at exit 1, sample 2 at the final exit
    assert s.ratios == pytest.approx((0.5, 0.25, 0.25))
    assert s.exit_accuracy == pytest.approx((0.5, 1.0, 1.0))
    assert s.accuracy == pytest.approx(sum(r * a for r, a in zip(s.ratios, s.exit_accuracy)))
    assert s.accuracy == pytest.approx(0.75)
    assert s.exit_accuracy_all == pytest.approx((0.5, 0.75, 0.5))
    assert exit_stats(out, 1.0).ratios == pytest.approx((0.0, 0.0, 1.0))


def test_searched_stats_equal_real_early_exit(tiny_run):
    cfg, supernet, study, (splits, space) = tiny_run
    g = space.uniform(exits=(3, 5), bits=8, threshold=0.5)
    net = supernet.subnet(g)
    searched = exit_stats(exit_outputs(net, splits.val, 100), g.threshold)
    real = early_exit_stats(net, splits.val, batch_size=64)
    assert real.ratios == pytest.approx(searched.ratios)
    assert real.accuracy == pytest.approx(searched.accuracy)
    assert sum(searched.ratios) == pytest.approx(1.0)


def test_rule_threshold_is_the_lowest_within_the_allowed_loss():
    from nas.supernet.calibrate import rule_threshold

    # final exit right on all 4 samples; the early exit is right on samples 0, 1 and confident on 0, 1, 2
    out = outputs_from(confidences=[[0.95, 0.85, 0.75, 0.6], [0.6] * 4], predictions=[[0, 1, 1, 1], [0, 1, 0, 0]],
                       labels=[0, 1, 0, 0])
    assert rule_threshold(out, [0.7, 0.8, 0.9], max_accuracy_loss=0.0) == 0.8  # 0.7 lets sample 2 out wrongly
    assert rule_threshold(out, [0.7, 0.8, 0.9], max_accuracy_loss=0.3) == 0.7


def test_accuracy_target_rule():
    from nas.supernet.calibrate import accuracy_target_thresholds

    # exit 0 is accurate enough on the training data to take every sample; exit 1 needs confidence
    assert accuracy_target_thresholds([0.95, 0.5, 0.97], target=0.7) == pytest.approx([0.0, 0.77])


def test_batchnorm_recalibration_is_deterministic_and_changes_statistics(tiny_run):
    from nas.study.evaluator import candidate_network

    cfg, supernet, _study, (splits, space) = tiny_run
    g = space.uniform(exits=(3,), bits=8)
    plain = candidate_network(supernet, g, None)
    a = candidate_network(supernet, g, splits.train.images[:128])
    b = candidate_network(supernet, g, splits.train.images[:128])
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(plain.stem.bn.running_mean, a.stem.bn.running_mean)


def test_batchnorm_recalibration_gives_never_used_exit_quantisers_their_first_use_step(tmp_path):
    """An untrained supernet's exit heads have uninitialised step sizes; the recalibration pass must set
    them (the ONNX export traces the network and cannot record a first-use initialisation)."""
    from nas import api
    from nas.study.evaluator import candidate_network
    from search_spaces.modules.lsq import LSQAct, LSQWeight
    from tests.nas.conftest import tiny_config

    splits, space = api.data_and_space(tiny_config(tmp_path))
    g = space.uniform(exits=tuple(space.options.exit_points), bits=8)
    net = candidate_network(space.build_supernet(), g, splits.train.images[:64])
    quantisers = [m for head in net.heads for m in head.modules() if isinstance(m, (LSQAct, LSQWeight))]
    assert quantisers and all(bool(q.ready[q._index[8]]) for q in quantisers)
