"""LSQ fake quantisation with one learned step size per bit-width (Esser et al., ICLR 2020).

q(x) = round(clamp(x / s, Qn, Qp)) * s, with a straight-through estimator for round() and the
step's gradient scaled by 1 / sqrt(N * Qp) (PyTorch's fused learnable fake-quantisation kernels). Weights: signed, one step per output channel.
Activations: one step per tensor, unsigned after a ReLU6 and signed elsewhere. Each quantiser keeps
a step (and an "initialised" flag) for every bit-width it may run at, so switching bits between
forward passes switches steps. Steps start at 2 * mean|x| / sqrt(Qp) on first use of a bit-width
(weights: from the weights; activations: from the first batch, averaged over processes when
``torch.distributed`` is initialised, so every rank starts from the same step).

In eval mode the step is used as is (no gradient-scaling arithmetic), so a static network that
copies the step gives bit-identical outputs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from search_spaces.genotype import FLOAT_BITS


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    """(Qn, Qp) integer range of a bit-width."""
    if signed:
        return -(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


_EXPLICIT = [False]


@contextlib.contextmanager
def exportable() -> Iterator[None]:
    """Quantise with explicit Reciprocal / Mul / Round / Clip / Mul instead of the fused kernels, which
    ONNX cannot express below 8 bits: for ONNX export. The formula is the kernels' own
    (round(x * (1/s)), float32), so the exported graph rounds every value the same way."""
    previous, _EXPLICIT[0] = _EXPLICIT[0], True
    try:
        yield
    finally:
        _EXPLICIT[0] = previous


def lsq(x: torch.Tensor, step: torch.Tensor, bits: int, signed: bool, training: bool = True) -> torch.Tensor:
    """Quantise-dequantise ``x`` with ``step`` (a scalar, or one per output channel along dim 0).

    Uses PyTorch's fused learnable fake-quantisation kernels (the LSQ implementation behind
    ``torch.ao``'s learnable fake quantiser): straight-through gradient for ``x`` inside the range,
    the LSQ gradient for the step, scaled by 1 / sqrt(N * Qp).
    """
    qn, qp = qrange(bits, signed)
    if _EXPLICIT[0]:
        n = step.numel()
        s = step.reshape(n, *([1] * (x.dim() - 1))) if n > 1 else step.reshape([])
        return torch.clamp(torch.round(x * torch.reciprocal(s)), qn, qp) * s
    per = max(1, x.numel() // max(1, step.numel()))
    grad_factor = 1.0 / math.sqrt(per * qp) if training else 1.0
    if step.numel() == 1:
        return torch._fake_quantize_learnable_per_tensor_affine(
            x, step.reshape(1), torch.zeros(1, device=x.device), qn, qp, grad_factor)
    return torch._fake_quantize_learnable_per_channel_affine(
        x, step.reshape(-1), torch.zeros(step.numel(), device=x.device), 0, qn, qp, grad_factor)


class LSQWeight(nn.Module):
    """Per-output-channel LSQ for weights, one step vector per bit-width."""

    def __init__(self, channels: int, bits_choices: Sequence[int]) -> None:
        super().__init__()
        bits = sorted({int(b) for b in bits_choices if b < FLOAT_BITS})
        self.steps = nn.ParameterDict({str(b): nn.Parameter(torch.ones(channels)) for b in bits})
        self.register_buffer("ready", torch.zeros(len(bits), dtype=torch.bool))
        self._index = {b: i for i, b in enumerate(bits)}

    def init_steps(self, full_weight: torch.Tensor, bits: int) -> None:
        """Initialise the step of ``bits`` from the full (all channels) weight, once."""
        if bits >= FLOAT_BITS or bool(self.ready[self._index[bits]]):
            return
        with torch.no_grad():
            _, qp = qrange(bits, True)
            mean_abs = full_weight.detach().abs().reshape(full_weight.shape[0], -1).mean(dim=1)
            self.steps[str(bits)].copy_((2 * mean_abs / math.sqrt(qp)).clamp_min(1e-8))
            self.ready[self._index[bits]] = True

    def forward(self, w: torch.Tensor, bits: int) -> torch.Tensor:
        """Quantise ``w`` (its leading output channels use the leading steps); call :meth:`init_steps` first."""
        if bits >= FLOAT_BITS:
            return w
        if bits not in self._index:
            raise ValueError(f"no weight step for {bits}-bit; this quantiser knows {sorted(self._index)}")
        if not bool(self.ready[self._index[bits]]):
            self.init_steps(w, bits)
        return lsq(w, self.steps[str(bits)][: w.shape[0]], bits, True, self.training)


class LSQAct(nn.Module):
    """Per-tensor LSQ for activations at a switchable bit-width (``self.bits``; 32 = float)."""

    def __init__(self, bits_choices: Sequence[int], signed: bool) -> None:
        super().__init__()
        bits = sorted({int(b) for b in bits_choices if b < FLOAT_BITS})
        self.signed = signed
        self.bits = FLOAT_BITS
        self.steps = nn.ParameterDict({str(b): nn.Parameter(torch.ones(())) for b in bits})
        self.register_buffer("ready", torch.zeros(len(bits), dtype=torch.bool))
        self._index = {b: i for i, b in enumerate(bits)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bits = self.bits
        if bits >= FLOAT_BITS:
            return x
        if bits not in self._index:
            raise ValueError(f"no activation step for {bits}-bit; this quantiser knows {sorted(self._index)}")
        step = self.steps[str(bits)]
        i = self._index[bits]
        if not bool(self.ready[i]):
            with torch.no_grad():
                _, qp = qrange(bits, self.signed)
                init = (2 * x.detach().abs().mean() / math.sqrt(qp)).clamp_min(1e-8)
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    torch.distributed.all_reduce(init)
                    init /= torch.distributed.get_world_size()
                step.copy_(init)
                self.ready[i] = True
        return lsq(x, step, bits, self.signed, self.training)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, signed={self.signed}, steps={sorted(self._index)}"
