"""Choosing the mapper settings by measurement: accuracy of the network cost versus time.

The full-width reference backbone with exits D, F, I + K on edge_tpu_quad, at W8A8 and at mixed
4/8 bits, costed with an empty cache (2 workers) under: LOMA lpf limit 2..6 (3 spatial mappings,
optimise EDP); 1, 3, 5 spatial mappings (lpf 4); optimise energy / latency / EDP (lpf 4).
Deviations are relative to the most thorough setting (lpf 6, 5 spatial mappings, EDP). The network
cost here is the sum over its whole layers, each on its best core (``CostModel.layer_costs``): the
per-layer mappings are what the settings change; every schedule is built from them.

Usage: python benchmarks/zigzag_settings.py
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

import search_spaces as ss
from hwmodel import CostModel, ZigZagSettings, load_system

GRID = [ZigZagSettings(6, "EDP", 5)] + [ZigZagSettings(lpf, "EDP", 3) for lpf in (2, 3, 4, 5, 6)] + \
       [ZigZagSettings(4, "EDP", sm) for sm in (1, 5)] + [ZigZagSettings(4, opt, 3) for opt in ("energy", "latency")]


def main() -> None:
    logging.disable(logging.WARNING)
    system = load_system("edge_tpu_quad")
    space = ss.create_space("mobilenetv2_cifar")
    n = len(space.backbone_layer_names())
    networks = {
        "exits D,F,I,K W8A8": space.uniform(exits=(3, 5, 8), bits=8),
        "exits D,F,I,K, 2-FC branches at F and K, mixed 4/8 bits": ss.Genotype((3, 5, 8), (1, 2, 1, 2),
                                                                               tuple([8, 4] * (n // 2)),
                                                                               tuple([4, 8, 8] * (n // 3)),
                                                                               (8, 4, 8, 4), (8, 8, 4, 8), 0.9),
    }
    rows = []
    for label, genotype in networks.items():
        graph = space.layer_graph(genotype)
        reference = None
        for settings in GRID:
            with tempfile.TemporaryDirectory() as tmp, CostModel(system, settings=settings,
                                                                 cache=Path(tmp) / "c.sqlite", workers=2) as cm:
                t0 = time.perf_counter()
                costs = cm.layer_costs(ss.specs(graph))
                seconds = time.perf_counter() - t0
            energy_j, latency = sum(c.energy_pj for c in costs) * 1e-12, sum(c.latency_cycles for c in costs)
            reference = reference or (energy_j, latency)
            rows.append({"network": label, "lpf_limit": settings.lpf_limit,
                         "spatial_mappings": settings.spatial_mappings,
                         "optimize": settings.optimize, "seconds_cold": seconds, "edp_j_cycles": energy_j * latency,
                         "energy_j": energy_j, "latency_cycles": latency,
                         "edp_dev": energy_j * latency / (reference[0] * reference[1]) - 1,
                         "energy_dev": energy_j / reference[0] - 1, "latency_dev": latency / reference[1] - 1})
            print(rows[-1], flush=True)
    write_result("zigzag_settings", {"system": system.name, "rows": rows})


if __name__ == "__main__":
    main()
