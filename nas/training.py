"""Supernet training with quantisation-aware training over randomly sampled genotypes.

Every step samples a genotype (its per-layer bits drive the backbone's fake quantisers; every exit
head gets one of its bit pairs) and minimises the mean cross-entropy over *all* exit heads (every
mounting point, every branch depth): joint training of all exits. Sampling, shuffling and
augmentation are seeded per (seed, epoch, step), so a run resumed from its last checkpoint replays
exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from nas.config import TrainConfig
from nas.data import Splits, augment
from search_spaces import SearchSpace, Supernet

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded (names the file and what was expected)."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path``: never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
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
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise CheckpointError(f"{path}: expected a torch checkpoint readable with weights_only=True ({exc})") from None
    for key in ("version", "state_dict", "space", "epoch"):
        if not isinstance(ckpt, dict) or key not in ckpt:
            raise CheckpointError(f"{path}: {key}: expected a key of a supernet checkpoint")
    if ckpt["version"] != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: version: expected {CHECKPOINT_VERSION}, got {ckpt['version']}")
    return ckpt


def load_supernet(space: SearchSpace, path: str | Path) -> Supernet:
    """A supernet with the weights of a checkpoint (space must match the one it was trained for)."""
    ckpt = load_checkpoint(path)
    if ckpt["space"] != space.config:
        raise CheckpointError(f"{path}: space: expected {space.config}, the checkpoint was trained for {ckpt['space']}")
    net = space.build_supernet()
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


def _lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))


def _apply_random_genotype(space: SearchSpace, net: Supernet, rng: random.Random) -> None:
    g = space.sample(rng)
    net.apply_bits(g.weight_bits, g.act_bits)
    pairs = list(zip(g.exit_weight_bits, g.exit_act_bits))
    for head in net.heads.values():
        head.set_bits(*rng.choice(pairs))


def train_supernet(
    space: SearchSpace,
    splits: Splits,
    cfg: TrainConfig,
    checkpoint: str | Path,
    *,
    log_path: str | Path | None = None,
    progress: bool = True,
) -> Supernet:
    """Train (or resume training) a supernet; checkpoint written atomically after every epoch."""
    from tqdm.auto import tqdm

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    checkpoint = Path(checkpoint)
    torch.manual_seed(cfg.seed)
    net = space.build_supernet().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                nesterov=True)
    start_epoch = 0
    if checkpoint.is_file():
        ckpt = load_checkpoint(checkpoint)
        if ckpt["space"] != space.config:
            raise CheckpointError(f"{checkpoint}: space: expected {space.config}, found {ckpt['space']}")
        net.load_state_dict(ckpt["state_dict"])
        if "optimizer" in ckpt:
            optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch = int(ckpt["epoch"])
    steps_per_epoch = math.ceil(len(splits.train) / cfg.batch_size)
    total, warmup = cfg.epochs * steps_per_epoch, max(1, int(cfg.warmup_epochs * steps_per_epoch))
    log = Path(log_path) if log_path else None
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        bar = tqdm(total=steps_per_epoch, desc=f"train epoch {epoch + 1}/{cfg.epochs}", unit="step",
                   disable=not progress, leave=False)
        loss_sum, correct, seen, t0 = 0.0, 0, 0, time.time()
        for step, (x, y) in enumerate(splits.train.batches(cfg.batch_size, shuffle=True, generator=gen)):
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(global_step, total, warmup, cfg.lr)
            if cfg.augment:
                x = augment(x, gen)
            x = x.contiguous(memory_format=torch.channels_last)
            _apply_random_genotype(space, net, random.Random(f"{cfg.seed}-{epoch}-{step}"))
            outputs = net(x)
            loss = sum(F.cross_entropy(o, y, label_smoothing=cfg.label_smoothing) for o in outputs.values())
            loss = loss / len(outputs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            final = outputs[max(outputs, key=lambda k: (int(k.split("_")[0]), k))]
            loss_sum += float(loss.detach()) * len(y)
            correct += int((final.argmax(1) == y).sum())
            seen += len(y)
            bar.update()
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", final_acc=f"{correct / seen:.3f}")
        bar.close()
        record = {"epoch": epoch + 1, "loss": loss_sum / max(1, seen), "train_final_exit_acc": correct / max(1, seen),
                  "seconds": time.time() - t0, "lr": optimizer.param_groups[0]["lr"]}
        atomic_save({"version": CHECKPOINT_VERSION, "state_dict": net.state_dict(), "optimizer": optimizer.state_dict(),
                     "epoch": epoch + 1, "space": space.config, "train_config": asdict(cfg)}, checkpoint)
        if log is not None:
            with log.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
        if progress:
            print(f"  epoch {epoch + 1}/{cfg.epochs}: loss {record['loss']:.3f}, final-exit train acc "
                  f"{record['train_final_exit_acc']:.3f} ({record['seconds']:.0f} s)", flush=True)
    if start_epoch >= cfg.epochs and not checkpoint.is_file():
        atomic_save({"version": CHECKPOINT_VERSION, "state_dict": net.state_dict(), "epoch": 0, "space": space.config,
                     "train_config": asdict(cfg)}, checkpoint)
    return net.to(memory_format=torch.contiguous_format).eval()
