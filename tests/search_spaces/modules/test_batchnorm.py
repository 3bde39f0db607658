"""Batch-norm statistics re-estimated layer by layer, as eval mode sees them."""

from __future__ import annotations

import copy

import torch
from torch import nn

from nas.supernet.calibrate import recalibrate_batchnorm
from search_spaces.modules.batchnorm import Moments, batch_stats, reestimate_batchnorm
from search_spaces.modules.blocks import BasicBlock, ConvBNAct, InvertedResidual
from search_spaces.modules.folded import nhwc
from tests.helpers import trained_like


def _network(seed: int = 0, bits: int = 4) -> nn.Sequential:
    """A stem and two blocks at ``bits`` (32: float) with batch-norm statistics that fit nothing, in eval mode."""
    torch.manual_seed(seed)
    net = nn.Sequential(ConvBNAct(1, 8, 3, bits_choices=(4,)),
                        InvertedResidual(8, 8, (3,), (3,), 1, True, (4,)), BasicBlock(8, 16, 2, (4,)))
    return trained_like(net, bits, 1, seed)


def _input_statistics(net: nn.Module, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Mean and unbiased variance of each batch norm's input in eval mode, over ``images`` (one pass, double)."""
    seen: dict[nn.Module, list[torch.Tensor]] = {}
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    hooks = [bn.register_forward_pre_hook(lambda m, inputs: seen.setdefault(m, []).append(inputs[0].double()))
             for bn in bns]
    with torch.no_grad():
        net.eval()(images)
    for hook in hooks:
        hook.remove()
    out = []
    for bn in bns:
        var, mean = torch.var_mean(torch.cat(seen[bn]), dim=(0, 2, 3), correction=1)
        out.append((mean, var))
    return out


def test_batch_stats_are_accurate_in_either_memory_order():
    torch.manual_seed(0)
    centred = torch.randn(64, 12, 32, 32) * torch.linspace(0.5, 3, 12).reshape(1, -1, 1, 1) + 0.5
    shifted = centred * 0.02 + 5.0  # mean / spread up to 500: one pass would cancel
    for values in (centred, shifted):
        want_var, want_mean = torch.var_mean(values.double(), dim=(0, 2, 3), correction=0)
        for batch in (values, nhwc(values)):
            mean, var = batch_stats(batch)
            torch.testing.assert_close(mean.double(), want_mean, rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(var.double(), want_var, rtol=1e-5, atol=0)


def test_moments_merged_over_batches_are_those_of_all_values():
    torch.manual_seed(0)
    values = torch.randn(70, 5, 6, 6) * 0.01 + 3.0  # small spread, large mean
    moments = Moments()
    for batch in torch.split(values, [1, 30, 39]):
        moments.add(batch)
    want_var, want_mean = torch.var_mean(values.double(), dim=(0, 2, 3), correction=0)
    assert moments.count == 70 * 36
    torch.testing.assert_close(moments.mean, want_mean, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(moments.m2 / moments.count, want_var, rtol=1e-4, atol=0)


def test_each_layer_gets_the_statistics_of_its_input_in_eval_mode():
    images = torch.randn(60, 1, 12, 12) * 2 + 0.3
    net = _network()
    before = _input_statistics(net, images)
    recalibrate_batchnorm(net, images, batch_size=25)  # three batches, the last one smaller
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 7 and all(int(bn.num_batches_tracked) == 3 for bn in bns)
    after = _input_statistics(net, images)
    for bn, (mean, var) in zip(bns, after, strict=True):
        torch.testing.assert_close(bn.running_mean.double(), mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn.running_var.double(), var, rtol=1e-4, atol=1e-5)
    # the layers after the first see other inputs once the layers before them normalise differently
    assert not torch.allclose(after[1][0], before[1][0], atol=1e-3)


def test_the_statistics_do_not_depend_on_the_batch_size_and_equal_one_training_mode_batch():
    images = torch.randn(48, 1, 12, 12)
    nets = {size: _network() for size in (7, 16, 48)}
    for size, net in nets.items():
        recalibrate_batchnorm(net, images, batch_size=size)
    one_batch = _network(bits=32)
    for bn in one_batch.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
    with torch.no_grad():
        one_batch(images)  # every layer normalised by the statistics of all images: the ones it keeps
    bns = {size: [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)] for size, net in nets.items()}
    for size in (7, 16):  # the batch size only bounds memory
        for got, want in zip(bns[size], bns[48]):
            torch.testing.assert_close(got.running_mean, want.running_mean, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(got.running_var, want.running_var, rtol=1e-5, atol=1e-6)
    # in float: training mode normalises by the biased variance, eval mode by the unbiased one (1 / 6912 apart)
    in_float = _network(bits=32)
    recalibrate_batchnorm(in_float, images, batch_size=7)
    for got, want in zip([m for m in in_float.modules() if isinstance(m, nn.BatchNorm2d)],
                         [m for m in one_batch.modules() if isinstance(m, nn.BatchNorm2d)], strict=True):
        spread = want.running_var.sqrt()
        assert float(((got.running_mean - want.running_mean).abs() / spread).max()) < 1e-3
        assert float((got.running_var / want.running_var - 1).abs().max()) < 1e-3


def test_stages_run_in_turn_and_only_their_own_layers_are_estimated():
    images = torch.randn(20, 1, 12, 12)
    net, whole = _network(), _network()
    reestimate_batchnorm(list(net), list(torch.split(images, 8)))
    reestimate_batchnorm([whole], list(torch.split(images, 8)))  # one stage: the same statistics, more passes
    for a, b in zip(net.modules(), whole.modules()):
        if isinstance(a, nn.BatchNorm2d):
            torch.testing.assert_close(a.running_mean, b.running_mean)
            torch.testing.assert_close(a.running_var, b.running_var)
    untouched = copy.deepcopy(net[2])
    reestimate_batchnorm(list(net)[:2], [images])
    assert torch.equal(net[2].conv1.bn.running_mean, untouched.conv1.bn.running_mean)
