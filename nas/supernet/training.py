"""Supernet training with quantisation-aware training over sampled subnets.

Each step trains several subnets on the same batch and applies one optimiser step:

- sandwich rule (``sandwich``): the largest subnet (widest choices, highest bits), the smallest, and
  ``random_subnets`` random ones; otherwise ``random_subnets`` random ones;
- in-place distillation (``distill``): the first subnet (the teacher) learns from the labels, the
  others from its (detached) predictions at every exit head (KL divergence), mixed with
  ``distill_label_weight`` of cross-entropy on the labels;
- joint loss over every exit head (all mounting points and branch depths), weighted per exit label
  by ``exit_weights`` (default 1): joint training of all exits.

A genotype's per-layer bits drive the fake quantisers; every exit head gets one of its bit pairs.
Progressive recipe (``fp32_epochs``, ``companions``; Once-for-All style): the teacher (``teacher``: the
largest subnet, or the space's reference backbone) is first trained alone in float (no fake
quantisation, one subnet per step), then at its highest bits plus one companion per step (the kinds
of ``companions``, cycled), with in-place distillation. Weight decay applies to convolution and
linear weights only (not to LSQ steps, batch-norm parameters or biases).

Sampling, shuffling and augmentation are seeded per (seed, epoch, step), so a run resumed from its
last checkpoint replays exactly what an uninterrupted run would have done. The checkpoint is
written after every epoch and every ``checkpoint_s`` seconds inside one (``step`` = steps done).
Under ``torchrun`` (gloo, several processes) every rank trains on its share of each epoch,
gradients are averaged by DistributedDataParallel, rank 0 writes the checkpoints, and the ranks'
weights are checked equal at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from nas.config import TrainConfig
from nas.data import Splits, augment
from nas.files import remove_stale_temporaries, temporary_for
from nas.runtime import tune_cpu_allocator
from search_spaces import Genotype, SearchSpace, Supernet, same_space
from search_spaces.genotype import FLOAT_BITS, HeadKey
from search_spaces.modules.folded import nhwc
from search_spaces.modules.lsq import LSQAct, compiled_quantisers

CHECKPOINT_VERSION = 2


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded (names the file and what was expected)."""


def load_weights_only(path: Path, expected: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; CheckpointError naming ``path`` and ``expected``
    with torch's reason in one line (and never its advice to turn ``weights_only`` off)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt or hostile files
        raise CheckpointError(f"{path}: expected {expected} readable with weights_only=True "
                              f"({_load_failure(exc)})") from None


def _load_failure(exc: Exception) -> str:
    """The reason inside torch's load error, without its paragraphs on how to load the file unsafely."""
    import pickle

    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, pickle.UnpicklingError):
        detail = next((line for line in lines if "GLOBAL" in line), "")
        detail = detail.split(". Please")[0].removeprefix("WeightsUnpickler error: ").rstrip(".")
        return "refused, the file holds more than tensors" + (f": {detail}" if detail else "")
    safe = [line for line in lines if "weights_only" not in line and "trust" not in line]
    return f"{type(exc).__name__}: {(safe or [''])[0][:200]}".rstrip(": ")


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path``: never a torn file (see
    :mod:`nas.files`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_for(path)
    with tmp.open("wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a supernet checkpoint with ``weights_only=True``; CheckpointError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: expected a supernet checkpoint file; it does not exist")
    ckpt = load_weights_only(path, "a torch checkpoint")
    for key in ("version", "state_dict", "space", "epoch"):
        if not isinstance(ckpt, dict) or key not in ckpt:
            raise CheckpointError(f"{path}: {key}: expected a key of a supernet checkpoint")
    if ckpt["version"] != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: version: expected {CHECKPOINT_VERSION}, got {ckpt['version']} (retrain)")
    return ckpt


def load_supernet(space: SearchSpace, path: str | Path) -> Supernet:
    """A supernet with the weights of a checkpoint (space must match the one it was trained for)."""
    ckpt = load_checkpoint(path)
    if not same_space(ckpt["space"], space.config):
        raise CheckpointError(f"{path}: space: expected {space.config}, the checkpoint was trained for {ckpt['space']}")
    net = space.build_supernet()
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


def lr_schedule(optimizer: torch.optim.Optimizer, peak: float, total: int, warmup: int,
                start: int = 0) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning rate: linear warm-up over ``warmup`` steps to ``peak``, then cosine decay to 0
    at step ``total`` (torch's LinearLR then CosineAnnealingLR), advanced to step ``start`` (a resumed run)."""
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    for group in optimizer.param_groups:  # a resumed optimiser carries the lr it stopped at
        group["lr"] = peak
        group.pop("initial_lr", None)
    ramp = LinearLR(optimizer, start_factor=1 / warmup, end_factor=1.0, total_iters=max(1, warmup - 1))
    decay = CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))
    schedule = SequentialLR(optimizer, [ramp, decay], milestones=[warmup])
    with warnings.catch_warnings():  # stepping ahead of optimizer.step() on resume is intended
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(start):
            schedule.step()
    return schedule


