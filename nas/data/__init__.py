"""Datasets: the built-in synthetic one and loaders for real files (no torchvision, no downloads)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nas.data.base import DatasetError, Split, Splits, augment, hold_out, normalise, pad_to
from nas.data.cifar10 import load_cifar10_split
from nas.data.idx import load_idx_split
from nas.data.npz import load_npz_split
from nas.data.synthetic import make_synthetic

if TYPE_CHECKING:
    from nas.config import DataConfig

__all__ = ["DATASETS", "DatasetError", "Split", "Splits", "augment", "load_dataset", "make_synthetic"]

FileLoader = Callable[[Path, str], Split]
# name -> (split loader, classes)
FILE_DATASETS: dict[str, tuple[FileLoader, int]] = {
    "fashion_mnist": (load_idx_split, 10),
    "mnist": (load_idx_split, 10),
    "cifar10": (load_cifar10_split, 10),
    "npz": (load_npz_split, 0),  # classes: from the labels
}
MIN_SIZE = 32  # smaller images (28x28 Fashion-MNIST, ...) are zero-padded to this size
DATASETS = ("synthetic", *FILE_DATASETS)


def _limit(split: Split, n: int | None) -> Split:
    return split if not n else Split(split.images[:n], split.labels[:n])


def load_dataset(cfg: DataConfig, source: str = "<config>") -> Splits:
    """Train / validation / test splits for a data config (validation held out from training)."""
    if cfg.name == "synthetic":
        return make_synthetic(cfg.n_train, cfg.n_val, cfg.n_test, seed=cfg.seed)
    if cfg.name not in FILE_DATASETS:
        raise DatasetError(source, "data.name", f"one of {list(DATASETS)}, got {cfg.name!r}")
    if not cfg.root:
        raise DatasetError(source, "data.root", f"the folder holding the {cfg.name} files")
    loader, num_classes = FILE_DATASETS[cfg.name]
    root = Path(cfg.root).expanduser()
    train, test = _limit(loader(root, "train"), cfg.limit_train), _limit(loader(root, "test"), cfg.limit_test)
    sizes = tuple(train.images.shape[2:]), tuple(test.images.shape[2:])
    if sizes[0] != sizes[1] or sizes[0][0] != sizes[0][1]:
        raise DatasetError(root, "images", f"square images of one size in both splits, got {sizes[0][0]}x{sizes[0][1]} "
                           f"(train) and {sizes[1][0]}x{sizes[1][1]} (test)")
    if sizes[0][0] < MIN_SIZE:
        train.images, test.images = pad_to(train.images, MIN_SIZE), pad_to(test.images, MIN_SIZE)
    if not 0 < cfg.n_val < len(train):
        raise DatasetError(source, "data.n_val", f"0 < n_val < {len(train)} (the training images in {root}), "
                           f"got {cfg.n_val}")
    train, val = hold_out(train, cfg.n_val, cfg.seed)
    if not num_classes:
        num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    return normalise(Splits(train, val, test, num_classes, cfg.name))
