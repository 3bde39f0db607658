from __future__ import annotations

import torch
from torch.nn import functional as F

from search_spaces.modules.quant import ElasticBatchNorm2d, QConv2d, QLinear


def test_elastic_conv_runs_leading_channels_and_centre_kernel():
    torch.manual_seed(0)
    conv = QConv2d(8, 16, 7, bits_choices=(8,))
    conv.active_out, conv.active_kernel = 6, 3
    x = torch.randn(2, 5, 10, 10)
    ref = F.conv2d(x, conv.weight[:6, :5, 2:5, 2:5], padding=1)
    assert torch.allclose(conv(x), ref)  # float (32-bit) by default


def test_smaller_kernels_have_weights_of_their_own_started_at_the_centre():
    torch.manual_seed(0)
    dw = QConv2d(6, 6, 7, depthwise=True, bits_choices=(8,), kernels=(3, 5, 7))
    assert sorted(dw.small) == ["3", "5"] and torch.equal(dw.small["3"], dw.weight[:, :, 2:5, 2:5])
    x = torch.randn(2, 6, 9, 9)
    dw.active_kernel = 3
    dw(x).sum().backward()
    # the 3x3 path trains its own weights only: the largest kernel (and the 5x5) get no gradient
    assert dw.weight.grad is None and dw.small["5"].grad is None and dw.small["3"].grad.abs().sum() > 0
    before = dw.weight.detach().clone()
    with torch.no_grad():
        dw.small["3"].add_(1.0)
    assert torch.equal(dw.weight, before)  # changing the 3x3 leaves the 7x7 as it was


def test_a_checkpoint_without_small_kernels_loads_them_from_the_centre():
    torch.manual_seed(0)
    old = QConv2d(6, 6, 7, depthwise=True, bits_choices=(8,))  # the layer before small kernels had their own
    new = QConv2d(6, 6, 7, depthwise=True, bits_choices=(8,), kernels=(3, 5, 7))
    new.load_state_dict(old.state_dict())  # strict: nothing missing
    x = torch.randn(2, 6, 9, 9)
    for k in (3, 5, 7):
        old.active_kernel = new.active_kernel = k
        assert torch.equal(new(x), old(x))
    try:
        QConv2d(6, 6, 5, depthwise=True, kernels=(3, 7))
    except ValueError as exc:
        assert "kernels" in str(exc)
    else:
        raise AssertionError("a kernel larger than the largest must be refused")


def test_static_copies_equal_the_elastic_layers_bit_for_bit():
    torch.manual_seed(1)
    conv = QConv2d(8, 16, 5, stride=2, bits_choices=(4, 8), act_signed=False)
    bn = ElasticBatchNorm2d(16)
    conv.train(), bn.train()
    x = torch.rand(4, 6, 12, 12)
    conv.set_bits(4, 8)
    conv.active_out, conv.active_kernel = 10, 3
    bn(conv(x))  # initialise steps and statistics
    conv.eval(), bn.eval()
    static_conv, static_bn = conv.static_copy(6), bn.static_copy(10)
    static_conv.eval(), static_bn.eval()
    assert static_conv.weight.shape == (10, 6, 3, 3)
    assert torch.equal(static_bn(static_conv(x)), bn(conv(x)))
    dw = QConv2d(12, 12, 7, depthwise=True, bits_choices=(2,))
    dw.set_bits(2, 2)
    dw.active_kernel = 5
    y = torch.randn(2, 9, 8, 8)
    dw.train()
    dw(y)
    dw.eval()
    static = dw.static_copy(9).eval()
    assert static.weight.shape == (9, 1, 5, 5) and torch.equal(static(y), dw(y))
    fc = QLinear(20, 7, (4, 8))
    fc.set_bits(8, 4)
    z = torch.randn(3, 20)
    fc.train()
    fc(z)
    fc.eval()
    assert torch.equal(fc.static_copy().eval()(z), fc(z))


def test_elastic_batch_norm_updates_only_active_channels():
    bn = ElasticBatchNorm2d(8)
    bn.train()
    bn(torch.randn(4, 3, 5, 5) + 10)
    assert (bn.running_mean[:3] > 0.5).all() and torch.equal(bn.running_mean[3:], torch.zeros(5))


def test_inference_reuses_the_quantised_weight_until_it_changes():
    from search_spaces.modules.lsq import exportable

    conv = QConv2d(4, 6, 3, bits_choices=(4, 8)).eval()
    conv.set_bits(4, 8)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        first = conv(x)
        assert conv._reused and torch.equal(conv(x), first)
        conv.weight.mul_(2)  # an in-place change (an optimiser step, a load) invalidates the kept weight
        changed = conv(x)
        conv.set_bits(8, 8)
        eight = conv(x)
        conv.set_bits(4, 8)
        assert torch.equal(conv(x), changed) and not torch.equal(changed, first) and not torch.equal(eight, changed)
        with exportable():  # an export traces the explicit ops, never a kept tensor
            conv._reused = None
            conv(x)
            assert conv._reused is None
    conv._reused = None
    conv(x)  # autograd on: never kept
    conv.train()
    with torch.no_grad():
        conv(x)  # training mode: never kept
    assert conv._reused is None
