"""How closely the exported ONNX graph reproduces the PyTorch network, exit by exit.

The zoo supernet's networks (the reference backbone with every exit mounted, at W8A8 and W4A4, and
random mixed-precision subnets) are exported with :func:`nas.deploy.onnx.export_onnx` and run with
ONNX's reference evaluator on the first Fashion-MNIST test images. Per exit: the largest and mean
absolute logit difference and the share of images whose
predicted class agrees. Both sides compute the same formula in float32; where a convolution's sum,
accumulated in another order, lands on the other side of a rounding boundary of the next quantiser,
the value moves one quantisation step, and that can grow with depth.

Usage: python benchmarks/onnx_fidelity.py [--images N] [--random K]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks._common import write_result

ZOO_NAME = "fmnist_mbv2_w025"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--random", type=int, default=2, help="random mixed-precision subnets (default 2)")
    args = parser.parse_args(argv)

    from nas import api, zoo
    from nas.deploy.onnx import exit_agreement, export_onnx
    from nas.study.evaluator import candidate_network
    from nas.supernet.training import at_bits

    cfg = zoo.config(ZOO_NAME)
    splits, space = api.data_and_space(cfg)
    supernet = zoo.load_supernet(ZOO_NAME, space)
    every_exit = tuple(space.options.exit_points)
    reference = space.uniform(exits=every_exit)
    rng = random.Random(0)
    networks = {"reference W8A8": at_bits(reference, 8), "reference W4A4": at_bits(reference, 4),
                **{f"random {i + 1} (mixed bits)": space.sample(rng) for i in range(args.random)}}
    images = splits.test.images[: args.images]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, genotype in networks.items():
            start = time.perf_counter()
            net = candidate_network(supernet, genotype, splits.train.images[: cfg.search.bn_recalibration_samples])
            labels = space.exit_labels(genotype)
            path = export_onnx(net, Path(tmp) / "model.onnx", tuple(images.shape[1:]), {}, labels)
            rows = [asdict(r) for r in exit_agreement(net, path, images, labels)]
            worst = max(rows, key=lambda r: r["max_abs_diff"])
            print(f"{name}: {len(rows)} exits, worst exit {worst['exit']} max |diff| {worst['max_abs_diff']:.4f}, "
                  f"argmax agreement >= {min(r['argmax_agreement'] for r in rows):.4f} "
                  f"({time.perf_counter() - start:.0f} s)")
            results.append({"network": name, "genotype": genotype.to_dict(), "exits": rows})
    write_result("onnx_fidelity", {
        "zoo": ZOO_NAME, "test_images": len(images), "evaluator": "onnx.reference.ReferenceEvaluator",
        "networks": results,
        "summary": {"max_abs_diff": max(r["max_abs_diff"] for n in results for r in n["exits"]),
                    "mean_abs_diff": float(np.mean([r["mean_abs_diff"] for n in results for r in n["exits"]])),
                    "min_argmax_agreement": min(r["argmax_agreement"] for n in results for r in n["exits"])}})


if __name__ == "__main__":
    main()
