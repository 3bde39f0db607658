from __future__ import annotations

import pytest
import torch

from nas.config import TrainConfig
from nas.data import make_synthetic
from nas.training import CheckpointError, load_checkpoint, load_supernet, train_supernet
from search_spaces import create_space


@pytest.fixture(scope="module")
def setup():
    space = create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(4, 8), exit_points=(2, 6))
    return space, make_synthetic(256, 64, 64, seed=1)


def test_resumed_training_equals_uninterrupted(setup, tmp_path, monkeypatch):
    """Kill the run right after its first checkpoint, resume it: same weights as a straight run."""
    import nas.training as training

    space, splits = setup
    cfg = TrainConfig(epochs=2, batch_size=128, seed=3)
    straight = train_supernet(space, splits, cfg, tmp_path / "straight.pt", progress=False)
    original = training.atomic_save

    def save_then_die(obj, path):
        original(obj, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "atomic_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(space, splits, cfg, tmp_path / "killed.pt", progress=False)
    monkeypatch.setattr(training, "atomic_save", original)
    assert load_checkpoint(tmp_path / "killed.pt")["epoch"] == 1
    resumed = train_supernet(space, splits, cfg, tmp_path / "killed.pt", progress=False)
    assert load_checkpoint(tmp_path / "killed.pt")["epoch"] == 2
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_training_reduces_the_loss(setup, tmp_path):
    space, splits = setup
    log = tmp_path / "log.jsonl"
    train_supernet(space, splits, TrainConfig(epochs=3, batch_size=64, seed=0, augment=False), tmp_path / "s.pt",
                   log_path=log, progress=False)
    import json

    losses = [json.loads(line)["loss"] for line in log.read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0]


def test_checkpoint_errors(setup, tmp_path):
    space, _ = setup
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(tmp_path / "other.pt")


def test_checkpoint_for_another_space_is_rejected(setup, tmp_path):
    space, splits = setup
    train_supernet(space, splits, TrainConfig(epochs=0), tmp_path / "s.pt", progress=False)
    other = create_space("mobilenetv2_cifar", width_mult=0.5)
    with pytest.raises(CheckpointError, match="space"):
        load_supernet(other, tmp_path / "s.pt")


def test_checkpoints_load_with_weights_only(setup, tmp_path):
    space, splits = setup
    train_supernet(space, splits, TrainConfig(epochs=1, batch_size=128), tmp_path / "s.pt", progress=False)
    ckpt = torch.load(tmp_path / "s.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and "state_dict" in ckpt