def at_bits(genotype: Genotype, bits: int) -> Genotype:
    """``genotype`` with every weight and activation (backbone and exits) at ``bits``."""
    return dataclasses.replace(genotype, weight_bits=(bits,) * len(genotype.weight_bits),
                               act_bits=(bits,) * len(genotype.act_bits),
                               exit_weight_bits=(bits,) * len(genotype.exit_weight_bits),
                               exit_act_bits=(bits,) * len(genotype.exit_act_bits))


def _companion(space: SearchSpace, kind: str, rng: random.Random) -> Genotype:
    smallest, largest = space.extreme(False), space.extreme(True)
    low, high = min(smallest.weight_bits), max(largest.weight_bits)
    if kind == "smallest":
        return smallest
    if kind == "smallest_high_bits":
        return at_bits(smallest, high)
    if kind == "largest":
        return largest
    if kind == "largest_low_bits":
        return at_bits(largest, low)
    if kind == "reference":  # the space's reference backbone, at its lowest or highest bits
        return at_bits(space.uniform(), rng.choice([low, high]))
    if kind == "reference_low_bits":
        return at_bits(space.uniform(), low)
    if kind == "reference_high_bits":
        return at_bits(space.uniform(), high)
    return space.sample(rng)


def subnets_for_step(space: SearchSpace, cfg: TrainConfig, epoch: int, step: int, rng: random.Random
                     ) -> list[Genotype]:
    """The subnets trained on one batch; with distillation the first one is the teacher."""
    if cfg.subnet != "all":
        top = max(space.extreme(True).weight_bits)
        alone = {"largest": space.extreme(True), "smallest": space.extreme(False)}.get(cfg.subnet)
        return [at_bits(alone or space.uniform(bits=top), FLOAT_BITS if epoch < cfg.fp32_epochs else top)]
    teacher = space.extreme(True)
    if cfg.teacher == "reference":
        teacher = at_bits(space.uniform(), max(teacher.weight_bits))
    if epoch < cfg.fp32_epochs:
        return [at_bits(teacher, FLOAT_BITS)]
    if cfg.companions:
        return [teacher, _companion(space, cfg.companions[step % len(cfg.companions)], rng)]
    picks = [space.extreme(True), space.extreme(False)] if cfg.sandwich else []
    return picks + [space.sample(rng) for _ in range(cfg.random_subnets)]


def refit_input_steps(net: Supernet) -> None:
    """Forget the steps of every range-initialised activation quantiser (the input image's): each
    bit-width starts again from its next batch's range (``LSQAct.range_init``: max|x| / Qp, or
    [min, max] with a zero point, ``LSQAct.zero_point``)."""
    for module in net.modules():
        if isinstance(module, LSQAct) and module.range_init:
            module.reset()


def _distills(cfg: TrainConfig) -> bool:
    return cfg.distill and (cfg.sandwich or bool(cfg.companions))


def _optimizer(net: Supernet, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW; weight decay on conv / linear weights only (the parameters with more
    than one dimension: batch-norm affines and LSQ steps have one or none)."""
    decay: list[torch.nn.Parameter] = []
    rest: list[torch.nn.Parameter] = []
    for param in net.parameters():
        (decay if param.dim() > 1 else rest).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def train_device(cfg: TrainConfig) -> torch.device:
    """The device a run trains on: CUDA when asked for or (``auto``) present, else the CPU."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device: expected a machine with CUDA for 'cuda'; none is available (use auto or cpu)")
    return torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
                        else "cpu")


def _configure(net: Supernet, genotype: Genotype, rng: random.Random) -> None:
    """Set the genotype's backbone and bits; every exit head gets one of its bit pairs."""
    net.configure(genotype)
    pairs = list(zip(genotype.exit_weight_bits, genotype.exit_act_bits))
    for head in net.heads.values():
        head.set_bits(*rng.choice(pairs))  # type: ignore[operator]


def head_weights(space: SearchSpace, net: Supernet, cfg: TrainConfig) -> dict[str, float]:
    """Loss weight of each supernet head from ``exit_weights`` (by exit label), normalised to sum 1."""
    label = getattr(space, "head_label", None)
    weights = {key: float(cfg.exit_weights.get(label(key) if label else key, 1.0)) for key in net.heads}
    total = sum(weights.values()) or 1.0
    return {k: v / total for k, v in weights.items()}


