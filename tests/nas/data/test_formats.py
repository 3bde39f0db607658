"""Tests for nas.data: synthetic dataset, idx / CIFAR-10 file loaders, errors, augment and batching."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.config import DataConfig
from nas.data import DATASETS, DatasetError, Split, augment, load_dataset, make_synthetic
from nas.data.cifar10 import load_cifar10_split, read_batch
from nas.data.idx import load_idx_split, read_idx

# --------------------------------------------------------------------------------------------
# helpers: writing real files in the standard formats
# --------------------------------------------------------------------------------------------

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """Standard idx encoding of a uint8 array: big-endian int32 magic 0x000008<ndim>, sizes, data."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if magic is None:
        magic = 0x00000800 | arr.ndim
    header = struct.pack(">i", magic) + struct.pack(">" + "i" * arr.ndim, *arr.shape)
    return header + arr.tobytes()


def write_file(path: Path, payload: bytes, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


def make_idx_arrays(n: int, seed: int, h: int = 28, w: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, h, w) whose pixel [0, 0] is the sample id (so samples can be tracked) and labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n, dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    return images, labels


def write_idx_folder(root: Path, data: dict[str, tuple[np.ndarray, np.ndarray]], gz: bool) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, (images, labels) in data.items():
        img_stem, lbl_stem = IDX_FILES[split]
        paths[img_stem] = write_file(root / img_stem, idx_bytes(images), gz)
        paths[lbl_stem] = write_file(root / lbl_stem, idx_bytes(labels), gz)
    return paths


@pytest.fixture
def idx_data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": make_idx_arrays(40, seed=1), "test": make_idx_arrays(12, seed=2)}


class _Py2StylePickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes as Python 2 ``str`` (SHORT_BINSTRING / BINSTRING), as the original CIFAR files do."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def cifar_pickle(batch: object, protocol: int | str) -> bytes:
    """``protocol`` is a pickle protocol number or ``"py2"`` for a Python-2 / numpy-1 style protocol-2 file."""
    if protocol == "py2":
        import io

        buf = io.BytesIO()
        _Py2StylePickler(buf, protocol=2).dump(batch)
        # numpy 1.x (which wrote the published files) names the reconstructor numpy.core.multiarray
        return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    return pickle.dumps(batch, protocol=protocol)


def make_cifar_batch(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, 10, size=n)]
    return data, labels


CIFAR_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar_folder(root: Path, n: int = 4, protocol: int | str = "py2") -> dict[str, tuple[np.ndarray, list[int]]]:
    root.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate(CIFAR_NAMES):
        data, labels = make_cifar_batch(n, seed=100 + i)
        batch = {b"batch_label": b"batch " + name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{i}_{j}.png".encode() for j in range(n)]}
        (root / name).write_bytes(cifar_pickle(batch, protocol))
        batches[name] = (data, labels)
    return batches


# --------------------------------------------------------------------------------------------
# 1. synthetic dataset
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_synthetic():
    """The default dataset (its generation time is a benchmark figure, not a test: wall time on a
    shared 2-core machine says nothing about the generator)."""
    return make_synthetic(), None


def test_synthetic_default_shapes_dtypes_and_classes(default_synthetic) -> None:
    splits, _ = default_synthetic
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8000, 2000, 2000)
    assert splits.num_classes == 10 and splits.name == "synthetic"
    assert splits.image_shape == (3, 32, 32)
    for split, n in ((splits.train, 8000), (splits.val, 2000), (splits.test, 2000)):
        assert split.images.shape == (n, 3, 32, 32)
        assert split.images.dtype == torch.float32
        assert split.labels.shape == (n,)
        assert split.labels.dtype == torch.int64
        assert int(split.labels.min()) >= 0 and int(split.labels.max()) <= 9
        assert torch.isfinite(split.images).all()
        assert set(split.labels.tolist()) == set(range(10)), "every class should appear in every split"
    # the three splits are distinct samples, not copies of one another
    assert not torch.equal(splits.train.images[:2000], splits.val.images)
    assert not torch.equal(splits.val.images, splits.test.images)


