"""How fast is the cost model (CostModel.evaluate), cold and warm, against the ZigZag API on the same layers?

Every figure times :meth:`CostModel.evaluate`, the one cost entry point the search calls.

1. Cold: the full-width reference backbone with exits D, F, I + K at 8 bits on edge_tpu_quad, empty
   cost cache, 1 and 2 worker processes, under the search's schedule (fused, the config's default)
   and layer-by-layer (whole layers: exactly the layers given to
   ``zigzag.api.get_hardware_performance_zigzag``, same cores, hints and settings, timed in this run;
   conv / FC on the compute core, max-pooling and adds on the pooling / SIMD core). Also the fused
   cold cost under the cheaper mapper setting (one spatial mapping per layer), with its network
   energy, latency and EDP against the default setting's, on this network and on 30 random genotypes;
   and that cold cost once more with the worker processes started beforehand (``start_workers``), as
   in a study, where only its first candidate waits for them, and as the first network of a new Python
   process (ZigZag not yet imported). These three and the API run in 7 rounds, one run of each per
   round: medians, and the median of the per-round ratios API / ours. Two workers are this process
   and one spawned helper.
   Also that cost in one process with and without the one-Mapping shortcut (``hwmodel.zigzag_core``:
   one ZigZag Mapping built where ZigZag builds two equal ones), side by side, and whether it is equal.
2. Warm: the same network with every tile cached (median and 95th percentile over 50 runs).
3. Over 500 random genotypes of the reference space (width 1.0, per-layer bits from {4, 8}), fused,
   starting from an empty cache: distinct ZigZag tiles computed, cache hit rate, total time.

Usage: python benchmarks/hwmodel_speed.py
"""

from __future__ import annotations

import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

import search_spaces as ss
from hwmodel import CostModel, ZigZagSettings, load_system
from hwmodel.scheduling import ScheduleSettings, layer_tiles
from hwmodel.system import SIMPLE_OPS
from hwmodel.workload import zigzag_layer
from hwmodel.zigzag_core import quiet_zigzag

SETTINGS = ZigZagSettings(lpf_limit=4, optimize="EDP", spatial_mappings=3)  # the API runs with these
FAST = ZigZagSettings(lpf_limit=4, optimize="EDP", spatial_mappings=1)  # the default (ZigZagSettings())
WARM_UP_S = 5.0  # seconds given to started workers to import ZigZag and build their cores
REPEATS = 7  # rounds of (API, cold runs of the default setting); medians reported
FIDELITY_GENOTYPES = 30  # random genotypes on which the cheaper setting's deviation is measured
# what the search runs (the config's default schedule) and the reference's whole-layer schedule,
# whose ZigZag layers are exactly the ones the API is given
SEARCH = "fused"
SCHEDULES = {"layer_by_layer": ScheduleSettings(mode="layer_by_layer"), SEARCH: ScheduleSettings()}


def api_time(system, graph) -> float:
    """Seconds the ZigZag API takes on the network's whole layers: conv / FC on the compute core,
    max-pooling and adds on the pooling / SIMD core files (one API call per core)."""
    from zigzag.api import get_hardware_performance_zigzag

    compute = system.compute_cores[0]
    groups = {(compute.core, compute.mapping): [s for s in ss.specs(graph) if s.op in ("conv", "fc")]}
    for op in SIMPLE_OPS:
        core = system.simple_core(op)[1]
        if core.core and core.mapping:
            groups[(core.core, core.mapping)] = [s for s in ss.specs(graph) if s.op == op]
    seconds = 0.0
    for (core_file, mapping_file), specs in groups.items():
        layers = [{**zigzag_layer(s), "id": i, "operand_source": {"W": i, "I": i}} for i, s in enumerate(specs)]
        with tempfile.TemporaryDirectory() as tmp, quiet_zigzag():
            t0 = time.perf_counter()
            get_hardware_performance_zigzag(layers, str(system.resolve(core_file)), str(system.resolve(mapping_file)),
                                            opt=SETTINGS.optimize, lpf_limit=SETTINGS.lpf_limit,
                                            nb_spatial_mappings_generated=SETTINGS.spatial_mappings, dump_folder=tmp,
                                            loma_show_progress_bar=False)
            seconds += time.perf_counter() - t0
    return seconds


