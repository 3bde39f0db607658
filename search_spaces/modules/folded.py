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

The levels are the extracted network's bit for bit; folding ``s`` and the batch norm into the
weights changes the order of float roundings, so logits agree to float precision and a level right
at a rounding boundary may flip. ``benchmarks/candidate_eval.py`` measures what that does to
accuracy and exit ratios against the exact path. :func:`nhwc` lays a batch out in NHWC
memory order even when it has one channel, which sends every convolution down oneDNN's faster
NHWC kernels.

:func:`recalibrate_folded` re-estimates the batch-norm statistics on the folded layers themselves
(each convolves integer levels, then normalises with the batch's statistics in place), with
:func:`batch_stats` instead of torch's batch norm, whose NHWC variance on a CPU is off by up to
~1e-3 relative.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from search_spaces.genotype import FLOAT_BITS
from search_spaces.modules.blocks import ConvBNAct
from search_spaces.modules.lsq import qrange

RELU6_MAX = 6.0
CANCELLATION = 16.0  # mean^2 / variance above which batch_stats sums a second time, centred


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) with NHWC strides. ``Tensor.contiguous(memory_format=...)`` leaves a
    one-channel batch in NCHW strides (both layouts count as contiguous), and a convolution then
    keeps the whole network in NCHW."""
    n, c, h, w = x.shape
    out = torch.empty_strided(tuple(x.shape), (h * w * c, 1, w * c, c), dtype=x.dtype, device=x.device)
    return out.copy_(x)


def batch_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance of ``y`` (N, C, H, W) over N, H and W, accurate to float
    precision in either memory order (torch's batch norm on an NHWC tensor, on a CPU, is off by up to
    ~1e-3 relative in the variance). Sums per image in float, then over images in double; a channel
    whose mean is large against its spread (where E[y^2] - E[y]^2 cancels) is summed again centred."""
    n, c = y.shape[:2]
    per_image = y.permute(0, 2, 3, 1).reshape(n, -1, c)  # a view of an NHWC batch
    count = per_image.shape[0] * per_image.shape[1]

    def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = x.sum(1).double().sum(0) / count
        return mean, torch.linalg.vecdot(x, x, dim=1).double().sum(0) / count - mean * mean

    mean, var = moments(per_image)
    if bool((mean * mean > CANCELLATION * var).any()):
        shift, (mean, var) = mean, moments(per_image - mean.float())
        mean = mean + shift
    return mean.float(), var.clamp_(min=0).float()