def test_synthetic_same_seed_is_identical() -> None:
    a = make_synthetic(60, 20, 30, seed=7)
    b = make_synthetic(60, 20, 30, seed=7)
    for sa, sb in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        assert torch.equal(sa.images, sb.images)
        assert torch.equal(sa.labels, sb.labels)


def test_synthetic_other_seed_differs() -> None:
    a = make_synthetic(60, 20, 30, seed=7)
    b = make_synthetic(60, 20, 30, seed=8)
    assert a.train.images.shape == b.train.images.shape
    assert not torch.allclose(a.train.images, b.train.images)
    assert not torch.allclose(a.test.images, b.test.images)


@pytest.mark.parametrize(("n_train", "n_val", "n_test"), [(50, 20, 30), (1, 2, 3)])
def test_synthetic_split_sizes(n_train: int, n_val: int, n_test: int) -> None:
    s = make_synthetic(n_train, n_val, n_test, seed=1)
    assert [len(s.train), len(s.val), len(s.test)] == [n_train, n_val, n_test]
    assert [s.train.images.shape[0], s.val.images.shape[0], s.test.images.shape[0]] == [n_train, n_val, n_test]


@pytest.mark.parametrize("bad", [(0, 10, 10), (10, 0, 10), (10, 10, -1)])
def test_synthetic_rejects_non_positive_sizes(bad: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="positive"):
        make_synthetic(*bad)


def test_load_dataset_synthetic_uses_config() -> None:
    cfg = DataConfig(name="synthetic", n_train=40, n_val=10, n_test=15, seed=3)
    got = load_dataset(cfg)
    want = make_synthetic(40, 10, 15, seed=3)
    assert (len(got.train), len(got.val), len(got.test)) == (40, 10, 15)
    assert torch.equal(got.train.images, want.train.images)
    assert torch.equal(got.test.labels, want.test.labels)


# --------------------------------------------------------------------------------------------
# 2. idx loader (Fashion-MNIST / MNIST)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    images, labels = make_idx_arrays(5, seed=0, h=7, w=9)
    img = write_file(tmp_path / "imgs-idx3-ubyte", idx_bytes(images), gz)
    lbl = write_file(tmp_path / "lbls-idx1-ubyte", idx_bytes(labels), gz)
    got_img, got_lbl = read_idx(img), read_idx(lbl)
    assert got_img.shape == (5, 7, 9) and got_img.dtype == np.uint8
    np.testing.assert_array_equal(got_img, images)
    np.testing.assert_array_equal(got_lbl, labels)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_load_idx_split_exact_pixels_and_labels(tmp_path: Path, idx_data, gz: bool) -> None:
    write_idx_folder(tmp_path, idx_data, gz)
    for split in ("train", "test"):
        images, labels = idx_data[split]
        got = load_idx_split(tmp_path, split)
        assert got.images.shape == (images.shape[0], 1, 28, 28)
        assert got.images.dtype == torch.float32
        assert got.labels.dtype == torch.int64
        np.testing.assert_array_equal(got.images[:, 0].numpy(), images.astype(np.float32) / 255.0)
        np.testing.assert_array_equal(got.labels.numpy(), labels.astype(np.int64))


