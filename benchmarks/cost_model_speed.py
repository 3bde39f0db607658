"""Cold and warm cost-model time for the full-width reference backbone on the reference system.

Cold: empty cost cache, every distinct layer goes through ZigZag (1 and 2 worker processes).
Warm: all layers cached; median of repeated evaluations of the same network.
Networks: the static backbone (final exit K only) and the backbone with exits D, F, I + K, at 8 bits.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result  # noqa: E402

import search_spaces as ss  # noqa: E402
from hwmodel import CostModel, load_system  # noqa: E402


def main() -> None:
    system = load_system("edge_tpu_quad")
    space = ss.create_space("mobilenetv2_cifar", width_mult=1.0)
    networks = {"static (K)": space.uniform(exits=(), bits=8), "exits D,F,I,K": space.uniform(exits=(3, 5, 8), bits=8)}
    rows = []
    for label, genotype in networks.items():
        graph = space.layer_graph(genotype)
        n_layers = graph.number_of_nodes()
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp, CostModel(system, cache=Path(tmp) / "c.sqlite",
                                                                 workers=workers) as cm:
                t0 = time.perf_counter()
                net = cm.evaluate(graph)
                cold = time.perf_counter() - t0
                distinct = cm.stats["misses"]
                warm_times = []
                for _ in range(20):
                    t0 = time.perf_counter()
                    cm.evaluate(graph)
                    warm_times.append(time.perf_counter() - t0)
            rows.append({
                "network": label, "layers": n_layers, "distinct_zigzag_layers": distinct, "workers": workers,
                "cold_s": cold, "warm_median_ms": statistics.median(warm_times) * 1e3,
                "energy_j": net.energy_j, "latency_cycles": net.latency_cycles, "edp_j_cycles": net.edp,
                "macs": net.macs,
            })
            print(rows[-1], flush=True)
    write_result("cost_model_speed", {"system": system.name, "settings": {"lpf_limit": 4, "optimize": "EDP",
                                                                          "spatial_mappings": 3}, "rows": rows})


if __name__ == "__main__":
    main()
