"""Per-layer costs of layer graphs on an accelerator system, cached on disk.

Layer-by-layer schedule (the reference's): one layer at a time; each convolution and FC layer runs
on the allowed compute-core kind (``allocation`` in the system file) that gives it the lowest EDP
under ZigZag; pooling runs on the pooling core and element-wise adds on the SIMD core, under ZigZag
too when the system describes those cores with core files (else by the analytical model of
:func:`simple_core_cost`); every layer reads its inputs from and writes its outputs to off-chip
memory. Stage latency is the sum of its layers' latencies.

Precision (:mod:`hwmodel.precision`): a precision-scalable core is costed on its widened variant,
and ZigZag's bit-blind MAC energy is replaced by the core's MAC-energy model. The cache stores raw
ZigZag results keyed by what ZigZag sees (core and mapping files, array variant, layer, settings,
versions), so those models can change without invalidating it.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import multiprocessing
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, replace
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from hwmodel.accounting import NetworkCost
from hwmodel.cache import CostCache, resolve_cache_path
from hwmodel.system import SIMPLE_OPS, ComputeCoreSpec, SimpleCoreSpec, SystemSpec, load_system
from hwmodel.workload import COMPUTE_OPS, LayerLike, kind, signature, zigzag_layer
from hwmodel.zigzag_core import LayerCost, MappingError, ZigZagCore, ZigZagSettings

if TYPE_CHECKING:
    from hwmodel.scheduling import ScheduleSettings

MODEL_VERSION = "3"  # bump when what is cached changes meaning (invalidates cached entries)
PROGRESS_MIN_LAYERS = 16  # show a progress bar only for batches of cache misses at least this large
ALLOCATION_KIND = {"default": "conv", "depthwise": "depthwise", "fc": "fc"}


def simple_core_cost(spec: LayerLike, core: SimpleCoreSpec, system: SystemSpec, core_name: str) -> LayerCost:
    """Analytical cost of pooling / element-wise add on a core given as ``units`` ops per cycle at
    ``energy_per_op_pj`` (no core file), data via off-chip.

    Energy (pJ) = ops * energy_per_op + bits moved * off-chip energy per bit; latency (cycles) =
    max(ops / units, bits moved / off-chip bandwidth).
    """
    units, energy_per_op = core.analytical(core_name)
    inputs = 2 if spec.op == "add" else 1
    in_bits = inputs * spec.in_channels * spec.in_hw[0] * spec.in_hw[1] * spec.a_bits
    out_bits = spec.out_channels * spec.out_hw[0] * spec.out_hw[1] * spec.o_bits
    moved = in_bits + out_bits
    compute = math.ceil(spec.ops / units)
    transfer = math.ceil(moved / system.offchip.bandwidth_bits_per_cycle)
    op_energy = spec.ops * energy_per_op
    mem_energy = moved * system.offchip.energy_per_bit_pj
    return LayerCost(
        energy_pj=op_energy + mem_energy,
        latency_cycles=float(max(compute, transfer)),
        mac_energy_pj=op_energy,
        mem_energy_pj=mem_energy,
        ideal_cycles=float(compute),
        spatial_utilization=min(1.0, spec.ops / max(1, compute * units)),
        core=core_name,
        offchip_energy_pj=mem_energy,
    )


def best_cost(name: str, by_core: dict[str, LayerCost | str]) -> LayerCost:
    """The lowest-EDP cost among core kinds; MappingError (with every reason) if none maps."""
    costs = [c for c in by_core.values() if isinstance(c, LayerCost)]
    if not costs:
        reasons = "; ".join(f"{core}: {reason}" for core, reason in by_core.items())
        raise MappingError(name, "/".join(by_core), reasons)
    return min(costs, key=lambda c: c.energy_pj * c.latency_cycles)


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
_WORKER_CORES: dict[tuple[str, int, bool], ZigZagCore] = {}
_WORKER_SETTINGS: list[ZigZagSettings] = []


def _init_worker(cores: list[CoreFiles], settings: ZigZagSettings) -> None:
    _WORKER_FILES.update({c[0]: c for c in cores})
    _WORKER_SETTINGS[:] = [settings]


def _warm_worker(variants: list[Variant]) -> None:
    """Import ZigZag's stages and build the cores a worker will cost on (what its first job would do)."""
    for module in ("evaluation.cost_model_evaluation", "mapping.spatial_mapping_generation",
                   "mapping.temporal_mapping_generator_stage"):
        importlib.import_module(f"zigzag.stages.{module}")
    for variant in variants:
        try:
            _worker_core(variant)
        except Exception:  # noqa: BLE001 - a job that needs this core reports the reason itself
            continue


