from __future__ import annotations

import pytest
import torch

from search_spaces.modules.quant import ActQuant, QConv2d, fake_quant_weight


def test_weight_quantisation_levels_and_straight_through_gradient():
    w = torch.randn(6, 5, 3, 3, requires_grad=True)
    for bits in (2, 4, 8):
        q = fake_quant_weight(w, bits)
        for row_q, row_w in zip(q, w):
            scale = row_w.detach().abs().max() / (2 ** (bits - 1) - 1)
            levels = torch.round(row_q.detach() / scale)
            assert torch.allclose(levels * scale, row_q.detach(), atol=1e-6)
            assert levels.abs().max() <= 2 ** (bits - 1) - 1
        assert (q - w).abs().max() <= w.detach().abs().max() / (2 ** (bits - 1) - 1)
    q = fake_quant_weight(w, 4)
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    assert fake_quant_weight(w, 32) is w


def test_activation_quantiser_tracks_range_and_freezes_in_eval():
    aq = ActQuant()
    aq.bits = 4
    aq.train()
    aq(torch.linspace(0, 6, 100))
    assert float(aq.lo) == 0.0 and float(aq.hi) == pytest.approx(6.0)
    aq.eval()
    y = aq(torch.linspace(-1, 10, 50))
    assert float(aq.hi) == pytest.approx(6.0)  # frozen
    assert y.max() <= 6.0 + 1e-6 and y.min() >= -1e-6
    assert len(torch.unique(y)) <= 16


def test_qconv_at_32_bits_is_a_plain_conv():
    conv = QConv2d(3, 4, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 8, 8)
    ref = torch.nn.functional.conv2d(x, conv.weight, padding=1)
    assert torch.allclose(conv(x), ref)
    conv.set_bits(4, 4)
    conv.eval()
    assert not torch.allclose(conv(x), ref)
