"""Batch-norm statistics re-estimated as eval mode sees them: layer by layer, in the order the layers run.

A subnet extracted from a supernet needs batch-norm statistics of its own. Re-estimating them in batch-norm
training mode (each batch normalised by its own mean and variance, the running statistics the average over
batches) gives every layer the statistics of inputs that eval mode never produces: the layers before it
normalised each batch by that batch's statistics, not by the ones they keep. On a supernet with channels of
small spread that a layer amplifies, the two differ by a large fraction of a channel's spread and the
accuracy falls (``benchmarks/bn_statistics.py --variants``: on the zoo supernet's reference subnet, 1.7
points that training mode on all 2000 images in one batch, or this module, keep).

:func:`reestimate` computes each layer's statistics exactly on the inputs eval mode gives it: the network
is cut into stages (an early-exit network's stem and blocks), each stage's input is kept for every image,
and within a stage the layers are estimated in the order they run, each on a pass in which every layer
before it already normalises with its new statistics (the pass stops at the layer). The result does not
depend on the batch size (only memory does) and equals batch-norm training mode on all images in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

CANCELLATION = 16.0  # mean^2 / variance above which batch_stats sums a second time, centred


class Collected(Exception):
    """Raised by a layer whose input statistics were just added: the rest of the pass is not needed."""


def batch_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance of ``y`` (N, C, H, W) over N, H and W, accurate to float
    precision in either memory order (torch's batch norm on an NHWC tensor, on a CPU, is off by up to
    ~1e-3 relative in the variance). Sums per image in float, then over images in double; a channel
    whose mean is large against its spread (where E[y^2] - E[y]^2 cancels) is summed again centred."""
    n, c = y.shape[:2]
    per_image = y.permute(0, 2, 3, 1).reshape(n, -1, c)  # a view of an NHWC batch
    count = per_image.shape[0] * per_image.shape[1]

    def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sums, squares = _sums(x)
        mean = sums.double().sum(0) / count
        return mean, squares.double().sum(0) / count - mean * mean

    mean, var = moments(per_image)
    if bool((mean * mean > CANCELLATION * var).any()):
        shift, (mean, var) = mean, moments(per_image - mean.float())
        mean = mean + shift
    return mean.float(), var.clamp_(min=0).float()


def _sums(x: torch.Tensor, chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """sum_m x[n, m, c] and sum_m x[n, m, c]^2 per (n, c), in float, ``chunk`` images at a time: each
    chunk is summed, then squared into one buffer and summed again while it is in cache (two passes
    over the whole batch and a batch-sized temporary for the squares are about twice as slow)."""
    buffer = torch.empty_like(x[:chunk])
    sums, squares = x.new_empty(x.shape[0], x.shape[2]), x.new_empty(x.shape[0], x.shape[2])
    for start in range(0, len(x), chunk):
        part, rows = x[start : start + chunk], slice(start, start + min(chunk, len(x) - start))
        torch.sum(part, 1, out=sums[rows])
        torch.sum(torch.mul(part, part, out=buffer[: len(part)]), 1, out=squares[rows])
    return sums, squares


class Moments:
    """Per-channel count, mean and biased variance of every value added so far (batches merged in double,
    as Chan, Golub and LeVeque pair partial moments: no cancellation however many batches)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = torch.zeros(0, dtype=torch.float64)
        self.m2 = torch.zeros(0, dtype=torch.float64)  # sum of squared deviations from the mean

    def add(self, y: torch.Tensor) -> None:
        """Add the values of ``y`` (N, C, H, W), per channel."""
        mean, var = (t.double() for t in batch_stats(y.detach()))
        n = y.numel() // y.shape[1]
        if not self.count:
            self.count, self.mean, self.m2 = n, mean, var * n
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + var * n + delta * delta * (self.count * n / total)
        self.count = total

    def store(self, bn: nn.modules.batchnorm._BatchNorm, batches: int) -> None:
        """Make these the running statistics of ``bn`` (the variance unbiased, as batch norm keeps it)."""
        c = len(self.mean)  # an elastic batch norm may have normalised its leading channels only
        bn.running_mean[:c].copy_(self.mean)
        bn.running_var[:c].copy_(self.m2 / max(self.count - 1, 1))
        if bn.num_batches_tracked is not None:
            bn.num_batches_tracked.fill_(batches)


def run_order(stage: nn.Module, x: torch.Tensor, is_layer: Callable[[nn.Module], bool]) -> list[nn.Module]:
    """The modules of ``stage`` that ``is_layer`` picks, in the order a pass on ``x`` runs them (each once)."""
    order: list[nn.Module] = []

    def record(module: nn.Module, _inputs: tuple) -> None:
        if all(module is not m for m in order):
            order.append(module)

    hooks = [m.register_forward_pre_hook(record) for m in stage.modules() if is_layer(m)]
    try:
        stage(x)
    finally:
        for hook in hooks:
            hook.remove()
    return order


@torch.no_grad()
def reestimate(stages: Sequence[nn.Module], batches: Sequence[torch.Tensor], is_layer: Callable[[nn.Module], bool],
               collect: Callable[[nn.Module, Moments | None], None], store: Callable[[nn.Module, Moments], None]
               ) -> None:
    """Re-estimate, stage by stage, the statistics of every layer ``is_layer`` picks (eval mode throughout).

    ``stages`` run one after the other (each one's output is the next one's input); ``batches`` are the
    first stage's input. ``collect(layer, moments)`` makes ``layer`` add the values it normalises to
    ``moments`` and raise :class:`Collected` on its next passes (``collect(layer, None)``: back to normal);
    ``store(layer, moments)`` makes the moments its statistics. Keeps one stage's input for every image."""
    inputs = list(batches)
    if not inputs:
        return
    for i, stage in enumerate(stages):
        for layer in run_order(stage, inputs[0], is_layer):
            moments = Moments()
            collect(layer, moments)
            try:
                for x in inputs:
                    try:
                        stage(x)
                    except Collected:
                        pass
            finally:
                collect(layer, None)
            if moments.count:
                store(layer, moments)
        if i + 1 < len(stages):
            inputs = [stage(x) for x in inputs]


def reestimate_batchnorm(stages: Sequence[nn.Module], batches: Sequence[torch.Tensor]) -> None:
    """:func:`reestimate` for torch batch-norm layers: each one's running mean and unbiased variance become
    those of its input over all ``batches``, every layer before it normalising with its new statistics."""
    hooks: dict[nn.Module, torch.utils.hooks.RemovableHandle] = {}

    def collect(bn: nn.Module, moments: Moments | None) -> None:
        if moments is None:
            hooks.pop(bn).remove()
            return

        def add(_module: nn.Module, inputs: tuple) -> None:
            moments.add(inputs[0])
            raise Collected

        hooks[bn] = bn.register_forward_pre_hook(add)

    for stage in stages:
        stage.eval()
    reestimate(stages, batches, lambda m: isinstance(m, nn.modules.batchnorm._BatchNorm), collect,
               lambda bn, moments: moments.store(bn, len(batches)))
