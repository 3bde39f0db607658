"""The built-in synthetic dataset: deterministic, generated in memory in about a second.

Each class has a smooth random prototype image. A sample is its class prototype, shifted by a
random translation, blended with a distractor class's prototype and buried in noise, where the
blend weight and noise grow with a per-sample difficulty d in [0, 1]. Easy samples (small d) are
recognised with high confidence by shallow exits; hard ones need the whole network, so early exits
matter as they do on real data. The split is fixed by the seed.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from nas.data.base import Split, Splits


def _prototypes(num_classes: int, channels: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Smooth, unit-variance class prototypes of shape (classes, channels, size, size)."""
    coarse = torch.randn(num_classes, channels, 6, 6, generator=gen)
    fine = torch.randn(num_classes, channels, 12, 12, generator=gen) * 0.5
    protos = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    protos = protos + F.interpolate(fine, size=(size, size), mode="bicubic", align_corners=False)
    protos = protos - protos.mean(dim=(1, 2, 3), keepdim=True)
    return protos / protos.std(dim=(1, 2, 3), keepdim=True)


def _samples(protos: torch.Tensor, n: int, gen: torch.Generator, max_shift: int) -> Split:
    num_classes, _c, size, _ = protos.shape
    labels = torch.randint(num_classes, (n,), generator=gen)
    distract = (labels + torch.randint(1, num_classes, (n,), generator=gen)) % num_classes
    difficulty = torch.rand(n, generator=gen) ** 0.8
    mix = (0.48 * difficulty).view(n, 1, 1, 1)
    noise = (0.3 + 1.2 * difficulty).view(n, 1, 1, 1)
    images = (1 - mix) * protos[labels] + mix * protos[distract]
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=gen)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            if sel.any():
                images[sel] = torch.roll(images[sel], shifts=(dy, dx), dims=(2, 3))
    images = images + noise * torch.randn(images.shape, generator=gen)
    return Split(images.contiguous(), labels)


def make_synthetic(
    n_train: int = 8000,
    n_val: int = 2000,
    n_test: int = 2000,
    *,
    num_classes: int = 10,
    channels: int = 3,
    image_size: int = 32,
    max_shift: int = 4,
    seed: int = 0,
) -> Splits:
    """Train/validation/test splits of the synthetic dataset (float32 images, int64 labels)."""
    if min(n_train, n_val, n_test) <= 0:
        raise ValueError("synthetic dataset: n_train, n_val and n_test must be positive")
    gen = torch.Generator().manual_seed(seed)
    protos = _prototypes(num_classes, channels, image_size, gen)
    return Splits(
        train=_samples(protos, n_train, gen, max_shift),
        val=_samples(protos, n_val, gen, max_shift),
        test=_samples(protos, n_test, gen, max_shift),
        num_classes=num_classes,
        name="synthetic",
    )