def test_load_idx_split_accepts_mixed_plain_and_gz(tmp_path: Path, idx_data) -> None:
    """A folder mixing plain and gzipped files loads (each file is looked up as stem or stem.gz)."""
    images, labels = idx_data["train"]
    write_file(tmp_path / "train-images-idx3-ubyte", idx_bytes(images), gz=True)
    write_file(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels), gz=False)
    got = load_idx_split(tmp_path, "train")
    np.testing.assert_array_equal(got.labels.numpy(), labels)
    np.testing.assert_array_equal(got.images[:, 0].numpy(), images / np.float32(255.0))


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_load_dataset_idx_pads_normalises_and_holds_out(tmp_path: Path, idx_data, name: str, gz: bool) -> None:
    write_idx_folder(tmp_path, idx_data, gz)
    train_raw, train_lbl = idx_data["train"]
    test_raw, test_lbl = idx_data["test"]
    splits = load_dataset(DataConfig(name=name, root=str(tmp_path), n_val=8, seed=5))

    assert splits.num_classes == 10 and splits.name == name
    assert splits.image_shape == (1, 32, 32)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (32, 8, 12)
    for split in (splits.train, splits.val, splits.test):
        assert split.images.shape[1:] == (1, 32, 32)
        assert split.images.dtype == torch.float32 and split.labels.dtype == torch.int64

    # normalised with the training split's statistics
    assert abs(float(splits.train.images.mean())) < 1e-4
    assert abs(float(splits.train.images.std()) - 1.0) < 1e-3

    # Recover which raw sample each output is from pixel [0, 0] (the sample id, at [2, 2] after padding
    # 28 -> 32); normalisation is increasing affine, so sorting train+val by it gives ids 0..N-1.
    trval_imgs = torch.cat([splits.train.images, splits.val.images])[:, 0]
    trval_lbls = torch.cat([splits.train.labels, splits.val.labels])
    order = torch.argsort(trval_imgs[:, 2, 2])
    ids = torch.empty_like(order)
    ids[order] = torch.arange(len(order))
    assert sorted(ids.tolist()) == list(range(40)), "train and validation are disjoint and cover all samples"
    np.testing.assert_array_equal(trval_lbls.numpy(), train_lbl[ids.numpy()].astype(np.int64))

    # padded raw pixels in [0, 1]; the normalised images must be one affine map a*x + b of them
    raw_trval = np.zeros((40, 32, 32), np.float64)
    raw_trval[:, 2:30, 2:30] = train_raw[ids.numpy()] / 255.0
    x, z = raw_trval.ravel(), trval_imgs.double().numpy().ravel()
    a, b = np.polyfit(x, z, 1)
    assert a > 0
    np.testing.assert_allclose(z, a * x + b, atol=1e-4)
    # zero padding is a 2-pixel border on every side
    assert torch.allclose(trval_imgs[:, :2, :], torch.tensor(b, dtype=torch.float32), atol=1e-4)
    assert torch.allclose(trval_imgs[:, :, -2:], torch.tensor(b, dtype=torch.float32), atol=1e-4)

    # the test split goes through the same (training-statistics) map, in file order
    raw_test = np.zeros((12, 32, 32), np.float64)
    raw_test[:, 2:30, 2:30] = test_raw / 255.0
    np.testing.assert_allclose(splits.test.images[:, 0].double().numpy(), a * raw_test + b, atol=1e-4)
    np.testing.assert_array_equal(splits.test.labels.numpy(), test_lbl.astype(np.int64))


def test_load_dataset_idx_validation_is_seeded(tmp_path: Path, idx_data) -> None:
    write_idx_folder(tmp_path, idx_data, gz=False)
    a = load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path), n_val=8, seed=5))
    b = load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path), n_val=8, seed=5))
    c = load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path), n_val=8, seed=6))
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.val.labels, b.val.labels)
    assert not torch.equal(a.val.images, c.val.images)


def test_load_dataset_idx_limits(tmp_path: Path, idx_data) -> None:
    write_idx_folder(tmp_path, idx_data, gz=False)
    s = load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path), n_val=3, limit_train=10, limit_test=5))
    assert (len(s.train), len(s.val), len(s.test)) == (7, 3, 5)
    np.testing.assert_array_equal(s.test.labels.numpy(), idx_data["test"][1][:5].astype(np.int64))


# --------------------------------------------------------------------------------------------
# 3. CIFAR-10 loader
# --------------------------------------------------------------------------------------------

