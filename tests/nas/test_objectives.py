"""The candidate evaluator's per-backbone cache of exit-head outputs."""

from __future__ import annotations

from dataclasses import replace

import torch

import nas.objectives as objectives
from nas.objectives import CandidateEvaluator


def evaluator(tiny_run) -> CandidateEvaluator:  # noqa: ANN001
    cfg, supernet, _study, (splits, space) = tiny_run
    return CandidateEvaluator(space, supernet, splits.val, None, cfg.constraints, 256,  # type: ignore[arg-type]
                              calibration=splits.train.images[:256])


def test_heads_seen_on_a_backbone_are_reused_bit_for_bit(tiny_run, monkeypatch):
    _cfg, _supernet, _study, (_splits, space) = tiny_run
    calls = []
    real = objectives.exit_outputs
    monkeypatch.setattr(objectives, "exit_outputs", lambda *a, **k: calls.append(1) or real(*a, **k))
    cached = evaluator(tiny_run)
    cached.outputs(space.uniform(exits=(1, 3), depth=1))
    cached.outputs(space.uniform(exits=(3, 5), depth=2))
    assert len(calls) == 2
    # exits 1 (depth 1) and 5 (depth 2) were both seen on this backbone: no inference
    mixed = replace(space.uniform(exits=(1, 5), depth=1), branch_depths=(1, 2, 2))
    got = cached.outputs(mixed)
    assert len(calls) == 2
    want = evaluator(tiny_run).outputs(mixed)  # a fresh evaluator runs the candidate itself
    assert len(calls) == 3
    for g, w in zip(got.logits, want.logits):
        assert torch.equal(g, w)
    assert torch.equal(got.predictions, want.predictions) and torch.equal(got.labels, want.labels)
    # another head depth or bit-width is a miss
    cached.outputs(replace(mixed, branch_depths=(2, 2, 2)))
    assert len(calls) == 4


def test_the_cache_is_bounded(tiny_run):
    _cfg, _supernet, _study, (_splits, space) = tiny_run
    ev = evaluator(tiny_run)
    ev.cached_backbones = 1
    g = space.uniform(exits=(1,))
    ev.outputs(g)
    other = replace(g, act_bits=(32,) * len(g.act_bits))
    ev.outputs(other)
    assert len(ev._heads) == 1 and (other.backbone, other.weight_bits, other.act_bits) in ev._heads
