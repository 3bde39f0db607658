"""Quantised layers with weight sharing: elastic convolutions, elastic batch-norm, linear layers.

An elastic layer owns the weights of its largest shape and runs any smaller one: the leading output
and input channels and the centre of the kernel (Once-for-All style weight sharing). A convolution
built with its kernel choices holds its own weights for each smaller kernel size instead
(``QConv2d(kernels=...)``), initialised to the centre of the largest: the small kernels then stop
pulling the large one's centre their way (measured in ``benchmarks/fashion_mnist_supernet.py``). Inputs and
weights are fake-quantised with LSQ at bit-widths chosen per forward pass (``set_bits``; 32 =
float). :meth:`static_copy` returns a layer of the same class whose largest shape is the active one
and which holds only the chosen bit-widths' steps: the building block of an extracted subnet, whose
outputs equal the supernet's bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from search_spaces.genotype import FLOAT_BITS
from search_spaces.modules.lsq import LSQAct, LSQWeight, exporting


class _Switchable:
    """Mixin: weight bits plus an input-activation quantiser, switchable between passes."""

    w_bits: int
    act: LSQAct
    wq: LSQWeight
    _reused: dict[tuple, torch.Tensor] | None = None  # quantised weights kept for inference, by key

    def _quantised(self, weight: Callable[[], torch.Tensor], key: tuple) -> torch.Tensor:
        """``wq(weight())``, computed once per weight, step, shape and bits in inference (eval mode,
        no autograd, not exporting): identical values, without re-quantising the weights every
        batch. A few keys are kept (an exit head is run at each of its bit-widths in turn)."""
        if self.training or torch.is_grad_enabled() or exporting() or torch.jit.is_tracing():
            return self.wq(weight(), self.w_bits)
        step = self.wq.steps[str(self.w_bits)]._version if self.w_bits < FLOAT_BITS else None
        key = (*key, self.w_bits, self._source()._version, step)
        if self._reused is None or len(self._reused) >= 8 and key not in self._reused:
            self._reused = {}
        if key not in self._reused:
            self._reused[key] = self.wq(weight(), self.w_bits)
        return self._reused[key]

    def _source(self) -> nn.Parameter:
        """The parameter the active weights are taken from."""
        return self.weight

    def set_bits(self, w_bits: int, a_bits: int) -> None:
        """Weight and input-activation bit-widths for the following forward passes."""
        self.w_bits = int(w_bits)
        self.act.bits = int(a_bits)

    def _copy_quantisers(self, dst: _Switchable, out_channels: int) -> None:
        """Give ``dst`` this layer's steps for its current bits (leading ``out_channels``)."""
        dst.set_bits(self.w_bits, self.act.bits)
        if self.w_bits < FLOAT_BITS:
            i = self.wq._index[self.w_bits]
            dst.wq.steps[str(self.w_bits)].data.copy_(self.wq.steps[str(self.w_bits)].data[:out_channels])
            dst.wq.ready[0] = self.wq.ready[i]
        if self.act.bits < FLOAT_BITS:
            i = self.act._index[self.act.bits]
            dst.act.steps[str(self.act.bits)].data.copy_(self.act.steps[str(self.act.bits)].data)
            dst.act.ready[0] = self.act.ready[i]
            dst.act.zeros[0] = self.act.zeros[i]
            dst.act.asymmetric = self.act.asymmetric


def _centre(w: torch.Tensor, k: int) -> torch.Tensor:
    """The centre ``k`` x ``k`` of a weight tensor's kernels (a view)."""
    trim = (w.shape[-1] - k) // 2
    return w[:, :, trim : trim + k, trim : trim + k] if trim else w