# Python 3 protocol-2 pickles encode bytes through ``_codecs.encode``; protocol 5 stores numpy arrays
# through ``numpy._core.numeric._frombuffer``: both must pass the loader's allow-list.
@pytest.mark.parametrize("protocol", ["py2", 2, 3, 4, 5])
def test_cifar10_round_trip(tmp_path: Path, protocol: int | str) -> None:
    batches = write_cifar_folder(tmp_path, n=4, protocol=protocol)
    train = load_cifar10_split(tmp_path, "train")
    test = load_cifar10_split(tmp_path, "test")
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64

    want_train = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    want_labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    np.testing.assert_array_equal(train.labels.numpy(), np.array(want_labels, np.int64))
    np.testing.assert_array_equal(test.labels.numpy(), np.array(batches["test_batch"][1], np.int64))
    # channel-major layout: bytes 0..1023 are red, 1024..2047 green, 2048..3071 blue, each row-major
    np.testing.assert_array_equal((train.images * 255).round().to(torch.uint8).numpy(),
                                  want_train.reshape(20, 3, 32, 32))
    first = batches["data_batch_1"][0][0]
    assert float(train.images[0, 0, 0, 0]) == pytest.approx(first[0] / 255.0)
    assert float(train.images[0, 0, 0, 31]) == pytest.approx(first[31] / 255.0)
    assert float(train.images[0, 0, 1, 0]) == pytest.approx(first[32] / 255.0)
    assert float(train.images[0, 1, 0, 0]) == pytest.approx(first[1024] / 255.0)
    assert float(train.images[0, 2, 31, 31]) == pytest.approx(first[3071] / 255.0)
    np.testing.assert_array_equal((test.images * 255).round().to(torch.uint8).numpy(),
                                  batches["test_batch"][0].reshape(4, 3, 32, 32))


def test_load_dataset_cifar10(tmp_path: Path) -> None:
    write_cifar_folder(tmp_path, n=4)
    s = load_dataset(DataConfig(name="cifar10", root=str(tmp_path), n_val=5, seed=0))
    assert s.image_shape == (3, 32, 32) and s.num_classes == 10 and s.name == "cifar10"
    assert (len(s.train), len(s.val), len(s.test)) == (15, 5, 4)
    # normalised per channel with training statistics
    mean = s.train.images.mean(dim=(0, 2, 3))
    std = s.train.images.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=1e-4)
    assert torch.allclose(std, torch.ones(3), atol=1e-3)


# --------------------------------------------------------------------------------------------
# 4. bad input -> one clear DatasetError naming file and key
# --------------------------------------------------------------------------------------------


def test_dataset_error_is_value_error_with_fields() -> None:
    err = DatasetError("/x/f", "data", "something")
    assert isinstance(err, ValueError)
    assert str(err) == "/x/f: data: expected something"
    assert (err.path, err.key, err.expected) == ("/x/f", "data", "something")


@pytest.mark.parametrize("name", ["fashion_mnist", "cifar10"])
def test_missing_root_folder(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DatasetError) as info:
        load_dataset(DataConfig(name=name, root=str(missing)))
    assert info.value.key == "root"
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("stem", [*IDX_FILES["train"], *IDX_FILES["test"]])
def test_missing_one_idx_file(tmp_path: Path, idx_data, stem: str) -> None:
    paths = write_idx_folder(tmp_path, idx_data, gz=False)
    paths[stem].unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path), n_val=5))
    msg = str(info.value)
    assert info.value.key == "file"
    assert stem in msg and f"{stem}.gz" in msg
    # only the missing file is named
    others = [s for s in (*IDX_FILES["train"], *IDX_FILES["test"]) if s != stem]
    assert not any(o in msg for o in others)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_truncated_idx_file(tmp_path: Path, idx_data, gz: bool) -> None:
    write_idx_folder(tmp_path, idx_data, gz=gz)
    images, _ = idx_data["train"]
    bad = write_file(tmp_path / "train-images-idx3-ubyte", idx_bytes(images)[:-10], gz)
    with pytest.raises(DatasetError) as info:
        load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path), n_val=5))
    msg = str(info.value)
    assert info.value.path == str(bad) and str(bad) in msg
    assert info.value.key == "data"
    assert str(images.size) in msg and str(images.size - 10) in msg and str(images.shape) in msg


def test_idx_file_with_trailing_bytes(tmp_path: Path) -> None:
    labels = np.arange(6, dtype=np.uint8)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(labels) + b"\x00\x00\x00")
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    assert info.value.path == str(path) and info.value.key == "data"
    assert "6 bytes" in str(info.value) and "found 9" in str(info.value)


def test_truncated_gzip_stream(tmp_path: Path, idx_data) -> None:
    write_idx_folder(tmp_path, idx_data, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])  # cut the gzip trailer and part of the stream
    with pytest.raises(DatasetError) as info:
        load_idx_split(tmp_path, "train")
    assert info.value.path == str(path) and info.value.key == "file"


