"""Layer-by-layer versus layer-fused multi-core schedules on the reference quad-core system.

1. The full-width reference backbone at W8A8, static and with three four-exit configurations:
   energy, latency and EDP of the full path, and the expected-EDP reduction factor against the
   static network under each schedule. Exit ratios are an assumption of this benchmark (it measures
   hardware, not accuracy): 25 / 20 / 20 / 35 % at the four exits, inside the ranges of the
   reference's published four-exit models (10-40 % per early exit, 25-45 % at the final one).
2. Time to schedule one candidate warm (every tile cached): median and 95th percentile, at
   row-level tiles (tile_rows=1) and at the default (16).
3. Growth: tiles, distinct ZigZag tiles, schedule time and EDP against tile size; schedule time
   against network depth (the backbone cut after block b, with its exit).

Usage: python benchmarks/scheduling.py
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import networkx as nx
from _common import write_result

import search_spaces as ss
from hwmodel import CostModel, expected_cost
from hwmodel.scheduling import ScheduleSettings, schedule_network

SYSTEM = "edge_tpu_quad"
RATIOS = (0.25, 0.20, 0.20, 0.35)
CONFIGS = {"static (K)": (), "exits D,F,I,K": (3, 5, 8), "exits B,E,H,K": (1, 4, 7), "exits C,G,J,K": (2, 6, 9)}
MODES = {
    "layer-by-layer": ScheduleSettings(mode="layer_by_layer"),
    "fused, whole layers": ScheduleSettings(mode="fused", tile_rows=None),
    "fused, 16-row tiles (default)": ScheduleSettings(mode="fused", tile_rows=16),
    "fused, 16-row tiles, genetic allocation": ScheduleSettings(mode="fused", tile_rows=16, allocation="genetic"),
}


def timed(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return statistics.median(times), times[max(0, int(0.95 * len(times)) - 1)]


def truncated(space: ss.SearchSpace, block: int) -> nx.DiGraph:
    """The backbone up to ``block`` with the exit there (stage 0 of a one-early-exit genotype)."""
    graph = space.layer_graph(space.uniform(exits=(block,), bits=8))
    keep = [n for n in graph.nodes if graph.nodes[n]["spec"].stage == 0]
    sub = graph.subgraph(keep).copy()
    sub.graph.update(exit_labels=graph.graph["exit_labels"][:1], exit_outputs=graph.graph["exit_outputs"][:1])
    return sub


def main() -> None:
    logging.disable(logging.WARNING)
    space = ss.create_space("mobilenetv2_cifar")
    rows, timing, growth, depth = [], {}, [], []
    with CostModel(SYSTEM, workers=2) as cm:
        for label, settings in MODES.items():
            static = cm.evaluate(space.layer_graph(space.uniform(bits=8)), settings)
            for config, exits in CONFIGS.items():
                g = space.uniform(exits=exits, bits=8)
                net = static if not exits else cm.evaluate(space.layer_graph(g), settings)
                ratios = RATIOS if exits else (1.0,)
                e = expected_cost(net, static, ratios)
                rows.append({"mode": label, "network": config, "energy_uj": net.energy_j * 1e6,
                             "latency_kcycles": net.latency_cycles / 1e3, "edp_j_cycles": net.edp,
                             "expected_edp_j_cycles": e.expected_edp, "static_edp_j_cycles": e.static_edp,
                             "reduction_vs_static": e.reduction_factor, "exit_times_kcycles":
                             [t / 1e3 for t in net.cumulative_latency_cycles]})
                print(rows[-1], flush=True)
        graph = space.layer_graph(space.uniform(exits=(3, 5, 8), bits=8))
        for tile_rows in (1, 16):
            settings = ScheduleSettings(mode="fused", tile_rows=tile_rows)
            schedule_network(graph, cm, settings)  # warm the cache
            median, p95 = timed(lambda s=settings: schedule_network(graph, cm, s), 30)
            timing[f"tile_rows={tile_rows}"] = {"median_ms": median, "p95_ms": p95,
                                                "tiles": schedule_network(graph, cm, settings).tile_count}
            print(timing, flush=True)
        for tile_rows in (None, 16, 8, 4, 2, 1):
            settings = ScheduleSettings(mode="fused", tile_rows=tile_rows)
            misses = cm.stats["misses"]
            s = schedule_network(graph, cm, settings)
            median, _p95 = timed(lambda s2=settings: schedule_network(graph, cm, s2), 10)
            growth.append({"tile_rows": tile_rows, "tiles": s.tile_count,
                           "new_zigzag_tiles": cm.stats["misses"] - misses,
                           "schedule_ms": median, "energy_uj": s.energy_pj / 1e6, "latency_kcycles": s.makespan / 1e3,
                           "edp_j_cycles": s.energy_pj * 1e-12 * s.makespan,
                           "offchip_uj": s.breakdown()["offchip"] / 1e6})
            print(growth[-1], flush=True)
        for block in (1, 3, 5, 7, 9, 11):
            g = truncated(space, block) if block < 11 else space.layer_graph(space.uniform(bits=8))
            settings = ScheduleSettings(mode="fused", tile_rows=1)
            s = schedule_network(g, cm, settings)
            median, _p95 = timed(lambda gg=g, s2=settings: schedule_network(gg, cm, s2), 10)
            depth.append({"blocks": block + 1, "layers": g.number_of_nodes(), "tiles": s.tile_count,
                          "schedule_ms": median})
            print(depth[-1], flush=True)
        drawn = {"fused": schedule_network(graph, cm, ScheduleSettings(mode="fused", tile_rows=16)),
                 "layer_by_layer": schedule_network(graph, cm, ScheduleSettings(mode="layer_by_layer"))}
    # the Gantt charts and the memory plot: python benchmarks/render.py draws them from these schedules
    write_result("scheduling", {"system": SYSTEM, "ratios": list(RATIOS), "rows": rows, "warm_schedule": timing,
                                "growth_tile_rows": growth, "growth_depth": depth,
                                "schedules": {k: v.to_dict() for k, v in drawn.items()}})


if __name__ == "__main__":
    main()
