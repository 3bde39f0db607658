from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nas.config import TrainConfig
from nas.data import make_synthetic
from nas.supernet.training import CheckpointError, load_checkpoint, load_supernet, train_supernet
from search_spaces import create_space


@pytest.fixture(scope="module")
def setup():
    space = create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(4, 8), exit_points=(2, 6))
    return space, make_synthetic(256, 64, 64, seed=1)


def test_resumed_training_equals_uninterrupted(setup, tmp_path, monkeypatch):
    """Kill the run right after its first checkpoint, resume it: same weights as a straight run."""
    import nas.supernet.training as training

    space, splits = setup
    cfg = TrainConfig(epochs=2, batch_size=128, seed=3, sandwich=False, random_subnets=1)  # one subnet a step: fast
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


def test_training_reduces_the_loss_and_checkpoints_load_with_weights_only(setup, tmp_path):
    space, splits = setup
    log = tmp_path / "log.jsonl"
    train_supernet(space, splits,
                   TrainConfig(epochs=3, batch_size=64, seed=0, augment=False, sandwich=False, random_subnets=1),
                   tmp_path / "s.pt", log_path=log, progress=False)
    import json

    losses = [json.loads(line)["loss"] for line in log.read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0]
    ckpt = torch.load(tmp_path / "s.pt", weights_only=True)  # plain tensors and numbers: no pickled code
    assert ckpt["epoch"] == 3 and "state_dict" in ckpt


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


def test_exit_weights_are_normalised_per_head(setup):
    from nas.supernet.training import head_weights

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


def _recipe(**kw) -> TrainConfig:
    base = dict(epochs=2, fp32_epochs=1, companions=("smallest", "largest_low_bits", "random"), batch_size=64,
                seed=5, distill=True)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def elastic():
    space = create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(4, 8), exit_points=(3,),
                         kernel_choices=(3, 7), expansion_choices=(3, 6), skippable=True)
    return space, make_synthetic(192, 32, 32, seed=2)


def test_progressive_recipe_phases_and_companion_cycle(elastic):
    import random

    from nas.supernet.training import subnets_for_step

    space, _ = elastic
    cfg = _recipe()
    (float_largest,) = subnets_for_step(space, cfg, 0, 0, random.Random(0))
    assert set(float_largest.weight_bits) == {32} and float_largest.backbone == space.extreme(True).backbone
    kinds = [subnets_for_step(space, cfg, 1, step, random.Random(step)) for step in range(3)]
    assert space.extreme(False).weight_bits[0] == 4  # "smallest" is the smallest at its lowest bits ...
    assert all(len(k) == 2 and k[0] == space.extreme(True) for k in kinds)  # the teacher: largest at 8 bits
    assert kinds[0][1] == space.extreme(False)
    assert kinds[1][1].backbone == space.extreme(True).backbone and set(kinds[1][1].weight_bits) == {4}
    for subnet, bits in (("smallest", 32), ("reference", 32)):
        (g,) = subnets_for_step(space, _recipe(subnet=subnet), 0, 0, random.Random(0))
        assert set(g.weight_bits) == {bits}
    (g,) = subnets_for_step(space, _recipe(subnet="smallest"), 1, 0, random.Random(0))
    assert g.backbone == space.extreme(False).backbone and set(g.weight_bits) == {8}
    # ... and "smallest_high_bits" the same network with every weight and activation at the highest
    _, high = subnets_for_step(space, _recipe(companions=("smallest_high_bits",)), 1, 0, random.Random(0))
    assert high.backbone == space.extreme(False).backbone
    assert {*high.weight_bits, *high.act_bits, *high.exit_weight_bits, *high.exit_act_bits} == {8}


def test_the_reference_backbone_can_be_the_teacher(elastic):
    """teacher: reference: the reference backbone trains alone in float, then at 8 bits with one companion
    (here the largest) per step, first in every list (the one that learns from the labels)."""
    import random

    from nas.supernet.training import at_bits, subnets_for_step

    space, _ = elastic
    cfg = _recipe(teacher="reference", companions=("largest", "smallest", "reference_low_bits", "reference_high_bits"))
    (first,) = subnets_for_step(space, cfg, 0, 0, random.Random(0))
    assert first == at_bits(space.uniform(), 32)
    steps = [subnets_for_step(space, cfg, 1, step, random.Random(step)) for step in range(4)]
    assert all(s[0] == at_bits(space.uniform(), 8) for s in steps)
    assert [s[1] for s in steps] == [space.extreme(True), space.extreme(False), at_bits(space.uniform(), 4),
                                     at_bits(space.uniform(), 8)]


