"""Networks folded for inference: the same function, fewer passes over memory."""

from __future__ import annotations

import copy
import platform

import pytest
import torch
from torch import nn

from nas.supernet.calibrate import recalibrate_batchnorm
from search_spaces.modules.blocks import BasicBlock, ConvBNAct, InvertedResidual
from search_spaces.modules.folded import (
    FoldedConv,
    fold_backbone,
    int8_available,
    nhwc,
    recalibrate_folded,
)
from tests.helpers import trained_like

INT8 = [False, pytest.param(True, marks=pytest.mark.skipif(not int8_available(), reason="no oneDNN int8 convolution"))]


def test_nhwc_lays_out_a_one_channel_batch_channels_last():
    x = torch.randn(4, 1, 8, 8)
    assert x.contiguous(memory_format=torch.channels_last).stride() == x.stride()  # what torch leaves alone
    y = nhwc(x)
    assert y.stride() == (64, 1, 8, 1) and torch.equal(y, x)
    out = nn.functional.conv2d(y, torch.randn(3, 1, 3, 3), padding=1)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()


def test_a_folded_layer_computes_the_layer_to_float_precision():
    for bits in (32, 8, 4):
        for depthwise in (False, True):
            layer = trained_like(ConvBNAct(6, 6, 3, 2, depthwise=depthwise, bits_choices=(4, 8)), bits, 6)
            x = torch.randn(5, 6, 12, 12)
            with torch.no_grad():
                want, got = layer(x), FoldedConv(layer)(x)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_relu6_moved_into_the_next_quantiser_gives_the_same_levels():
    # q(relu6(x)) = clamp(round(x / s), max(Qn, 0), min(Qp, round(6 / s))), bit for bit
    for bits in (8, 4, 32):
        layer = trained_like(ConvBNAct(4, 4, 1, bits_choices=(4, 8), act_signed=False), bits, 4, seed=bits)
        x = torch.randn(3, 4, 6, 6) * 4
        with torch.no_grad():
            assert torch.equal(FoldedConv(layer, relu_in=True)(x), FoldedConv(layer)(x.clamp(0, 6)))


def test_oneDNN_int8_is_found_on_x86():
    # the fast path must not silently fall back to float on the machines it is measured on
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert int8_available()


@pytest.mark.parametrize("int8", INT8)
def test_an_int8_layer_computes_the_layer_to_float_precision(int8):
    for bits in (32, 8, 4):
        for depthwise in (False, True):
            for signed in (False, True):
                layer = trained_like(ConvBNAct(6, 6, 3, 2, depthwise=depthwise, bits_choices=(4, 8),
                                                act_signed=signed), bits, 6)
                x = nhwc(torch.randn(5, 6, 12, 12) * 2)
                folded = FoldedConv(layer, int8=int8)
                assert folded.int8 == (int8 and bits <= 8)
                with torch.no_grad():
                    want, got = layer(x), folded(x.clone())
                assert got.dtype == torch.float32 and got.is_contiguous(memory_format=torch.channels_last)
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("int8", INT8)
def test_a_layer_whose_input_has_a_zero_point_folds_exactly(int8):
    """The image's asymmetric levels (zero point z): an int8 layer stores them as bytes l + z and pads
    its borders with z, which stands for 0.0, as the network pads."""
    for bits in (8, 4):
        torch.manual_seed(bits)
        layer = ConvBNAct(1, 6, 3, 2, bits_choices=(4, 8))
        layer.conv.act.range_init = layer.conv.act.zero_point = True
        layer = trained_like(layer, bits, 1)
        x = torch.rand(5, 1, 12, 12) * 3.0 - 0.66  # mostly positive, as a standardised image
        with torch.no_grad():
            layer.train()(x)  # fit the step and zero point to this range
        layer.eval()
        qn, qp = layer.conv.act.qrange(bits)
        assert qp - qn == 2**bits - 1 and qn < 0 < qp
        folded = FoldedConv(layer, int8=int8)
        assert folded.zero == -qn  # the byte of level 0
        with torch.no_grad():
            want, got = layer(x), folded(nhwc(x))
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bits", [8, 4])
def test_an_int8_producer_writes_its_consumers_levels_as_bytes(bits):
    if not int8_available():
        pytest.skip("no oneDNN int8 convolution")
    block = trained_like(InvertedResidual(8, 8, (6,), (5,), 1, True, (4, 8)), bits, 8)
    x = nhwc(torch.randn(4, 8, 12, 12) * 2)
    (_, as_int8), (_, as_float) = (fold_backbone(nn.Identity(), nn.ModuleList([block]), int8=i) for i in (True, False))
    expand, dw = as_int8[0].expand, as_int8[0].dw
    assert expand.int8 and expand.emits == (dw.lo, dw.hi) == (0.0, min(2.0**bits - 1, float(torch.round(6 * dw.inv))))
    with torch.no_grad():
        levels = expand(x.clone())
        want = as_float[0].expand(x.clone()).round_().clamp_(dw.lo, dw.hi)  # what the float consumer makes of it
    assert levels.dtype == torch.uint8 and levels.is_contiguous(memory_format=torch.channels_last)
    # the same levels, but where float sums in another order cross a rounding boundary
    assert (levels.float() == want).float().mean().item() > 0.999
    assert (levels.float() - want).abs().max().item() <= 1


