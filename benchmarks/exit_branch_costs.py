"""What the exit branches cost on the reference system: the per-stage table of issue 16.

The full-width reference backbone with exits D, F, I + K, INT8, scheduled layer by layer on
edge_tpu_quad (the reference's setting) through :meth:`CostModel.evaluate`. Per exit stage: the
backbone part and the exit branch (max-pooling + FC), each with energy and latency; per branch
layer: operator, core, MACs, latency, array utilisation (operations / (busy cycles x the core's
operations per cycle), for the compute cores and the ZigZag-costed pooling core alike) and ZigZag's
spatial utilisation. ``gap``: the data the final FC must move through the 64 bit/cycle off-chip port
(its weights alone; every MAC fetching both operands, no reuse at all) against what 213 k cycles
would move, and the whole final stage (backbone blocks after exit I plus the branch) beside 213 k.
Beside them, the reference's figures as it reports them:
exit classifiers under 1 % array utilisation, the final pooling + FC stage about 213 k cycles.

Usage: python benchmarks/exit_branch_costs.py
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

import search_spaces as ss
from hwmodel import CostModel, load_system
from hwmodel.scheduling import ScheduleSettings, platform_of
from hwmodel.system import SIMPLE_OPS
from hwmodel.zigzag_core import core_description

EXITS = (3, 5, 8)  # D, F, I; K is always there
REFERENCE = {"exit_classifier_utilisation_below": 0.01, "final_pool_fc_cycles": 213_000,
             "source": "arXiv 2512.04705 as summarised in shared/notes/reference-system.md"}


def main() -> None:
    logging.disable(logging.WARNING)
    system = load_system("edge_tpu_quad")
    space = ss.create_space("mobilenetv2_cifar")
    graph = space.layer_graph(space.uniform(exits=EXITS, bits=8))
    cores = [(c.name, c.core) for c in system.compute_cores]
    cores += [(name, simple.core) for name, simple in map(system.simple_core, SIMPLE_OPS)]
    peak = {name: math.prod(core_description(system.resolve(path))["operational_array"]["sizes"])
            for name, path in cores if path}  # operations per cycle of each ZigZag-described core
    specs = {s.name: s for s in ss.specs(graph)}
    with CostModel(system, cache="default", workers=2) as cm:
        net = cm.evaluate(graph, ScheduleSettings(mode="layer_by_layer"))
        kinds = {name: inst.kind for name, inst in platform_of(cm).instances.items()}
        best = dict(zip(specs, cm.layer_costs(list(specs.values()))))
    stages = []
    for stage, label in enumerate(net.exit_labels):
        rows = [r for r in net.layers if r.stage == stage]
        branch = [r for r in rows if r.branch]
        backbone = [r for r in rows if not r.branch]
        layers = []
        for r in branch:
            kind = kinds.get(r.cost.core, r.cost.core)
            ops = specs[r.name].ops  # MACs, or comparisons for max-pooling
            util = ops / (r.cost.latency_cycles * peak[kind]) if kind in peak and r.cost.latency_cycles else None
            layers.append({"layer": r.name, "op": r.op, "core": r.cost.core, "core_kind": kind, "macs": r.macs,
                           "ops": ops, "energy_uj": r.cost.energy_pj / 1e6, "latency_cycles": r.cost.latency_cycles,
                           "array_utilisation": util, "costed_by": "zigzag" if kind in peak else "analytical",
                           "zigzag_spatial_utilisation": best[r.name].spatial_utilization if kind in peak else None})
        stages.append({
            "exit": label, "final": stage == len(net.exit_labels) - 1,
            "backbone": {"layers": len(backbone), "macs": sum(r.macs for r in backbone),
                         "energy_uj": sum(r.cost.energy_pj for r in backbone) / 1e6,
                         "latency_cycles": sum(r.cost.latency_cycles for r in backbone)},
            "branch": {"layers": layers, "macs": sum(r.macs for r in branch),
                       "energy_uj": sum(r.cost.energy_pj for r in branch) / 1e6,
                       "latency_cycles": sum(r.cost.latency_cycles for r in branch)},
            "cumulative_energy_uj": net.cumulative_energy_j[stage] * 1e6,
            "cumulative_latency_cycles": net.cumulative_latency_cycles[stage]})
        print(label, stages[-1]["branch"]["latency_cycles"], [(x["op"], x["core"], round(x["latency_cycles"]),
                                                               x["array_utilisation"]) for x in layers], flush=True)
    final = stages[-1]
    fc = [specs[x["layer"]] for x in final["branch"]["layers"] if x["op"] == "fc"]
    bw = system.offchip.bandwidth_bits_per_cycle
    gap = {  # what 213 k cycles would need, against what the final pool + FC layers must move at least
        "fc_weight_bits": sum(s.params * s.w_bits for s in fc),
        "fc_weights_from_dram_cycles": sum(s.params * s.w_bits for s in fc) / bw,
        "fc_no_reuse_cycles": sum(s.macs * (s.w_bits + s.a_bits) for s in fc) / bw,
        "dram_bits_for_reference_cycles": REFERENCE["final_pool_fc_cycles"] * bw,
        "final_stage_cycles": final["backbone"]["latency_cycles"] + final["branch"]["latency_cycles"],
        "final_stage_over_reference": (final["backbone"]["latency_cycles"] + final["branch"]["latency_cycles"])
        / REFERENCE["final_pool_fc_cycles"],
    }
    print(gap, flush=True)
    write_result("exit_branch_costs", {
        "system": system.name, "network": "reference backbone (width 1.0), exits D,F,I + K, W8A8",
        "schedule": "layer_by_layer", "total_energy_uj": net.energy_j * 1e6, "total_latency_cycles": net.latency_cycles,
        "stages": stages, "reference": REFERENCE, "gap": gap,
        "pooling_core": "zigzag" if system.pooling_core.zigzag else "analytical",
        "simd_core": "zigzag" if system.simd_core.zigzag else "analytical"})


if __name__ == "__main__":
    main()