def test_float_epochs_leave_the_quantisers_untouched_until_the_quantised_phase(elastic, tmp_path):
    import json

    from search_spaces.modules.lsq import LSQAct, LSQWeight

    space, splits = elastic
    log = tmp_path / "log.jsonl"
    net = train_supernet(space, splits, _recipe(epochs=1), tmp_path / "a.pt", log_path=log, progress=False)
    quantisers = [m for m in net.modules() if isinstance(m, (LSQAct, LSQWeight))]
    assert quantisers and not any(bool(q.ready.any()) for q in quantisers)
    record = json.loads(log.read_text().splitlines()[0])
    assert record["phase"] == "float, largest only" and record["subnets_per_step"] == 1
    net = train_supernet(space, splits, _recipe(epochs=2), tmp_path / "a.pt", log_path=log, progress=False)
    record = json.loads(log.read_text().splitlines()[1])
    assert record["phase"] == "quantised" and record["subnets_per_step"] == 2 and math.isfinite(record["loss"])
    assert any(bool(q.ready.any()) for q in net.modules() if isinstance(q, (LSQAct, LSQWeight)))


def test_reference_companion_is_the_reference_backbone_at_low_or_high_bits(elastic):
    import random

    from nas.supernet.training import subnets_for_step

    space, _ = elastic
    cfg = _recipe(companions=("reference",))
    picks = [subnets_for_step(space, cfg, 1, step, random.Random(step))[1] for step in range(12)]
    assert {g.backbone for g in picks} == {space.uniform().backbone}
    assert {frozenset(g.weight_bits) for g in picks} == {frozenset({4}), frozenset({8})}


def test_init_from_starts_a_stage_from_another_runs_weights(elastic, tmp_path):
    space, splits = elastic
    first = train_supernet(space, splits, _recipe(epochs=1), tmp_path / "one.pt", progress=False)
    stage = _recipe(epochs=0, fp32_epochs=0, init_from=str(tmp_path / "one.pt"))
    second = train_supernet(space, splits, stage, tmp_path / "two.pt", progress=False)  # 0 epochs: the weights as given
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other = create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(8,), exit_points=(3,))
    with pytest.raises(CheckpointError, match=r"one\.pt: space: expected .*train\.init_from"):
        train_supernet(other, splits, stage, tmp_path / "three.pt", progress=False)

    # a stage option (per-kernel batch-norm) may be switched on: its new parameters start from the old ones
    kbn = create_space("mobilenetv2_cifar", **{**space.config["options"], "kernel_batchnorm": True})
    third = train_supernet(kbn, splits, stage, tmp_path / "four.pt", progress=False)
    genotype = space.sample(random.Random(1))
    x = splits.val.images[:8]
    first.configure(genotype)
    third.configure(genotype)
    assert all(torch.equal(a, b) for a, b in zip(first(x).values(), third(x).values()))


def test_resume_from_a_checkpoint_inside_an_epoch_equals_uninterrupted(elastic, tmp_path, monkeypatch):
    """Checkpoints every step; the run dies after its second one (inside epoch 1): same result."""
    import nas.supernet.training as training

    space, splits = elastic
    cfg = _recipe()
    straight = train_supernet(space, splits, cfg, tmp_path / "straight.pt", progress=False)
    original, saves = training.atomic_save, []

    def save_then_die(obj, path):
        original(obj, path)
        saves.append(obj["step"])
        if len(saves) == 4:  # epoch 0 step 1, step 2, end of epoch 0, then epoch 1 step 1
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "atomic_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(space, splits, cfg, tmp_path / "killed.pt", progress=False, checkpoint_s=1e-9)
    monkeypatch.setattr(training, "atomic_save", original)
    ckpt = load_checkpoint(tmp_path / "killed.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 1)
    resumed = train_supernet(space, splits, cfg, tmp_path / "killed.pt", progress=False)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_weight_decay_spares_quantiser_steps_norms_and_biases(elastic):
    from nas.supernet.training import _optimizer

    space, _ = elastic
    net = space.build_supernet()
    decayed, spared = _optimizer(net, TrainConfig(weight_decay=1e-3)).param_groups
    names = {id(p): n for n, p in net.named_parameters()}
    assert decayed["weight_decay"] == 1e-3 and spared["weight_decay"] == 0.0
    assert all(names[id(p)].endswith(".weight") or ".small." in names[id(p)] for p in decayed["params"])
    assert any(".small." in names[id(p)] for p in decayed["params"])  # the small kernels' own weights
    assert any(".steps." in names[id(p)] for p in spared["params"])
    assert any(names[id(p)].endswith("bn.weight") for p in spared["params"])


def test_device_choice_without_cuda():
    from nas.supernet.training import train_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert train_device(TrainConfig(device="auto")).type == "cpu"
    with pytest.raises(ValueError, match="train.device"):
        train_device(TrainConfig(device="cuda"))


def test_recipe_settings_are_checked_with_one_error(tmp_path):
    from hwmodel.schema import SchemaError
    from nas.config import load_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 2, fp32_epochs: 1, companions: [smallest, tiny]}\n")
    with pytest.raises(SchemaError, match=r"bad.yaml.*companions.*tiny"):
        load_config(bad)
    bad.write_text("train: {epochs: 2, fp32_epochs: 3}\n")
    with pytest.raises(SchemaError, match=r"bad.yaml.*fp32_epochs"):
        load_config(bad)


