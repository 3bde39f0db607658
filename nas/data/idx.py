"""MNIST-family idx files (Fashion-MNIST, MNIST), gzipped or not."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data.base import DatasetError, Split

_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
                           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_file(root: Path, stem: str) -> Path:
    """``root/stem`` or ``root/stem.gz``; DatasetError naming both if neither exists."""
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(root / stem, "file", f"an idx file {stem} or {stem}.gz in {root}")


def read_idx(path: Path) -> np.ndarray:
    """Parse one idx file into a numpy array; DatasetError on a malformed header or size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(path, "file", f"a readable idx file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DatasetError(path, "header", "idx magic number 0x0000<type><ndim>")
    dtype, ndim = np.dtype(_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(path, "header", f"{ndim} dimension sizes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(path, "data", f"{expected} bytes for shape {shape}, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_idx_split(root: str | Path, split: str) -> Split:
    """One split (``train`` or ``test``) of an MNIST-style folder, images scaled to [0, 1]."""
    root = Path(root)
    if split not in FILES:
        raise ValueError(f"split: expected one of {sorted(FILES)}, got {split!r}")
    if not root.is_dir():
        raise DatasetError(root, "root", "a folder holding the idx files")
    img_path, lbl_path = (find_file(root, stem) for stem in FILES[split])
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3:
        raise DatasetError(img_path, "shape", f"3 dimensions (N, H, W), got {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetError(lbl_path, "shape", f"({images.shape[0]},) labels to match the images, got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(lbl_path, "labels", f"class labels in 0..9, found {labels.min()}..{labels.max()}")
    pixels = images.astype(np.float32) / 255.0
    if not np.isfinite(pixels).all():
        raise DatasetError(img_path, "data", "finite pixel values, found NaN or infinite ones")
    return Split(torch.from_numpy(pixels).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))