class FoldedConv(nn.Module):
    """A :class:`ConvBNAct` of an extracted network (eval mode), folded for inference.

    ``relu_in``: the layer before this one had a ReLU6 whose output only this layer reads; this
    layer applies it (in its quantiser's bounds, or as a clamp when its input is float).
    """

    raw: torch.Tensor  # buffers: the weights on integer levels before batch norm, the output factor,
    post: torch.Tensor  # and the weights and bias with both folded in
    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, layer: ConvBNAct, relu_in: bool = False) -> None:
        super().__init__()
        conv, bn = layer.conv, layer.active_bn()
        if bn.training:
            raise ValueError("fold a network in eval mode (batch norm with its running statistics)")
        with torch.no_grad():
            w = conv.wq(conv.weight, conv.w_bits) if conv.w_bits < FLOAT_BITS else conv.weight
            self.inv: torch.Tensor | None = None
            self.lo = self.hi = 0.0
            if conv.act.bits < FLOAT_BITS:
                step = conv.act.steps[str(conv.act.bits)].detach().reshape([])
                qn, qp = qrange(conv.act.bits, conv.act.signed)
                self.inv = torch.reciprocal(step)
                self.lo, self.hi = float(qn), float(qp)
                if relu_in:
                    self.lo = max(self.lo, 0.0)
                    self.hi = min(self.hi, float(torch.round(torch.tensor(RELU6_MAX) * self.inv)))
                w = w * step
        self.register_buffer("raw", w.detach().contiguous())
        self.register_buffer("post", torch.ones((), device=w.device))
        self.register_buffer("weight", None)  # set by :meth:`fold`
        self.register_buffer("bias", None)
        self.bn = bn  # eval mode: its running statistics are folded in (:meth:`fold`)
        self.calibrating = False  # batch norm on batch statistics, accumulated into its running ones
        self.relu_in = relu_in and self.inv is None  # a float input gets its ReLU6 as a clamp
        self.relu = layer.relu is not None
        self.prescaled = False  # the layer before multiplied its output by self.inv (:meth:`scale_output`)
        self.stride, self.padding = conv.stride, conv.active_kernel // 2
        self.groups = int(conv.weight.shape[0]) if conv.depthwise else 1
        self.fold()

    @torch.no_grad()
    def fold(self) -> None:
        """Fold the batch norm's running statistics and the output factor into weights and bias."""
        bn = self.bn
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        self.weight = (self.raw * (scale * self.post).reshape(-1, 1, 1, 1)).contiguous()
        self.bias = shift * self.post

    def scale_output(self, factor: torch.Tensor) -> None:
        """Multiply this layer's output by ``factor`` (folded into its weights and bias)."""
        self.post = self.post * factor
        self.fold()

    def _normalise(self, y: torch.Tensor) -> torch.Tensor:
        """Batch norm in training mode on the batch ``y`` (in place), times the output factor: normalised
        with the batch's mean and biased variance, whose cumulative average (the unbiased variance)
        goes into the running statistics, as ``torch.nn.BatchNorm2d(momentum=None)`` does."""
        bn = self.bn
        mean, var = batch_stats(y)
        count = y.numel() // y.shape[1]
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked)
        bn.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        bn.running_var.mul_(1 - factor).add_(var * (count / max(count - 1, 1)), alpha=factor)
        scale = bn.weight * torch.rsqrt(var + bn.eps) * self.post
        shift = bn.bias * self.post - mean * scale
        return y.mul_(scale.reshape(1, -1, 1, 1)).add_(shift.reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prescaled:  # x is the layer before's output, already times 1/s, read by this layer only
            x = x.round_().clamp_(self.lo, self.hi)
        elif self.inv is not None:  # integer levels; the step is in the weights
            x = torch.mul(x, self.inv, out=torch.empty_like(x)).round_().clamp_(self.lo, self.hi)
        elif self.relu_in:
            x = x.clamp(0.0, RELU6_MAX)
        if self.calibrating:
            y = self._normalise(F.conv2d(x, self.raw, None, self.stride, self.padding, 1, self.groups))
        else:
            y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        return y.clamp_(0.0, RELU6_MAX) if self.relu else y


def _fold_children(module: nn.Module) -> None:
    """Replace every :class:`ConvBNAct` below ``module`` by its :class:`FoldedConv`, moving the ReLU6
    of each pair a block declares ``chained`` (producer, consumer attribute names) into the consumer."""
    fused = [(a, b) for a, b in getattr(module, "chained", ())  # pairs whose ReLU6 moves into the consumer
             if isinstance(getattr(module, a, None), ConvBNAct) and isinstance(getattr(module, b, None), ConvBNAct)
             and getattr(module, a).relu is not None]
    producers, fused_into = {a for a, _ in fused}, {b for _, b in fused}
    for name, child in list(module.named_children()):
        if isinstance(child, ConvBNAct):
            folded = FoldedConv(child, relu_in=name in fused_into)
            if name in producers:
                folded.relu = False
            setattr(module, name, folded)
        else:
            _fold_children(child)
    for a, b in fused:
        producer, consumer = getattr(module, a), getattr(module, b)
        if consumer.inv is not None:
            producer.scale_output(consumer.inv)
            consumer.prescaled = True


def fold_backbone(stem: nn.Module, blocks: nn.ModuleList, *, keep: bool = True) -> tuple[nn.Module, nn.ModuleList]:
    """Folded copies of an extracted network's stem and blocks (eval mode). ``keep=False`` folds the
    modules themselves instead of copies (the caller discards the network): the copy is not made."""
    holder = nn.Module()
    holder.stem, holder.blocks = (copy.deepcopy(stem), copy.deepcopy(blocks)) if keep else (stem, blocks)
    _fold_children(holder)  # a ConvBNAct stem is replaced like any other child
    return holder.stem.eval(), holder.blocks.eval()


@torch.no_grad()
def recalibrate_folded(stem: nn.Module, blocks: nn.ModuleList, images: torch.Tensor, batch_size: int = 250) -> None:
    """Re-estimate the batch-norm statistics of folded layers on ``images``, as
    :func:`nas.supernet.calibrate.recalibrate_batchnorm` does on the network (reset, then the cumulative
    average of each batch's mean and unbiased variance, batch norm normalising with batch statistics),
    and fold the new statistics in. Each layer convolves integer levels, takes :func:`batch_stats` and
    normalises in place, without the quantisers' extra passes; the sums run in another order, so the
    statistics agree with the network's to float precision."""
    layers = [m for part in (stem, blocks) for m in part.modules() if isinstance(m, FoldedConv)]
    for layer in layers:
        layer.bn.reset_running_stats()
        layer.calibrating = True
    try:
        for start in range(0, len(images), batch_size):
            h = stem(nhwc(images[start : start + batch_size]))
            for block in blocks:
                h = block(h)
    finally:
        for layer in layers:
            layer.calibrating = False
            layer.fold()
