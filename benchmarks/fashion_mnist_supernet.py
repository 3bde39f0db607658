"""The Fashion-MNIST supernet: accuracy of its subnets, what weight sharing costs, and the zoo entry.

Recipe: ``configs/fashion_mnist_supernet.yaml`` (the searchable reference space, progressive: the
largest alone in float, then quantised with companions and in-place distillation). Then three
architectures of that space trained ALONE with the same recipe (``train.subnet``): the largest, the
reference backbone and the smallest. Everything on the Fashion-MNIST test split (10,000 images),
weights inherited from the supernet, batch-norm statistics re-estimated on 2000 training images:

- the final-exit accuracy of the largest, the reference backbone, the smallest and three random
  subnets at W8A8 and W4A4, and of the three trained alone (W8A8) beside their supernet twins;
- the accuracy of every mounting point A..J and of K for 1- and 2-FC branches of the reference
  backbone at W8A8 (table and plot).

Each training resumes from its checkpoint (``runs/fashion_mnist_*``), so the script can be run in
several sittings; ``--only supernet`` or ``--only alone_largest`` (etc.) trains and evaluates one part,
a plain run trains what is missing and writes the JSON. A stage tried and not adopted (``TRIED``)
runs only with ``--only`` and is reported against the stage it started from, never published. ``--publish``
then writes the zoo entry (``nas/zoo/fmnist_mbv2_w025.*``) with this accuracy table. ``--quick``:
no training, a smoke run.

``--report``: no training or evaluation, the JSON from the parts measured so far.

Usage: python benchmarks/fashion_mnist_supernet.py [--only PART] [--publish] [--report] [--quick]
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import figures
import torch
from _common import RESULTS, write_result

from nas import api, zoo
from nas.config import CONFIGS_DIR, RunConfig, load_config
from nas.study.evaluator import candidate_network
from nas.supernet.calibrate import exit_outputs, exit_stats
from nas.supernet.training import at_bits
from search_spaces import Genotype, SearchSpace, Supernet, total_macs
from search_spaces.mobilenetv2 import EXIT_POINT_LABELS, FINAL_LABEL

CONFIG = CONFIGS_DIR / "fashion_mnist_supernet.yaml"
STAGES = {"supernet": CONFIG, "supernet_stage2": CONFIGS_DIR / "fashion_mnist_supernet_stage2.yaml",
          "supernet_stage3": CONFIGS_DIR / "fashion_mnist_supernet_stage3.yaml",
          "supernet_stage4": CONFIGS_DIR / "fashion_mnist_supernet_stage4.yaml",
          "supernet_stage5": CONFIGS_DIR / "fashion_mnist_supernet_stage5.yaml",
          "supernet_stage6": CONFIGS_DIR / "fashion_mnist_supernet_stage6.yaml",
          "supernet_stage7": CONFIGS_DIR / "fashion_mnist_supernet_stage7.yaml",
          "supernet_stage8": CONFIGS_DIR / "fashion_mnist_supernet_stage8.yaml",
          "supernet_stage9": CONFIGS_DIR / "fashion_mnist_supernet_stage9.yaml",
          # stage 10 was tried from stage 9 (TRIED); stage 11 starts from stage 9 as well
          "supernet_stage11": CONFIGS_DIR / "fashion_mnist_supernet_stage11.yaml",
          "supernet_stage12": CONFIGS_DIR / "fashion_mnist_supernet_stage12.yaml"}
# stages tried on top of the recipe and not adopted (trained and evaluated like a stage, reported against
# the stage they started from, never published): part -> config
TRIED = {"supernet_stage10": CONFIGS_DIR / "fashion_mnist_supernet_stage10.yaml",
         "supernet_stage13": CONFIGS_DIR / "fashion_mnist_supernet_stage13.yaml",
         "supernet_stage14": CONFIGS_DIR / "fashion_mnist_supernet_stage14.yaml"}
SUPERNETS = {**STAGES, **TRIED}  # every supernet training: part -> config
ZOO_NAME = "fmnist_mbv2_w025"
ALONE = ("largest", "reference", "smallest")
CHECK_IMAGES = 1000  # the zoo test reproduces the reference backbone's accuracy on this test slice
# how a part's batch-norm statistics were re-estimated (nas.supernet.calibrate.recalibrate_batchnorm); parts
# evaluated before it became layer by layer lack the key and were re-estimated the older way
BN_REESTIMATION = "layer by layer"
OLD_BN_REESTIMATION = "training mode, batches of 250"


def architectures(space: SearchSpace) -> dict[str, Genotype]:
    rng = random.Random(0)
    out = {name: zoo.check_genotype(space, name) for name in ("largest", "reference", "smallest")}
    return out | {f"random {i + 1}": space.sample(rng) for i in range(3)}


def evaluate(supernet: Supernet, genotype: Genotype, images, labels, calibration) -> dict:
    from nas.data import Split

    net = candidate_network(supernet, genotype, calibration)
    stats = exit_stats(exit_outputs(net, Split(images, labels), 500), 1.01)
    return {"final_exit_accuracy": stats.exit_accuracy_all[-1], "exit_accuracy": list(stats.exit_accuracy_all)}


def part_config(cfg: RunConfig, part: str) -> RunConfig:
    if part in SUPERNETS:
        path = SUPERNETS[part]
        return cfg if part == "supernet" else load_config(path, {"run_dir": str(Path(cfg.run_dir).parent / Path(
            load_config(path).run_dir).name)} if "fmnist_quick" in cfg.run_dir else None)
    subnet = part.removeprefix("alone_")
    return replace(cfg, run_dir=str(Path(cfg.run_dir).parent / f"fashion_mnist_{subnet}_alone"),
                   train=replace(cfg.train, subnet=subnet, companions=(), distill=False))


def train_log(cfg: RunConfig) -> list[dict]:
    path = api.paths(cfg).train_log
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def main() -> None:
    args = sys.argv[1:]
    quick = "--quick" in args
    only = args[args.index("--only") + 1] if "--only" in args else None
    cfg = load_config(CONFIG, {"train.epochs": 0, "train.fp32_epochs": 0, "run_dir": "runs/fmnist_quick",
                               "data.limit_test": 500, "search.bn_recalibration_samples": 250}
                      if quick else None)
    splits, space = data = api.data_and_space(cfg)
    calibration = splits.train.images[: cfg.search.bn_recalibration_samples]
    test = (splits.test.images, splits.test.labels)
    archs = architectures(space)
    parts = [*STAGES, *(f"alone_{a}" for a in ALONE)]
    results_path = RESULTS / "fashion_mnist_supernet_parts.json"  # per-part rows, kept between sittings
    done = json.loads(results_path.read_text()) if results_path.is_file() and not quick else {}
    if only is not None and only not in [*parts, *TRIED]:
        raise SystemExit(f"--only: expected one of {[*parts, *TRIED]}, got {only!r}")
    for part in [] if "--report" in args else parts if only is None else [only]:
        pcfg = part_config(cfg, part)
        t0 = time.time()
        net = api.train(pcfg, data=data)
        rows = []
        if part in SUPERNETS:
            for label, g in archs.items():
                for bits in (8, 4):
                    rows.append({"subnet": label, "bits": f"W{bits}A{bits}", "macs": total_macs(space.layer_graph(g)),
                                 **evaluate(net, at_bits(g, bits), *test, calibration)})
                    print(rows[-1]["subnet"], rows[-1]["bits"], rows[-1]["final_exit_accuracy"], flush=True)
            ref = archs["reference"]
            for depth in () if part in TRIED else (1, 2):  # a tried stage reports its subnets only
                g = replace(ref, branch_depths=(depth,) * len(ref.branch_depths))
                rows.append({"subnet": "reference", "bits": "W8A8", "branch_depth": depth,
                             "exit_labels": [*EXIT_POINT_LABELS, FINAL_LABEL],
                             **evaluate(net, at_bits(g, 8), *test, calibration)})
            if part not in TRIED:
                check = {"subnet": "reference", "bits": "W8A8", "test_images": CHECK_IMAGES,
                         "bn_recalibration_samples": len(calibration)}
                rows.append({"check": {**check, "accuracy": zoo.measure_check(net, space, splits, check)}})
        else:
            g = archs[part.removeprefix("alone_")]
            rows.append({"subnet": f"{part.removeprefix('alone_')}, trained alone", "bits": "W8A8",
                         "macs": total_macs(space.layer_graph(g)), **evaluate(net, at_bits(g, 8), *test, calibration)})
            print(rows[-1]["subnet"], rows[-1]["final_exit_accuracy"], flush=True)
        # a part re-scored from its weights alone (no log in its run directory) keeps the log it was trained with
        log = train_log(pcfg) or done.get(part, {}).get("train_log", [])
        done[part] = {"rows": rows, "eval_s": time.time() - t0, "train_log": log,
                      "bn_reestimation": BN_REESTIMATION,
                      "checkpoint_epoch": int(torch.load(api.paths(pcfg).checkpoint, weights_only=True)["epoch"])}
        if not quick:
            results_path.write_text(json.dumps(done, indent=1) + "\n")
    if quick:
        return
    final = last_stage(done)
    if "--publish" in args and final:
        publish(part_config(cfg, final), done, final)
    if final:  # the trained-alone comparison fills in as its parts finish
        write_report(cfg, done, len(splits.train), len(splits.test))


def last_stage(done: dict) -> str | None:
    """The last stage of the supernet recipe that has finished (the one published and reported)."""
    return next((p for p in reversed(STAGES) if p in done), None)


def subnet_rows(rows: list[dict]) -> list[dict]:
    """A supernet part's rows of subnet accuracy (without its zoo check and per-exit rows)."""
    return [r for r in rows if "check" not in r and "branch_depth" not in r]


