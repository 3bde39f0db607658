"""Where W4A4 loses its accuracy: the zoo supernet's largest and reference backbone at W4A4 with one group
of layers at a time raised to 8 bits.

Groups (backbone layer names of the space): the input image (the stem's input activation), the stem's
weights, then the weights and the input activations of every depthwise, expansion and projection
layer, and the exit branches (weights and inputs); then the whole stem, and the stem with the exit
branches (the first and last layers, which LSQ (Esser et al., 2020) keeps at 8 bits in its W4A4). For
each: the final-exit test accuracy with that group at W8/A8 and everything else at 4 bits, i.e. the
points the group costs inside W4A4; and with only the input image at 4 bits inside W8A8. Test split
(10000 images unless ``--images``), weights inherited from the zoo supernet, batch-norm statistics
re-estimated on 2000 training images for every configuration (as in ``fashion_mnist_supernet.py``).
Beside each accuracy, the energy-delay product of the static network (final exit only) in that
configuration on the zoo config's accelerator, layer by layer, precision-aware MAC energy: what
keeping the group at 8 bits costs.

Usage: python benchmarks/bit_sensitivity.py [--images N] [--subnets largest,reference]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from fashion_mnist_supernet import evaluate

from hwmodel import CostModel, load_system
from hwmodel.scheduling import ScheduleSettings
from nas import api, zoo
from nas.data import Split
from nas.supernet.training import at_bits
from search_spaces import Genotype, SearchSpace, Supernet

ZOO_NAME = "fmnist_mbv2_w025"
CALIBRATION = 2000  # training images for the batch-norm re-estimate, as the supernet benchmark
# group name -> (which backbone layers, which of their bits: "weight_bits" / "act_bits")
GROUPS: dict[str, tuple[Callable[[str], bool], str]] = {
    "input image (stem input)": (lambda n: n == "stem", "act_bits"),
    "stem weights": (lambda n: n == "stem", "weight_bits"),
    "depthwise weights": (lambda n: n.endswith(".dw"), "weight_bits"),
    "depthwise inputs": (lambda n: n.endswith(".dw"), "act_bits"),
    "expansion weights": (lambda n: n.endswith(".expand"), "weight_bits"),
    "expansion inputs": (lambda n: n.endswith(".expand"), "act_bits"),
    "projection weights": (lambda n: n.endswith(".project"), "weight_bits"),
    "projection inputs": (lambda n: n.endswith(".project"), "act_bits"),
}


def with_group(genotype: Genotype, names: list[str], group: str, bits: int) -> Genotype:
    """``genotype`` with the layers of ``group`` (weights or inputs, as the group says) at ``bits``."""
    pick, field = GROUPS[group]
    values = tuple(bits if pick(n) else b for n, b in zip(names, getattr(genotype, field), strict=True))
    return dataclasses.replace(genotype, **{field: values})


def with_exits(genotype: Genotype, bits: int) -> Genotype:
    """``genotype`` with every exit branch's weights and inputs at ``bits``."""
    n = len(genotype.exit_weight_bits)
    return dataclasses.replace(genotype, exit_weight_bits=(bits,) * n, exit_act_bits=(bits,) * n)


def accuracy(supernet: Supernet, genotype: Genotype, test: Split, calibration) -> float:
    """Final-exit test accuracy (fraction) with batch norm re-estimated for this configuration, as the
    supernet benchmark measures it."""
    return float(evaluate(supernet, genotype, test.images, test.labels, calibration)["final_exit_accuracy"])


def static_edp(model: CostModel, space: SearchSpace, genotype: Genotype) -> float:
    """EDP of ``genotype``'s static network (final exit only), layer by layer (J x cycles)."""
    graph = space.layer_graph(space.static_genotype(genotype))
    return model.evaluate(graph, ScheduleSettings(mode="layer_by_layer", tile_rows=None)).edp


def main() -> None:
    args = sys.argv[1:]
    n_test = int(args[args.index("--images") + 1]) if "--images" in args else None
    subnets = args[args.index("--subnets") + 1].split(",") if "--subnets" in args else ["largest", "reference"]
    cfg = zoo.config(ZOO_NAME)
    splits, space = api.data_and_space(cfg)
    supernet = zoo.load_supernet(ZOO_NAME, space)
    calibration = splits.train.images[:CALIBRATION]
    test = splits.test if n_test is None else Split(splits.test.images[:n_test], splits.test.labels[:n_test])
    names = space.backbone_layer_names()
    model = CostModel(load_system(cfg.cost.accelerator), workers=2)
    rows = []
    t0 = time.time()
    for subnet in subnets:
        g4 = at_bits(zoo.check_genotype(space, subnet), 4)
        g8 = at_bits(g4, 8)
        w8a8, w4a4 = accuracy(supernet, g8, test, calibration), accuracy(supernet, g4, test, calibration)
        print(f"{subnet}: W8A8 {w8a8:.4f}  W4A4 {w4a4:.4f}", flush=True)
        configs = {group: with_group(g4, names, group, 8) for group in GROUPS} | {"exit branches": with_exits(g4, 8)}
        configs["stem (weights and input)"] = with_group(configs["input image (stem input)"], names, "stem weights", 8)
        configs["stem and exit branches (LSQ's convention)"] = with_exits(configs["stem (weights and input)"], 8)
        groups, edp = {}, {name: static_edp(model, space, g) for name, g in configs.items()}
        edp4 = static_edp(model, space, g4)
        for name, g in configs.items():
            groups[name] = accuracy(supernet, g, test, calibration)
            print(f"  {name:26s} at 8 bits: {groups[name]:.4f} ({100 * (groups[name] - w4a4):+.2f}), "
                  f"EDP x{edp[name] / edp4:.3f}", flush=True)
        input4 = with_group(g8, names, "input image (stem input)", 4)
        rows.append({"subnet": subnet, "w8a8": w8a8, "w4a4": w4a4, "group_at_8": groups,
                     "w8a8_input_at_4": accuracy(supernet, input4, test, calibration),
                     "edp_j_cycles": {"w8a8": static_edp(model, space, g8), "w4a4": edp4,
                                      "w8a8_input_at_4": static_edp(model, space, input4), "group_at_8": edp}})
    write_result("bit_sensitivity", {"zoo": ZOO_NAME, "zoo_sha256": zoo.entry(ZOO_NAME).sha256,
                                     "accelerator": cfg.cost.accelerator, "schedule": "layer_by_layer",
                                     "test_images": len(test), "bn_recalibration_samples": CALIBRATION,
                                     "seconds": time.time() - t0, "rows": rows})


if __name__ == "__main__":
    main()
