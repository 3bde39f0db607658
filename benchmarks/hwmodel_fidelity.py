"""Can the per-layer costs be trusted?

1. Agreement with ZigZag: on ZigZag's own shipped workloads (ONNX) and accelerators, the lean
   evaluator's per-layer energy and latency against ``zigzag.api.get_hardware_performance_zigzag``
   with the same settings (max relative deviation per workload; should be 0 up to rounding).
2. Physical bounds: for networks of the reference space on every shipped system, no layer's energy
   below MACs x MAC energy (at its bits, MAC-energy model applied) and no latency below
   MACs / peak MACs per cycle (precision scaling applied); reports each network's ratio to the bound.

Usage: python benchmarks/hwmodel_fidelity.py [--quick]
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zigzag
from _common import write_result

import search_spaces as ss
from hwmodel import CostModel, ZigZagSettings, list_systems, load_system
from hwmodel.cost_model import precision_factor
from hwmodel.zigzag_core import ZigZagCore, core_description, quiet_zigzag

INPUTS = Path(zigzag.__file__).parent / "inputs"
SETTINGS = ZigZagSettings(lpf_limit=4, optimize="EDP", spatial_mappings=3)
CASES = [  # (workload, accelerator, mapping) shipped with ZigZag 3.9
    ("resnet18.onnx", "edge_tpu_like.yaml", "edge_tpu_like.yaml"),
    ("resnet18.onnx", "tpu_like.yaml", "tpu_like.yaml"),
    ("mobilenetv2.onnx", "edge_tpu_like.yaml", "edge_tpu_like.yaml"),
    ("mobilenetv2.onnx", "tpu_like.yaml", "tpu_like.yaml"),
    ("alexnet.onnx", "eyeriss_like.yaml", "default.yaml"),
    ("alexnet.onnx", "meta_prototype.yaml", "meta_prototype_like.yaml"),
]


def agreement(case: tuple[str, str, str]) -> dict:
    from zigzag.api import get_hardware_performance_zigzag
    from zigzag.parser.onnx.onnx_model_parser import ONNXModelParser
    from zigzag.workload.layer_node import LayerNode

    workload, accelerator, mapping = (str(INPUTS / "workload" / case[0]), str(INPUTS / "hardware" / case[1]),
                                      str(INPUTS / "mapping" / case[2]))
    with tempfile.TemporaryDirectory() as tmp, quiet_zigzag():
        t0 = time.perf_counter()
        _e, _l, cmes = get_hardware_performance_zigzag(
            workload, accelerator, mapping, opt=SETTINGS.optimize, lpf_limit=SETTINGS.lpf_limit,
            nb_spatial_mappings_generated=SETTINGS.spatial_mappings, dump_folder=tmp, loma_show_progress_bar=False)
        api_s = time.perf_counter() - t0
    api = {extra[0].id: cme for cme, extra in cmes[0][1]}
    core = ZigZagCore(case[1], accelerator, mapping, SETTINGS)
    with quiet_zigzag():
        nodes = [n for n in ONNXModelParser(workload, mapping).run().topological_sort() if isinstance(n, LayerNode)]
    t0 = time.perf_counter()
    energy_dev = latency_dev = 0.0
    for node in nodes:
        ours = core.cost_node(node, node.name)
        ref = api[node.id]
        energy_dev = max(energy_dev, abs(ours.energy_pj - ref.energy_total) / ref.energy_total)
        latency_dev = max(latency_dev, abs(ours.latency_cycles - ref.latency_total2) / ref.latency_total2)
    ours_s = time.perf_counter() - t0
    return {"workload": case[0], "accelerator": case[1], "mapping": case[2], "layers": len(nodes),
            "max_rel_dev_energy": energy_dev, "max_rel_dev_latency": latency_dev, "api_s": api_s, "lean_s": ours_s}


def bounds(system_name: str, genotypes: dict[str, ss.Genotype], space: ss.SearchSpace, cache: Path) -> list[dict]:
    system = load_system(system_name)
    peak = {c.name: math.prod(core_description(system.resolve(c.core))["operational_array"]["sizes"])
            for c in system.compute_cores}
    unit = {c.name: core_description(system.resolve(c.core))["operational_array"]["unit_energy"]
            for c in system.compute_cores}
    cores = {c.name: c for c in system.compute_cores}
    rows = []
    with CostModel(system, cache=cache, workers=2) as cm:
        for label, g in genotypes.items():
            compute = [s for s in ss.specs(space.layer_graph(g)) if s.op in ("conv", "fc")]
            costs = cm.layer_costs(compute)  # each whole layer on its best core: what the bounds are about
            e_bound = l_bound = 0.0
            min_e = min_l = math.inf
            for spec, cost in zip(compute, costs):
                core = cores[cost.core]
                eb = spec.macs * unit[core.name] * core.mac_energy.scale(spec.w_bits, spec.a_bits)
                lb = spec.macs / (peak[core.name] * precision_factor(core, spec))
                e_bound, l_bound = e_bound + eb, l_bound + lb
                min_e, min_l = min(min_e, cost.energy_pj / eb), min(min_l, cost.latency_cycles / lb)
            rows.append({"system": system_name, "network": label,
                         "energy_over_bound": sum(c.energy_pj for c in costs) / e_bound,
                         "latency_over_bound": sum(c.latency_cycles for c in costs) / l_bound,
                         "min_layer_energy_over_bound": min_e, "min_layer_latency_over_bound": min_l})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    logging.disable(logging.WARNING)
    quick = "--quick" in sys.argv
    rows = []
    for case in CASES[:2] if quick else CASES:
        rows.append(agreement(case))
        print(rows[-1], flush=True)
    space = ss.create_space("mobilenetv2_cifar", bits_choices=(2, 4, 8))
    n = len(space.backbone_layer_names())
    mixed = ss.Genotype((2, 5, 8), (1, 2, 1, 2), tuple([8, 4, 2] * (n // 3)), tuple([4, 8, 8] * (n // 3)),
                        (8, 4, 4, 8), (8, 4, 8, 8), 0.9)
    genotypes = {"static W8A8": space.uniform(bits=8), "exits D,F,I W8A8": space.uniform(exits=(3, 5, 8), bits=8),
                 "exits C,F,I mixed 2/4/8 bits": mixed}
    bound_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in list_systems():
            bound_rows += bounds(name, genotypes, space, Path(tmp) / "c.sqlite")
    write_result("hwmodel_fidelity", {"settings": {"lpf_limit": SETTINGS.lpf_limit, "optimize": SETTINGS.optimize,
                                                   "spatial_mappings": SETTINGS.spatial_mappings},
                                      "agreement": rows, "physical_bounds": bound_rows})


if __name__ == "__main__":
    main()
