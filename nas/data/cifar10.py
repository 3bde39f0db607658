"""CIFAR-10 in its standard python pickle batches folder (``cifar-10-batches-py``).

Batches are unpickled with an allow-list (numpy array reconstruction and the byte-string codec that
Python 3 pickles use, nothing else), so a tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from nas.data.base import DatasetError, Split

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5 arrays
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # bytes in Python 3 protocol-2 pickles
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from one pickle batch."""
    if not path.is_file():
        raise DatasetError(path, "file", "a CIFAR-10 python batch file")
    try:
        with path.open("rb") as fh:
            batch = _SafeUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(path, "file", f"a CIFAR-10 python pickle batch ({exc})") from None
    if not isinstance(batch, dict):
        raise DatasetError(path, "batch", "a dict with keys b'data' and b'labels'")
    data, labels = batch.get(b"data", batch.get("data")), batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DatasetError(path, "data/labels", "keys b'data' and b'labels'")
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(path, "data", f"a uint8 array of shape (N, 3072), got {data.dtype} {data.shape}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DatasetError(path, "labels", f"{data.shape[0]} labels in 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10_split(root: str | Path, split: str) -> Split:
    """The ``train`` (5 batches) or ``test`` split, images scaled to [0, 1]."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "root", "a cifar-10-batches-py folder")
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    parts = [read_batch(root / name) for name in (TRAIN_FILES if split == "train" else TEST_FILES)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return Split(torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels))
