"""What the input image's quantiser step costs: stage 8's steps (LSQ's initial rule, never moved far by
training) against steps fitted to the image's range, on the same weights, no training.

LSQ starts a step at 2 * mean|x| / sqrt(Qp). A Fashion-MNIST image, standardised, spans about
[-0.66, 2.36] with most pixels at the background, so the rule gave the stem's input a step 7x wider
than the image's range needs at 8 bits and 1.6x at 4 bits, and the step's gradient (scaled by
1 / sqrt(N * Qp)) left it there through 40 epochs. ``LSQAct.range_init`` starts it at max|x| / Qp
instead; ``train.refit_input_steps`` re-fits an older checkpoint's (recipe stage 9).

For the largest, the reference backbone and the smallest at W8A8 and W4A4: the final-exit test
accuracy with the steps as trained and with the image's steps re-fitted (max|x| / Qp over the first
128 training images, as training's first batch would), and the image's integer levels in use on the
test split under each step. The weights are the zoo supernet as stage 8 published it (``--commit``,
its file read from git and checked against that commit's zoo record); test split (10000 images unless
``--images``), batch norm re-estimated on 2000 training images per configuration, as in
``fashion_mnist_supernet.py``.

Usage: python benchmarks/input_steps.py [--commit COMMIT] [--images N]
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _common import write_result
from fashion_mnist_supernet import evaluate

from nas import api, zoo
from nas.data import Split
from nas.supernet.training import at_bits, refit_input_steps
from search_spaces import Supernet
from search_spaces.modules.lsq import LSQAct, qrange

ZOO_NAME = "fmnist_mbv2_w025"
STAGE8 = "a05e397"  # the commit that published stage 8 (its steps came from LSQ's rule)
CALIBRATION = 2000  # training images for the batch-norm re-estimate, as the supernet benchmark
FIRST_BATCH = 128  # training's batch size: the images a refit step is taken from
SUBNETS = ("largest", "reference", "smallest")


def stage_supernet(commit: str, folder: Path) -> tuple[Supernet, str]:
    """The zoo supernet as ``commit`` shipped it (hash checked against that commit's record)."""
    for suffix in (".json", ".pt"):
        blob = subprocess.run(["git", "show", f"{commit}:nas/zoo/{ZOO_NAME}{suffix}"], capture_output=True,
                              check=True, cwd=Path(__file__).resolve().parents[1]).stdout
        (folder / f"{ZOO_NAME}{suffix}").write_bytes(blob)
    return zoo.load_supernet(ZOO_NAME, zoo_dir=folder), zoo.entry(ZOO_NAME, zoo_dir=folder).sha256


def image_quantiser(supernet: Supernet) -> LSQAct:
    acts = [m for m in supernet.modules() if isinstance(m, LSQAct) and m.range_init]
    if len(acts) != 1:
        raise RuntimeError(f"expected one range-initialised (input image) quantiser, found {len(acts)}")
    return acts[0]


def refit(supernet: Supernet, images: torch.Tensor) -> None:
    """Re-fit the image's steps of every bit-width from ``images`` (``train.refit_input_steps``)."""
    act = image_quantiser(supernet)
    refit_input_steps(supernet)
    before = act.bits
    with torch.no_grad():
        for bits in (4, 8):
            act.bits = bits
            act(images)
    act.bits = before


def levels_in_use(step: float, bits: int, images: torch.Tensor) -> int:
    """Distinct integer levels of ``images`` under ``step`` (signed, as the stem's input)."""
    qn, qp = qrange(bits, True)
    return int(torch.unique(torch.clamp(torch.round(images / step), qn, qp)).numel())


def main() -> None:
    args = sys.argv[1:]
    commit = args[args.index("--commit") + 1] if "--commit" in args else STAGE8
    n_test = int(args[args.index("--images") + 1]) if "--images" in args else None
    cfg = zoo.config(ZOO_NAME)
    splits, space = api.data_and_space(cfg)
    calibration = splits.train.images[:CALIBRATION]
    test = splits.test if n_test is None else Split(splits.test.images[:n_test], splits.test.labels[:n_test])
    t0 = time.time()
    with tempfile.TemporaryDirectory() as folder:
        trained, sha = stage_supernet(commit, Path(folder))
    fitted = copy.deepcopy(trained)
    refit(fitted, splits.train.images[:FIRST_BATCH])
    steps = {name: {str(b): float(image_quantiser(net).steps[str(b)].detach()) for b in (4, 8)}
             for name, net in (("trained", trained), ("refit", fitted))}
    rows = []
    for subnet in SUBNETS:
        for bits in (8, 4):
            g = at_bits(zoo.check_genotype(space, subnet), bits)
            row = {"subnet": subnet, "bits": f"W{bits}A{bits}"}
            for name, net in (("trained", trained), ("refit", fitted)):
                row[name] = float(evaluate(net, g, test.images, test.labels, calibration)["final_exit_accuracy"])
            rows.append(row)
            print(f"{subnet} W{bits}A{bits}: as trained {row['trained']:.4f}, image steps re-fitted "
                  f"{row['refit']:.4f} ({100 * (row['refit'] - row['trained']):+.2f})", flush=True)
    image_range = [float(splits.train.images.min()), float(splits.train.images.max())]
    levels = {name: {str(b): levels_in_use(steps[name][str(b)], b, test.images) for b in (4, 8)} for name in steps}
    write_result("input_steps", {"zoo": ZOO_NAME, "weights_commit": commit, "weights_sha256": sha,
                                 "test_images": len(test), "bn_recalibration_samples": CALIBRATION,
                                 "image_range": image_range, "steps": steps, "levels_in_use": levels,
                                 "seconds": time.time() - t0, "rows": rows})


if __name__ == "__main__":
    main()
