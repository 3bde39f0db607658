"""Short fine-tunes of the zoo supernet, side by side: which change to the recipe moves the subnets.

Each variant starts from the zoo supernet ``fmnist_mbv2_w025`` (``train.init_from``), trains for a
fixed number of steps (``--images`` training images, one epoch, cosine from ``--lr``) with the stage-5
settings and the variant's overrides, then reports the test accuracy (10,000 images, W8A8, batch norm
re-estimated on 2000 training images) of the largest, the reference backbone and the smallest. The
variants run two at a time, one torch thread each, so they see the same machine; rows of the variants
and settings (``--images``, ``--lr``) not run this time are kept from earlier runs.

A probe, not a recipe: it says which lever is worth an hour of training (e.g. does a student learn
more from the labels than from the largest subnet's predictions?). The recorded rows
(``results/recipe_probe.json``) started from the stage-5 zoo file (commit 33e5c73); the zoo now holds
a later stage, so a rerun starts from there and its rows are not comparable with the recorded ones.

Usage: python benchmarks/recipe_probe.py [--images 38400] [--lr 0.01] [--variants NAME ...] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, write_result

ROOT = Path(__file__).resolve().parents[1]
ZOO = "fmnist_mbv2_w025"
# name -> (what it tests, overrides of the stage-5 config)
VARIANTS: dict[str, tuple[str, dict]] = {
    "none": ("no training: the zoo supernet as published", {"train.epochs": 0}),
    "ref_kd": ("the reference as the only companion, learning from the largest's predictions (today's rule)",
               {"train.companions": ["reference"]}),
    "ref_kd_labels": ("the same, half of the student's loss from the labels",
                      {"train.companions": ["reference"], "train.distill_label_weight": 0.5}),
    "ref_labels": ("the same, the student learning from the labels only",
                   {"train.companions": ["reference"], "train.distill": False}),
    "ref_alone": ("the reference alone (no largest step), labels",
                  {"train.subnet": "reference", "train.companions": [], "train.distill": False}),
    "ref_kd_labels_kbn": ("as ref_kd_labels, each depthwise kernel size with its own batch-norm "
                          "(space option kernel_batchnorm, started from the shared one)",
                          {"train.companions": ["reference"], "train.distill_label_weight": 0.5,
                           "space.options.kernel_batchnorm": True}),
    "smallest_kd_labels": ("the smallest (at its lowest bits) as the only companion, half of its loss from the labels",
                           {"train.companions": ["smallest"], "train.distill_label_weight": 0.5}),
    "teacher_ref": ("the reference backbone as the teacher (labels), the largest, smallest and a random subnet "
                    "as its companions, half of their loss from the labels",
                    {"train.teacher": "reference", "train.companions": ["largest", "smallest", "random"],
                     "train.distill_label_weight": 0.5}),
    "mix_kd_labels": ("stage 5's companions (smallest, reference, W4A4 largest, random), half labels",
                      {"train.distill_label_weight": 0.5}),
}
SUBNETS = ("largest", "reference", "smallest")


def run_variant(name: str, images: int, lr: float, run_dir: Path) -> dict:
    """Train and evaluate one variant in this process (one thread)."""
    import torch

    from nas import api, zoo
    from nas.config import CONFIGS_DIR, load_config
    from nas.data import Split
    from nas.study.evaluator import candidate_network
    from nas.supernet.calibrate import exit_outputs, exit_stats
    from nas.supernet.training import at_bits

    torch.set_num_threads(1)
    n_val = 5000
    overrides = {"run_dir": str(run_dir / f"{name}_lr{lr:g}_n{images}"),
                 "train.init_from": str(zoo.ZOO_DIR / f"{ZOO}.pt"),
                 "train.epochs": 1, "train.lr": lr, "train.warmup_epochs": 0.05, "train.threads": 1,
                 "data.limit_train": images + n_val, "data.n_val": n_val, **VARIANTS[name][1]}
    cfg = load_config(CONFIGS_DIR / "fashion_mnist_supernet_stage5.yaml", overrides)
    t0 = time.time()
    if cfg.train.epochs:
        net = api.train(cfg, progress=False)
    else:
        net = zoo.load_supernet(ZOO)
    train_s = time.time() - t0
    full = load_config(CONFIGS_DIR / "fashion_mnist_supernet_stage5.yaml")
    splits, space = api.data_and_space(full)  # the full training split for calibration, the test split
    calibration = splits.train.images[:2000]
    accuracy = {}
    for subnet in SUBNETS:
        genotype = at_bits(zoo.check_genotype(space, subnet), 8)
        cand = candidate_network(net, genotype, calibration)
        stats = exit_stats(exit_outputs(cand, Split(splits.test.images, splits.test.labels), 500), 1.01)
        accuracy[subnet] = round(100 * float(stats.exit_accuracy_all[-1]), 2)
    return {"variant": name, "tests": VARIANTS[name][0], "overrides": VARIANTS[name][1], "train_s": round(train_s, 1),
            "steps": 0 if not cfg.train.epochs else -(-images // cfg.train.batch_size), "test_accuracy_w8a8": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=38400)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--run-dir", default="runs/recipe_probe")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant, print its JSON row
    args = parser.parse_args()
    run_dir = Path(args.run_dir)
    if args.one:
        print("ROW " + json.dumps(run_variant(args.one, args.images, args.lr, run_dir)), flush=True)
        return
    pending, running, rows = list(args.variants), [], []
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            cmd = [sys.executable, __file__, "--one", name, "--images", str(args.images), "--lr", str(args.lr),
                   "--run-dir", str(run_dir)]
            running.append((name, subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)))
        time.sleep(5)
        for name, proc in list(running):
            if proc.poll() is None:
                continue
            running.remove((name, proc))
            out = proc.stdout.read() if proc.stdout else ""
            row = next((json.loads(line[4:]) for line in out.splitlines() if line.startswith("ROW ")), None)
            rows.append(row or {"variant": name, "failed": f"exit status {proc.returncode}"})
            print(json.dumps(rows[-1]), flush=True)
    for row in rows:
        row |= {"lr": args.lr, "images": args.images}
    previous = RESULTS / "recipe_probe.json"  # rows of other variants or settings are kept
    if previous.is_file():
        ran = {(r["variant"], args.lr, args.images) for r in rows}
        rows += [r for r in json.loads(previous.read_text())["rows"]
                 if (r["variant"], r.get("lr"), r.get("images")) not in ran and r["variant"] in VARIANTS
                 and "failed" not in r]
    order = {n: i for i, n in enumerate(VARIANTS)}
    rows.sort(key=lambda r: (r["lr"], r["images"], order[r["variant"]]))
    write_result("recipe_probe", {"zoo": ZOO, "rows": rows})


if __name__ == "__main__":
    main()
