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


@pytest.mark.parametrize("per_channel", [False, True])
def test_lsq_matches_pytorch_learnable_fake_quant_kernels(per_channel: bool):
    from search_spaces.modules.lsq import lsq

    torch.manual_seed(0)
    x = (torch.randn(16, 6, 9, 9) * 3).requires_grad_(True)
    step = (torch.rand(16) * 0.1 + 0.01 if per_channel else torch.tensor(0.07)).requires_grad_(True)
    g = torch.randn_like(x)
    qn, qp = qrange(4, True)
    factor = 1.0 / math.sqrt(x.numel() / step.numel() * qp)
    ours = lsq(x, step, 4, True, training=True)
    ours.backward(g)
    ours_gx, ours_gs = x.grad.clone(), step.grad.clone()
    x.grad = step.grad = None
    if per_channel:
        ref = torch._fake_quantize_learnable_per_channel_affine(x, step, torch.zeros(16), 0, qn, qp, factor)
    else:
        ref = torch._fake_quantize_learnable_per_tensor_affine(x, step.reshape(1), torch.zeros(1), qn, qp, factor)
    ref.backward(g)
    assert torch.equal(ours, ref)
    assert torch.equal(ours_gx, x.grad)
    assert torch.allclose(ours_gs, step.grad.reshape(step.shape), rtol=1e-4, atol=1e-6)


