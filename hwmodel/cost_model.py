"""Per-layer costs of layer graphs on an accelerator system, cached on disk.

Layer-by-layer schedule (the reference's): one layer at a time; convolutions and FC layers run on
the compute core kind that gives them the lowest EDP (ZigZag), pooling on the pooling core and
element-wise adds on the SIMD core; every layer reads its inputs from and writes its outputs to
off-chip memory. Stage latency is the sum of its layers' latencies.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import networkx as nx

from hwmodel.cache import CostCache, default_cache_path
from hwmodel.network import LayerResult, NetworkCost
from hwmodel.system import SimpleCoreSpec, SystemSpec, load_system
from hwmodel.workload import COMPUTE_OPS, LayerLike, signature, zigzag_layer
from hwmodel.zigzag_core import LayerCost, MappingError, ZigZagCore, ZigZagSettings

MODEL_VERSION = "1"  # bump when this module's cost formulas change (invalidates cached entries)
PROGRESS_MIN_LAYERS = 16  # show a progress bar only for batches of cache misses at least this large


def simple_core_cost(spec: LayerLike, core: SimpleCoreSpec, system: SystemSpec, core_name: str) -> LayerCost:
    """Analytical cost of pooling / element-wise add: ``units`` ops per cycle, data via off-chip.

    Energy (pJ) = ops * energy_per_op + bits moved * off-chip energy per bit; latency (cycles) =
    max(ops / units, bits moved / off-chip bandwidth).
    """
    inputs = 2 if spec.op == "add" else 1
    in_bits = inputs * spec.in_channels * spec.in_hw[0] * spec.in_hw[1] * spec.a_bits
    out_bits = spec.out_channels * spec.out_hw[0] * spec.out_hw[1] * spec.o_bits
    moved = in_bits + out_bits
    compute = math.ceil(spec.ops / core.units)
    transfer = math.ceil(moved / system.offchip.bandwidth_bits_per_cycle)
    op_energy = spec.ops * core.energy_per_op_pj
    mem_energy = moved * system.offchip.energy_per_bit_pj
    return LayerCost(
        energy_pj=op_energy + mem_energy,
        latency_cycles=float(max(compute, transfer)),
        mac_energy_pj=op_energy,
        mem_energy_pj=mem_energy,
        ideal_cycles=float(compute),
        spatial_utilization=min(1.0, spec.ops / max(1, compute * core.units)),
        core=core_name,
    )


# --- worker processes ---------------------------------------------------------------------------
_WORKER_CORES: dict[str, ZigZagCore] = {}


def _init_worker(cores: list[tuple[str, str, str]], settings: ZigZagSettings) -> None:
    for name, core_path, mapping_path in cores:
        _WORKER_CORES[name] = ZigZagCore(name, core_path, mapping_path, settings)


def _cost_job(core: str, layer: dict[str, Any], label: str) -> dict[str, Any]:
    return _cost_or_error(_WORKER_CORES[core], layer, label)


def _cost_or_error(core: ZigZagCore, layer: dict[str, Any], label: str) -> dict[str, Any]:
    try:
        return core.cost(layer, label).to_dict()
    except MappingError as exc:
        return {"error": exc.reason}


class CostModel:
    """Costs layer graphs on one system. Reuse one instance: cores are parsed once, workers kept.

    ``cache``: a :class:`CostCache`, a path, ``"default"`` (the user cache folder) or ``None``
    (memory only). ``workers``: processes for layers missing from the cache (1 = in process).
    """

    def __init__(
        self,
        system: SystemSpec | str | Path,
        *,
        settings: ZigZagSettings | None = None,
        cache: CostCache | str | Path | None = "default",
        workers: int = 1,
        progress: bool = False,
    ) -> None:
        self.system = system if isinstance(system, SystemSpec) else load_system(system)
        self.settings = settings or ZigZagSettings()
        if isinstance(cache, CostCache):
            self.cache = cache
        else:
            self.cache = CostCache(default_cache_path() if cache == "default" else cache)
        self.workers = max(1, int(workers))
        self.progress = progress
        self._cores: dict[str, ZigZagCore] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._key_base = {  # everything but the layer that changes a cached cost
            "model": MODEL_VERSION,
            "zigzag": version("zigzag-dse"),
            "system": self.system.fingerprint(),
            "settings": asdict(self.settings),
        }
        self.stats = {"hits": 0, "misses": 0}

    # --- plumbing --------------------------------------------------------------------------------
    def _core_files(self) -> list[tuple[str, str, str]]:
        return [(c.name, str(self.system.resolve(c.core)), str(self.system.resolve(c.mapping)))
                for c in self.system.compute_cores]

    def _core(self, name: str) -> ZigZagCore:
        if name not in self._cores:
            core_path, mapping_path = next((c, m) for n, c, m in self._core_files() if n == name)
            self._cores[name] = ZigZagCore(name, core_path, mapping_path, self.settings)
        return self._cores[name]

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self._core_files(), self.settings),
            )
        return self._pool

    def close(self) -> None:
        """Stop worker processes and close the cache connection."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self.cache.close()

    def __enter__(self) -> CostModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _key(self, core: str, layer: dict[str, Any]) -> str:
        return signature({**self._key_base, "core": core, "layer": layer})

    # --- costs -----------------------------------------------------------------------------------
    def _compute(self, jobs: dict[str, tuple[str, dict[str, Any], str]]) -> dict[str, dict[str, Any]]:
        """Run ZigZag for cache misses (in workers when there are several)."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="ZigZag layers", unit="layer",
                   disable=not self.progress or len(jobs) < PROGRESS_MIN_LAYERS, leave=False)
        results: dict[str, dict[str, Any]] = {}
        try:
            if self.workers > 1 and len(jobs) > 1:
                pool = self._executor()
                futures = {pool.submit(_cost_job, *job): key for key, job in jobs.items()}
                for future, key in futures.items():
                    results[key] = future.result()
                    bar.update()
            else:
                for key, (core, layer, label) in jobs.items():
                    results[key] = _cost_or_error(self._core(core), layer, label)
                    bar.update()
        finally:
            bar.close()
        return results

    def layer_costs(self, specs: Sequence[LayerLike]) -> list[LayerCost]:
        """Cost of every layer (best compute-core kind for conv/FC); MappingError if none maps."""
        compute_cores = [c.name for c in self.system.compute_cores]
        wanted: dict[str, tuple[str, dict[str, Any], str]] = {}
        per_spec: list[list[str]] = []
        for spec in specs:
            keys = []
            if spec.op in COMPUTE_OPS:
                layer = zigzag_layer(spec)
                for core in compute_cores:
                    key = self._key(core, layer)
                    wanted.setdefault(key, (core, layer, spec.name))
                    keys.append(key)
            per_spec.append(keys)
        found = self.cache.get_many(wanted)
        missing = {k: v for k, v in wanted.items() if k not in found}
        self.stats["hits"] += len(wanted) - len(missing)
        self.stats["misses"] += len(missing)
        if missing:
            computed = self._compute(missing)
            self.cache.put_many(computed)
            found.update(computed)
        out: list[LayerCost] = []
        for spec, keys in zip(specs, per_spec):
            if spec.op == "maxpool":
                out.append(simple_core_cost(spec, self.system.pooling_core, self.system, "pooling"))
            elif spec.op == "add":
                out.append(simple_core_cost(spec, self.system.simd_core, self.system, "simd"))
            elif spec.op in COMPUTE_OPS:
                options = [found[k] for k in keys]
                ok = [LayerCost(**o) for o in options if "error" not in o]
                if not ok:
                    raise MappingError(spec.name, "/".join(compute_cores), options[0]["error"])
                out.append(min(ok, key=lambda c: c.energy_pj * c.latency_cycles))
            else:
                raise ValueError(f"{spec.name}: unknown op {spec.op!r}")
        return out

    def evaluate(self, graph: nx.DiGraph) -> NetworkCost:
        """Per-layer and per-exit-stage costs of a layer graph (layer-by-layer schedule)."""
        names = list(nx.lexicographical_topological_sort(graph))
        layer_specs: list[LayerLike] = [graph.nodes[n]["spec"] for n in names]
        costs = self.layer_costs(layer_specs)
        layers = [LayerResult(s.name, s.op, s.stage, s.branch, s.macs, c) for s, c in zip(layer_specs, costs)]
        return NetworkCost(self.system.name, list(graph.graph["exit_labels"]), layers, "layer_by_layer",
                           self.system.clock_hz)
