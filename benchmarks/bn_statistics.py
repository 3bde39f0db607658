"""Does a supernet's accuracy hold when its subnets' batch-norm statistics are re-estimated?

Every accuracy we report re-estimates each subnet's batch-norm statistics on training images
(``nas.supernet.calibrate.recalibrate_batchnorm``, 2000 images by default, layer by layer as eval mode sees
them) and then evaluates in eval mode. This benchmark scores the same subnets three ways on the
Fashion-MNIST test split (10000 images): statistics re-estimated on 2000 and on 10000 training images, and
batch statistics (each test batch of 500 normalised by its own mean and variance, as in training; nothing
is stored). When the re-estimated figures fall well under the batch-statistics one, the population
statistics no longer fit the weights.

``--variants`` re-estimates the reference's statistics the ways tried: layer by layer (now), in batch-norm
training mode with a cumulative average over batches of 250 (every figure before it; the layers then get the
statistics of inputs that eval mode never produces), in training mode in one batch of 2000, and layer by
layer on test images. ``--per-layer`` finds the layers to blame: the reference backbone at W8A8 on the first
2000 test images, re-estimated statistics everywhere but one batch-norm layer at a time, which uses batch
statistics.

Usage: python benchmarks/bn_statistics.py [--per-layer | --variants] [CHECKPOINT ...]
(CHECKPOINT: a file or zoo:NAME; default: the zoo supernet. Each row names its weights' sha256.)
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
from nas.data import Split, Splits
from nas.study.evaluator import candidate_network
from nas.supernet.calibrate import recalibrate_batchnorm
from nas.supernet.training import at_bits, load_supernet
from search_spaces import Genotype, SearchSpace, Supernet

DEFAULT = (f"zoo:{ZOO_NAME}",)
SUBNETS = ("largest", "reference", "smallest")
CALIBRATION = (2000, 10000)  # training images for re-estimated statistics
BATCH = 500  # test images per batch with batch statistics
LAYER_IMAGES = 2000  # test images for --per-layer (one evaluation per batch-norm layer)


def use_batch_statistics(bn: torch.nn.Module) -> None:
    """Make ``bn`` normalise each batch by its own statistics and keep its stored ones unchanged."""
    bn.train()
    bn.momentum = 0.0


@torch.no_grad()
def final_accuracy(net: torch.nn.Module, test: Split) -> float:
    """Final-exit accuracy over ``test`` in batches of ``BATCH``, in the modes the net's modules are in."""
    right = sum(int((net(x)[-1].argmax(1) == y).sum()) for x, y in test.batches(BATCH))
    return right / len(test)


