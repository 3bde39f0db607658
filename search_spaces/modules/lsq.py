"""LSQ fake quantisation with one learned step size per bit-width (Esser et al., ICLR 2020).

q(x) = clamp(round(x * (1/s)), Qn, Qp) * s, with a straight-through estimator for round() and the
step's gradient scaled by 1 / sqrt(N * Qp) (the formula of PyTorch's learnable fake-quantisation
kernels, in in-place ops that keep the input's memory layout). Weights: signed, one step per output
channel.
Activations: one step per tensor, unsigned after a ReLU6 and signed elsewhere. Each quantiser keeps
a step (and an "initialised" flag) for every bit-width it may run at, so switching bits between
forward passes switches steps. Steps start at 2 * mean|x| / sqrt(Qp) on first use of a bit-width
(weights: from the weights; activations: from the first batch, averaged over processes when
``torch.distributed`` is initialised, so every rank starts from the same step). An activation
quantiser with ``range_init`` (the network's input image) starts at max|x| / Qp instead, the largest
over processes: the image's own range in Qp levels. LSQ's rule suits bell-shaped values; on a
Fashion-MNIST image (most pixels at the background) it gave a step 7x too wide at 8 bits (23 of
255 levels used) and 1.6x at 4 bits (6 of 15 levels), and the step's scaled-down gradient never
moved it far (``benchmarks/input_steps.py``). With ``zero_point`` as well (the image's quantiser in
both spaces) the levels are asymmetric, -z .. 2^bits - 1 - z with an integer zero point z fitted to
the batch's [min, max]: a mostly positive image uses all 2^bits levels instead of the half of a
symmetric range its values reach.

In eval mode the step is used as is (no gradient-scaling arithmetic), so a static network that
copies the step gives bit-identical outputs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

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


def exporting() -> bool:
    """Inside :func:`exportable` (an ONNX export is tracing the explicit quantisation ops)."""
    return _EXPLICIT[0]


def _broadcast_step(step: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``step`` shaped to broadcast over ``x``: a scalar, or one value per index of dim 0."""
    return step.reshape(-1, *([1] * (x.dim() - 1))) if step.numel() > 1 else step.reshape([])


def levels(x: torch.Tensor, step: torch.Tensor, qn: int, qp: int) -> torch.Tensor:
    """The integer levels clamp(round(x * (1/s)), qn, qp), as floats, in a new tensor with ``x``'s
    memory layout (``step``: a scalar, or one per index of dim 0)."""
    s = _broadcast_step(step, x)
    return torch.mul(x, torch.reciprocal(s), out=torch.empty_like(x)).round_().clamp_(qn, qp)


def _quantise(x: torch.Tensor, step: torch.Tensor, qn: int, qp: int) -> torch.Tensor:
    """clamp(round(x * (1/s)), qn, qp) * s into a new tensor with ``x``'s memory layout."""
    return levels(x, step, qn, qp).mul_(_broadcast_step(step, x))


class _LSQFunction(torch.autograd.Function):
    """Fake quantisation with the LSQ gradient, written in in-place torch ops.

    Same arithmetic as PyTorch's learnable fake-quantisation kernels (``round(x * (1/s))``, round
    half to even, clamp, ``* s``; the straight-through mask taken on the rounded value), but the
    output keeps the input's memory layout (the kernels return NCHW for a 1-channel channels-last
    input, which sends the whole network down the slow NCHW path) and no temporary is allocated
    that the in-place ops can reuse. Measured in ``benchmarks/training_throughput.py``. A one-value
    step inside :func:`compiled_quantisers` runs the fused kernels instead (the same formulas).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, step: torch.Tensor, qn: int, qp: int,
                grad_factor: float) -> torch.Tensor:
        ctx.save_for_backward(x, step)
        ctx.qn, ctx.qp, ctx.grad_factor = qn, qp, grad_factor
        ctx.fused = _COMPILE[0] and step.numel() == 1
        if ctx.fused:
            return cast(torch.Tensor, _fused(_per_tensor_forward, x, step.reshape([]), qn, qp))
        return _quantise(x, step, qn, qp)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, step = ctx.saved_tensors
        if ctx.fused:
            grad_x, grad_sum = cast(tuple, _fused(_per_tensor_backward, x, step.reshape([]), grad, ctx.qn, ctx.qp))
            return grad_x, (grad_sum * ctx.grad_factor).reshape(step.shape), None, None, None
        scaled = torch.empty_like(x)
        torch.mul(x, torch.reciprocal(_broadcast_step(step, x)), out=scaled)
        rounded = torch.round(scaled)
        outside = (rounded < ctx.qn).logical_or_(rounded > ctx.qp)
        grad_x = torch.where(outside, 0.0, grad)
        # d(out)/d(step): round(x/s) - x/s inside the range, the clamped level outside it
        grad_step = rounded.clamp_(ctx.qn, ctx.qp).sub_(scaled.masked_fill_(outside, 0.0)).mul_(grad)
        if step.numel() > 1:
            grad_step = grad_step.sum(dim=tuple(range(1, x.dim())))
        else:
            grad_step = grad_step.sum().reshape(step.shape)
        return grad_x, grad_step * ctx.grad_factor, None, None, None


def _per_tensor_forward(x: torch.Tensor, s: torch.Tensor, qn: int, qp: int) -> torch.Tensor:
    """clamp(round(x * (1/s)), qn, qp) * s for a scalar step ``s`` (the body of a compiled kernel)."""
    return torch.clamp(torch.round(x * torch.reciprocal(s)), qn, qp) * s


def _per_tensor_backward(x: torch.Tensor, s: torch.Tensor, grad: torch.Tensor, qn: int, qp: int
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(d loss / d x, d loss / d s unscaled) of :func:`_per_tensor_forward`: ``_LSQFunction``'s formulas."""
    scaled = x * torch.reciprocal(s)
    rounded = torch.round(scaled)
    outside = (rounded < qn) | (rounded > qp)
    grad_step = torch.where(outside, torch.clamp(rounded, qn, qp), rounded - scaled) * grad
    return torch.where(outside, 0.0, grad), grad_step.sum()


