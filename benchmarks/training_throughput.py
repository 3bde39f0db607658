"""Training throughput of the Fashion-MNIST supernet recipe, variant by variant, in one run.

Width 0.25, batch 128, 1x32x32 inputs (Fashion-MNIST padded), the searchable reference space
(kernels 3/5/7, expansions 3/4/6, skippable blocks, 4/8-bit), every exit head, SGD. Each variant
times ``nas.supernet.training.train_step`` (the trainer's own step) plus the optimiser step in its own process:

- ``plain_fp32``: the largest subnet as plain ``torch.nn`` layers, no quantisation (the yardstick);
- ``today``: the landed recipe (largest + smallest + 1 random subnet with distillation), PyTorch's
  fused learnable fake-quantisation kernels, default allocator, 1 thread (the landed config);
- the same step with, added one at a time: 2 threads, the tuned allocator, the in-place LSQ;
- the new recipe's two phases: ``fp32_largest`` (largest alone, float) and ``qat_companion``
  (largest INT8 + one companion, cycling smallest / largest W4A4 / random, with distillation), and
  the float phase under ``torch.compile`` (one fixed architecture there; first step = compilation);
- ``qat_companion_compiled_quantisers``: the quantised phase with ``train.compile_quantisers`` (the
  activation quantisers' kernels fused by ``torch.compile``), timed after a warm-up of one companion
  cycle (compilation happens there; ``first_step_s``);
- ``*_nchw`` / ``plain_fp32_nhwc``: the same step with the other input layout. The trainer gives its
  one-channel batches NHWC strides (``search_spaces.modules.folded.nhwc``); before, it asked for
  ``contiguous(memory_format=channels_last)``, which leaves a one-channel batch in NCHW strides, and
  every convolution ran NCHW ("today" rows and ``*_nchw``).

An epoch's time is steps x step time; the recipe's mean epoch weights its phases by their epochs in
``configs/fashion_mnist_supernet.yaml``. Usage: python benchmarks/training_throughput.py
"""

from __future__ import annotations

import json
import math
import random
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

ROOT = Path(__file__).resolve().parents[1]
BATCH, STEPS, WARMUP, TRAIN_IMAGES = 128, 6, 1, 55_000
CONFIG = ROOT / "configs" / "fashion_mnist_supernet.yaml"
# the whole recipe: stage 1 (CONFIG) and the later stages, each starting from the previous one's weights
STAGES = [CONFIG, *(ROOT / "configs" / f"fashion_mnist_supernet_stage{i}.yaml" for i in (2, 3, 4))]
class Setup(NamedTuple):
    """How one variant's step runs. ``nhwc``: the one-channel batch given NHWC strides, so that the
    convolutions run NHWC; False: ``contiguous(memory_format=channels_last)``, which leaves a one-channel
    batch NCHW, and with it the whole network."""

    step: str  # step kind
    lsq: str = "inplace"  # LSQ implementation
    allocator: bool = True  # the tuned allocator
    threads: int = 2
    compiled: bool = False  # torch.compile of the model
    compiled_quantisers: bool = False  # train.compile_quantisers
    nhwc: bool = True


VARIANTS = {
    "plain_fp32": Setup("plain", allocator=False, nhwc=False),
    "plain_fp32_nhwc": Setup("plain", allocator=False),
    "today": Setup("today", "fused", allocator=False, threads=1, nhwc=False),
    "today_2_threads": Setup("today", "fused", allocator=False, nhwc=False),
    "today_2_threads_allocator": Setup("today", "fused", nhwc=False),
    "today_2_threads_allocator_inplace_lsq": Setup("today", nhwc=False),
    "fp32_largest": Setup("fp32_largest"),
    "fp32_largest_nchw": Setup("fp32_largest", nhwc=False),
    "fp32_largest_compiled": Setup("fp32_largest", compiled=True),
    "qat_companion": Setup("qat_companion"),
    "qat_companion_nchw": Setup("qat_companion", nhwc=False),
    "qat_companion_compiled_quantisers": Setup("qat_companion", compiled_quantisers=True),
}


