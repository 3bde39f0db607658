"""A generic ``.npz`` dataset: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Images as (N, H, W) grayscale, (N, H, W, C) or (N, C, H, W) with C in {1, 3}; uint8 (scaled to
[0, 1]) or float; labels integers 0..classes-1. Loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from nas.data.base import DatasetError, Split

KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
MAX_CLASSES = 1000  # labels must lie in 0..MAX_CLASSES-1 (the class count is max(label) + 1)


def _images(path: Path, key: str, x: np.ndarray) -> torch.Tensor:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DatasetError(path, key, f"images shaped (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3, "
                           f"got {x.shape}")
    if x.dtype == np.uint8:
        return torch.from_numpy(x.astype(np.float32) / 255.0)
    if not np.issubdtype(x.dtype, np.floating):
        raise DatasetError(path, key, f"uint8 or float images, got {x.dtype}")
    images = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(images).all():
        raise DatasetError(path, key, f"finite pixel values, found {int((~np.isfinite(images)).sum())} NaN or "
                           "infinite ones")
    return torch.from_numpy(images)


def load_npz_split(path: str | Path, split: str) -> Split:
    """The ``train`` or ``test`` split of an .npz file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "root", "an .npz file with x_train, y_train, x_test, y_test")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(path, "file", f"a NumPy .npz archive ({exc})") from None
    x_key, y_key = KEYS[split]
    with archive:
        for key in (x_key, y_key):
            if key not in archive.files:
                raise DatasetError(path, key, f"an array named {key} (found {sorted(archive.files)})")
        arrays = {}
        for key in (x_key, y_key):
            try:
                arrays[key] = archive[key]
            except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
                raise DatasetError(path, key, f"a numeric array stored without pickle ({exc})") from None
    x, y = arrays[x_key], arrays[y_key]
    images = _images(path, x_key, x)
    if y.ndim != 1 or len(y) != len(images) or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise DatasetError(path, y_key, f"{len(images)} non-negative integer labels, got {y.dtype} {y.shape}")
    if len(y) and y.max() >= MAX_CLASSES:
        raise DatasetError(path, y_key, f"class labels in 0..{MAX_CLASSES - 1}, found label {y.max()}")
    return Split(images, torch.from_numpy(y.astype(np.int64)))