_COMPILE = [False]  # inside compiled_quantisers()
_KERNELS: dict[Callable[..., Any], Callable[..., Any]] = {}  # body -> its compiled kernel, built on first use
_BROKEN: list[str] = []  # why compiling failed (the eager kernels are used from then on)


@contextlib.contextmanager
def compiled_quantisers(enabled: bool = True) -> Iterator[None]:
    """Train activation quantisers (one step per tensor) with kernels fused by ``torch.compile``: one
    pass over the tensor forward and one backward instead of ~15 (measured in
    ``benchmarks/training_throughput.py``; in inference, 4 eager passes, it gained under 5 %, so
    inference stays eager). Same formulas; the step's gradient is summed in another
    order, so it may differ from the eager one in the last bits. Falls back to the eager kernels,
    with one warning, where compiling fails (no C++ compiler, an unsupported device)."""
    previous, _COMPILE[0] = _COMPILE[0], enabled
    try:
        yield
    finally:
        _COMPILE[0] = previous


def _fused(body: Callable[..., Any], *args: object) -> object:
    """Run ``body`` compiled by ``torch.compile``, or as it is once compiling failed."""
    if not _BROKEN:
        try:
            if body not in _KERNELS:
                _KERNELS[body] = torch.compile(body, dynamic=True)
            return _KERNELS[body](*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: use the eager kernels
            import warnings

            _BROKEN.append(f"{type(exc).__name__}: {exc}")
            warnings.warn(f"compiled quantisers unavailable, using the eager ones ({_BROKEN[0][:200]})", stacklevel=2)
    return body(*args)


def lsq(x: torch.Tensor, step: torch.Tensor, bits: int, signed: bool, training: bool = True) -> torch.Tensor:
    """Quantise-dequantise ``x`` with ``step`` (a scalar, or one per output channel along dim 0) on the
    symmetric (signed) or unsigned levels of ``bits`` (:func:`quantise` on :func:`qrange`)."""
    return quantise(x, step, *qrange(bits, signed), training=training)


def quantise(x: torch.Tensor, step: torch.Tensor, qn: int, qp: int, training: bool = True) -> torch.Tensor:
    """clamp(round(x / step), qn, qp) * step with a straight-through gradient for ``x`` inside the
    range and the LSQ gradient for the step, scaled by 1 / sqrt(N * max(Qp, -Qn)) in training
    (``_LSQFunction``; PyTorch's learnable fake-quantisation formula)."""
    if _EXPLICIT[0]:
        s = _broadcast_step(step, x)
        return torch.clamp(torch.round(x * torch.reciprocal(s)), qn, qp) * s
    per = max(1, x.numel() // max(1, step.numel()))
    grad_factor = 1.0 / math.sqrt(per * max(qp, -qn)) if training else 1.0
    if not torch.is_grad_enabled() or not (x.requires_grad or step.requires_grad):
        with torch.no_grad():
            return _quantise(x, step, qn, qp)
    return _LSQFunction.apply(x, step, qn, qp, grad_factor)


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
    """Per-tensor LSQ for activations at a switchable bit-width (``self.bits``; 32 = float).

    ``range_init``: steps start at the first batch's max|x| / Qp (for a bounded input such as the
    image) instead of LSQ's 2 * mean|x| / sqrt(Qp). ``zero_point`` (with ``range_init``): asymmetric
    levels, the 2^bits integers ``-z .. 2^bits - 1 - z`` with an integer zero point ``z`` per
    bit-width, both fitted to the first batch's [min, max] (zero included); the step is learned, the
    zero point stays. Level ``l`` stands for ``l * step`` either way, so a consumer of the levels
    sees the same arithmetic; an int8 layer stores ``l + z`` as an unsigned byte.

    A state dict holds ``zeros`` exactly when the quantiser ran with zero points. One without them
    (written before zero points existed) loads as it was trained, on symmetric levels, until
    :meth:`reset` re-fits the steps with the zero point ``zero_point`` asks for: an older checkpoint
    or export computes what it computed when it was written."""

    zeros: torch.Tensor  # the zero point z of each bit-width (used while :attr:`asymmetric`)

    def __init__(self, bits_choices: Sequence[int], signed: bool, range_init: bool = False,
                 zero_point: bool = False) -> None:
        super().__init__()
        bits = sorted({int(b) for b in bits_choices if b < FLOAT_BITS})
        self.signed = signed
        self.range_init = range_init
        self.bits = FLOAT_BITS
        self.steps = nn.ParameterDict({str(b): nn.Parameter(torch.ones(())) for b in bits})
        self.register_buffer("ready", torch.zeros(len(bits), dtype=torch.bool))
        self.register_buffer("zeros", torch.zeros(len(bits), dtype=torch.int64), persistent=False)
        self._index = {b: i for i, b in enumerate(bits)}
        self.zero_point = zero_point

    @property
    def zero_point(self) -> bool:
        """Whether the steps are fitted with a zero point (the design; :attr:`asymmetric`: whether the
        loaded steps use one)."""
        return self._zero_point

    @zero_point.setter
    def zero_point(self, on: bool) -> None:
        self._zero_point = self.asymmetric = bool(on)

    def qrange(self, bits: int) -> tuple[int, int]:
        """(Qn, Qp) integer range of the levels at ``bits`` (after the zero point is fitted)."""
        if not self.asymmetric:
            return qrange(bits, self.signed)
        z = int(self.zeros[self._index[bits]])
        return -z, 2**bits - 1 - z

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
                step.copy_(self._first_step(x, bits))
                self.ready[i] = True
        return quantise(x, step, *self.qrange(bits), training=self.training)

    def _first_step(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        """The initial step of ``bits`` from the batch ``x`` (the same on every process); sets the
        zero point of an asymmetric quantiser."""
        _, qp = qrange(bits, self.signed)
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if self.range_init:
            x = x.detach()
            # the largest value and the largest negated value (zero included), the largest over processes
            bounds = torch.stack([x.amax(), -x.amin()]).clamp_min(0.0) if self.asymmetric else x.abs().amax()
            if distributed:
                torch.distributed.all_reduce(bounds, op=torch.distributed.ReduceOp.MAX)
            if not self.asymmetric:
                return (bounds / qp).clamp_min(1e-8)
            step = (bounds.sum() / (2**bits - 1)).clamp_min(1e-8)
            self.zeros[self._index[bits]] = int(torch.round(bounds[1] / step).clamp(0, 2**bits - 1))
            return step
        init = (2 * x.detach().abs().mean() / math.sqrt(qp)).clamp_min(1e-8)
        if distributed:
            torch.distributed.all_reduce(init)
            init /= torch.distributed.get_world_size()
        return init

    def reset(self) -> None:
        """Forget every step (and zero point): each bit-width starts afresh from its next batch, with
        a zero point if :attr:`zero_point` asks for one."""
        self.ready.zero_()
        self.zeros.zero_()
        self.asymmetric = self.zero_point

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.asymmetric:
            destination[prefix + "zeros"] = self.zeros if keep_vars else self.zeros.detach()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Zero points where the state dict has them (and :attr:`zero_point` asks for them); symmetric
        levels, as trained, where it has none."""
        zeros = state_dict.pop(prefix + "zeros", None)
        if prefix + "ready" in state_dict:
            self.asymmetric = zeros is not None and self.zero_point
            if self.asymmetric:
                self.zeros.copy_(torch.as_tensor(zeros))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        init = ", range_init=True" if self.range_init else ""
        init += ", zero_point=True" if self.zero_point else ""
        init += " (symmetric as loaded)" if self.zero_point and not self.asymmetric else ""
        return f"bits={self.bits}, signed={self.signed}{init}, steps={sorted(self._index)}"
