"""What weight sharing costs: subnets of one QAT supernet against the largest trained alone.

Recipe: ``configs/fashion_mnist_supernet.yaml`` (the searchable reference space on Fashion-MNIST,
sandwich rule with in-place distillation). Then the largest subnet of that space alone, trained
for the same epochs with the same settings (no sandwich, one architecture at 8 bits).
Reported on the Fashion-MNIST test split: accuracy of the final exit and of every exit, for the
largest, the smallest and three random subnets, at INT8 and at W4A4 (all layers), with weights
inherited from the supernet and batch-norm statistics re-estimated on 2000 training images; and of
the largest trained alone, at INT8. Both trainings resume from their checkpoints if interrupted.

Usage: python benchmarks/fashion_mnist_supernet.py [--quick]
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _common import write_result  # noqa: E402

from nas import api  # noqa: E402
from nas.calibrate import exit_outputs, exit_stats  # noqa: E402
from nas.config import CONFIGS_DIR, load_config  # noqa: E402
from nas.objectives import candidate_network  # noqa: E402
from search_spaces import Genotype, create_space, total_macs  # noqa: E402

CONFIG = CONFIGS_DIR / "fashion_mnist_supernet.yaml"


def with_bits(g: Genotype, bits: int) -> Genotype:
    n, k = len(g.weight_bits), len(g.exit_weight_bits)
    return replace(g, weight_bits=(bits,) * n, act_bits=(bits,) * n, exit_weight_bits=(bits,) * k,
                   exit_act_bits=(bits,) * k)


def evaluate(supernet, genotype, splits, calibration) -> dict:  # noqa: ANN001
    net = candidate_network(supernet, genotype, calibration)
    stats = exit_stats(exit_outputs(net, splits.test, 500), 1.01)
    return {"final_exit_accuracy": stats.exit_accuracy_all[-1], "exit_accuracy": list(stats.exit_accuracy_all)}


def main() -> None:
    quick = "--quick" in sys.argv  # no training, separate run folders: checks the script end to end
    cfg = load_config(CONFIG, {"train.epochs": 0, "run_dir": "runs/fmnist_quick"} if quick else None)
    data = api.data_and_space(cfg)
    splits, space = data
    calibration = splits.train.images[: cfg.search.bn_recalibration_samples]
    t0 = time.time()
    supernet = api.train(cfg, data=data)
    supernet_s = time.time() - t0
    rng = random.Random(0)
    subnets = {"largest": space.extreme(True), "smallest": space.extreme(False)}
    subnets |= {f"random {i + 1}": space.sample(rng) for i in range(3)}
    rows = []
    for label, g in subnets.items():
        for bits in (8, 4):
            row = {"subnet": label, "bits": f"W{bits}A{bits}", "macs": total_macs(space.layer_graph(g)),
                   **evaluate(supernet, with_bits(g, bits), splits, calibration)}
            rows.append(row)
            print(row, flush=True)
    # the largest subnet alone: a space whose only member is that architecture at 8 bits
    choices = space.block_choices(space.extreme(True))
    alone_cfg = replace(cfg, run_dir=str(Path(cfg.run_dir).parent / "fashion_mnist_largest_alone"))
    alone_cfg.space = replace(cfg.space, options={**cfg.space.options, "kernel_choices": [max(k for k, _e, _s in choices)],
                                                  "expansion_choices": [max(e for _k, e, _s in choices)],
                                                  "skippable": False, "bits_choices": [8]})
    alone_cfg.train = replace(cfg.train, sandwich=False, random_subnets=1, distill=False)
    alone_space = create_space(alone_cfg.space.name, alone_cfg.space_options(splits.num_classes, splits.image_shape[0]))
    t0 = time.time()
    alone = api.train(alone_cfg, data=(splits, alone_space))
    alone_s = time.time() - t0
    g = alone_space.extreme(True)
    alone_row = {"subnet": "largest, trained alone", "bits": "W8A8", "macs": rows[0]["macs"],
                 **evaluate(alone, g, splits, calibration)}
    rows.append(alone_row)
    print(alone_row, flush=True)
    if quick:
        return
    write_result("fashion_mnist_supernet", {
        "config": str(CONFIG.relative_to(CONFIGS_DIR.parent)), "epochs": cfg.train.epochs,
        "train_images": len(splits.train), "test_images": len(splits.test),
        "supernet_training_s": supernet_s, "alone_training_s": alone_s, "rows": rows,
        "threads": torch.get_num_threads(),
    })


if __name__ == "__main__":
    main()