@pytest.mark.parametrize("int8", INT8)
def test_folded_blocks_compute_the_blocks(int8):
    blocks = nn.ModuleList([
        InvertedResidual(8, 8, (3, 6), (3, 5), 1, True, (4, 8)),
        InvertedResidual(8, 16, (6,), (3,), 2, False, (4, 8)),
        BasicBlock(16, 16, 1, (4, 8)),
        BasicBlock(16, 24, 2, (4, 8)),
    ])
    stem = ConvBNAct(1, 8, 3, bits_choices=(4, 8))
    holder = trained_like(nn.Sequential(stem, *blocks), 8, 1)
    stem, blocks = holder[0], nn.ModuleList(list(holder)[1:])
    fstem, fblocks = fold_backbone(stem, blocks, int8=int8)
    assert not any(isinstance(m, ConvBNAct) for m in fblocks.modules())
    assert all(m.int8 == int8 for m in fblocks.modules() if isinstance(m, FoldedConv))
    # the chained pairs lost their own ReLU6 to the next layer's quantiser, whose 1/s the layer before applies
    dw = fblocks[0].dw
    assert not fblocks[0].expand.relu and (dw.lo, dw.hi) == (0.0, float(torch.round(6 * dw.inv)))
    assert dw.prescaled and fblocks[0].project.prescaled and not fblocks[0].expand.prescaled
    assert not fblocks[2].conv1.relu and fblocks[2].conv2.prescaled
    x = torch.rand(6, 1, 12, 12)
    with torch.no_grad():
        want = _run(stem, blocks, x)
        got = _run(fstem, fblocks, nhwc(x))
    assert got.is_contiguous(memory_format=torch.channels_last)
    close = torch.isclose(got, want, rtol=1e-4, atol=1e-4).float().mean().item()
    assert close > 0.99, close
    torch.testing.assert_close(got.mean(), want.mean(), rtol=1e-2, atol=1e-2)
    # the originals are untouched
    assert isinstance(stem, ConvBNAct) and isinstance(blocks[0].expand, ConvBNAct)


def _run(stem: nn.Module, blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    h = stem(x)
    for b in blocks:
        h = b(h)
    return h


def test_folding_a_layer_in_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        FoldedConv(ConvBNAct(2, 2, 3, bits_choices=(8,)).train())


def test_folding_in_place_reuses_the_modules():
    stem = ConvBNAct(1, 8, 3, bits_choices=(8,))
    blocks = nn.ModuleList([InvertedResidual(8, 8, (3,), (3,), 1, True, (8,))])
    holder = trained_like(nn.Sequential(stem, *blocks), 8, 1)
    stem, blocks = holder[0], nn.ModuleList(list(holder)[1:])
    fstem, fblocks = fold_backbone(stem, blocks, keep=False)
    assert fblocks is blocks and isinstance(blocks[0].dw, FoldedConv) and isinstance(fstem, FoldedConv)


@pytest.mark.parametrize("int8", INT8)
def test_recalibrating_folded_layers_gives_the_networks_statistics(int8):
    for bits in (32, 8, 4):
        stem = ConvBNAct(1, 8, 3, bits_choices=(4, 8))
        blocks = nn.ModuleList([InvertedResidual(8, 8, (3, 6), (3, 5), 1, True, (4, 8)), BasicBlock(8, 16, 2, (4, 8))])
        holder = trained_like(nn.Sequential(stem, *blocks), bits, 1, seed=bits)
        images = torch.rand(60, 1, 12, 12)
        want = copy.deepcopy(holder)
        recalibrate_batchnorm(want, images, batch_size=25)  # three batches, the last one smaller
        fstem, fblocks = fold_backbone(holder[0], nn.ModuleList(list(holder)[1:]), int8=int8)
        recalibrate_folded(fstem, fblocks, images, batch_size=25)
        bns = [m for m in want.modules() if isinstance(m, nn.BatchNorm2d)]
        folded = [m for part in (fstem, fblocks) for m in part.modules() if isinstance(m, FoldedConv)]
        assert len(bns) == len(folded) > 5
        for bn, layer in zip(bns, folded):
            assert int(layer.bn.num_batches_tracked) == 3 and layer.collecting is None
            assert layer.int8 == (int8 and bits <= 8)
            torch.testing.assert_close(layer.bn.running_mean, bn.running_mean, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(layer.bn.running_var, bn.running_var, rtol=1e-4, atol=1e-5)
        x = torch.rand(6, 1, 12, 12)
        with torch.no_grad():  # the new statistics are folded in
            got, ref = _run(fstem, fblocks, nhwc(x)), _run(want[0], nn.ModuleList(list(want)[1:]), x)
        assert torch.isclose(got, ref, rtol=1e-4, atol=1e-4).float().mean().item() > 0.99
