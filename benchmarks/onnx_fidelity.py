"""How closely the exported ONNX graph reproduces the PyTorch network, exit by exit.

The zoo supernet's networks (the reference backbone with every exit mounted, at W8A8 and W4A4, and
random mixed-precision subnets) are exported with :func:`nas.onnx_export.export_onnx` and run with
ONNX's reference evaluator on the first Fashion-MNIST test images. Per exit: the largest and mean
absolute logit difference, the share of logits that are bit-identical and the share of images whose
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import write_result  # noqa: E402

ZOO_NAME = "fmnist_mbv2_w025"
CHUNK = 100  # images per ONNX evaluator call


def compare(net: torch.nn.Module, images: torch.Tensor, labels: list[str], folder: Path) -> list[dict]:
    """Per-exit agreement of ``net`` and its ONNX export on ``images``."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    from nas.onnx_export import export_onnx

    path = export_onnx(net, folder / "model.onnx", tuple(images.shape[1:]), {}, labels)
    evaluator = ReferenceEvaluator(onnx.load(str(path)))
    # in chunks: the reference evaluator's convolutions take gigabytes for a whole batch of 1000
    chunks = [evaluator.run(None, {"input": images[i: i + CHUNK].numpy()}) for i in range(0, len(images), CHUNK)]
    got = [np.concatenate(parts) for parts in zip(*chunks)]
    with torch.no_grad():
        want = [w.numpy() for w in net(images)]
    rows = []
    for label, g, w in zip(labels, got, want):
        diff = np.abs(g - w)
        rows.append({"exit": label, "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                     "max_abs_logit": float(np.abs(w).max()), "identical_logits": float((diff == 0).mean()),
                     "argmax_agreement": float((g.argmax(1) == w.argmax(1)).mean())})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--random", type=int, default=2, help="random mixed-precision subnets (default 2)")
    args = parser.parse_args(argv)

    from nas import api, zoo
    from nas.objectives import candidate_network
    from nas.training import at_bits

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
            rows = compare(net, images, space.exit_labels(genotype), Path(tmp))
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
