"""Training throughput: one QAT supernet step against the same network as a plain FP32 model.

Both train the largest subnet of the searchable reference space (kernels 3/5/7, expansions 3/4/6,
skippable blocks; the largest takes the widest choices) with every exit head, at batch 128,
channels-last, SGD, on 2 cores:

- QAT supernet: the elastic supernet configured to the largest genotype at W8A8 (LSQ fake
  quantisation, elastic slicing); and a full sandwich step (largest + smallest + 2 random subnets);
- plain FP32: the same architecture built from ``torch.nn`` layers (Conv2d, BatchNorm2d, ReLU6,
  Linear), no quantisation, no elasticity.

Each variant runs in its own process; peak memory is that process's maximum resident set size.
Usage: python benchmarks/training_throughput.py [width]
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result  # noqa: E402

BATCH, STEPS, WARMUP = 128, 8, 2


def space(width: float):  # noqa: ANN201
    import search_spaces as ss

    return ss.create_space("mobilenetv2_cifar", width_mult=width, kernel_choices=(3, 5, 7),
                           expansion_choices=(3, 4, 6), skippable=True, bits_choices=(4, 8))


def plain_model(width: float):  # noqa: ANN201
    """The largest subnet as a plain FP32 torch model computing every exit head."""
    import torch
    from torch import nn

    from search_spaces.mobilenetv2 import BLOCKS, POOL_OUT

    sp = space(width)
    choices = sp.block_choices(sp.extreme(True))
    layers = {p[0]: p for p in sp._plan(choices)}

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


def run(variant: str, width: float) -> dict:
    import torch
    from torch.nn import functional as F

    torch.manual_seed(0)
    sp = space(width)
    subnets = 1
    if variant == "plain":
        net = plain_model(width)
    else:
        net = sp.build_supernet()
        net.configure(sp.extreme(True))
        if variant == "sandwich":
            rng = random.Random(0)
            picks = [sp.extreme(True), sp.extreme(False), sp.sample(rng), sp.sample(rng)]
            subnets = len(picks)
    net = net.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(BATCH, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(10, (BATCH,))
    times = []
    for step in range(WARMUP + STEPS):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        for k in range(subnets):
            if variant == "sandwich":
                net.configure(picks[k])
            out = net(x)
            loss = sum(F.cross_entropy(o, y) for o in out.values()) / len(out) / subnets
            loss.backward()
        opt.step()
        if step >= WARMUP:
            times.append(time.perf_counter() - t0)
    step_s = sorted(times)[len(times) // 2]
    return {"variant": variant, "subnets_per_step": subnets, "step_s": step_s, "images_per_s": BATCH / step_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "params": sum(p.numel() for p in net.parameters())}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(run(sys.argv[2], float(sys.argv[3]))))
        return
    width = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    rows = []
    for variant in ("plain", "qat", "sandwich"):
        out = subprocess.run([sys.executable, __file__, "--child", variant, str(width)], capture_output=True,
                             text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    plain, qat = rows[0], rows[1]
    write_result("training_throughput", {"width_mult": width, "batch": BATCH, "rows": rows,
                                         "qat_slowdown": qat["step_s"] / plain["step_s"],
                                         "qat_memory_ratio": qat["peak_rss_mb"] / plain["peak_rss_mb"]})


if __name__ == "__main__":
    main()
