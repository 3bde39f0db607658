"""Dataset containers, errors and the small tensor utilities shared by the loaders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch


class DatasetError(ValueError):
    """A dataset file that is missing or not in the expected format (message names file and key)."""

    def __init__(self, path: str | Path, key: str, expected: str) -> None:
        super().__init__(f"{path}: {key}: expected {expected}")
        self.path, self.key, self.expected = str(path), key, expected


@dataclass
class Split:
    """Images (N, C, H, W) float32 and labels (N,) int64 of one split."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int | None) -> Split:
        """The first ``n`` samples (all with None)."""
        return self if n is None or n >= len(self) else Split(self.images[:n], self.labels[:n])

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches in order (or shuffled with ``generator``)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield self.images[idx], self.labels[idx]


@dataclass
class Splits:
    """Train (for weights), validation (held out: calibration and search) and test (final reports)."""

    train: Split
    val: Split
    test: Split
    num_classes: int
    name: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)


def normalise(splits: Splits) -> Splits:
    """Standardise every split per channel with the training split's mean and std."""
    mean = splits.train.images.mean(dim=(0, 2, 3), keepdim=True)
    std = splits.train.images.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    for split in (splits.train, splits.val, splits.test):
        split.images = (split.images - mean) / std
    return splits


def hold_out(train: Split, n_val: int, seed: int) -> tuple[Split, Split]:
    """Split ``n_val`` random samples off the training split for validation."""
    if not 0 < n_val < len(train):
        raise ValueError(f"n_val: expected 0 < n_val < {len(train)} training samples, got {n_val}")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return Split(train.images[train_idx], train.labels[train_idx]), Split(train.images[val_idx], train.labels[val_idx])


def pad_to(images: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (N, C, H, W) images symmetrically to ``size`` x ``size``."""
    h, w = images.shape[2:]
    if h > size or w > size:
        raise ValueError(f"cannot pad {h}x{w} images to {size}x{size}")
    top, left = (size - h) // 2, (size - w) // 2
    return torch.nn.functional.pad(images, (left, size - w - left, top, size - h - top))


def augment(images: torch.Tensor, generator: torch.Generator, *, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, in torch ops."""
    n, c, h, w = images.shape
    out = images
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out = torch.where(mask.view(n, 1, 1, 1), out.flip(3), out)
    if pad:
        padded = torch.nn.functional.pad(out, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = dy.view(n, 1, 1, 1) + torch.arange(h).view(1, 1, h, 1)
        padded = padded.gather(2, rows.expand(n, c, h, padded.shape[3]))
        cols = dx.view(n, 1, 1, 1) + torch.arange(w).view(1, 1, 1, w)
        out = padded.gather(3, cols.expand(n, c, h, w))
    return out