def test_corrupt_gzip_file(tmp_path: Path, idx_data) -> None:
    write_idx_folder(tmp_path, idx_data, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    path.write_bytes(b"this is not gzip data at all")
    with pytest.raises(DatasetError) as info:
        load_idx_split(tmp_path, "test")
    assert info.value.path == str(path) and info.value.key == "file"


@pytest.mark.parametrize("magic", [struct.unpack(">i", struct.pack("<i", 0x803))[0], 0x01000803, 0x00010803,
                                   0x00000703],
                         ids=["little-endian", "nonzero-byte-0", "nonzero-byte-1", "unknown-type"])
def test_bad_idx_magic(tmp_path: Path, idx_data, magic: int) -> None:
    write_idx_folder(tmp_path, idx_data, gz=False)
    images, _ = idx_data["test"]
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(idx_bytes(images, magic=magic))
    with pytest.raises(DatasetError) as info:
        load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path), n_val=5))
    assert info.value.path == str(bad) and str(bad) in str(info.value)
    assert info.value.key == "header" and "magic" in str(info.value)


def test_idx_header_too_short(tmp_path: Path) -> None:
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(struct.pack(">i", 0x803) + struct.pack(">i", 5))  # 3 dims promised, 1 size given
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    assert info.value.key == "header" and "3 dimension sizes" in str(info.value)


def test_idx_label_count_mismatch(tmp_path: Path, idx_data) -> None:
    write_idx_folder(tmp_path, idx_data, gz=False)
    _, labels = idx_data["train"]
    bad = tmp_path / "train-labels-idx1-ubyte"
    bad.write_bytes(idx_bytes(labels[:-1]))
    with pytest.raises(DatasetError) as info:
        load_idx_split(tmp_path, "train")
    msg = str(info.value)
    assert info.value.path == str(bad) and info.value.key == "shape"
    assert "(40,)" in msg and "(39,)" in msg


def test_idx_images_with_wrong_ndim(tmp_path: Path, idx_data) -> None:
    write_idx_folder(tmp_path, idx_data, gz=False)
    images, _ = idx_data["train"]
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(idx_bytes(images.reshape(40, 28 * 28)))  # valid idx2 file, but not (N, H, W)
    with pytest.raises(DatasetError) as info:
        load_idx_split(tmp_path, "train")
    assert info.value.path == str(bad) and info.value.key == "shape" and "3 dimensions" in str(info.value)


@pytest.mark.parametrize("missing", ["data_batch_3", "test_batch"])
def test_missing_cifar_batch(tmp_path: Path, missing: str) -> None:
    write_cifar_folder(tmp_path, n=2)
    (tmp_path / missing).unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path), n_val=2))
    assert info.value.path == str(tmp_path / missing) and missing in str(info.value)
    assert info.value.key == "file"


@pytest.mark.parametrize("data", [np.zeros((2, 3000), np.uint8), np.zeros((2, 3, 32, 32), np.uint8),
                                  np.zeros((2, 3072), np.float32)], ids=["short-rows", "4d", "float"])
def test_cifar_batch_with_wrong_data(tmp_path: Path, data: np.ndarray) -> None:
    write_cifar_folder(tmp_path, n=2)
    bad = tmp_path / "data_batch_2"
    bad.write_bytes(cifar_pickle({b"data": data, b"labels": [0, 1]}, "py2"))
    with pytest.raises(DatasetError) as info:
        load_cifar10_split(tmp_path, "train")
    msg = str(info.value)
    assert info.value.path == str(bad) and info.value.key == "data"
    assert "(N, 3072)" in msg and str(data.shape) in msg


@pytest.mark.parametrize(("batch", "key"), [
    ({b"data": np.zeros((2, 3072), np.uint8)}, "data/labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, "labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [-1, 0]}, "labels"),
    ([1, 2, 3], "batch"),
], ids=["no-labels", "label-count", "label-too-big", "label-negative", "not-a-dict"])
def test_cifar_batch_with_bad_structure(tmp_path: Path, batch: object, key: str) -> None:
    path = tmp_path / "test_batch"
    path.write_bytes(cifar_pickle(batch, "py2"))
    with pytest.raises(DatasetError) as info:
        read_batch(path)
    assert info.value.path == str(path) and info.value.key == key


