from __future__ import annotations

import math

import pytest
import torch

from search_spaces.modules.lsq import LSQAct, LSQWeight, qrange


def test_weight_steps_init_levels_and_straight_through_gradient():
    torch.manual_seed(0)
    w = torch.randn(6, 5, 3, 3, requires_grad=True)
    q = LSQWeight(6, (2, 4, 8))
    for bits in (2, 4, 8):
        out = q(w, bits)
        step = q.steps[str(bits)].detach().view(6, 1, 1, 1)
        _, qp = qrange(bits, True)
        expected = 2 * w.detach().abs().mean(dim=(1, 2, 3)) / math.sqrt(qp)
        assert torch.allclose(step.flatten(), expected)
        levels = out.detach() / step
        assert torch.allclose(levels, levels.round(), atol=1e-4)
        assert levels.abs().max() <= qp
    q.train()
    w.grad = None
    out = q(w, 8)
    out.sum().backward()
    inside = (w.detach().abs() / q.steps["8"].detach().view(6, 1, 1, 1)) < qrange(8, True)[1]
    assert torch.allclose(w.grad[inside], torch.ones_like(w.grad[inside]))
    assert q.steps["8"].grad is not None and q.steps["8"].grad.abs().sum() > 0
    assert q(w, 32) is w
    with pytest.raises(ValueError, match="no weight step for 3-bit"):
        q(w, 3)


def test_elastic_channels_use_the_leading_steps_of_a_full_init():
    full = torch.randn(8, 4)
    q = LSQWeight(8, (4,))
    q.init_steps(full, 4)
    before = q.steps["4"].detach().clone()
    q(full[:3], 4)  # a narrower pass must not re-initialise
    assert torch.equal(q.steps["4"].detach(), before)


def test_activation_quantiser_signed_unsigned_and_switchable_bits():
    x = torch.linspace(-3, 6, 200)
    unsigned = LSQAct((4, 8), signed=False)
    unsigned.bits = 4
    y = unsigned(x)
    assert y.min() >= 0 and len(torch.unique(y)) <= 16
    signed = LSQAct((4, 8), signed=True)
    signed.bits = 4
    assert signed(x).min() < 0
    levels4 = len(torch.unique(signed(x)))
    signed.bits = 8
    levels8 = len(torch.unique(signed(x)))
    assert levels4 <= 15 < levels8 <= 255
    signed.bits = 32
    assert torch.equal(signed(x), x)
    assert set(signed.steps) == {"4", "8"} and bool(signed.ready.all())