def batch_norms(net: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The net's batch-norm layers by module name."""
    return {name: m for name, m in net.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}


def batch_statistics_accuracy(net: torch.nn.Module, test: Split) -> float:
    """Final-exit accuracy with every batch norm normalising each batch by its own statistics."""
    for bn in batch_norms(net).values():
        use_batch_statistics(bn)
    return final_accuracy(net, test)


def per_layer(supernet: Supernet, genotype: Genotype, test: Split, calibration: torch.Tensor) -> dict:
    """Re-estimated statistics everywhere, then one batch norm at a time on batch statistics: which layers'
    re-estimated statistics cost the accuracy (the gain when that layer alone uses the batch's)."""
    net = candidate_network(supernet, genotype, calibration)
    bns = batch_norms(net)
    out = {"reestimated": final_accuracy(net, test), "layers": []}
    for name, bn in bns.items():
        use_batch_statistics(bn)
        out["layers"].append({"layer": name, "accuracy": final_accuracy(net, test)})
        bn.eval()
    out["batch_statistics"] = batch_statistics_accuracy(net, test)
    return out


@torch.no_grad()
def training_mode_reestimate(net: torch.nn.Module, images: torch.Tensor, batch: int) -> None:
    """The re-estimation every figure used before the layer-by-layer one: every batch norm in training mode
    (each batch normalised by its own statistics), its running statistics the cumulative average over the
    batches of ``batch`` images."""
    for bn in batch_norms(net).values():
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    for start in range(0, len(images), batch):
        net(images[start : start + batch])
    net.eval()


def reestimation_variants(supernet: Supernet, genotype: Genotype, splits: Splits) -> list[dict]:
    """Final-exit test accuracy with the statistics re-estimated on 2000 images, four ways: layer by layer on
    training images (every figure now), in training mode on training images in batches of 250 (every figure
    before) and in one batch of 2000, and layer by layer on the test split's first 2000 images (a shift
    between training and test images would show here)."""
    n, out = CALIBRATION[0], []
    train, test = splits.train.images[:n], splits.test.images[:n]
    for label, images, batch, layered in (("training images, layer by layer (batches of 250)", train, 250, True),
                                          ("training images, training mode, batches of 250", train, 250, False),
                                          (f"training images, training mode, one batch of {n}", train, n, False),
                                          ("test images, layer by layer (batches of 250)", test, 250, True)):
        net = candidate_network(supernet, genotype, None)
        if layered:
            recalibrate_batchnorm(net, images, batch_size=batch)
        else:
            training_mode_reestimate(net, images, batch)
        out.append({"re_estimation": label, "accuracy": final_accuracy(net.eval(), splits.test)})
        print(out[-1], flush=True)
    return out


def weights_sha256(name: str) -> str:
    """The sha256 of a zoo supernet's file (``zoo:NAME``) or of a checkpoint file."""
    return zoo.entry(name.removeprefix("zoo:")).sha256 if name.startswith("zoo:") else zoo.file_sha256(Path(name))


def load(space: SearchSpace, name: str) -> Supernet:
    """A zoo supernet (``zoo:NAME``) or a checkpoint file."""
    if name.startswith("zoo:"):
        return zoo.load_supernet(name.removeprefix("zoo:"), space)
    return load_supernet(space, name)


def main() -> None:
    args = sys.argv[1:]
    layers, variants = "--per-layer" in args, "--variants" in args
    checkpoints = [a for a in args if not a.startswith("--")] or list(DEFAULT)
    torch.manual_seed(0)
    splits, space = api.data_and_space(load_config(CONFIG))
    archs = architectures(space)
    if variants:
        g = at_bits(archs["reference"], 8)
        rows = [{"checkpoint": name, "sha256": weights_sha256(name), "subnet": "reference", "bits": "W8A8",
                 "variants": reestimation_variants(load(space, name), g, splits)} for name in checkpoints]
        write_result("bn_statistics_variants", {"test_images": len(splits.test), "rows": rows})
        return
    if layers:
        test = Split(splits.test.images[:LAYER_IMAGES], splits.test.labels[:LAYER_IMAGES])
        g = at_bits(archs["reference"], 8)
        rows = [{"checkpoint": name, "sha256": weights_sha256(name), "subnet": "reference", "bits": "W8A8",
                 **per_layer(load(space, name), g, test, splits.train.images[:CALIBRATION[0]])} for name in checkpoints]
        write_result("bn_statistics_layers", {"test_images": LAYER_IMAGES, "calibration_images": CALIBRATION[0],
                                              "batch": BATCH, "rows": rows})
        return
    rows = []
    for name in checkpoints:
        supernet = load(space, name)
        for subnet in SUBNETS:
            g = at_bits(archs[subnet], 8)
            t0 = time.time()
            row = {"checkpoint": name, "sha256": weights_sha256(name), "subnet": subnet, "bits": "W8A8"}
            for n in CALIBRATION:
                row[f"reestimated_{n}"] = evaluate(supernet, g, splits.test.images, splits.test.labels,
                                                   splits.train.images[:n])["final_exit_accuracy"]
            row["batch_statistics"] = batch_statistics_accuracy(candidate_network(supernet, g, None), splits.test)
            row["seconds"] = time.time() - t0
            rows.append(row)
            print(row, flush=True)
    write_result("bn_statistics", {"test_images": len(splits.test), "calibration_images": list(CALIBRATION),
                                   "batch": BATCH, "rows": rows})


if __name__ == "__main__":
    main()