def test_cifar_batch_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "test_batch"
    path.write_bytes(b"\x00\x01garbage that is no pickle")
    with pytest.raises(DatasetError) as info:
        read_batch(path)
    assert info.value.path == str(path) and info.value.key == "file"


class _SystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _MkdirPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("payload", [_SystemPayload, _MkdirPayload], ids=["os.system", "os.mkdir"])
@pytest.mark.parametrize("where", ["top-level", "inside-dict"])
def test_malicious_pickle_is_rejected_without_running(tmp_path: Path, payload: type, where: str) -> None:
    write_cifar_folder(tmp_path / "cifar", n=2)
    marker = tmp_path / "pwned"
    evil = payload(marker)
    obj = evil if where == "top-level" else {b"data": evil, b"labels": [0, 1]}
    path = tmp_path / "cifar" / "data_batch_1"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DatasetError) as info:
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path / "cifar"), n_val=2))
    assert not marker.exists(), "the pickle payload ran"
    assert info.value.path == str(path) and info.value.key == "file"
    assert "not allowed" in str(info.value)


def test_malicious_pickle_payload_is_live(tmp_path: Path) -> None:
    """Control for the test above: the same payload does run under a plain unpickler."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_MkdirPayload(marker), protocol=2))
    assert marker.is_dir()


def test_unknown_dataset_name() -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(DataConfig(name="imagenet", root="/tmp"), source="run.yaml")  # type: ignore[arg-type]
    msg = str(info.value)
    assert info.value.path == "run.yaml" and info.value.key == "data.name"
    assert "'imagenet'" in msg and all(name in msg for name in DATASETS)


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10"])
@pytest.mark.parametrize("root", [None, ""])
def test_file_dataset_without_root(name: str, root: str | None) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(DataConfig(name=name, root=root), source="cfg.yaml")
    assert info.value.path == "cfg.yaml" and info.value.key == "data.root"
    assert name in str(info.value)


# --------------------------------------------------------------------------------------------
# 5. augment
# --------------------------------------------------------------------------------------------


def _positive_images(n: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Distinct, strictly positive values so zero can only come from padding."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) + 1.0


@pytest.mark.parametrize("shape", [(8, 3, 32, 32), (5, 2, 8, 12), (1, 1, 4, 4)])
@pytest.mark.parametrize(("pad", "flip"), [(4, True), (4, False), (0, True), (2, True)])
def test_augment_preserves_shape_and_input(shape: tuple[int, ...], pad: int, flip: bool) -> None:
    x = _positive_images(*shape)
    before = x.clone()
    out = augment(x, torch.Generator().manual_seed(0), pad=pad, flip=flip)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(x, before), "augment must not modify its input"


def test_augment_deterministic_with_seed() -> None:
    x = _positive_images(16, 3, 16, 16)
    a = augment(x, torch.Generator().manual_seed(123))
    b = augment(x, torch.Generator().manual_seed(123))
    c = augment(x, torch.Generator().manual_seed(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_augment_noop_without_pad_and_flip() -> None:
    x = _positive_images(4, 3, 8, 8)
    assert torch.equal(augment(x, torch.Generator().manual_seed(0), pad=0, flip=False), x)


def test_augment_flip_is_horizontal() -> None:
    n, h, w = 64, 6, 7
    # column index encoded in the value, plus sample/row so every image is different
    x = (torch.arange(w).view(1, 1, 1, w) + 10 * torch.arange(h).view(1, 1, h, 1)
         + 1000 * torch.arange(n).view(n, 1, 1, 1)).float().expand(n, 2, h, w).contiguous()
    out = augment(x, torch.Generator().manual_seed(0), pad=0, flip=True)
    flipped = kept = 0
    for i in range(n):
        if torch.equal(out[i], x[i]):
            kept += 1
        elif torch.equal(out[i], x[i].flip(-1)):
            flipped += 1
            # the left-most column now holds the original right-most one, rows are unchanged
            assert torch.equal(out[i, :, :, 0], x[i, :, :, w - 1])
            assert torch.equal(out[i, :, :, w - 1], x[i, :, :, 0])
        else:
            pytest.fail(f"sample {i} is neither the original nor its horizontal mirror")
    assert flipped > 10 and kept > 10, (flipped, kept)


def _find_shift(out: torch.Tensor, orig: torch.Tensor, pad: int) -> tuple[int, int] | None:
    """(dy, dx) such that out[y, x] == orig[y + dy, x + dx] inside, 0 outside; None if none fits."""
    _c, h, w = orig.shape
    padded = torch.nn.functional.pad(orig, (pad, pad, pad, pad))
    for oy in range(2 * pad + 1):
        for ox in range(2 * pad + 1):
            if torch.equal(out, padded[:, oy : oy + h, ox : ox + w]):
                return oy - pad, ox - pad
    return None


@pytest.mark.parametrize("flip", [False, True])
def test_augment_crop_only_shifts_content(flip: bool) -> None:
    n, pad = 48, 3
    x = _positive_images(n, 3, 10, 12, seed=1)
    out = augment(x, torch.Generator().manual_seed(7), pad=pad, flip=flip)
    # every value is either zero padding or comes from the original image
    originals = set(x.flatten().tolist())
    assert all(v == 0.0 or v in originals for v in out.flatten().tolist())
    shifts, flips = set(), 0
    for i in range(n):
        found = _find_shift(out[i], x[i], pad)
        if found is None and flip:
            found = _find_shift(out[i], x[i].flip(-1), pad)
            flips += found is not None
        assert found is not None, f"sample {i} is not a zero-padded shift of the original"
        shifts.add(found)
    assert len(shifts) > 5
    assert len({dy for dy, _ in shifts}) > 2 and len({dx for _, dx in shifts}) > 2, "both axes are shifted"
    assert all(abs(dy) <= pad and abs(dx) <= pad for dy, dx in shifts)
    if flip:
        assert 0 < flips < n


# --------------------------------------------------------------------------------------------
# 6. Split.batches
# --------------------------------------------------------------------------------------------


def _id_split(n: int) -> Split:
    ids = torch.arange(n)
    return Split(ids.float().view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous(), ids.clone())


@pytest.mark.parametrize(("n", "bs"), [(10, 3), (12, 4), (5, 8), (7, 1)])
def test_batches_in_order_cover_everything(n: int, bs: int) -> None:
    split = _id_split(n)
    batches = list(split.batches(bs))
    sizes = [len(lbl) for _, lbl in batches]
    assert sizes == [bs] * (n // bs) + ([n % bs] if n % bs else [])
    labels = torch.cat([lbl for _, lbl in batches])
    assert labels.tolist() == list(range(n))
    for imgs, lbl in batches:
        assert imgs.shape == (len(lbl), 1, 2, 2)
        assert torch.equal(imgs[:, 0, 0, 0].long(), lbl)


@pytest.mark.parametrize(("n", "bs"), [(50, 7), (64, 16)])
def test_batches_shuffled_cover_each_sample_once(n: int, bs: int) -> None:
    split = _id_split(n)
    batches = list(split.batches(bs, shuffle=True, generator=torch.Generator().manual_seed(0)))
    labels = torch.cat([lbl for _, lbl in batches])
    assert sorted(labels.tolist()) == list(range(n))
    assert labels.tolist() != list(range(n)), "shuffle should change the order"
    for imgs, lbl in batches:
        assert torch.equal(imgs[:, 0, 0, 0].long(), lbl), "images and labels stay paired"


def test_batches_shuffle_deterministic_with_seed() -> None:
    split = _id_split(40)

    def order(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        return torch.cat([lbl for _, lbl in split.batches(6, shuffle=True, generator=gen)]).tolist()

    assert order(3) == order(3)
    assert order(3) != order(4)


def test_batches_empty_split() -> None:
    split = Split(torch.zeros(0, 1, 2, 2), torch.zeros(0, dtype=torch.int64))
    assert list(split.batches(4)) == []
    assert list(split.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0))) == []


def test_idx_labels_out_of_range(tmp_path: Path) -> None:
    images, labels = make_idx_arrays(4, seed=3)
    labels[1] = 12
    write_idx_folder(tmp_path, {"test": (images, labels)}, gz=False)
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte: labels: expected class labels in 0..9"):
        load_idx_split(tmp_path, "test")


def test_n_val_too_large_names_the_key(tmp_path: Path, idx_data) -> None:
    write_idx_folder(tmp_path, idx_data, gz=False)
    with pytest.raises(DatasetError, match="data.n_val"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path), n_val=50))


# --------------------------------------------------------------------------------------------
# 7. generic .npz
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_npz_dataset(tmp_path: Path, layout: str) -> None:
    rng = np.random.default_rng(0)
    shape = {"NHW": (30, 32, 32), "NHWC": (30, 32, 32, 3), "NCHW": (30, 3, 32, 32)}[layout]
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(30) % 4, x_test=x[:6], y_test=np.arange(6) % 4)
    splits = load_dataset(DataConfig(name="npz", root=str(tmp_path / "d.npz"), n_val=5))
    channels = 1 if layout == "NHW" else 3
    assert splits.image_shape == (channels, 32, 32) and splits.num_classes == 4
    assert len(splits.train) == 25 and len(splits.val) == 5 and len(splits.test) == 6


def test_npz_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="d.npz: root"):
        load_dataset(DataConfig(name="npz", root=str(tmp_path / "d.npz"), n_val=1))
    np.savez(tmp_path / "d.npz", x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.zeros(4, np.int64))
    with pytest.raises(DatasetError, match="x_test: expected an array named x_test"):
        load_dataset(DataConfig(name="npz", root=str(tmp_path / "d.npz"), n_val=1))
    np.savez(tmp_path / "e.npz", x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.zeros(3, np.int64),
             x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.zeros(2, np.int64))
    with pytest.raises(DatasetError, match="y_train"):
        load_dataset(DataConfig(name="npz", root=str(tmp_path / "e.npz"), n_val=1))
    (tmp_path / "f.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="f.npz: file"):
        load_dataset(DataConfig(name="npz", root=str(tmp_path / "f.npz"), n_val=1))


def test_split_head_takes_the_first_samples() -> None:
    split = Split(torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1), torch.arange(10))
    head = split.head(4)
    assert len(head) == 4 and torch.equal(head.labels, torch.arange(4)) and torch.equal(head.images, split.images[:4])
    assert split.head(None) is split and split.head(99) is split


# --- property tests: generated malformed dataset files give one DatasetError, quickly ----------------

import tempfile  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from hwmodel import SchemaError  # noqa: E402
from tests.fuzz import bounded  # noqa: E402

_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_dtypes = st.sampled_from([np.uint8, np.int8, np.int64, np.uint64, np.float16, np.float32, np.float64, np.bool_,
                           np.complex64, np.dtype("<U2"), np.dtype("<M8[s]")])
_arrays = _dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=12)))


def _load_or_dataset_error(cfg: DataConfig) -> None:
    with bounded():
        try:
            load_dataset(cfg)
        except (DatasetError, SchemaError):
            pass


@_FUZZ
@given(st.dictionaries(st.sampled_from(["x_train", "y_train", "x_test", "y_test", "other"]), _arrays, max_size=5),
       st.integers(1, 40))
def test_fuzzed_npz_gives_one_dataset_error(arrays, n_val):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, **arrays)
        _load_or_dataset_error(DataConfig(name="npz", root=str(path), n_val=n_val))


@_FUZZ
@given(st.binary(max_size=64), st.binary(max_size=64), st.booleans())
def test_fuzzed_idx_files_give_one_dataset_error(images, labels, valid_header):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for stem in ("train", "t10k"):
            head_i = (bytes([0, 0, 8, 3]) + b"".join(int(v).to_bytes(4, "big") for v in (2, 4, 4))
                      if valid_header else b"")
            head_l = bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") if valid_header else b""
            (root / f"{stem}-images-idx3-ubyte").write_bytes(head_i + images)
            (root / f"{stem}-labels-idx1-ubyte").write_bytes(head_l + labels)
        _load_or_dataset_error(DataConfig(name="fashion_mnist", root=str(root), n_val=1))