def first_network_of_a_process() -> float:
    """Seconds a new Python process takes for its first network (fused, default setting, 2 workers,
    empty cache), ZigZag's import in this process and the helper's start included; only the import of
    eenas and the building of the graph are left out (run in a subprocess: ``--first-network``)."""
    out = subprocess.run([sys.executable, __file__, "--first-network"], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def reference_network():
    """(system, space, layer graph) of the network every row costs: the full-width reference backbone
    with exits D, F, I + K at 8 bits on edge_tpu_quad."""
    system = load_system("edge_tpu_quad")
    space = ss.create_space("mobilenetv2_cifar")
    return system, space, space.layer_graph(space.uniform(exits=(3, 5, 8), bits=8))


def _first_network() -> None:
    logging.disable(logging.WARNING)
    system, _space, graph = reference_network()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with CostModel(system, settings=FAST, cache=Path(tmp) / "c.sqlite", workers=2) as cm:
            cm.evaluate(graph, SCHEDULES[SEARCH])
            print(time.perf_counter() - t0, flush=True)


def one_mapping_shortcut(system, graph) -> dict:
    """Cold fused cost in this process (one worker, the default setting) with and without building one
    ZigZag Mapping where ZigZag builds two equal ones (``hwmodel.zigzag_core``), REPEATS times
    alternating: median seconds of each and whether the costs are equal."""
    import contextlib

    import hwmodel.zigzag_core as zigzag_core

    shortcut = zigzag_core._one_mapping_per_evaluation
    runs: dict[str, list[float]] = {"without": [], "with": []}
    costs = {}
    for _ in range(REPEATS):
        for label in runs:
            zigzag_core._one_mapping_per_evaluation = shortcut if label == "with" else contextlib.nullcontext
            try:
                with CostModel(system, settings=FAST, cache=None, workers=1) as cm:
                    t0 = time.perf_counter()
                    costs[label] = cm.evaluate(graph, SCHEDULES[SEARCH])
                    runs[label].append(time.perf_counter() - t0)
            finally:
                zigzag_core._one_mapping_per_evaluation = shortcut
    return {"without_s": statistics.median(runs["without"]), "with_s": statistics.median(runs["with"]),
            "runs": runs, "same_costs": costs["with"] == costs["without"]}


def fast_setting_fidelity(system, space, genotypes, schedule) -> dict:
    """Network EDP, energy and latency under the cheaper mapper setting against the default one, over
    random genotypes (fused, each setting from its own empty cache): max and mean absolute deviation."""
    costs: dict[str, list] = {}
    for label, settings in (("default", SETTINGS), ("fast", FAST)):
        with tempfile.TemporaryDirectory() as tmp, CostModel(system, settings=settings, cache=Path(tmp) / "c.sqlite",
                                                             workers=2) as cm:
            t0 = time.perf_counter()
            costs[label] = [cm.evaluate(space.layer_graph(g), schedule) for g in genotypes]
            costs[label + "_seconds"] = [time.perf_counter() - t0, cm.stats["misses"]]
    out: dict = {"genotypes": len(genotypes)}
    for metric in ("edp", "energy_j", "latency_cycles"):
        devs = [abs(getattr(f, metric) / getattr(d, metric) - 1) for f, d in zip(costs["fast"], costs["default"])]
        out[f"{metric}_max_abs_dev"], out[f"{metric}_mean_abs_dev"] = max(devs), statistics.mean(devs)
    for label in ("default", "fast"):
        out[f"{label}_seconds_from_empty_cache"], out[f"{label}_distinct_tiles"] = costs[label + "_seconds"]
    return out


def main() -> None:
    logging.disable(logging.WARNING)
    system, space, graph = reference_network()
    cold: list[dict[str, object]] = []
    warm, network = {}, {}
    for label, schedule in SCHEDULES.items():
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp, CostModel(system, settings=SETTINGS,
                                                                 cache=Path(tmp) / "c.sqlite", workers=workers) as cm:
                t0 = time.perf_counter()
                net = cm.evaluate(graph, schedule)
                cold.append({"schedule": label, "workers": workers, "seconds": time.perf_counter() - t0,
                             "distinct_layers": cm.stats["misses"], "settings": "default"})
                if workers == 2:
                    times = []
                    for _ in range(50):
                        t0 = time.perf_counter()
                        cm.evaluate(graph, schedule)
                        times.append((time.perf_counter() - t0) * 1e3)
                    times.sort()
                    warm[label] = {"median": statistics.median(times), "p95": times[int(0.95 * len(times)) - 1]}
            print(cold[-1], flush=True)
        network[label] = {"energy_j": net.energy_j, "latency_cycles": net.latency_cycles, "edp_j_cycles": net.edp}
    # the cheaper mapper setting: one spatial mapping per layer instead of three, same search schedule; then
    # what every later candidate of a study pays: the same with the workers already running (`api.search`
    # starts them while it loads the data and the supernet); then the first network of a new process. Each
    # REPEATS times, alternating (fresh workers each time) with a run of the API, so that each run has an API
    # run next to it: the machine is shared and one cold run moves by a second with what it is doing. Reported:
    # the median time and the median of the per-round ratios API / ours
    api_runs: list[float] = []
    runs: dict[str, list[float]] = {"not started": [], "started": [], "fresh": []}
    for _ in range(REPEATS):
        api_runs.append(api_time(system, graph))
        runs["fresh"].append(first_network_of_a_process())
        for variant in ("not started", "started"):
            with tempfile.TemporaryDirectory() as tmp, CostModel(system, settings=FAST, cache=Path(tmp) / "c.sqlite",
                                                                 workers=2) as cm:
                if variant == "started":
                    cm.start_workers()
                    time.sleep(WARM_UP_S)
                t0 = time.perf_counter()
                fast = cm.evaluate(graph, SCHEDULES[SEARCH])
                runs[variant].append(time.perf_counter() - t0)
                misses = cm.stats["misses"]
        print({k: round(v[-1], 2) for k, v in runs.items()}, f"api {api_runs[-1]:.1f} s", flush=True)
    api_s = statistics.median(api_runs)
    for variant, seconds in runs.items():
        row: dict[str, object] = {"schedule": SEARCH, "workers": 2, "seconds": statistics.median(seconds),
                                  "seconds_runs": seconds, "distinct_layers": misses, "settings": "fast",
                                  "speedup_vs_api": statistics.median(a / t for a, t in zip(api_runs, seconds))}
        if variant == "started":
            row["workers_started"] = True
        elif variant == "fresh":
            row["fresh_process"] = True
        else:
            row |= {"edp_dev_vs_default": fast.edp / network[SEARCH]["edp_j_cycles"] - 1,
                    "energy_dev_vs_default": fast.energy_j / network[SEARCH]["energy_j"] - 1,
                    "latency_dev_vs_default": fast.latency_cycles / network[SEARCH]["latency_cycles"] - 1}
        cold.append(row)
        print(row, flush=True)
    shortcut = one_mapping_shortcut(system, graph)
    print(shortcut, flush=True)

    search = SCHEDULES[SEARCH]
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(500)]
    fidelity = fast_setting_fidelity(system, space, genotypes[:FIDELITY_GENOTYPES], search)
    print(fidelity, flush=True)
    with tempfile.TemporaryDirectory() as tmp, CostModel(system, settings=SETTINGS, cache=Path(tmp) / "c.sqlite",
                                                         workers=2) as cm:
        t0 = time.perf_counter()
        for g in genotypes:
            cm.evaluate(space.layer_graph(g), search)
        sweep_s = time.perf_counter() - t0
        hits, misses = cm.stats["hits"], cm.stats["misses"]
        t0 = time.perf_counter()
        for g in genotypes[:100]:
            cm.evaluate(space.layer_graph(g), search)
        warm_candidate_ms = (time.perf_counter() - t0) / 100 * 1e3
        upper_bound = len(layer_tiles(space.all_layer_specs(), cm, search))
    random_rows = {"schedule": SEARCH, "genotypes": len(genotypes), "distinct_zigzag_layers": misses,
                   "lookups": hits + misses, "hit_rate": hits / (hits + misses), "seconds_from_empty_cache": sweep_s,
                   "warm_ms_per_candidate_incl_graph": warm_candidate_ms,
                   "space_distinct_layers_upper_bound": upper_bound}
    print(random_rows, flush=True)
    write_result("hwmodel_speed", {
        "system": system.name,
        "settings": {"lpf_limit": SETTINGS.lpf_limit, "optimize": SETTINGS.optimize,
                     "spatial_mappings": SETTINGS.spatial_mappings},
        "fast_settings": {"lpf_limit": FAST.lpf_limit, "optimize": FAST.optimize,
                          "spatial_mappings": FAST.spatial_mappings},
        "network": {"network": "reference backbone, exits D,F,I,K, W8A8", "layers": graph.number_of_nodes(),
                    "zigzag_layers": sum(1 for s in ss.specs(graph) if cm.zigzag_costed(s.op)), "costs": network},
        "search_schedule": SEARCH, "workers_include_this_process": True, "cold": cold, "api_seconds": api_s,
        "api_seconds_runs": api_runs, "warm_ms": warm,
        "random_genotypes": random_rows, "fast_setting_fidelity": fidelity, "one_mapping_shortcut": shortcut,
    })


if __name__ == "__main__":
    if "--first-network" in sys.argv[1:]:
        _first_network()
    else:
        main()
