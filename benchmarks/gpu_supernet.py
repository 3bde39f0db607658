"""Supernets trained on a lent GPU machine (CUDA, the training code path of the CPU) and what weight sharing costs.

Two widths of the searchable reference space (``configs/fashion_mnist_supernet.yaml``): the full-width
(1.0) supernet and the width-0.25 one of the zoo, each with the three architectures of the
weight-sharing comparison (largest, reference backbone, smallest) trained ALONE for the same epochs:
eight trainings at once on one GPU, two CPU threads each. The epochs are sized to the time the machine
is lent: a probe times each training's steps with all eight running, then each width gets the epochs
its supernet finishes in what is left of ``--deadline-s`` after the probe and an evaluation margin
(the same epochs for its three trained alone). Recipe per
width: the largest alone in float (bfloat16 autocast) for half the epochs, then quantised with one
companion per step and in-place distillation (stage 5's companions), batch 256, cosine from lr 0.1.
Accuracy on the Fashion-MNIST test split (10,000 images), weights inherited, batch-norm re-estimated
on 2000 training images, as ``benchmarks/fashion_mnist_supernet.py`` measures it.

The GPU machine has no optuna or ZigZag: this imports only the training, data and calibration code.

On the GPU machine:  python3 benchmarks/gpu_supernet.py --out DIR --data FASHION_MNIST_DIR [--deadline-s 540]
Here, afterwards:    python benchmarks/gpu_supernet.py --ingest DIR   (writes results/gpu_supernet.json)
``--quick``: the whole orchestration on the CPU, tiny (two trainings, a few steps), for a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nas.config import CONFIGS_DIR, RunConfig, load_config  # noqa: E402
from nas.data import Splits, load_dataset  # noqa: E402
from nas.supernet.calibrate import ExitOutputs, exit_stats, recalibrate_batchnorm  # noqa: E402
from nas.supernet.training import (  # noqa: E402
    at_bits,
    head_weights,
    subnets_for_step,
    train_device,
    train_step,
    train_supernet,
)
from search_spaces import Genotype, SearchSpace, Supernet, create_space, total_macs  # noqa: E402
from search_spaces.mobilenetv2 import EXIT_POINT_LABELS, FINAL_LABEL  # noqa: E402

CONFIG = CONFIGS_DIR / "fashion_mnist_supernet.yaml"
WIDTHS = {"w100": 1.0, "w025": 0.25}
ALONE = ("largest", "reference", "smallest")
PARTS = [f"{w}_{kind}" for w in WIDTHS for kind in ("supernet", *(f"alone_{a}" for a in ALONE))]
FP32_SHARE = 0.5  # of the epochs: the largest alone in float before quantisation
COMPANIONS = ["smallest", "reference", "largest_low_bits", "smallest", "reference", "random"]
CALIBRATION = 2000  # training images for batch-norm re-estimation
MAX_EPOCHS = 60
SAFETY = 0.85  # of the training budget the probed step times may fill (new subnet shapes, checkpoint writes)


def part_config(part: str, data_root: str, epochs: int, quick: bool) -> RunConfig:
    """The run configuration of one training (``w025_supernet``, ``w100_alone_reference`` ...)."""
    width, kind = part.split("_", 1)
    fp32 = int(round(FP32_SHARE * epochs))
    overrides: dict[str, Any] = {
        "space.options.width_mult": WIDTHS[width], "data.root": data_root, "train.epochs": epochs,
        "train.fp32_epochs": fp32, "train.companions": COMPANIONS, "train.batch_size": 256, "train.lr": 0.1,
        "train.warmup_epochs": 0.3, "train.threads": 2, "train.compile_quantisers": False,
        "train.device": "cpu" if quick else "cuda"}
    if kind != "supernet":
        overrides |= {"train.subnet": kind.removeprefix("alone_"), "train.companions": [], "train.distill": False}
    if quick:
        overrides |= {"data.limit_train": 5300, "data.limit_test": 200, "train.batch_size": 64}
    return load_config(CONFIG, overrides)


def architectures(space: SearchSpace) -> dict[str, Genotype]:
    """The architectures each supernet is measured on (as ``benchmarks/fashion_mnist_supernet.py``)."""
    rng = random.Random(0)
    fixed = {"largest": space.extreme(True), "reference": space.uniform(exits=space.exit_points),
             "smallest": space.extreme(False)}
    return fixed | {f"random {i + 1}": space.sample(rng) for i in range(3)}


@torch.no_grad()
def evaluate(supernet: Supernet, genotype: Genotype, splits: Splits, device: torch.device) -> dict[str, Any]:
    """Final-exit and per-exit test accuracy of ``genotype`` (extracted, batch-norm re-estimated)."""
    net = supernet.eval().extract(genotype).to(device)
    recalibrate_batchnorm(net, splits.train.images[:CALIBRATION].to(device))
    net.eval()
    chunks = [net(x.to(device)) for x, _ in splits.test.batches(1000)]
    logits = [torch.cat([c[i] for c in chunks]).float().cpu() for i in range(len(chunks[0]))]
    stats = exit_stats(ExitOutputs(torch.stack([lg.argmax(1) for lg in logits]), logits, splits.test.labels), 1.01)
    return {"final_exit_accuracy": stats.exit_accuracy_all[-1], "exit_accuracy": list(stats.exit_accuracy_all)}


def probe(space: SearchSpace, splits: Splits, cfg: RunConfig, steps: int) -> dict[str, float]:
    """Seconds per training step of the float phase and of the quantised phase (after 3 warm-up steps)."""
    torch.set_num_threads(cfg.train.threads or 2)
    device = train_device(cfg.train)
    net = space.build_supernet().to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    weights = head_weights(space, net, cfg.train)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    x = splits.train.images[: cfg.train.batch_size].to(device).contiguous(memory_format=torch.channels_last)
    y = splits.train.labels[: cfg.train.batch_size].to(device)
    out = {}
    for phase, epoch in (("float", 0), ("quantised", cfg.train.fp32_epochs)):
        autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" and phase == "float" else None
        for step in range(3 + steps):
            if step == 3:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            rng = random.Random(step)
            subnets = subnets_for_step(space, cfg.train, epoch, step, rng)
            optimizer.zero_grad(set_to_none=True)
            train_step(net, net, subnets, x, y, weights, cfg.train, rng, autocast=autocast)
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out[phase] = (time.perf_counter() - t0) / steps
    return out


def worker(args: argparse.Namespace) -> None:
    """One training (or its probe) in its own process; writes ``<out>/parts/<part>.json``."""
    cfg = part_config(args.part, args.data, args.epochs, args.quick)
    splits = load_dataset(cfg.data, str(CONFIG))
    channels, size, _ = splits.image_shape
    space = create_space(cfg.space.name, cfg.space_options(splits.num_classes, channels, size))
    parts = Path(args.work) / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.phase == "probe":
        record: dict[str, Any] = {"part": args.part, "step_s": probe(space, splits, cfg, args.probe_steps),
                                  "steps_per_epoch": len(splits.train) // cfg.train.batch_size}
        (parts / f"{args.part}.probe.json").write_text(json.dumps(record))
        return
    run = Path(args.work) / args.part
    run.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    net = train_supernet(space, splits, cfg.train, run / "supernet.pt", log_path=run / "train_log.jsonl",
                         progress=False, checkpoint_s=0)
    train_s = time.time() - t0
    device = train_device(cfg.train)
    try:  # the evaluation on the training device; on the CPU (2000 test images) if that fails
        evaluate(net, at_bits(space.extreme(False), 8), splits, device)
    except Exception as exc:  # noqa: BLE001 - any failure: report it, measure on the CPU
        print(f"{args.part}: evaluation on {device} failed ({exc}); on the CPU, 2000 test images", flush=True)
        device = torch.device("cpu")
        splits = replace(splits, test=splits.test.head(2000))
    archs = architectures(space)
    rows = []
    kind = args.part.split("_", 1)[1]
    if kind == "supernet":
        for label, g in archs.items():
            for bits in (8, 4):
                rows.append({"subnet": label, "bits": f"W{bits}A{bits}", "macs": total_macs(space.layer_graph(g)),
                             **evaluate(net, at_bits(g, bits), splits, device)})
        ref = archs["reference"]
        for depth in (1, 2):
            g = replace(ref, branch_depths=(depth,) * len(ref.branch_depths))
            rows.append({"subnet": "reference", "bits": "W8A8", "branch_depth": depth,
                         "exit_labels": [*EXIT_POINT_LABELS, FINAL_LABEL],
                         **evaluate(net, at_bits(g, 8), splits, device)})
    else:
        arch = kind.removeprefix("alone_")
        g = archs[arch]
        rows.append({"subnet": f"{arch}, trained alone", "bits": "W8A8", "macs": total_macs(space.layer_graph(g)),
                     **evaluate(net, at_bits(g, 8), splits, device)})
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    record = {"part": args.part, "width_mult": cfg.space.options["width_mult"], "epochs": cfg.train.epochs,
              "fp32_epochs": cfg.train.fp32_epochs, "train_s": train_s, "eval_s": time.time() - t0 - train_s,
              "train_config": asdict(cfg.train), "rows": rows, "train_log": log}
    tmp = parts / f"{args.part}.json.tmp"
    tmp.write_text(json.dumps(record, default=list))
    os.replace(tmp, parts / f"{args.part}.json")
    if kind == "supernet" and args.part.startswith("w025"):  # small enough to bring back: weights only
        ckpt = torch.load(run / "supernet.pt", map_location="cpu", weights_only=True)
        ckpt.pop("optimizer", None)
        torch.save(ckpt, Path(args.out) / f"{args.part}.pt")


def launch(args: argparse.Namespace, parts: list[str], phase: str, epochs: dict[str, int], log) -> dict[str, Any]:
    """Start one worker process per part; returns {part: Popen}."""
    procs = {}
    for part in parts:
        cmd = [sys.executable, __file__, "--worker", "--part", part, "--phase", phase, "--out", args.out,
               "--work", args.work, "--data", args.data, "--epochs", str(epochs.get(part, 2)),
               "--probe-steps", str(args.probe_steps)]
        procs[part] = subprocess.Popen(cmd + (["--quick"] if args.quick else []), stdout=log, stderr=subprocess.STDOUT)
    return procs


def wait(procs: dict[str, Any], until: float) -> dict[str, int | None]:
    """Wait for every process until ``until`` (time.time()); kill the rest. {part: return code, None if killed}."""
    while time.time() < until and any(p.poll() is None for p in procs.values()):
        time.sleep(1.0)
    codes = {}
    for part, p in procs.items():
        if p.poll() is None:
            p.kill()
            p.wait()
            codes[part] = None
        else:
            codes[part] = p.returncode
    return codes


def orchestrate(args: argparse.Namespace) -> None:
    start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = ["w025_supernet", "w025_alone_reference"] if args.quick else PARTS
    raw: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "deadline_s": args.deadline_s,
                           "argv": ["python3", "benchmarks/gpu_supernet.py", *sys.argv[1:]],
                           "machine": {"python": platform.python_version(), "torch": torch.__version__,
                                       "cpu_count": os.cpu_count(), "platform": platform.platform(),
                                       "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
                           "parts": {}, "probe": {}, "exit_codes": {}}

    def save() -> None:
        (out / "gpu_supernet_raw.json").write_text(json.dumps(raw, indent=1, default=list) + "\n")

    with (out / "workers.log").open("w") as log:
        codes = wait(launch(args, parts, "probe", {}, log), start + args.probe_limit_s)
        probe_end = time.time()
        raw["exit_codes"]["probe"] = codes
        for part in parts:
            path = Path(args.work) / "parts" / f"{part}.probe.json"
            if path.is_file():
                raw["probe"][part] = json.loads(path.read_text())
        # each width's epochs: what its supernet finishes in the training budget (alones are faster)
        budget = SAFETY * (args.deadline_s - (probe_end - start) - args.eval_margin_s)
        epochs: dict[str, int] = {}
        for width in WIDTHS:
            p = raw["probe"].get(f"{width}_supernet")
            if p is None:
                continue
            step = p["step_s"]
            epoch_s = p["steps_per_epoch"] * (FP32_SHARE * step["float"] + (1 - FP32_SHARE) * step["quantised"])
            e = max(2, min(MAX_EPOCHS, int(budget / epoch_s)))
            epochs |= {part: e for part in parts if part.startswith(width)}
            raw.setdefault("epoch_s_estimate", {})[width] = epoch_s
        raw["epochs"], raw["train_budget_s"] = epochs, budget
        save()
        print(f"probe done in {probe_end - start:.0f} s: {json.dumps(raw['probe'])}; epochs {epochs}", flush=True)
        codes = wait(launch(args, [p for p in parts if p in epochs], "train", epochs, log), start + args.deadline_s)
        raw["exit_codes"]["train"] = codes
    for part in parts:
        path = Path(args.work) / "parts" / f"{part}.json"
        if path.is_file():
            raw["parts"][part] = json.loads(path.read_text())
    raw["wall_s"] = time.time() - start
    save()
    for part, record in raw["parts"].items():
        for row in record["rows"]:
            if "branch_depth" not in row:
                print(part, row["subnet"], row["bits"], f"{row['final_exit_accuracy']:.4f}", flush=True)
    print(f"done in {raw['wall_s']:.0f} s; exit codes {raw['exit_codes']}", flush=True)


def ingest(folder: Path, device_command: str | None) -> None:
    """results/gpu_supernet.json from the raw JSON the GPU machine wrote (the weight-sharing table added)."""
    from _common import write_result

    raw = json.loads((folder / "gpu_supernet_raw.json").read_text())
    sharing = []
    for width in WIDTHS:
        sup = raw["parts"].get(f"{width}_supernet")
        for arch in ALONE:
            alone = raw["parts"].get(f"{width}_alone_{arch}")
            if sup is None or alone is None:
                continue
            shared = next(r for r in sup["rows"]
                          if r["subnet"] == arch and r["bits"] == "W8A8" and "branch_depth" not in r)
            a = alone["rows"][0]["final_exit_accuracy"]
            sharing.append({"width_mult": WIDTHS[width], "architecture": arch, "epochs": sup["epochs"],
                            "supernet": shared["final_exit_accuracy"], "alone": a,
                            "cost_points": 100 * (a - shared["final_exit_accuracy"])})
    command = device_command or " ".join(raw.get("argv", ["python3", "benchmarks/gpu_supernet.py", "..."]))
    write_result("gpu_supernet", {"device_machine": raw["machine"], "device_command": command,
                                  "weight_sharing": sharing, **{k: v for k, v in raw.items() if k != "machine"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu_supernet")
    parser.add_argument("--work", default="/tmp/gpu_supernet", help="checkpoints and per-training records")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--deadline-s", type=float, default=540.0, help="all of it, probe and evaluation included")
    parser.add_argument("--probe-limit-s", type=float, default=120.0)
    parser.add_argument("--eval-margin-s", type=float, default=90.0)
    parser.add_argument("--probe-steps", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ingest", type=Path)
    parser.add_argument("--device-command", help="with --ingest: the command as run there, if the raw JSON lacks it")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--part")
    parser.add_argument("--phase", choices=["probe", "train"])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if args.ingest:
        ingest(args.ingest, args.device_command)
    elif args.worker:
        worker(args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