Variant = tuple[str, int, bool]  # core kind, precision factor, on-chip (fused) variant
Job = tuple[Variant, dict[str, Any], str]  # variant, ZigZag layer dict, label for errors
Option = tuple[str, ComputeCoreSpec | None, str, Job]  # core name, compute-core spec (None: pooling/SIMD), key, job


def _build_core(files: CoreFiles, factor: int, onchip: bool, settings: ZigZagSettings) -> ZigZagCore:
    name, core_path, mapping_path, dim = files
    return ZigZagCore(name, core_path, mapping_path, settings, (dim, factor) if dim and factor != 1 else None, onchip)


def _worker_core(variant: Variant) -> ZigZagCore:
    """This worker's core for ``variant``, built on first use."""
    if variant not in _WORKER_CORES:
        core, factor, onchip = variant
        _WORKER_CORES[variant] = _build_core(_WORKER_FILES[core], factor, onchip, _WORKER_SETTINGS[0])
    return _WORKER_CORES[variant]


def _cost_job(variant: Variant, layer: dict[str, Any], label: str) -> dict[str, Any]:
    return _cost_or_error(_worker_core(variant), layer, label)


def _job_size(layer: dict[str, Any]) -> int:
    """Iteration-space size of a ZigZag layer dict (a proxy for how long its mapping search takes)."""
    return math.prod(int(v) for v in layer.get("loop_sizes", [1]))


def _cost_or_error(core: ZigZagCore, layer: dict[str, Any], label: str) -> dict[str, Any]:
    try:
        return core.cost(layer, label).to_dict()
    except MappingError as exc:
        return {"error": exc.reason}


