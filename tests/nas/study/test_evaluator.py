"""The candidate evaluator's per-backbone cache of exit-head outputs."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

import nas.study.evaluator as objectives
from nas.study.evaluator import CandidateEvaluator
from nas.supernet.calibrate import exit_outputs


def evaluator(tiny_run, folded: bool = False, int8: bool = True) -> CandidateEvaluator:
    """The exact path by default (the extracted network's logits bit for bit)."""
    cfg, supernet, _study, (splits, space) = tiny_run
    return CandidateEvaluator(space, supernet, splits.val, None, cfg.constraints, batch_size=256,  # type: ignore[arg-type]
                              calibration=splits.train.images[:256], folded=folded, int8=int8)


def count_inferences(monkeypatch) -> list[int]:
    """A list that grows by one each time the evaluator extracts and runs a candidate network."""
    calls: list[int] = []
    real = objectives.candidate_network
    monkeypatch.setattr(objectives, "candidate_network", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_one_inference_per_backbone_gives_every_head_bit_for_bit(tiny_run, monkeypatch):
    _cfg, supernet, _study, (splits, space) = tiny_run
    real = objectives.candidate_network
    calls = count_inferences(monkeypatch)
    cached = evaluator(tiny_run)
    cached.outputs(space.uniform(exits=(1, 3), depth=1))
    assert len(calls) == 1
    # other mounts, depths and a mix of them on the same backbone: no inference
    mixed = replace(space.uniform(exits=(1, 5, 8), depth=1), branch_depths=(1, 2, 2, 1))
    cached.outputs(space.uniform(exits=(3, 5), depth=2))
    got = cached.outputs(mixed)
    assert len(calls) == 1
    # the same logits as the candidate's own extracted network, run on its own
    want = exit_outputs(real(supernet, mixed, splits.train.images[:256]), splits.val, 256)
    for g, w in zip(got.logits, want.logits):
        assert torch.equal(g, w)
    assert torch.equal(got.predictions, want.predictions) and torch.equal(got.labels, want.labels)
    # a head bit-width outside the space's bits_choices runs on the kept features, bit for bit as its
    # own network; another backbone needs an inference of its own
    float_head = replace(mixed, exit_weight_bits=(32, 8, 8, 8))
    got = cached.outputs(float_head)
    want = exit_outputs(real(supernet, float_head, splits.train.images[:256]), splits.val, 256)
    assert len(calls) == 1 and all(torch.equal(g, w) for g, w in zip(got.logits, want.logits))
    cached.outputs(replace(mixed, act_bits=(32,) * len(mixed.act_bits)))
    assert len(calls) == 2


def test_the_cache_is_bounded(tiny_run):
    _cfg, _supernet, _study, (_splits, space) = tiny_run
    ev = evaluator(tiny_run)
    ev.cached_backbones = 1
    g = space.uniform(exits=(1,))
    ev.outputs(g)
    other = replace(g, act_bits=(32,) * len(g.act_bits))
    ev.outputs(other)
    assert len(ev._heads) == 1 and (other.backbone, other.weight_bits, other.act_bits) in ev._heads


def test_features_are_kept_for_the_most_recent_backbones_only(tiny_run, monkeypatch):
    _cfg, _supernet, _study, (_splits, space) = tiny_run
    calls = count_inferences(monkeypatch)
    ev = evaluator(tiny_run)
    ev.cached_features = 1
    g = space.uniform(exits=(1,))
    other = replace(g, act_bits=(32,) * len(g.act_bits))
    ev.outputs(g), ev.outputs(other)
    assert len(calls) == 2
    ev.outputs(g)  # its logits are kept: no inference
    assert len(calls) == 2
    ev.outputs(space.uniform(exits=(3,)))  # a head it has no logits for, and its features were dropped
    assert len(calls) == 3
    ev.outputs(replace(other, exits=(3,)))  # the other backbone's features went when g's came back
    assert len(calls) == 4


def test_with_schedule_shares_the_logits_cache_and_changes_only_the_schedule(tiny_run):
    _cfg, _supernet, _study, (_splits, space) = tiny_run
    from hwmodel.scheduling import ScheduleSettings
    from nas.config import CostConfig

    ev = evaluator(tiny_run)
    assert ev.schedule == CostConfig().schedule  # the evaluator's default schedule is the config's (fused)
    lbl = ScheduleSettings(mode="layer_by_layer", tile_rows=None)
    other = ev.with_schedule(lbl)
    assert other.schedule == lbl and ev.schedule.mode == "fused"
    g = space.uniform(exits=(1,))
    ev.outputs(g)
    assert (g.backbone, g.weight_bits, g.act_bits) in other._heads  # filled once, seen by both


def test_the_inference_batch_size_changes_logits_only_by_float_rounding(tiny_run):
    # the default batch (100 images) is chosen for speed alone: inference is per sample, so a batch of 7
    # and one of 256 give the same logits but for the order of float sums (batch norm keeps its batches)
    _cfg, supernet, _study, (splits, space) = tiny_run
    g = replace(space.uniform(exits=(1, 5), depth=1), branch_depths=(2, 1, 1))
    small = CandidateEvaluator(space, supernet, splits.val, None, _cfg.constraints, batch_size=7,  # type: ignore[arg-type]
                               calibration=splits.train.images[:256], folded=False).outputs(g)
    large = evaluator(tiny_run).outputs(g)
    for a, b in zip(small.logits, large.logits):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert torch.equal(small.predictions, large.predictions)


@pytest.mark.parametrize("int8", [False, True])
def test_folded_inference_agrees_with_the_exact_path(tiny_run, int8):
    # folding batch norm and steps into the weights (int8: integer sums times a per-channel factor)
    # reorders float roundings only: the predictions agree but for samples whose quantisation levels sit
    # on a rounding boundary (measured at scale in benchmarks/candidate_eval.py). On this barely trained
    # network (near-tied logits) that is up to one prediction in 20 of an exit, fewer on average
    _cfg, _supernet, _study, (_splits, space) = tiny_run
    for g in (space.uniform(exits=(1, 5), depth=2), space.sample(random.Random(3))):
        exact, folded = evaluator(tiny_run).outputs(g), evaluator(tiny_run, folded=True, int8=int8).outputs(g)
        agree = (exact.predictions == folded.predictions).float().mean(dim=1)
        assert (agree >= 0.9).all() and agree.mean() >= 0.95, agree
