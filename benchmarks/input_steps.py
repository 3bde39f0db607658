"""What the input image's quantiser costs, on the same weights, no training: its steps as trained
against steps fitted to the image's range, symmetric or with a zero point.

LSQ starts a step at 2 * mean|x| / sqrt(Qp). A Fashion-MNIST image, standardised, spans about
[-0.66, 2.36] with most pixels at the background, so the rule gave the stem's input a step 7x wider
than the image's range needs at 8 bits and 1.6x at 4 bits, and the step's gradient (scaled by
1 / sqrt(N * Qp)) left it there through 40 epochs (recipe stages 1-8). Variants (``--variants``):

- ``trained``: the image's steps as the checkpoint holds them, on symmetric signed levels;
- ``symmetric`` (recorded as ``refit`` before): re-fitted to max|x| / Qp over the first 128 training
  images, as training's first batch would (``LSQAct.range_init``, ``train.refit_input_steps``,
  recipe stage 9);
- ``zero_point``: asymmetric levels, step (max - min) / (2^bits - 1) and an integer zero point from
  the same images (``LSQAct.zero_point``, both spaces' stems now): all 2^bits levels span the image.

For the largest, the reference backbone and the smallest at W8A8 and W4A4: the final-exit test
accuracy of each variant, and the image's integer levels in use on the test split. The weights are the
zoo supernet as a commit shipped it (``--commit``, default stage 8's; its file read from git and
checked against that commit's zoo record); test split (10000 images unless ``--images``), batch norm
re-estimated on 2000 training images per configuration, as in ``fashion_mnist_supernet.py``. Writes
``benchmarks/results/<--out, default input_steps>.json``.

Usage: python benchmarks/input_steps.py [--commit COMMIT] [--images N] [--variants a,b,...] [--out NAME]
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
from search_spaces.modules.lsq import LSQAct

ZOO_NAME = "fmnist_mbv2_w025"
STAGE8 = "a05e397"  # the commit that published stage 8 (its steps came from LSQ's rule)
CALIBRATION = 2000  # training images for the batch-norm re-estimate, as the supernet benchmark
FIRST_BATCH = 128  # training's batch size: the images a refit step is taken from
SUBNETS = ("largest", "reference", "smallest")
VARIANTS = ("trained", "symmetric", "zero_point")


def stage_supernet(commit: str, folder: Path) -> tuple[Supernet, str]:
    """The zoo supernet as ``commit`` shipped it (hash checked against that commit's record) and the
    file's sha256."""
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


def variant(base: Supernet, name: str, images: torch.Tensor) -> Supernet:
    """A copy of ``base`` whose image quantiser is the variant ``name``: as loaded (``trained``; a
    checkpoint from before zero points loads on symmetric levels), or re-fitted from ``images``
    (``train.refit_input_steps``) with or without a zero point."""
    net = copy.deepcopy(base)
    if name == "trained":
        return net
    act = image_quantiser(net)
    act.zero_point = name == "zero_point"
    refit_input_steps(net)
    before = act.bits
    with torch.no_grad():
        for bits in (4, 8):
            act.bits = bits
            act(images)
    act.bits = before
    return net


def levels_in_use(act: LSQAct, bits: int, images: torch.Tensor) -> int:
    """Distinct integer levels of ``images`` under the quantiser's step and range at ``bits``."""
    qn, qp = act.qrange(bits)
    step = float(act.steps[str(bits)].detach())
    return int(torch.unique(torch.clamp(torch.round(images / step), qn, qp)).numel())


def main() -> None:
    args = sys.argv[1:]
    commit = args[args.index("--commit") + 1] if "--commit" in args else STAGE8
    n_test = int(args[args.index("--images") + 1]) if "--images" in args else None
    names = args[args.index("--variants") + 1].split(",") if "--variants" in args else list(VARIANTS)
    out = args[args.index("--out") + 1] if "--out" in args else "input_steps"
    if unknown := set(names) - set(VARIANTS):
        raise SystemExit(f"--variants: expected names from {list(VARIANTS)}, got {sorted(unknown)}")
    cfg = zoo.config(ZOO_NAME)
    splits, space = api.data_and_space(cfg)
    calibration = splits.train.images[:CALIBRATION]
    test = splits.test if n_test is None else Split(splits.test.images[:n_test], splits.test.labels[:n_test])
    t0 = time.time()
    with tempfile.TemporaryDirectory() as folder:
        base, sha = stage_supernet(commit, Path(folder))
    nets = {name: variant(base, name, splits.train.images[:FIRST_BATCH]) for name in names}
    acts = {name: image_quantiser(net) for name, net in nets.items()}
    steps = {name: {str(b): float(act.steps[str(b)].detach()) for b in (4, 8)} for name, act in acts.items()}
    ranges = {name: {str(b): list(act.qrange(b)) for b in (4, 8)} for name, act in acts.items()}
    rows = []
    for subnet in SUBNETS:
        for bits in (8, 4):
            g = at_bits(zoo.check_genotype(space, subnet), bits)
            row: dict = {"subnet": subnet, "bits": f"W{bits}A{bits}"}
            for name, net in nets.items():
                row[name] = float(evaluate(net, g, test.images, test.labels, calibration)["final_exit_accuracy"])
            rows.append(row)
            print(f"{subnet} W{bits}A{bits}: " + ", ".join(f"{n} {row[n]:.4f}" for n in names), flush=True)
    image_range = [float(splits.train.images.min()), float(splits.train.images.max())]
    levels = {name: {str(b): levels_in_use(act, b, test.images) for b in (4, 8)} for name, act in acts.items()}
    write_result(out, {"zoo": ZOO_NAME, "weights_commit": commit, "weights_sha256": sha, "variants": names,
                       "test_images": len(test), "bn_recalibration_samples": CALIBRATION,
                       "image_range": image_range, "steps": steps, "level_ranges": ranges,
                       "levels_in_use": levels, "seconds": time.time() - t0, "rows": rows})


if __name__ == "__main__":
    main()