class CostModel:
    """Costs layer graphs on one system. Reuse one instance: cores are parsed once, workers kept.

    ``cache``: a :class:`CostCache`, a path, ``"default"`` (the user cache folder) or ``None``
    (memory only). ``workers``: processes that cost layers missing from the cache, this one included
    (1 = in process; n spawns n - 1 helpers and this process takes jobs too, so the first misses are
    costed while the helpers still import ZigZag).
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
            self.cache = CostCache(resolve_cache_path(cache))
        self.workers = max(1, int(workers))
        self.progress = progress
        self._files: dict[str, CoreFiles] = {
            c.name: (c.name, str(self.system.resolve(c.core)), str(self.system.resolve(c.mapping)),
                     c.precision_scaling.dimension if c.precision_scaling else None)
            for c in self.system.compute_cores
        }
        for op in SIMPLE_OPS:
            name, simple = self.system.simple_core(op)
            if simple.core and simple.mapping:
                self._files[name] = (name, str(self.system.resolve(simple.core)),
                                     str(self.system.resolve(simple.mapping)), None)
        self._cores: dict[Variant, ZigZagCore] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._key_base = {"model": MODEL_VERSION, "zigzag": version("zigzag-dse"), "settings": asdict(self.settings)}
        self._file_hash = {
            name: hashlib.sha256(Path(f[1]).read_bytes() + b"\0" + Path(f[2]).read_bytes()).hexdigest()[:16]
            for name, f in self._files.items()
        }
        self.stats = {"hits": 0, "misses": 0, "in_process": 0}  # in_process: misses costed by this process

    # --- plumbing --------------------------------------------------------------------------------
    def _core(self, variant: Variant) -> ZigZagCore:
        if variant not in self._cores:
            name, factor, onchip = variant
            self._cores[variant] = _build_core(self._files[name], factor, onchip, self.settings)
        return self._cores[variant]

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers - 1,  # this process is the last worker
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(list(self._files.values()), self.settings),
            )
        return self._pool

    def start_workers(self, onchip: bool = True) -> None:
        """Start the helper processes now, without waiting: each imports ZigZag and builds its cores
        (plain and, with ``onchip``, the fused-schedule variant) while the caller loads other things,
        so the first cache miss does not pay for it (this process imports ZigZag on its first job, while
        the helpers already cost theirs). Nothing to do with one worker."""
        if self.workers < 2 or self._pool is not None:
            return
        distinct = {self._file_hash[name]: name for name in self._files}  # identical cores share their costs
        variants = [(name, 1, o) for name in distinct.values() for o in ((False, True) if onchip else (False,))]
        try:
            pool = self._executor()
            for _ in range(self.workers - 1):
                pool.submit(_warm_worker, variants)
        except (BrokenProcessPool, RuntimeError):
            self._pool = None  # _compute warns and falls back to this process

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

    def _key(self, variant: Variant, layer: dict[str, Any]) -> str:
        core, factor, onchip = variant
        files = self._files[core]
        desc: dict[str, Any] = {"files": self._file_hash[core], "widen": [files[3], factor] if factor != 1 else None}
        if onchip:
            desc["onchip"] = True
        return signature({**self._key_base, "core": desc, "layer": layer})

    # --- costs -----------------------------------------------------------------------------------
    def _compute(self, jobs: dict[str, Job]) -> dict[str, dict[str, Any]]:
        """Run ZigZag for cache misses (in workers when there are several)."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="ZigZag layers", unit="layer",
                   disable=not self.progress or len(jobs) < PROGRESS_MIN_LAYERS, leave=False)
        results: dict[str, dict[str, Any]] = {}
        try:
            if self.workers > 1 and len(jobs) > 1:
                try:
                    pool = self._executor()
                    # the helpers take the longest jobs first; this process takes the shortest ones from
                    # the other end for as long as it can withdraw them before a helper starts them
                    order = sorted(jobs, key=lambda k: -_job_size(jobs[k][1]))
                    futures = [(key, pool.submit(_cost_job, *jobs[key])) for key in order]
                    for key, future in reversed(futures):
                        if not future.cancel():
                            break
                        results[key] = self._cost_here(jobs[key])
                        bar.update()
                    for key, future in futures:
                        if key not in results:
                            results[key] = future.result()
                            bar.update()
                except BrokenProcessPool:
                    warnings.warn("cost-model worker processes could not start (a script that sets workers > 1 "
                                  "needs an `if __name__ == \"__main__\":` guard); continuing in this process",
                                  RuntimeWarning, stacklevel=3)
                    self._pool, self.workers = None, 1
            for key, job in jobs.items():
                if key not in results:
                    results[key] = self._cost_here(job)
                    bar.update()
        finally:
            bar.close()
        return results

    def _cost_here(self, job: Job) -> dict[str, Any]:
        """Run one ZigZag job in this process."""
        variant, layer, label = job
        self.stats["in_process"] += 1
        return _cost_or_error(self._core(variant), layer, label)

    def zigzag_costed(self, op: str) -> bool:
        """True when ZigZag costs layers of this op here: conv and FC always, max-pooling and adds when
        the system describes its pooling / SIMD core with a core file."""
        return op in COMPUTE_OPS or (op in SIMPLE_OPS and self.system.simple_core(op)[0] in self._files)

    def _options(self, spec: LayerLike, layer: dict[str, Any] | None = None, onchip: bool = False
                 ) -> list[Option]:
        """(core name, its compute-core spec or None for the pooling / SIMD core, cache key, ZigZag job)
        for every core allowed to run the layer under ZigZag ([] for an analytically costed layer).
        ``layer`` overrides the ZigZag dict (a tile of ``spec``); ``onchip`` selects the fused variant."""
        if spec.op in COMPUTE_OPS:
            cores: list[tuple[str, ComputeCoreSpec | None, int]] = [
                (c.name, c, precision_factor(c, spec)) for c in self.system.cores_for(ALLOCATION_KIND[kind(spec)])]
        elif self.zigzag_costed(spec.op):
            cores = [(self.system.simple_core(spec.op)[0], None, 1)]
        else:
            return []
        layer = layer if layer is not None else zigzag_layer(spec)
        out = []
        for name, core, factor in cores:
            variant = (name, factor, onchip)
            out.append((name, core, self._key(variant, layer), (variant, layer, spec.name)))
        return out

    def _lookup(self, options: Sequence[list[Option]]) -> dict[str, dict[str, Any]]:
        """Cached or freshly computed raw results for every option's key."""
        wanted = {key: job for opts in options for _name, _core, key, job in opts}
        found = self.cache.get_many(wanted)
        missing = {k: v for k, v in wanted.items() if k not in found}
        self.stats["hits"] += len(wanted) - len(missing)
        self.stats["misses"] += len(missing)
        if missing:
            computed = self._compute(missing)
            self.cache.put_many(computed)
            found.update(computed)
        return found

    def kind_costs(self, items: Sequence[tuple[LayerLike, dict[str, Any] | None]], onchip: bool = False
                   ) -> list[dict[str, LayerCost | str]]:
        """For each (layer spec, ZigZag dict or None) the cost on every allowed core kind, keyed by
        core name (``pooling`` / ``simd`` for the ZigZag-costed pooling and SIMD cores; an empty row for
        an analytically costed layer); a string instead of a cost is the reason ZigZag could not map it."""
        options = [self._options(spec, layer, onchip) for spec, layer in items]
        found = self._lookup(options)
        out: list[dict[str, LayerCost | str]] = []
        for (spec, _layer), opts in zip(items, options):
            row: dict[str, LayerCost | str] = {}
            for name, core, key, _job in opts:
                raw = found[key]
                cost = raw["error"] if "error" in raw else LayerCost(**raw)
                row[name] = apply_mac_model(cost, core, spec) if core and isinstance(cost, LayerCost) else cost
            out.append(row)
        return out

    def layer_costs(self, specs: Sequence[LayerLike]) -> list[LayerCost]:
        """Cost of every layer (best allowed compute core for conv/FC; the pooling / SIMD core for
        max-pooling / adds, analytical where the system gives no core file); MappingError if none maps."""
        unknown = [s for s in specs if s.op not in (*COMPUTE_OPS, *SIMPLE_OPS)]
        if unknown:
            raise ValueError(f"{unknown[0].name}: unknown op {unknown[0].op!r}")
        costed = [s for s in specs if self.zigzag_costed(s.op)]
        per_kind = iter(self.kind_costs([(s, None) for s in costed]))
        out: list[LayerCost] = []
        for spec in specs:
            if self.zigzag_costed(spec.op):
                out.append(best_cost(spec.name, next(per_kind)))
            else:
                name, core = self.system.simple_core(spec.op)
                out.append(simple_core_cost(spec, core, self.system, name))
        return out

    def fill(self, items: Sequence[tuple[LayerLike, dict[str, Any] | None]], batch: int = 64, onchip: bool = False
             ) -> dict[str, int]:
        """Cost every (layer or tile, allowed core) pair not yet cached, ``batch`` at a time (each batch
        is committed, so an interrupted fill keeps its progress). Unmappable pairs are cached as such.
        ``items``: (layer spec, ZigZag dict of a tile or None for the whole layer); ``onchip``: the
        fused-schedule variants. Returns counts: ``pairs``, ``cached_before``, ``computed``, ``unmappable``."""
        from tqdm.auto import tqdm

        wanted = {key: job for spec, layer in items for _name, _core, key, job in self._options(spec, layer, onchip)}
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

    def evaluate(self, graph: nx.DiGraph, schedule: ScheduleSettings | None = None,
                 operating_point: str | None = None) -> NetworkCost:
        """The one way to cost a network: ``graph`` scheduled on the system by
        :func:`hwmodel.scheduling.schedule_network` (``schedule``: default ``ScheduleSettings()``,
        layer-fused as in the config; ``mode="layer_by_layer"`` is the reference's schedule), read as a
        :class:`NetworkCost` with per-exit accounting (energy J, latency cycles and s).

        On a system with DVFS points, costs are reported at ``operating_point`` (default: the
        system's default point): latency in seconds at its clock, energy with V^2 scaling and
        static power (see :mod:`hwmodel.dvfs`).
        """
        from hwmodel.scheduling import ScheduleSettings, schedule_network

        result = schedule_network(graph, self, schedule if schedule is not None else ScheduleSettings())
        return self.at_operating_point(result.network_cost(self.system.clock_hz, graph), operating_point)

    def at_operating_point(self, network: NetworkCost, operating_point: str | None = None) -> NetworkCost:
        """``network`` at one of the system's DVFS points (default: its default point); unchanged on a
        system without DVFS points. The one place DVFS is applied to a network's cost."""
        if self.system.dvfs is None and operating_point in (None, "nominal"):
            return network
        return network.at(self.system.operating_point(operating_point), self.system.reference_voltage_v)