def publish(cfg: RunConfig, done: dict, final: str) -> None:
    part = done[final]
    table = subnet_rows(part["rows"])
    check = next(r["check"] for r in part["rows"] if "check" in r)
    log = [{**r, "stage": p} for p in STAGES if p in done for r in done[p]["train_log"]]
    stage_configs = ", ".join(str(STAGES[p].relative_to(CONFIGS_DIR.parent)) for p in STAGES if p in done)
    record = zoo.publish(ZOO_NAME, api.paths(cfg).checkpoint, cfg, check=check, accuracy=table,
                         description="MobileNetV2 (CIFAR, width 0.25) searchable reference space, QAT 4/8-bit, "
                                     f"trained on Fashion-MNIST ({stage_configs})",
                         training={"train_seconds": sum(r.get("seconds", 0.0) for r in log), "log": log})
    print(f"published zoo entry {record.name}: {record.bytes / 1e6:.1f} MB, sha256 {record.sha256}")


def write_report(cfg: RunConfig, done: dict, n_train: int, n_test: int) -> None:
    final = done[last_stage(done) or "supernet"]
    sup = {(r["subnet"], r["bits"]): r for r in final["rows"] if "subnet" in r and "branch_depth" not in r}
    per_exit = [r for r in final["rows"] if "branch_depth" in r]
    sharing = []
    for arch in (a for a in ALONE if f"alone_{a}" in done):
        alone = done[f"alone_{arch}"]["rows"][0]
        shared = sup[(arch, "W8A8")]
        sharing.append({"architecture": arch, "supernet": shared["final_exit_accuracy"],
                        "alone": alone["final_exit_accuracy"],
                        "cost_points": 100 * (alone["final_exit_accuracy"] - shared["final_exit_accuracy"])})
    seconds = {p: sum(r.get("seconds", 0.0) for r in d["train_log"]) for p, d in done.items() if p not in TRIED}
    stages = [p for p in STAGES if p in done]
    write_result("fashion_mnist_supernet", {
        "config": ", ".join(str(STAGES[p].relative_to(CONFIGS_DIR.parent)) for p in stages),
        "epochs": sum(part_config(cfg, p).train.epochs for p in stages),
        "fp32_epochs": sum(part_config(cfg, p).train.fp32_epochs for p in stages), "train_images": n_train,
        "test_images": n_test, "alone_pending": [a for a in ALONE if f"alone_{a}" not in done],
        "training_s": seconds,
        "rows": subnet_rows(final["rows"]) + [d["rows"][0] for p, d in done.items() if p not in SUPERNETS],
        "stages": {p: subnet_rows(done[p]["rows"]) for p in STAGES if p in done},
        "per_exit": per_exit, "weight_sharing": sharing, "per_exit_plot": figures.PER_EXIT_PLOT,
        "bn_reestimation": {p: d.get("bn_reestimation", OLD_BN_REESTIMATION) for p, d in done.items()},
        "train_logs": {p: d["train_log"] for p, d in done.items() if p not in TRIED},
        "tried": {p: {"config": str(TRIED[p].relative_to(CONFIGS_DIR.parent)), "train_log": done[p]["train_log"],
                      "base": base_stage(cfg, p), "rows": subnet_rows(done[p]["rows"])}
                  for p in TRIED if p in done}})


def base_stage(cfg: RunConfig, part: str) -> str | None:
    """The supernet part (a recipe stage or a tried one) whose weights ``part`` started from (its
    ``train.init_from``), if any."""
    init = part_config(cfg, part).train.init_from
    return next((p for p in SUPERNETS if init and Path(part_config(cfg, p).run_dir) == Path(init).parent), None)


if __name__ == "__main__":
    main()
