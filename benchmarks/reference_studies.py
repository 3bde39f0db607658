"""The reference's quantization and mounting-point studies on Fashion-MNIST (issue 7, studies 1-2).

Networks: the reference backbone (MobileNetV2, the reference's kernels and expansions) taken from the
Fashion-MNIST supernet of ``configs/fashion_mnist_supernet.yaml`` with inherited weights, batch-norm
statistics re-estimated per network, depth-1 exit branches. The threshold of each network is chosen
on the validation split by rule (the lowest of the reference grid 0.70..0.95 within 1 point of the
final exit's accuracy); accuracy and exit ratios are measured on the test split; costs on
edge_tpu_quad.

1. Quantization: exits D, F, I + K at (backbone, classifier) bits FP32/FP32, 8/8, 8/4, 4/8, 4/4 (FP32:
   the QAT weights run unquantised), each with the MAC energy fixed (the reference's ZigZag setting)
   and with the precision-aware product model, under the layer-by-layer schedule (the reference's)
   and the layer-fused one: cumulative ET per exit stage, expected ET, and the static network's EDP.
2. Mounting points: every four-exit network (3 early exits among A..J, + K) at 8/8 bits,
   layer-by-layer: accuracy vs expected ET, ET per stage of the best five, and whether the ranking
   by expected EDP differs from the ranking by expected MACs (Kendall tau, pairs ordered
   differently).

Needs the trained supernet: run ``python benchmarks/fashion_mnist_supernet.py`` first (or pass
``--run-dir`` to a folder holding ``supernet.pt`` of that config). Writes
results/reference_studies.json; ``python benchmarks/render.py`` draws reference_quantization.png and
reference_mounting.png.
Usage: python benchmarks/reference_studies.py [--run-dir runs/fashion_mnist_supernet]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import trained_supernet, write_result

from hwmodel import CostModel, expected_cost, load_system
from hwmodel.precision import MacEnergyModel
from hwmodel.scheduling import ScheduleSettings
from nas import api
from nas.cli import parse_overrides
from nas.config import CONFIGS_DIR, load_config
from nas.study.evaluator import CandidateEvaluator, expected_macs
from nas.supernet.calibrate import exit_stats, rule_threshold
from search_spaces import stage_macs

GRID = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
PAIRS = ((32, 32), (8, 8), (8, 4), (4, 8), (4, 4))
SCHEDULES = {"layer_by_layer": ScheduleSettings(mode="layer_by_layer", tile_rows=None),
             "fused": ScheduleSettings(mode="fused", tile_rows=16)}


def kendall(a: list[float], b: list[float]) -> tuple[float, int]:
    """Kendall tau between two score lists, and the number of pairs they order differently."""
    concordant = discordant = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        s = (a[i] - a[j]) * (b[i] - b[j])
        concordant += s > 0
        discordant += s < 0
    n = concordant + discordant
    return ((concordant - discordant) / n if n else 1.0), discordant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="runs/fashion_mnist_supernet")
    ap.add_argument("--supernet", metavar="NAME", help="a zoo supernet (nas zoo) instead of <run-dir>/supernet.pt")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the supernet config, e.g. --set data.name=cifar10 --set data.root=PATH")
    ap.add_argument("--quick", action="store_true",
                    help="500 images, two bit pairs, five networks, no JSON: a smoke test")
    args = ap.parse_args()
    quick = {"data.limit_test": 500, "data.n_val": 500, "search.bn_recalibration_samples": 200} if args.quick else {}
    cfg = load_config(CONFIGS_DIR / "fashion_mnist_supernet.yaml",
                      {"run_dir": args.run_dir, **quick, **parse_overrides(args.set)})
    splits, space = api.data_and_space(cfg)
    supernet = trained_supernet(cfg, space, args.supernet)
    calibration = api.calibration_images(cfg, splits)
    spec = load_system(cfg.cost.accelerator)
    constant = replace(spec, compute_cores=tuple(replace(c, mac_energy=MacEnergyModel("constant"))
                                                 for c in spec.compute_cores))
    models = {"constant MAC energy": CostModel(constant, workers=2),
              "precision-aware MAC energy": CostModel(spec, workers=2)}
    val = CandidateEvaluator(space, supernet, splits.val, None, cfg.constraints,  # type: ignore[arg-type]
                             batch_size=cfg.search.eval_batch_size, calibration=calibration)
    test = CandidateEvaluator(space, supernet, splits.test, None, cfg.constraints,  # type: ignore[arg-type]
                              batch_size=cfg.search.eval_batch_size, calibration=calibration)

    def measure(genotype):
        threshold = rule_threshold(val.outputs(genotype), GRID, 0.01)
        g = replace(genotype, threshold=threshold)
        stats = exit_stats(test.outputs(g), threshold)
        static = exit_stats(test.outputs(space.static_genotype(g)), 1.0)
        return g, stats, static

    t0 = time.perf_counter()
    quant = []
    for pb, pc in PAIRS[:2] if args.quick else PAIRS:
        g, stats, static = measure(space.uniform(exits=(3, 5, 8), depth=1, bits=pb, classifier_bits=pc))
        row = {"bits": "FP32/FP32" if pb == 32 else f"{pb}/{pc}", "threshold": g.threshold,
               "test_accuracy": stats.accuracy, "static_test_accuracy": static.accuracy,
               "exit_ratios": list(stats.ratios), "exit_accuracy": list(stats.exit_accuracy), "costs": {}}
        for mname, cm in models.items():
            for sname, settings in SCHEDULES.items():
                net = cm.evaluate(space.layer_graph(g), settings)
                st = cm.evaluate(space.layer_graph(space.static_genotype(g)), settings)
                exp = expected_cost(net, st, stats.ratios)
                row["costs"][f"{mname}, {sname}"] = {
                    "et_per_exit_j_cycles": list(net.et), "cumulative_energy_j": list(net.cumulative_energy_j),
                    "cumulative_latency_cycles": list(net.cumulative_latency_cycles),
                    "expected_edp_j_cycles": exp.expected_edp, "static_edp_j_cycles": exp.static_edp,
                    "reduction_factor": exp.reduction_factor}
        quant.append(row)
        print(row["bits"], f"acc {stats.accuracy:.4f} (static {static.accuracy:.4f}) thr {g.threshold}",
              {k: round(v["reduction_factor"], 2) for k, v in row["costs"].items()}, flush=True)
    quant_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    cm = models["constant MAC energy"]
    mounting = []
    for exits in list(itertools.combinations(range(10), 3))[: 5 if args.quick else None]:
        g, stats, static = measure(space.uniform(exits=exits, depth=1, bits=8))
        graph = space.layer_graph(g)
        net = cm.evaluate(graph, SCHEDULES["layer_by_layer"])
        st = cm.evaluate(space.layer_graph(space.static_genotype(g)), SCHEDULES["layer_by_layer"])
        exp = expected_cost(net, st, stats.ratios)
        mounting.append({"exits": "".join(space.exit_labels(g)), "threshold": g.threshold,
                         "test_accuracy": stats.accuracy, "static_test_accuracy": static.accuracy,
                         "exit_ratios": list(stats.ratios), "et_per_exit_j_cycles": list(net.et),
                         "expected_edp_j_cycles": exp.expected_edp, "static_edp_j_cycles": exp.static_edp,
                         "reduction_factor": exp.reduction_factor,
                         "expected_macs": expected_macs(stats.ratios, stage_macs(graph)),
                         "final_exit_ratio": stats.ratios[-1], "exit_overhead": exp.full_path_edp / exp.static_edp - 1})
    mounting_s = time.perf_counter() - t0
    for m in models.values():
        m.close()
    tau, discordant = kendall([m["expected_edp_j_cycles"] for m in mounting], [m["expected_macs"] for m in mounting])
    best5 = sorted(mounting, key=lambda m: m["expected_edp_j_cycles"])[:5]
    print(f"{len(mounting)} four-exit networks; Kendall tau(EDP, MACs) = {tau:.3f}, {discordant} pairs ordered "
          f"differently; best five: {[b['exits'] for b in best5]}", flush=True)
    if args.quick:
        return
    write_result("reference_studies", {
        "config": "configs/fashion_mnist_supernet.yaml", "threshold_grid": list(GRID), "test_images": len(splits.test),
        "quantization": quant, "quantization_s": quant_s, "mounting": mounting, "mounting_s": mounting_s,
        "mounting_kendall_tau_edp_vs_macs": tau, "mounting_discordant_pairs": discordant,
        "mounting_pairs": len(mounting) * (len(mounting) - 1) // 2,
        "mounting_best5": [b["exits"] for b in best5],
    })


if __name__ == "__main__":
    main()
