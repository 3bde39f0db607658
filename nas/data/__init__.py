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
# name -> (split loader, classes, pad images to this size or None)
FILE_DATASETS: dict[str, tuple[FileLoader, int, int | None]] = {
    "fashion_mnist": (load_idx_split, 10, 32),
    "mnist": (load_idx_split, 10, 32),
    "cifar10": (load_cifar10_split, 10, None),
    "npz": (load_npz_split, 0, None),  # classes: from the labels
}
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
    loader, num_classes, size = FILE_DATASETS[cfg.name]
    root = Path(cfg.root).expanduser()
    train, test = _limit(loader(root, "train"), cfg.limit_train), _limit(loader(root, "test"), cfg.limit_test)
    if size is not None:
        train.images, test.images = pad_to(train.images, size), pad_to(test.images, size)
    if not 0 < cfg.n_val < len(train):
        raise DatasetError(source, "data.n_val", f"0 < n_val < {len(train)} (the training images in {root}), "
                           f"got {cfg.n_val}")
    train, val = hold_out(train, cfg.n_val, cfg.seed)
    if not num_classes:
        num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    return normalise(Splits(train, val, test, num_classes, cfg.name))
