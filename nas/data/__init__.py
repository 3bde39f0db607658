"""Datasets: the built-in synthetic one and loaders for real files (no torchvision, no downloads)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nas.data.base import DatasetError, Split, Splits, augment, hold_out, normalise, pad_to
from nas.data.cifar10 import load_cifar10_split
from nas.data.idx import load_idx_split
from nas.data.synthetic import make_synthetic

__all__ = ["DATASETS", "DatasetError", "Split", "Splits", "augment", "load_dataset", "make_synthetic"]


def _file_dataset(name: str, loader: Callable[[Path, str], Split], num_classes: int, image_size: int | None
                  ) -> Callable[..., Splits]:
    def load(root: str | None = None, n_val: int = 5000, seed: int = 0, limit_train: int | None = None,
             limit_test: int | None = None, **_ignored: object) -> Splits:
        if not root:
            raise DatasetError(f"<dataset {name}>", "data.root", f"the folder holding the {name} files")
        train, test = loader(Path(root), "train"), loader(Path(root), "test")
        if image_size is not None:
            train.images, test.images = pad_to(train.images, image_size), pad_to(test.images, image_size)
        if limit_train:
            train = Split(train.images[:limit_train], train.labels[:limit_train])
        if limit_test:
            test = Split(test.images[:limit_test], test.labels[:limit_test])
        train, val = hold_out(train, n_val, seed)
        return normalise(Splits(train, val, test, num_classes, name))

    return load


def _synthetic(n_train: int = 8000, n_val: int = 2000, n_test: int = 2000, seed: int = 0, **_ignored: object) -> Splits:
    return make_synthetic(n_train, n_val, n_test, seed=seed)


DATASETS: dict[str, Callable[..., Splits]] = {
    "synthetic": _synthetic,
    "fashion_mnist": _file_dataset("fashion_mnist", load_idx_split, 10, 32),
    "mnist": _file_dataset("mnist", load_idx_split, 10, 32),
    "cifar10": _file_dataset("cifar10", load_cifar10_split, 10, None),
}


def load_dataset(name: str, **kwargs: object) -> Splits:
    """Load a registered dataset by name (``synthetic``, ``fashion_mnist``, ``mnist``, ``cifar10``)."""
    if name not in DATASETS:
        raise DatasetError(f"<dataset {name}>", "data.name", f"one of {sorted(DATASETS)}")
    return DATASETS[name](**kwargs)
