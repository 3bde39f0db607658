"""Inference-only copies of extracted networks, for scoring many candidates fast on a CPU.

:func:`fold_backbone` turns the stem and blocks of a static network (:meth:`Supernet.extract`, batch
norm re-estimated, eval mode) into layers that compute the same function with fewer passes over
memory. Each conv -> batch-norm -> ReLU6 becomes one :class:`FoldedConv`:

- its input quantiser keeps the integer levels ``clamp(round(x * (1/s)), Qn, Qp)`` (three in-place
  passes instead of four) and the step ``s`` moves into the weights;
- the batch norm (eval mode: an affine map per channel) moves into the weights and a bias, which the
  convolution adds for free;
- a ReLU6 whose output feeds only the next layer's quantiser (the block's ``chained`` pairs) becomes
  that quantiser's clamp bounds: ``q(relu6(x)) = clamp(round(x/s), max(Qn, 0), min(Qp, round(6/s)))``
  exactly, because rounding a product by a positive float is monotone; the ``1/s`` of that quantiser
  moves into the layer before (its weights and bias), so the next layer only rounds and clamps, in
  place (two passes where the extracted network makes six: batch norm, ReLU6 and four for the
  quantiser).

Where oneDNN's int8 convolution is available (:func:`int8_available`: x86 CPUs) and a layer's
weights and input run at 8 bits or fewer, the folded layer convolves integers (``int8=True``): its
input travels as unsigned bytes (the integer levels, plus 128 where they may be negative, plus the
zero point for the image's asymmetric levels), its
weights as their int8 levels, and oneDNN accumulates exactly in int32, then applies the per-channel
factor (steps and batch norm), the bias and the clamp; a layer feeding a chained consumer writes
that consumer's levels as bytes directly (rounding and clamping in the convolution's epilogue), so
a block's hidden layers never exist in float: a quarter of the memory traffic, and fewer passes
over it, than the float layers (speed side by side in ``benchmarks/candidate_eval.py``).

The levels are the extracted network's bit for bit; folding ``s`` and the batch norm into the
weights (or, in int8, multiplying the exact integer sums by a per-channel factor) changes the order
of float roundings, so logits agree to float precision and a level right at a rounding boundary may
flip. ``benchmarks/candidate_eval.py`` measures what that does to
accuracy and exit ratios against the exact path. :func:`nhwc` lays a batch out in NHWC
memory order even when it has one channel, which sends every convolution down oneDNN's faster
NHWC kernels.

:func:`recalibrate_folded` re-estimates the batch-norm statistics on the folded layers themselves,
layer by layer as :mod:`search_spaces.modules.batchnorm` does on the network: each layer adds the raw
sums of its integer levels to the moments (:func:`~search_spaces.modules.batchnorm.batch_stats`, not
torch's batch norm, whose NHWC variance on a CPU is off by up to ~1e-3 relative).
"""

from __future__ import annotations

import copy
import functools
from typing import NoReturn

import torch
from torch import nn
from torch.nn import functional as F

from search_spaces.genotype import FLOAT_BITS
from search_spaces.modules.batchnorm import Collected, Moments, reestimate
from search_spaces.modules.blocks import ConvBNAct
from search_spaces.modules.lsq import levels, qrange

RELU6_MAX = 6.0
INT8_BITS = 8  # layers whose weights and input run at this many bits or fewer may convolve integers
SIGNED_ZERO = 128  # the byte that stands for level 0 of an input whose levels may be negative


