from __future__ import annotations

import math
from pathlib import Path

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


def test_exit_weights_are_normalised_per_head(setup):
    from nas.training import head_weights

    space, _ = setup
    net = space.build_supernet()
    w = head_weights(space, net, TrainConfig(exit_weights={"K": 3.0, "C": 0.0}))
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["11_1"] == pytest.approx(3 * w["6_1"]) and w["2_1"] == 0.0


def test_sandwich_with_distillation_trains(tmp_path):
    space = create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(4, 8), exit_points=(3,),
                         kernel_choices=(3, 5), expansion_choices=(3, 6), skippable=True)
    splits = make_synthetic(192, 32, 32, seed=2)
    log = tmp_path / "log.jsonl"
    cfg = TrainConfig(epochs=2, batch_size=64, sandwich=True, random_subnets=1, distill=True, augment=False)
    net = train_supernet(space, splits, cfg, tmp_path / "s.pt", log_path=log, progress=False)
    import json

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0]["subnets_per_step"] == 3 and all(math.isfinite(r["loss"]) for r in records)
    from search_spaces.modules.lsq import LSQAct, LSQWeight

    quantisers = [m for m in net.modules() if isinstance(m, (LSQAct, LSQWeight))]
    assert quantisers and all(bool(q.ready[q._index[8]]) for q in quantisers)  # the largest subnet ran every layer


def test_two_process_distributed_training(tmp_path):
    """torchrun, 2 processes, gloo: ranks train on their shards and end with identical weights."""
    import json
    import shutil
    import subprocess
    import sys

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""run_dir: {tmp_path / 'run'}
data: {{name: synthetic, n_train: 256, n_val: 64, n_test: 64}}
space: {{name: mobilenetv2_cifar, options: {{width_mult: 0.25, bits_choices: [8], exit_points: [3]}}}}
train: {{epochs: 1, batch_size: 32, sandwich: false, random_subnets: 1, threads: 1, augment: false}}
""")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    out = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "nas", "train", "--config",
                          str(cfg)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert lines[0]["world_size"] == 2
    assert lines[-1] == {"ranks": 2, "ranks_in_sync": True}
    assert load_checkpoint(tmp_path / "run" / "supernet.pt")["epoch"] == 1
