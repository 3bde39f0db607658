"""What the exit branches cost on the reference system: the per-stage table of issue 16.

The full-width reference backbone with exits D, F, I + K, INT8, scheduled layer by layer on
edge_tpu_quad (the reference's setting) through :meth:`CostModel.evaluate`. Per exit stage: the
backbone part and the exit branch (max-pooling + FC), each with energy and latency; per branch
layer: operator, core, MACs, latency, array utilisation (MACs / (busy cycles x the core's MACs per
cycle)) and ZigZag's spatial utilisation. Beside them, the reference's figures as it reports them:
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
from hwmodel.zigzag_core import core_description

EXITS = (3, 5, 8)  # D, F, I; K is always there
REFERENCE = {"exit_classifier_utilisation_below": 0.01, "final_pool_fc_cycles": 213_000,
             "source": "arXiv 2512.04705 as summarised in shared/notes/reference-system.md"}


def main() -> None:
    logging.disable(logging.WARNING)
    system = load_system("edge_tpu_quad")
    space = ss.create_space("mobilenetv2_cifar")
    graph = space.layer_graph(space.uniform(exits=EXITS, bits=8))
    peak = {c.name: math.prod(core_description(system.resolve(c.core))["operational_array"]["sizes"])
            for c in system.compute_cores}
    with CostModel(system, cache="default", workers=2) as cm:
        net = cm.evaluate(graph, ScheduleSettings(mode="layer_by_layer"))
        kinds = {name: inst.kind for name, inst in platform_of(cm).instances.items()}
        best = dict(zip((s.name for s in ss.specs(graph)), cm.layer_costs(ss.specs(graph))))
    stages = []
    for stage, label in enumerate(net.exit_labels):
        rows = [r for r in net.layers if r.stage == stage]
        branch = [r for r in rows if r.branch]
        backbone = [r for r in rows if not r.branch]
        layers = []
        for r in branch:
            kind = kinds.get(r.cost.core, r.cost.core)
            util = r.macs / (r.cost.latency_cycles * peak[kind]) if kind in peak and r.cost.latency_cycles else None
            layers.append({"layer": r.name, "op": r.op, "core": r.cost.core, "core_kind": kind, "macs": r.macs,
                           "energy_uj": r.cost.energy_pj / 1e6, "latency_cycles": r.cost.latency_cycles,
                           "array_utilisation": util,
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
    write_result("exit_branch_costs", {
        "system": system.name, "network": "reference backbone (width 1.0), exits D,F,I + K, W8A8",
        "schedule": "layer_by_layer", "total_energy_uj": net.energy_j * 1e6, "total_latency_cycles": net.latency_cycles,
        "stages": stages, "reference": REFERENCE})


if __name__ == "__main__":
    main()