def fused_lsq(x, step, bits, signed, training=True):
    import torch

    from search_spaces.modules.lsq import qrange

    qn, qp = qrange(bits, signed)
    per = max(1, x.numel() // max(1, step.numel()))
    grad_factor = 1.0 / math.sqrt(per * qp) if training else 1.0
    if step.numel() == 1:
        return torch._fake_quantize_learnable_per_tensor_affine(x, step.reshape(1), torch.zeros(1), qn, qp,
                                                                grad_factor)
    return torch._fake_quantize_learnable_per_channel_affine(x, step.reshape(-1), torch.zeros(step.numel()), 0, qn,
                                                             qp, grad_factor)


def plain_model(sp):
    """The largest subnet as a plain FP32 torch model computing every exit head."""
    import torch
    from torch import nn

    from search_spaces.mobilenetv2 import BLOCKS, POOL_OUT

    layers = {p[0]: p for p in sp._plan(sp.block_choices(sp.extreme(True)))}

    def cba(name: str, relu: bool) -> nn.Sequential:
        _n, cin, cout, k, s, g, _hw, _r = layers[name]
        mods = [nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*mods, *([nn.ReLU6()] if relu else []))

    class Block(nn.Module):
        def __init__(self, i: int) -> None:
            super().__init__()
            t, _c, _k, _s, res = BLOCKS[i]
            self.res = res
            self.body = nn.Sequential(*([cba(f"b{i}.expand", True)] if t != 1 else []), cba(f"b{i}.dw", True),
                                      cba(f"b{i}.project", False))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.body(x) if self.res else self.body(x)

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = cba("stem", True)
            self.blocks = nn.ModuleList(Block(i) for i in range(len(BLOCKS)))
            outs = sp.block_outputs()
            heads = {}
            for m in (*sp.options.exit_points, sp.final_block):
                c, hw = outs[m]
                f = c * POOL_OUT * POOL_OUT
                for d in sp.options.branch_depths:
                    fc = [nn.Linear(f, 10)] if d == 1 else [nn.Linear(f, f // 2), nn.ReLU6(), nn.Linear(f // 2, 10)]
                    heads[f"{m}_{d}"] = nn.Sequential(nn.MaxPool2d(hw // POOL_OUT), nn.Flatten(), *fc)
            self.heads = nn.ModuleDict(heads)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            out, h = {}, self.stem(x)
            for i, block in enumerate(self.blocks):
                h = block(h)
                for key in self.heads:
                    if int(key.split("_")[0]) == i:
                        out[key] = self.heads[key](h)
            return out

    return Plain()


def run(variant: str) -> dict:
    kind, lsq_impl, allocator, threads, compiled, compiled_quantisers, as_nhwc = VARIANTS[variant]
    if allocator:
        from nas.runtime import tune_cpu_allocator

        tune_cpu_allocator()
    import torch
    from torch.nn import functional as F

    import nas
    from nas.config import TrainConfig
    from nas.supernet.training import head_weights, subnets_for_step, train_step
    from search_spaces import create_space
    from search_spaces.modules import lsq
    from search_spaces.modules.folded import nhwc

    if lsq_impl == "fused":
        lsq.lsq = fused_lsq
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = nas.load_config(CONFIG)
    sp = create_space(cfg.space.name, cfg.space_options(10, 1))
    recipe = replace(cfg.train, compile_quantisers=compiled_quantisers)
    train_cfg = {"today": TrainConfig(sandwich=True, random_subnets=1, distill=True),
                 "fp32_largest": recipe, "qat_companion": recipe}.get(kind)
    epoch = 0 if kind == "fp32_largest" else recipe.fp32_epochs
    net = plain_model(sp) if kind == "plain" else sp.build_supernet()
    net = net.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(BATCH, 1, 32, 32)
    x = nhwc(x) if as_nhwc else x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(10, (BATCH,))
    weights = head_weights(sp, net, train_cfg) if train_cfg else {}
    model = torch.compile(net) if compiled else net  # the float phase trains one fixed architecture
    times, subnets_per_step, first_step_s = [], 1, 0.0
    warmup = WARMUP + (len(recipe.companions) if compiled_quantisers else 0)  # compiling: one companion cycle
    for step in range(warmup + STEPS):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if kind == "plain":
            out = net(x)
            (sum(F.cross_entropy(o, y) for o in out.values()) / len(out)).backward()
        else:
            rng = random.Random(step)
            subnets = subnets_for_step(sp, train_cfg, epoch, step, rng)
            subnets_per_step = len(subnets)
            train_step(model, net, subnets, x, y, weights, train_cfg, rng)
        opt.step()
        if step >= warmup:
            times.append(time.perf_counter() - t0)
        elif step == 0:
            first_step_s = time.perf_counter() - t0  # includes compilation where compiled
    step_s = sum(times) / len(times)  # mean: the companion kinds differ in cost and cycle
    return {"variant": variant, "step": kind, "lsq": lsq_impl, "tuned_allocator": allocator, "threads": threads,
            "compiled": compiled, "compiled_quantisers": compiled_quantisers, "nhwc": as_nhwc,
            "first_step_s": first_step_s,
            "subnets_per_step": subnets_per_step,
            "step_s": step_s, "images_per_s": BATCH / step_s,
            "epoch_s": math.ceil(TRAIN_IMAGES / BATCH) * step_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def stage_time(path: Path, rows: dict[str, dict]) -> dict:
    """Training time (s) of one stage of the recipe from the measured phase step times."""
    import nas

    train = nas.load_config(path).train
    qat = "qat_companion_compiled_quantisers" if train.compile_quantisers else "qat_companion"
    return {"config": str(path.relative_to(ROOT)), "epochs": train.epochs, "fp32_epochs": train.fp32_epochs,
            "quantised_phase": qat, "total_s": train.fp32_epochs * rows["fp32_largest"]["epoch_s"]
            + (train.epochs - train.fp32_epochs) * rows[qat]["epoch_s"]}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(run(sys.argv[2])))
        return
    rows = {}
    for variant in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--child", variant], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        rows[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(rows[variant], flush=True)
    stages = [stage_time(path, rows) for path in STAGES]
    recipe = stages[0]  # stage 1, the one the landed recipe is compared with
    mean_epoch = recipe["total_s"] / recipe["epochs"]
    plain = rows["plain_fp32"]["images_per_s"]
    for row in rows.values():
        row["images_per_s_vs_plain_fp32"] = row["images_per_s"] / plain
    write_result("training_throughput", {
        "width_mult": 0.25, "batch": BATCH, "steps_timed": STEPS, "train_images": TRAIN_IMAGES,
        "rows": list(rows.values()),
        "recipe": {**recipe, "mean_epoch_s": mean_epoch},
        "stages": stages,
        "epoch_speedup_vs_today": rows["today"]["epoch_s"] / mean_epoch,
        "epoch_speedup_vs_today_2_threads": rows["today_2_threads"]["epoch_s"] / mean_epoch,
        "same_step_speedup_vs_today_2_threads": rows["today_2_threads"]["step_s"]
        / rows["today_2_threads_allocator_inplace_lsq"]["step_s"],
    })


if __name__ == "__main__":
    main()