def _ddp_context() -> tuple[int, int]:
    """(rank, world size), initialising gloo when launched by torchrun with several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    if torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def params_checksum(net: torch.nn.Module) -> float:
    """Sum of every parameter (a cheap equality check across processes)."""
    with torch.no_grad():
        return float(sum(p.double().sum() for p in net.parameters()))


def _loss(outputs: dict[str, torch.Tensor], y: torch.Tensor, teacher: dict[str, torch.Tensor] | None,
          weights: dict[str, float], cfg: TrainConfig) -> torch.Tensor:
    """Weighted sum over heads of the cross-entropy on the labels; for a student (``teacher`` given), the
    KL divergence to the teacher's predictions mixed with ``distill_label_weight`` of that cross-entropy."""
    share = 1.0 if teacher is None else cfg.distill_label_weight
    total = torch.zeros((), device=y.device)
    for h, w in weights.items():
        logits = outputs[h].float()
        if share > 0.0:
            total = total + w * share * F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        if teacher is not None and share < 1.0:
            total = total + w * (1.0 - share) * F.kl_div(F.log_softmax(logits, 1), teacher[h], reduction="batchmean")
    return total


def train_step(model: torch.nn.Module, net: Supernet, subnets: list[Genotype], x: torch.Tensor, y: torch.Tensor,
               weights: dict[str, float], cfg: TrainConfig, rng: random.Random, *,
               autocast: contextlib.AbstractContextManager | None = None, world: int = 1
               ) -> tuple[torch.Tensor, float]:
    """Forward and backward of every subnet on one batch (gradients accumulated, no optimiser step).

    ``model`` is ``net`` or its DistributedDataParallel wrapper. With distillation the first subnet
    learns from the labels and the others from its detached predictions at every head. Returns the
    first subnet's final-exit logits and its loss.
    """
    teacher: dict[str, torch.Tensor] | None = None
    final, first_loss = None, 0.0
    for k, genotype in enumerate(subnets):
        _configure(net, genotype, rng)
        sync = k == len(subnets) - 1 or world == 1
        no_sync = contextlib.nullcontext() if sync else model.no_sync()  # type: ignore[operator]
        with no_sync, autocast or contextlib.nullcontext(), compiled_quantisers(cfg.compile_quantisers):
            outputs = model(x)
            loss = _loss(outputs, y, teacher, weights, cfg)
            (loss / len(subnets)).backward()
        if k == 0:
            final = outputs[max(outputs, key=HeadKey.parse)].detach()  # the deepest mount, deepest branch
            first_loss = float(loss.detach())
            if _distills(cfg) and len(subnets) > 1:
                teacher = {h: F.softmax(o.detach().float(), 1) for h, o in outputs.items()}
    assert final is not None
    return final, first_loss


