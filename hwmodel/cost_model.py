"""Per-layer costs of layer graphs on an accelerator system, cached on disk.

Layer-by-layer schedule (the reference's): one layer at a time; each convolution and FC layer runs
on the allowed compute-core kind (``allocation`` in the system file) that gives it the lowest EDP
under ZigZag; pooling runs on the pooling core and element-wise adds on the SIMD core; every layer
reads its inputs from and writes its outputs to off-chip memory. Stage latency is the sum of its
layers' latencies.

Precision (:mod:`hwmodel.precision`): a precision-scalable core is costed on its widened variant,
and ZigZag's bit-blind MAC energy is replaced by the core's MAC-energy model. The cache stores raw
ZigZag results keyed by what ZigZag sees (core and mapping files, array variant, layer, settings,
versions), so those models can change without invalidating it.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
from collections.abc import Sequence
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import networkx as nx

from hwmodel.cache import CostCache, default_cache_path
from hwmodel.network import LayerResult, NetworkCost
from hwmodel.system import ComputeCoreSpec, SimpleCoreSpec, SystemSpec, load_system
from hwmodel.workload import COMPUTE_OPS, LayerLike, kind, signature, zigzag_layer
from hwmodel.zigzag_core import LayerCost, MappingError, ZigZagCore, ZigZagSettings

MODEL_VERSION = "2"  # bump when what is cached changes meaning (invalidates cached entries)
PROGRESS_MIN_LAYERS = 16  # show a progress bar only for batches of cache misses at least this large
ALLOCATION_KIND = {"default": "conv", "depthwise": "depthwise", "fc": "fc"}


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


def precision_factor(core: ComputeCoreSpec, spec: LayerLike) -> int:
    """MACs per PE per cycle of ``core`` for the layer's operand widths (1 unless precision-scalable)."""
    return core.precision_scaling.factor(spec.w_bits, spec.a_bits) if core.precision_scaling else 1


def apply_mac_model(raw: LayerCost, core: ComputeCoreSpec, spec: LayerLike) -> LayerCost:
    """Replace ZigZag's bit-blind MAC energy by the core's MAC-energy model."""
    mac = raw.mac_energy_pj * core.mac_energy.scale(spec.w_bits, spec.a_bits)
    return replace(raw, energy_pj=raw.energy_pj - raw.mac_energy_pj + mac, mac_energy_pj=mac, core=core.name)


# --- worker processes ---------------------------------------------------------------------------
CoreFiles = tuple[str, str, str, str | None]  # name, core path, mapping path, widenable dimension
_WORKER_FILES: dict[str, CoreFiles] = {}
_WORKER_CORES: dict[tuple[str, int], ZigZagCore] = {}
_WORKER_SETTINGS: list[ZigZagSettings] = []


def _init_worker(cores: list[CoreFiles], settings: ZigZagSettings) -> None:
    _WORKER_FILES.update({c[0]: c for c in cores})
    _WORKER_SETTINGS[:] = [settings]


def _build_core(files: CoreFiles, factor: int, settings: ZigZagSettings) -> ZigZagCore:
    name, core_path, mapping_path, dim = files
    return ZigZagCore(name, core_path, mapping_path, settings, (dim, factor) if dim and factor != 1 else None)


