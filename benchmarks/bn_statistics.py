"""Does a supernet's accuracy hold when its subnets' batch-norm statistics are re-estimated?

Every accuracy we report re-estimates each subnet's batch-norm statistics on training images
(``nas.supernet.calibrate.recalibrate_batchnorm``, 2000 images by default) and then evaluates in eval
mode. This benchmark scores the same subnets three ways on the Fashion-MNIST test split (10000 images):
statistics re-estimated on 2000 and on 10000 training images, and batch statistics (each test batch of
500 normalised by its own mean and variance, as in training; nothing is stored). When the re-estimated
figures fall well under the batch-statistics one, the population statistics no longer fit the weights:
the supernet is sound, its re-estimated statistics are not.

Usage: python benchmarks/bn_statistics.py [CHECKPOINT ...]   (default: the zoo supernet and the tried stage 12)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # fashion_mnist_supernet imports its neighbours bare

import torch

from benchmarks._common import write_result
from benchmarks.fashion_mnist_supernet import CONFIG, ZOO_NAME, architectures, evaluate
from nas import api, zoo
from nas.config import load_config
from nas.data import Split
from nas.study.evaluator import candidate_network
from nas.supernet.training import at_bits, load_supernet
from search_spaces import Genotype, SearchSpace, Supernet

DEFAULT = (f"zoo:{ZOO_NAME}", "benchmarks/checkpoints/fashion_mnist_supernet_stage12/supernet.pt")  # tried stage 12
SUBNETS = ("largest", "reference", "smallest")
CALIBRATION = (2000, 10000)  # training images for re-estimated statistics
BATCH = 500  # test images per batch with batch statistics


@torch.no_grad()
def batch_statistics_accuracy(supernet: Supernet, genotype: Genotype, test: Split) -> float:
    """Final-exit accuracy with every batch norm normalising each batch by its own statistics."""
    net = candidate_network(supernet, genotype, None)
    for bn in net.modules():
        if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
            bn.train()
            bn.momentum = 0.0  # normalise with the batch's statistics, keep the stored ones unchanged
    right = 0
    for x, y in test.batches(BATCH):
        right += int((net(x)[-1].argmax(1) == y).sum())
    return right / len(test)


def load(space: SearchSpace, name: str) -> Supernet:
    """A zoo supernet (``zoo:NAME``) or a checkpoint file."""
    if name.startswith("zoo:"):
        return zoo.load_supernet(name.removeprefix("zoo:"), space)
    return load_supernet(space, name)


def main() -> None:
    checkpoints = sys.argv[1:] or list(DEFAULT)
    torch.manual_seed(0)
    splits, space = api.data_and_space(load_config(CONFIG))
    archs = architectures(space)
    rows = []
    for name in checkpoints:
        supernet = load(space, name)
        for subnet in SUBNETS:
            g = at_bits(archs[subnet], 8)
            t0 = time.time()
            row = {"checkpoint": name, "subnet": subnet, "bits": "W8A8"}
            for n in CALIBRATION:
                row[f"reestimated_{n}"] = evaluate(supernet, g, splits.test.images, splits.test.labels,
                                                   splits.train.images[:n])["final_exit_accuracy"]
            row["batch_statistics"] = batch_statistics_accuracy(supernet, g, splits.test)
            row["seconds"] = time.time() - t0
            rows.append(row)
            print(row, flush=True)
    write_result("bn_statistics", {"test_images": len(splits.test), "calibration_images": list(CALIBRATION),
                                   "batch": BATCH, "rows": rows})


if __name__ == "__main__":
    main()