def train_supernet(
    space: SearchSpace,
    splits: Splits,
    cfg: TrainConfig,
    checkpoint: str | Path,
    *,
    log_path: str | Path | None = None,
    progress: bool = True,
    checkpoint_s: float = 600.0,
) -> Supernet:
    """Train (or resume training) a supernet; checkpoint written atomically after every epoch and
    every ``checkpoint_s`` seconds (wall clock) inside an epoch."""
    from tqdm.auto import tqdm

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tune_cpu_allocator()
    rank, world = _ddp_context()
    progress = progress and rank == 0
    device = train_device(cfg)
    checkpoint = Path(checkpoint)
    torch.manual_seed(cfg.seed)
    net = space.build_supernet().to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = _optimizer(net, cfg)
    start_epoch, start_step, resumed_stats = 0, 0, (0.0, 0, 0, 0.0)
    if cfg.init_from and not checkpoint.is_file():  # a later stage: start from another run's weights
        start = load_checkpoint(cfg.init_from)
        if not same_space(start["space"], space.config, ignore=type(space.options).STAGE_OPTIONS):
            raise CheckpointError(f"{cfg.init_from}: space: expected {space.config} (train.init_from), "
                                  f"found {start['space']}")
        net.load_state_dict(start["state_dict"])
        if cfg.refit_input_steps:
            refit_input_steps(net)
    if checkpoint.is_file():
        ckpt = load_checkpoint(checkpoint)
        if not same_space(ckpt["space"], space.config):
            raise CheckpointError(f"{checkpoint}: space: expected {space.config}, found {ckpt['space']}")
        net.load_state_dict(ckpt["state_dict"])
        if "optimizer" in ckpt:
            optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, start_step = int(ckpt["epoch"]), int(ckpt.get("step", 0))
        resumed_stats = tuple(ckpt.get("epoch_stats", resumed_stats))
    model: torch.nn.Module = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, find_unused_parameters=True)
    weights = head_weights(space, net, cfg)
    global_batch = cfg.batch_size * world
    steps_per_epoch = math.ceil(len(splits.train) / global_batch)
    total, warmup = cfg.epochs * steps_per_epoch, max(1, int(cfg.warmup_epochs * steps_per_epoch))
    schedule = lr_schedule(optimizer, cfg.lr, total, warmup, start=start_epoch * steps_per_epoch + start_step)
    log = Path(log_path) if log_path else None

    def save(epoch: int, step: int, stats: tuple[float, int, int, float]) -> None:
        if rank == 0:
            atomic_save({"version": CHECKPOINT_VERSION, "state_dict": net.state_dict(),
                         "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step,
                         "epoch_stats": list(stats), "space": space.config, "train_config": asdict(cfg)}, checkpoint)

    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        first = start_step if epoch == start_epoch else 0
        bar = tqdm(total=steps_per_epoch, initial=first, desc=f"train epoch {epoch + 1}/{cfg.epochs}", unit="step",
                   disable=not progress, leave=False)
        loss_sum, correct, seen, done_s = resumed_stats if first else (0.0, 0, 0, 0.0)
        t0 = last_save = time.time()
        autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" and epoch < cfg.fp32_epochs \
            else contextlib.nullcontext()
        lr = optimizer.param_groups[0]["lr"]
        for step, (xg, yg) in enumerate(splits.train.batches(global_batch, shuffle=True, generator=gen)):
            if cfg.augment:
                xg = augment(xg, gen)  # drawn even for replayed steps: the generator stays in step
            if step < first:
                continue
            x = nhwc(xg[rank::world].to(device))  # NHWC strides even for one channel: the convolutions run NHWC
            y = yg[rank::world].to(device)
            rng = random.Random(f"{cfg.seed}-{epoch}-{step}")
            subnets = subnets_for_step(space, cfg, epoch, step, rng)
            optimizer.zero_grad(set_to_none=True)
            final, loss = train_step(model, net, subnets, x, y, weights, cfg, rng, autocast=autocast, world=world)
            correct += int((final.argmax(1) == y).sum())
            seen += len(y)
            loss_sum += loss * len(y)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss_sum / max(1, seen):.3f}", acc=f"{correct / max(1, seen):.3f}")
            if checkpoint_s and time.time() - last_save >= checkpoint_s and step + 1 < steps_per_epoch:
                save(epoch, step + 1, (loss_sum, correct, seen, done_s + time.time() - t0))
                last_save = time.time()
        bar.close()
        seconds = done_s + time.time() - t0
        phase = "float, largest only" if epoch < cfg.fp32_epochs else "quantised"
        record = {"epoch": epoch + 1, "phase": phase, "loss": loss_sum / max(1, seen),
                  "train_final_exit_acc": correct / max(1, seen), "seconds": seconds,
                  "lr": lr, "world_size": world, "device": device.type,
                  "threads": torch.get_num_threads(),
                  "subnets_per_step": len(subnets_for_step(space, cfg, epoch, 0, random.Random(0))),
                  "images_per_s": world * seen / max(seconds, 1e-9), "resumed_at_step": first}
        save(epoch + 1, 0, (0.0, 0, 0, 0.0))
        if rank == 0:
            if log is not None:
                with log.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
            if progress:
                print(f"  epoch {epoch + 1}/{cfg.epochs} ({phase}): loss {record['loss']:.3f}, largest-subnet "
                      f"final-exit train acc {record['train_final_exit_acc']:.3f} ({seconds:.0f} s)", flush=True)
        if world > 1:
            torch.distributed.barrier()
    if start_epoch >= cfg.epochs and not checkpoint.is_file() and rank == 0:
        atomic_save({"version": CHECKPOINT_VERSION, "state_dict": net.state_dict(), "epoch": 0, "space": space.config,
                     "train_config": asdict(cfg)}, checkpoint)
    if world > 1:
        for buffer in net.buffers():  # batch-norm statistics are per rank: take rank 0's, which it saved
            torch.distributed.broadcast(buffer, 0)
        sums = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
        torch.distributed.all_gather(sums, torch.tensor([params_checksum(net)], dtype=torch.float64))
        in_sync = all(float(s) == float(sums[0]) for s in sums)
        if rank == 0 and log is not None:
            with log.open("a") as fh:
                fh.write(json.dumps({"ranks": world, "ranks_in_sync": in_sync}) + "\n")
        if not in_sync:
            raise RuntimeError(f"ranks ended with different weights: checksums {[float(s) for s in sums]}")
    return net.to(device="cpu", memory_format=torch.contiguous_format).eval()