@functools.cache
def int8_available() -> bool:
    """oneDNN's int8 convolution (``torch.ops.onednn.qconv_pointwise``, what PyTorch's x86 int8
    inference runs) is in this torch build and computes a small convolution exactly (checked once)."""
    try:
        ops = torch.ops.onednn
        levels = torch.tensor([[[[1, -2], [3, -4]]]], dtype=torch.int8)
        x = torch.full((1, 1, 3, 3), 5, dtype=torch.uint8)
        one = torch.ones(1)
        packed = ops.qconv_prepack(levels, one, 1.0, 0, [1, 1], [0, 0], [1, 1], 1, None)
        y = ops.qconv_pointwise(x, 1.0, 0, packed, one, torch.zeros(1, dtype=torch.int64), None, [1, 1], [0, 0],
                                [1, 1], 1, 1.0, 0, torch.float32, "none", [], "")
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    return bool(torch.equal(y, torch.full((1, 1, 2, 2), -10.0)))


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) with NHWC strides. ``Tensor.contiguous(memory_format=...)`` leaves a
    one-channel batch in NCHW strides (both layouts count as contiguous), and a convolution then
    keeps the whole network in NCHW."""
    n, c, h, w = x.shape
    out = torch.empty_strided(tuple(x.shape), (h * w * c, 1, w * c, c), dtype=x.dtype, device=x.device)
    return out.copy_(x)


class FoldedConv(nn.Module):
    """A :class:`ConvBNAct` of an extracted network (eval mode), folded for inference.

    ``relu_in``: the layer before this one had a ReLU6 whose output only this layer reads; this
    layer applies it (in its quantiser's bounds, or as a clamp when its input is float). ``int8``:
    convolve integer levels with oneDNN where the layer's weights and input have at most 8 bits and
    it is on the CPU (:func:`int8_available` must hold); the layer's :attr:`int8` says whether it does.
    """

    raw: torch.Tensor | None  # buffers: the weights on integer levels before batch norm (float layers),
    post: torch.Tensor  # the output factor, and the weights (int8: the per-channel factor) and bias
    weight: torch.Tensor  # with both folded in
    bias: torch.Tensor

    def __init__(self, layer: ConvBNAct, relu_in: bool = False, int8: bool = False) -> None:
        super().__init__()
        conv, bn = layer.conv, layer.active_bn()
        if bn.training:
            raise ValueError("fold a network in eval mode (batch norm with its running statistics)")
        self.int8 = (int8 and conv.w_bits <= INT8_BITS and conv.act.bits <= INT8_BITS
                     and conv.weight.device.type == "cpu")
        self.inv: torch.Tensor | None = None
        self.lo = self.hi = 0.0
        step = torch.ones(())  # the input's step (its levels times step are its values; 1 for a float input)
        if conv.act.bits < FLOAT_BITS:
            step = conv.act.steps[str(conv.act.bits)].detach().reshape([])
            qn, qp = conv.act.qrange(conv.act.bits)
            self.inv = torch.reciprocal(step)
            self.lo, self.hi = float(qn), float(qp)
            if relu_in:
                self.lo = max(self.lo, 0.0)
                self.hi = min(self.hi, float(torch.round(torch.tensor(RELU6_MAX) * self.inv)))
        self.stride, self.padding = conv.stride, conv.active_kernel // 2
        self.groups = int(conv.weight.shape[0]) if conv.depthwise else 1
        # the byte of level 0 (int8 inputs): 128 for symmetric signed levels, -Qn for a zero point's
        self.zero = 0 if self.lo >= 0 else SIGNED_ZERO if self.lo == -self.hi else int(-self.lo)
        with torch.no_grad():
            if self.int8:  # integer weight levels (wq's own), packed once; the factors go in per call
                w_step = conv.wq.steps[str(conv.w_bits)].detach()[: conv.weight.shape[0]]
                w_levels = levels(conv.weight, w_step, *qrange(conv.w_bits, True)).to(torch.int8).contiguous()
                self.unit = (w_step * step).contiguous()  # per output channel: one weight level x one input level
                self.packed = torch.ops.onednn.qconv_prepack(w_levels, self.unit, 1.0, self.zero,
                                                             [self.stride] * 2, [self.padding] * 2, [1, 1],
                                                             self.groups, None)
                self.zeros = torch.zeros(len(self.unit), dtype=torch.int64)
                raw = None
            else:
                w = conv.wq(conv.weight, conv.w_bits) if conv.w_bits < FLOAT_BITS else conv.weight
                raw = (w * step).detach().contiguous()
        self.register_buffer("raw", raw)
        self.register_buffer("post", torch.ones((), device=conv.weight.device))
        self.register_buffer("weight", None)  # set by :meth:`fold`
        self.register_buffer("bias", None)
        self.bn = bn  # eval mode: its running statistics are folded in (:meth:`fold`)
        self.collecting: Moments | None = None  # add the raw sums to these moments and stop the pass
        self.relu_in = relu_in and self.inv is None  # a float input gets its ReLU6 as a clamp
        self.relu = layer.relu is not None
        self.prescaled = False  # the layer before multiplied its output by self.inv (:meth:`scale_output`)
        self.emits: tuple[float, float] | None = None  # int8: write the next layer's levels in these bounds
        self.fold()

    @torch.no_grad()
    def fold(self) -> None:
        """Fold the batch norm's running statistics and the output factor into weights (int8: the
        per-channel factor) and bias."""
        bn = self.bn
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        if self.raw is None:  # int8: the factor of each output channel's integer sums
            self.weight = (self.unit * scale * self.post).contiguous()
        else:
            self.weight = (self.raw * (scale * self.post).reshape(-1, 1, 1, 1)).contiguous()
        self.bias = shift * self.post

    def scale_output(self, factor: torch.Tensor) -> None:
        """Multiply this layer's output by ``factor`` (folded into its weights and bias)."""
        self.post = self.post * factor
        self.fold()

    def _collect(self, raw: torch.Tensor) -> NoReturn:
        """Add the raw sums (before batch norm and the output factor) to :attr:`collecting` and stop the pass."""
        assert self.collecting is not None
        self.collecting.add(raw)
        raise Collected

    def _levels(self, x: torch.Tensor) -> torch.Tensor:
        """A float input's integer levels, as floats in ``x``'s memory order (in place when the layer
        before prescaled ``x``: only this layer reads it)."""
        levels = x.round_() if self.prescaled else torch.mul(x, self.inv, out=torch.empty_like(x)).round_()
        return levels.clamp_(self.lo, self.hi)

    def _bytes(self, x: torch.Tensor) -> torch.Tensor:
        """A float input's integer levels as bytes (plus :attr:`zero`), in ``x``'s memory order."""
        if self.zero != SIGNED_ZERO:
            levels = self._levels(x)
            return (levels.sub_(self.lo) if self.zero else levels).to(torch.uint8)
        # signed levels: their int8 bytes with the top bit flipped are the levels plus 128
        return self._levels(x).to(torch.int8).view(torch.uint8).bitwise_xor_(SIGNED_ZERO)

    def _int8(self, x: torch.Tensor, factor: torch.Tensor, bias: torch.Tensor | None, raw: bool = False
              ) -> torch.Tensor:
        """oneDNN's int8 convolution of the bytes ``x``, its exact sums times ``factor`` (per output
        channel) plus ``bias``: as they are (``raw``), as the next layer's levels in bytes
        (:attr:`emits`), or as floats with this layer's ReLU6."""
        geometry = ([self.stride] * 2, [self.padding] * 2, [1, 1], self.groups)
        if raw:
            out: tuple = (torch.float32, "none", [])
        elif self.emits is not None:
            out = (None, "hardtanh", list(self.emits))  # clamped to the levels, rounded to bytes
        else:
            out = (torch.float32, *(("hardtanh", [0.0, RELU6_MAX]) if self.relu else ("none", [])))
        return torch.ops.onednn.qconv_pointwise(x, 1.0, self.zero, self.packed, factor, self.zeros, bias, *geometry,
                                                1.0, 0, *out, "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.int8:
            x = x if x.dtype == torch.uint8 else self._bytes(x)
            if self.collecting is not None:
                self._collect(self._int8(x, self.unit, None, raw=True))
            return self._int8(x, self.weight, self.bias)
        if self.inv is not None:  # integer levels; the step is in the weights
            x = self._levels(x)
        elif self.relu_in:
            x = x.clamp(0.0, RELU6_MAX)
        if self.collecting is not None:
            self._collect(F.conv2d(x, self.raw, None, self.stride, self.padding, 1, self.groups))
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        return y.clamp_(0.0, RELU6_MAX) if self.relu else y


def _fold_children(module: nn.Module, int8: bool) -> None:
    """Replace every :class:`ConvBNAct` below ``module`` by its :class:`FoldedConv`, moving the ReLU6
    of each pair a block declares ``chained`` (producer, consumer attribute names) into the consumer;
    an int8 producer of an int8 consumer writes the consumer's levels as bytes."""
    fused = [(a, b) for a, b in getattr(module, "chained", ())  # pairs whose ReLU6 moves into the consumer
             if isinstance(getattr(module, a, None), ConvBNAct) and isinstance(getattr(module, b, None), ConvBNAct)
             and getattr(module, a).relu is not None]
    producers, fused_into = {a for a, _ in fused}, {b for _, b in fused}
    for name, child in list(module.named_children()):
        if isinstance(child, ConvBNAct):
            folded = FoldedConv(child, relu_in=name in fused_into, int8=int8)
            if name in producers:
                folded.relu = False
            setattr(module, name, folded)
        else:
            _fold_children(child, int8)
    for a, b in fused:
        producer, consumer = getattr(module, a), getattr(module, b)
        if consumer.inv is not None:
            producer.scale_output(consumer.inv)
            consumer.prescaled = True
            if producer.int8 and consumer.int8:
                producer.emits = (consumer.lo, consumer.hi)


def fold_backbone(stem: nn.Module, blocks: nn.ModuleList, *, keep: bool = True,
                  int8: bool | None = None) -> tuple[nn.Module, nn.ModuleList]:
    """Folded copies of an extracted network's stem and blocks (eval mode). ``keep=False`` folds the
    modules themselves instead of copies (the caller discards the network): the copy is not made.
    ``int8``: layers of at most 8 bits convolve integers (None: where :func:`int8_available`)."""
    holder = nn.Module()
    holder.stem, holder.blocks = (copy.deepcopy(stem), copy.deepcopy(blocks)) if keep else (stem, blocks)
    # a ConvBNAct stem is replaced like any other child
    _fold_children(holder, int8_available() if int8 is None else int8)
    return holder.stem.eval(), holder.blocks.eval()


def recalibrate_folded(stem: nn.Module, blocks: nn.ModuleList, images: torch.Tensor, batch_size: int = 250) -> None:
    """Re-estimate the batch-norm statistics of folded layers on ``images``, as
    :func:`nas.supernet.calibrate.recalibrate_batchnorm` does on the network (each layer's statistics those of
    its input over all images, the layers before it normalising with their new ones; :func:`reestimate`), and
    fold them in. Each layer adds the raw sums of its integer levels; the sums run in another order than the
    network's, so the statistics agree with its to float precision."""
    batches = [nhwc(x) for x in torch.split(images, batch_size)]

    def collect(layer: nn.Module, moments: Moments | None) -> None:
        assert isinstance(layer, FoldedConv)
        layer.collecting = moments

    def store(layer: nn.Module, moments: Moments) -> None:
        assert isinstance(layer, FoldedConv)
        moments.store(layer.bn, len(batches))
        layer.fold()

    reestimate([stem, *blocks], batches, lambda m: isinstance(m, FoldedConv), collect, store)
