"""Switchable fake quantisation with a straight-through estimator.

Weights: symmetric, per output channel, scale = max|w| / (2^(b-1) - 1).
Activations: uniform, asymmetric per tensor (zero point on the grid) over a range tracked by an
exponential moving average of batch minima/maxima during training and frozen in eval mode.
Both use PyTorch's fused ``fake_quantize_*`` kernels (straight-through gradient inside the range). The bit-width of every quantiser
can be switched between forward passes (a genotype chooses it); ``bits >= 32`` disables it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_spaces.genotype import FLOAT_BITS


def fake_quant_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Quantise-dequantise ``weight`` per output channel to ``bits``; gradients pass straight through."""
    if bits >= FLOAT_BITS:
        return weight
    if bits < 2:
        raise ValueError(f"weight bits must be >= 2, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    dims = tuple(range(1, weight.dim()))
    scale = (weight.detach().abs().amax(dim=dims).clamp_min(1e-8) / qmax).float()
    zero = torch.zeros(scale.shape, dtype=torch.int32, device=weight.device)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -qmax, qmax)


class ActQuant(nn.Module):
    """Fake-quantises activations to ``self.bits`` over an EMA-tracked range [lo, hi]."""

    def __init__(self, momentum: float = 0.1) -> None:
        super().__init__()
        self.bits = FLOAT_BITS
        self.momentum = momentum
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                lo, hi = x.min(), x.max()
                if not bool(self.initialized):
                    self.lo.copy_(lo)
                    self.hi.copy_(hi)
                    self.initialized.fill_(True)
                else:
                    self.lo.lerp_(lo, self.momentum)
                    self.hi.lerp_(hi, self.momentum)
        if self.bits >= FLOAT_BITS:
            return x
        if bool(self.initialized):
            lo, hi = self.lo, self.hi
        else:
            lo, hi = x.detach().min(), x.detach().max()
        levels = 2**self.bits - 1
        scale = ((hi - lo).clamp_min(1e-8) / levels).reshape(1).float()
        zero = torch.clamp(torch.round(-lo / scale), 0, levels).reshape(1).to(torch.int32)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, levels)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


class _Switchable:
    """Mixin: a weight bit-width plus an input-activation quantiser, switchable between passes."""

    w_bits: int
    act: ActQuant

    def _init_quant(self) -> None:
        self.w_bits = FLOAT_BITS
        self.act = ActQuant()

    def set_bits(self, w_bits: int, a_bits: int) -> None:
        """Choose weight and input-activation bit-widths for the following forward passes."""
        self.w_bits = int(w_bits)
        self.act.bits = int(a_bits)


class QConv2d(_Switchable, nn.Conv2d):
    """Conv2d whose input activations and weights are fake-quantised at switchable bit-widths."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - same signature as Conv2d
        super().__init__(*args, **kwargs)
        self._init_quant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.act(x), fake_quant_weight(self.weight, self.w_bits), self.bias)


class QLinear(_Switchable, nn.Linear):
    """Linear layer with fake-quantised input activations and weights."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - same signature as Linear
        super().__init__(*args, **kwargs)
        self._init_quant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.act(x), fake_quant_weight(self.weight, self.w_bits), self.bias)
