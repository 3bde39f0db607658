from __future__ import annotations

import pytest
import torch

from nas.calibrate import ExitOutputs, early_exit_stats, exit_outputs, exit_stats


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