def test_lr_schedule_warms_up_linearly_then_decays_as_a_cosine_and_resumes_in_step():
    from nas.supernet.training import lr_schedule

    total, warmup, peak = 60, 7, 0.2
    expected = [peak * (s + 1) / warmup if s < warmup
                else 0.5 * peak * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))) for s in range(total)]
    seen, opt = [], torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = lr_schedule(opt, peak, total, warmup)
    for _ in range(total):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert seen == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # a resumed optimiser holds the lr it stopped at; the schedule restarts from the step alone
    resumed = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=seen[40])
    lr_schedule(resumed, peak, total, warmup, start=41)
    assert resumed.param_groups[0]["lr"] == pytest.approx(expected[41], rel=1e-12)


def test_student_loss_mixes_the_teachers_predictions_and_the_labels():
    """distill_label_weight w: a student's loss is (1 - w) KL(teacher) + w CE(labels), per head, weighted;
    the teacher (no teacher given) always learns from the labels."""
    from torch.nn import functional as F

    from nas.supernet.training import _loss

    torch.manual_seed(0)
    outputs = {"a": torch.randn(8, 10), "b": torch.randn(8, 10)}
    teacher = {h: F.softmax(torch.randn(8, 10), 1) for h in outputs}
    y = torch.randint(0, 10, (8,))
    weights = {"a": 0.25, "b": 0.75}
    ce = sum(w * F.cross_entropy(outputs[h], y) for h, w in weights.items())
    kd = sum(w * F.kl_div(F.log_softmax(outputs[h], 1), teacher[h], reduction="batchmean") for h, w in weights.items())
    for share in (0.0, 0.3, 1.0):
        cfg = TrainConfig(distill_label_weight=share)
        assert float(_loss(outputs, y, teacher, weights, cfg)) == pytest.approx(float((1 - share) * kd + share * ce))
        assert float(_loss(outputs, y, None, weights, cfg)) == pytest.approx(float(ce))
    with pytest.raises(ValueError, match="distill_label_weight"):
        TrainConfig(distill_label_weight=1.5)


def test_refit_input_steps_fits_the_image_steps_of_an_init_from_checkpoint(elastic, tmp_path):
    """A stage with ``refit_input_steps`` re-fits the stem's input steps to the images' range; without
    it, the stage keeps its checkpoint's steps."""
    space, splits = elastic
    train_supernet(space, splits, _recipe(epochs=1), tmp_path / "one.pt", progress=False)
    ckpt = load_checkpoint(tmp_path / "one.pt")
    for bits in (4, 8):  # steps far too wide, as LSQ's rule left them on Fashion-MNIST
        ckpt["state_dict"][f"stem.conv.act.steps.{bits}"] = torch.tensor(5.0)
        ckpt["state_dict"]["stem.conv.act.ready"] = torch.ones(2, dtype=torch.bool)
    torch.save(ckpt, tmp_path / "wide.pt")
    stage = _recipe(epochs=1, fp32_epochs=0, lr=1e-4, companions=("largest_low_bits",),
                    init_from=str(tmp_path / "wide.pt"))
    kept = train_supernet(space, splits, stage, tmp_path / "kept.pt", progress=False)
    refit = train_supernet(space, splits, replace(stage, refit_input_steps=True), tmp_path / "refit.pt",
                           progress=False)
    low, high = float(splits.train.images.min()), float(splits.train.images.max())
    act = refit.stem.conv.act
    for bits in (4, 8):
        assert float(kept.stem.conv.act.steps[str(bits)].detach()) == pytest.approx(5.0, rel=0.05)
        step = float(act.steps[str(bits)].detach())
        qn, qp = act.qrange(bits)  # asymmetric: all 2^bits levels span the images' [min, max]
        assert (qn, qp) != (-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1)
        # fitted to the first batch's [min, max]: most of the whole split's range on either side
        assert step * (2**bits - 1) == pytest.approx(high - low, rel=0.3)
        assert qn * step <= 0.7 * low and qp * step >= 0.7 * high