class QConv2d(_Switchable, nn.Module):
    """Elastic, quantised 2-D convolution (no bias; padding = kernel // 2).

    ``depthwise``: groups = channels. Active shape: ``active_out`` output channels (depthwise: the
    input's channels), ``active_kernel`` (odd, <= the largest), input channels from the input.
    ``kernels``: the kernel sizes that get weights of their own (the largest is ``weight``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, depthwise: bool = False,
                 bits_choices: Sequence[int] = (8,), act_signed: bool = True,
                 kernels: Sequence[int] | None = None) -> None:
        super().__init__()
        if depthwise and in_channels != out_channels:
            raise ValueError("a depthwise convolution needs in_channels == out_channels")
        own = sorted({int(k) for k in kernels or ()} - {kernel})
        if any(k > kernel or k % 2 == 0 for k in own):
            raise ValueError(f"kernels: expected odd sizes up to the largest ({kernel}), got {list(kernels or ())}")
        self.in_channels, self.out_channels, self.kernel = in_channels, out_channels, kernel
        self.stride, self.depthwise = stride, depthwise
        self.weight = nn.Parameter(torch.empty(out_channels, 1 if depthwise else in_channels, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        # smaller kernel sizes with weights of their own (no kernels given: every size is a centre crop)
        self.small = nn.ParameterDict({str(k): nn.Parameter(_centre(self.weight.data, k).clone()) for k in own})
        self.wq = LSQWeight(out_channels, bits_choices)
        self.act = LSQAct(bits_choices, act_signed)
        self.w_bits = FLOAT_BITS
        self.active_out = out_channels
        self.active_kernel = kernel

    def _source(self) -> nn.Parameter:
        """The parameter the active kernel size is taken from: its own weights, or the largest's."""
        return self.small[str(self.active_kernel)] if str(self.active_kernel) in self.small else self.weight

    def active_weight(self, in_channels: int) -> torch.Tensor:
        """The weights of the active shape (contiguous, so shapes equal to a static layer's compute alike)."""
        out = in_channels if self.depthwise else self.active_out
        w = self._source()[:out, : (1 if self.depthwise else in_channels)]
        return _centre(w, self.active_kernel).contiguous()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """A checkpoint from before the small kernels had their own weights gets them from the centre
        of its largest kernel (the network then computes exactly what it computed before)."""
        if prefix + "weight" in state_dict:
            for k in self.small:
                state_dict.setdefault(f"{prefix}small.{k}", _centre(state_dict[prefix + "weight"], int(k)).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.w_bits < FLOAT_BITS:
            self.wq.init_steps(self.weight, self.w_bits)
        cin = int(x.shape[1])  # a constant even when traced (channels are static in any one network)
        w = self._quantised(lambda: self.active_weight(cin), (cin, self.active_out, self.active_kernel))
        groups = cin if self.depthwise else 1
        return F.conv2d(self.act(x), w, None, self.stride, self.active_kernel // 2, 1, groups)

    def static_copy(self, in_channels: int) -> QConv2d:
        """The active shape as a standalone layer with this layer's weights and steps."""
        out = in_channels if self.depthwise else self.active_out
        bits = [b for b in (self.w_bits, self.act.bits) if b < FLOAT_BITS] or [8]
        dst = QConv2d(in_channels, out, self.active_kernel, self.stride, self.depthwise, bits, self.act.signed)
        dst.weight.data.copy_(self.active_weight(in_channels).data)
        dst.wq = LSQWeight(out, [self.w_bits] if self.w_bits < FLOAT_BITS else [])
        dst.act = LSQAct([self.act.bits] if self.act.bits < FLOAT_BITS else [], self.act.signed,
                         self.act.range_init, self.act.zero_point)
        self._copy_quantisers(dst, out)
        return dst

    def extra_repr(self) -> str:
        kind = "depthwise " if self.depthwise else ""
        return (f"{kind}{self.in_channels}->{self.out_channels}, k={self.kernel}, s={self.stride}, "
                f"active=({self.active_out}, k{self.active_kernel}), w_bits={self.w_bits}")


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """Batch-norm over the leading channels of its input (statistics and affine parameters sliced)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
                            self.training or not self.track_running_stats, momentum, self.eps)

    def static_copy(self, channels: int) -> ElasticBatchNorm2d:
        dst = ElasticBatchNorm2d(channels, eps=self.eps, momentum=self.momentum)
        for name in ("weight", "bias"):
            getattr(dst, name).data.copy_(getattr(self, name).data[:channels])
        for name in ("running_mean", "running_var"):
            getattr(dst, name).copy_(getattr(self, name)[:channels])
        dst.num_batches_tracked.copy_(self.num_batches_tracked)
        return dst


class QLinear(_Switchable, nn.Module):
    """Quantised linear layer (with bias)."""

    def __init__(self, in_features: int, out_features: int, bits_choices: Sequence[int] = (8,),
                 act_signed: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.wq = LSQWeight(out_features, bits_choices)
        self.act = LSQAct(bits_choices, act_signed)
        self.w_bits = FLOAT_BITS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.act(x), self._quantised(lambda: self.weight, ()), self.bias)

    def static_copy(self) -> QLinear:
        bits = [b for b in (self.w_bits, self.act.bits) if b < FLOAT_BITS]
        dst = QLinear(self.in_features, self.out_features, bits, self.act.signed)
        dst.weight.data.copy_(self.weight.data)
        dst.bias.data.copy_(self.bias.data)
        dst.wq = LSQWeight(self.out_features, [self.w_bits] if self.w_bits < FLOAT_BITS else [])
        dst.act = LSQAct([self.act.bits] if self.act.bits < FLOAT_BITS else [], self.act.signed)
        self._copy_quantisers(dst, self.out_features)
        return dst

    def extra_repr(self) -> str:
        return f"{self.in_features}->{self.out_features}, w_bits={self.w_bits}"