def _cost_job(core: str, factor: int, layer: dict[str, Any], label: str) -> dict[str, Any]:
    if (core, factor) not in _WORKER_CORES:
        _WORKER_CORES[(core, factor)] = _build_core(_WORKER_FILES[core], factor, _WORKER_SETTINGS[0])
    return _cost_or_error(_WORKER_CORES[(core, factor)], layer, label)


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
        self._files: dict[str, CoreFiles] = {
            c.name: (c.name, str(self.system.resolve(c.core)), str(self.system.resolve(c.mapping)),
                     c.precision_scaling.dimension if c.precision_scaling else None)
            for c in self.system.compute_cores
        }
        self._cores: dict[tuple[str, int], ZigZagCore] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._key_base = {"model": MODEL_VERSION, "zigzag": version("zigzag-dse"), "settings": asdict(self.settings)}
        self._file_hash = {
            name: hashlib.sha256(Path(f[1]).read_bytes() + b"\0" + Path(f[2]).read_bytes()).hexdigest()[:16]
            for name, f in self._files.items()
        }
        self.stats = {"hits": 0, "misses": 0}

    # --- plumbing --------------------------------------------------------------------------------
    def _core(self, name: str, factor: int) -> ZigZagCore:
        if (name, factor) not in self._cores:
            self._cores[(name, factor)] = _build_core(self._files[name], factor, self.settings)
        return self._cores[(name, factor)]

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(list(self._files.values()), self.settings),
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

    def _key(self, core: str, factor: int, layer: dict[str, Any]) -> str:
        files = self._files[core]
        variant = {"files": self._file_hash[core], "widen": [files[3], factor] if factor != 1 else None}
        return signature({**self._key_base, "core": variant, "layer": layer})

    # --- costs -----------------------------------------------------------------------------------
    def _compute(self, jobs: dict[str, tuple[str, int, dict[str, Any], str]]) -> dict[str, dict[str, Any]]:
        """Run ZigZag for cache misses (in workers when there are several)."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="ZigZag layers", unit="layer",
                   disable=not self.progress or len(jobs) < PROGRESS_MIN_LAYERS, leave=False)
        results: dict[str, dict[str, Any]] = {}
        try:
            if self.workers > 1 and len(jobs) > 1:
                try:
                    pool = self._executor()
                    futures = {pool.submit(_cost_job, *job): key for key, job in jobs.items()}
                    for future, key in futures.items():
                        results[key] = future.result()
                        bar.update()
                except BrokenProcessPool:
                    warnings.warn("cost-model worker processes could not start (a script that sets workers > 1 "
                                  "needs an `if __name__ == \"__main__\":` guard); continuing in this process",
                                  RuntimeWarning, stacklevel=3)
                    self._pool, self.workers = None, 1
            for key, (core, factor, layer, label) in jobs.items():
                if key not in results:
                    results[key] = _cost_or_error(self._core(core, factor), layer, label)
                    bar.update()
        finally:
            bar.close()
        return results

    def _options(self, spec: LayerLike) -> list[tuple[ComputeCoreSpec, str, tuple[str, int, dict[str, Any], str]]]:
        """(core, cache key, ZigZag job) for every core kind allowed to run a compute layer."""
        layer = zigzag_layer(spec)
        out = []
        for core in self.system.cores_for(ALLOCATION_KIND[kind(spec)]):
            factor = precision_factor(core, spec)
            out.append((core, self._key(core.name, factor, layer), (core.name, factor, layer, spec.name)))
        return out

    def layer_costs(self, specs: Sequence[LayerLike]) -> list[LayerCost]:
        """Cost of every layer (best allowed compute core for conv/FC); MappingError if none maps."""
        options = [self._options(s) if s.op in COMPUTE_OPS else [] for s in specs]
        wanted = {key: job for opts in options for _core, key, job in opts}
        found = self.cache.get_many(wanted)
        missing = {k: v for k, v in wanted.items() if k not in found}
        self.stats["hits"] += len(wanted) - len(missing)
        self.stats["misses"] += len(missing)
        if missing:
            computed = self._compute(missing)
            self.cache.put_many(computed)
            found.update(computed)
        out: list[LayerCost] = []
        for spec, opts in zip(specs, options):
            if spec.op == "maxpool":
                out.append(simple_core_cost(spec, self.system.pooling_core, self.system, "pooling"))
            elif spec.op == "add":
                out.append(simple_core_cost(spec, self.system.simd_core, self.system, "simd"))
            elif spec.op in COMPUTE_OPS:
                costs = [apply_mac_model(LayerCost(**found[key]), core, spec) for core, key, _job in opts
                         if "error" not in found[key]]
                if not costs:
                    reasons = "; ".join(f"{core.name}: {found[key]['error']}" for core, key, _job in opts)
                    raise MappingError(spec.name, "/".join(core.name for core, _k, _j in opts), reasons)
                out.append(min(costs, key=lambda c: c.energy_pj * c.latency_cycles))
            else:
                raise ValueError(f"{spec.name}: unknown op {spec.op!r}")
        return out

    def fill(self, specs: Sequence[LayerLike], batch: int = 64) -> dict[str, int]:
        """Cost every (layer, allowed core) pair not yet cached, ``batch`` at a time (each batch is
        committed, so an interrupted fill keeps its progress). Unmappable pairs are cached as such.
        Returns counts: ``pairs``, ``cached_before``, ``computed``, ``unmappable``."""
        from tqdm.auto import tqdm

        wanted = {key: job for s in specs if s.op in COMPUTE_OPS for _core, key, job in self._options(s)}
        missing = [k for k in wanted if k not in self.cache.get_many(wanted)]
        counts = {"pairs": len(wanted), "cached_before": len(wanted) - len(missing), "computed": 0, "unmappable": 0}
        progress, self.progress = self.progress, False
        try:
            with tqdm(total=len(missing), desc="filling the cost cache", unit="layer", disable=not progress) as bar:
                for start in range(0, len(missing), batch):
                    chunk = {k: wanted[k] for k in missing[start : start + batch]}
                    results = self._compute(chunk)
                    self.cache.put_many(results)
                    counts["computed"] += len(results)
                    counts["unmappable"] += sum("error" in r for r in results.values())
                    bar.update(len(chunk))
        finally:
            self.progress = progress
        return counts

    def evaluate(self, graph: nx.DiGraph, operating_point: str | None = None) -> NetworkCost:
        """Per-layer and per-exit-stage costs of a layer graph (layer-by-layer schedule).

        On a system with DVFS points, costs are reported at ``operating_point`` (default: the
        system's default point): latency in seconds at its clock, energy with V^2 scaling and
        static power (see :mod:`hwmodel.dvfs`).
        """
        names = list(nx.lexicographical_topological_sort(graph))
        layer_specs: list[LayerLike] = [graph.nodes[n]["spec"] for n in names]
        costs = self.layer_costs(layer_specs)
        layers = [LayerResult(s.name, s.op, s.stage, s.branch, s.macs, c) for s, c in zip(layer_specs, costs)]
        network = NetworkCost(self.system.name, list(graph.graph["exit_labels"]), layers, "layer_by_layer",
                              self.system.clock_hz)
        if self.system.dvfs is None and operating_point in (None, "nominal"):
            return network
        return network.at(self.system.operating_point(operating_point), self.system.reference_voltage_v)