def test_lsq_keeps_channels_last_layout_of_a_one_channel_input():
    from search_spaces.modules.lsq import lsq

    x = torch.randn(4, 1, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out = lsq(x, torch.tensor(0.1, requires_grad=True), 8, True)
    assert out.stride() == x.stride()
    with torch.no_grad():
        assert lsq(x, torch.tensor(0.1), 8, True).stride() == x.stride()


def _lsq_pass(x: torch.Tensor, step: torch.Tensor, bits: int, signed: bool, compiled: bool):
    from search_spaces.modules.lsq import compiled_quantisers, lsq

    x, step = x.detach().clone().requires_grad_(), step.detach().clone().requires_grad_()
    with compiled_quantisers(compiled):
        out = lsq(x, step, bits, signed)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    return out.detach(), x.grad, step.grad


@pytest.mark.parametrize("bits,signed", [(4, False), (8, True)])
def test_compiled_activation_quantiser_equals_the_eager_one(bits: int, signed: bool):
    """torch.compile's fused kernels: the same output and input gradient bit for bit, the step's
    gradient up to summation order; channels-last layout kept."""
    torch.manual_seed(0)
    x = (torch.randn(4, 6, 9, 9) * 3).contiguous(memory_format=torch.channels_last)
    step = torch.tensor(0.3)
    eager, compiled = _lsq_pass(x, step, bits, signed, False), _lsq_pass(x, step, bits, signed, True)
    assert torch.equal(eager[0], compiled[0]) and torch.equal(eager[1], compiled[1])
    assert torch.allclose(eager[2], compiled[2], rtol=1e-5, atol=1e-6)
    assert compiled[0].is_contiguous(memory_format=torch.channels_last)


def test_compiled_quantisers_fall_back_to_eager_when_compiling_fails(monkeypatch):
    from search_spaces.modules import lsq as module

    def refuse(*_args, **_kwargs):
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(module, "_KERNELS", {})
    monkeypatch.setattr(module, "_BROKEN", [])
    monkeypatch.setattr(torch, "compile", refuse)
    x, step = torch.randn(2, 3, 5, 5), torch.tensor(0.2)
    with pytest.warns(UserWarning, match="no C\\+\\+ compiler here"):
        fallback = _lsq_pass(x, step, 4, True, True)
    eager = _lsq_pass(x, step, 4, True, False)
    assert all(torch.equal(a, b) for a, b in zip(fallback, eager))


def test_range_init_fits_the_input_range_and_reset_refits():
    """An image (most values at its background) gets max|x| / Qp, not LSQ's 2 mean|x| / sqrt(Qp)."""
    image = torch.cat([torch.full((200,), -0.66), torch.linspace(0.0, 2.35, 200)]).reshape(1, 1, 20, 20)
    lsq_rule, fitted = LSQAct((4, 8), signed=True), LSQAct((4, 8), signed=True, range_init=True)
    for bits in (4, 8):
        lsq_rule.bits = fitted.bits = bits
        lsq_rule(image), fitted(image)
        _, qp = qrange(bits, True)
        assert float(fitted.steps[str(bits)].detach()) == pytest.approx(2.35 / qp)
        wide = float(lsq_rule.steps[str(bits)].detach())
        assert wide > 1.5 * float(fitted.steps[str(bits)].detach())  # the waste range_init fixes
        assert len(torch.unique(fitted(image))) > len(torch.unique(lsq_rule(image)))
    fitted.reset()
    assert not bool(fitted.ready.any())
    fitted(image * 2)  # each bit-width starts afresh from its next batch
    assert float(fitted.steps["8"].detach()) == pytest.approx(4.70 / 127) and not bool(fitted.ready[0])
    assert "range_init=True" in repr(fitted)


def test_a_zero_point_fits_all_levels_to_the_range_and_old_checkpoints_load_as_trained():
    """Asymmetric levels: all 2^bits of them span [min, max] of the first batch (zero included), the
    quantiser computes clamp(round(x / s), -z, 2^bits - 1 - z) * s, and a checkpoint without zero
    points loads on its trained symmetric steps until a reset re-fits them with the zero point."""
    image = torch.cat([torch.full((200,), -0.66), torch.linspace(0.0, 2.35, 200)]).reshape(1, 1, 20, 20)
    symmetric = LSQAct((4, 8), signed=True, range_init=True)
    asymmetric = LSQAct((4, 8), signed=True, range_init=True, zero_point=True)
    for bits in (4, 8):
        symmetric.bits = asymmetric.bits = bits
        symmetric(image)
        out = asymmetric(image)
        step = float(asymmetric.steps[str(bits)].detach())
        qn, qp = asymmetric.qrange(bits)
        assert step == pytest.approx(3.01 / (2**bits - 1)) and (qn, qp) == (-round(0.66 / step), 2**bits - 1 + qn)
        want = torch.clamp(torch.round(image / step), qn, qp) * step
        torch.testing.assert_close(out, want)
        assert len(torch.unique(out)) > len(torch.unique(symmetric(image)))  # more of the levels used
        assert len(torch.unique(asymmetric(torch.linspace(-0.66, 2.35, 1000)))) == 2**bits
    state = asymmetric.state_dict()
    assert "zeros" in state and "zeros" not in symmetric.state_dict()  # saved only where they are used
    restored = LSQAct((4, 8), signed=True, range_init=True, zero_point=True)
    restored.load_state_dict(state)
    restored.bits = 8  # as the others, last run at 8 bits
    assert torch.equal(restored.zeros, asymmetric.zeros) and bool(restored.ready.all())
    torch.testing.assert_close(restored(image), asymmetric(image), rtol=0, atol=0)
    # a checkpoint from before zero points computes what it computed: its symmetric steps, as trained
    restored.load_state_dict(symmetric.state_dict())
    assert not restored.asymmetric and bool(restored.ready.all()) and "symmetric as loaded" in repr(restored)
    torch.testing.assert_close(restored(image), symmetric(image), rtol=0, atol=0)
    restored.reset()  # re-fitting brings the zero point back
    restored(image)
    assert restored.asymmetric and restored.qrange(8) == asymmetric.qrange(8)
    # a quantiser without zero points ignores them in a state dict (as an older checkpoint wrote them)
    plain = LSQAct((4, 8), signed=True)
    plain.bits = 8
    plain.load_state_dict(state)
    assert not plain.asymmetric and plain.qrange(8) == (-127, 127)
    assert "zero_point=True" in repr(asymmetric)


def test_the_stem_input_quantiser_is_range_initialised_and_extracted_so():
    from search_spaces import create_space

    for name in ("mobilenetv2_cifar", "resnet_cifar"):
        space = create_space(name, width_mult=0.25, bits_choices=(4, 8))
        net = space.build_supernet()
        acts = [(n, m) for n, m in net.named_modules() if isinstance(m, LSQAct)]
        assert [n for n, m in acts if m.range_init] == ["stem.conv.act"], name
        assert [n for n, m in acts if m.zero_point] == ["stem.conv.act"], name
        genotype = space.uniform(bits=4)
        net.configure(genotype)
        net.train()(torch.rand(2, 3, 32, 32) - 0.3)  # fits the 4-bit steps, the stem's zero point included
        static = net.extract(genotype)
        act = static.stem.conv.act
        assert act.range_init and act.zero_point, name
        assert act.qrange(4) == net.stem.conv.act.qrange(4) != (-7, 7), name
