"""Stream-style scheduling on top of the per-layer engine: tiles, allocation, list scheduling.

    settings = ScheduleSettings(mode="fused", tile_rows=4, allocation="contiguous")
    schedule = schedule_network(graph, cost_model, settings)      # a Schedule (ops, exits, memory)
    cost = cost_model.evaluate(graph, settings)                    # the NetworkCost read off it

:meth:`CostModel.evaluate` is the one way to cost a network; it runs :func:`schedule_network`.
``mode="layer_by_layer"`` with one compute core reproduces the per-layer costs of
:meth:`CostModel.layer_costs` exactly.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx

from hwmodel.cost_model import CostModel, simple_core_cost
from hwmodel.scheduling.allocation import (
    HEURISTICS,
    LayerInfo,
    check_allocation,
    genetic_allocation,
    heuristic_allocation,
)
from hwmodel.scheduling.platform import Platform
from hwmodel.scheduling.result import Op, Schedule
from hwmodel.scheduling.scheduler import TileCost, list_schedule, simple_tile_cost
from hwmodel.scheduling.tiles import Tile, build_tiles
from hwmodel.zigzag_core import LayerCost, MappingError

__all__ = ["Op", "Platform", "Schedule", "ScheduleSettings", "schedule_network"]


@dataclass(frozen=True)
class ScheduleSettings:
    """How to schedule.

    ``mode``: ``layer_by_layer`` (the reference: whole layers, one at a time, through off-chip memory)
    or ``fused`` (row tiles, concurrent cores, on-chip reuse). ``tile_rows``: output rows per tile in
    fused mode (None: one tile per layer). ``allocation``: ``auto`` (``best_kind`` for layer-by-layer,
    ``contiguous`` for fused), a heuristic (``contiguous``, ``single``, ``round_robin``,
    ``best_kind``), ``genetic`` (search, fitness = the schedule's EDP) or a layer -> instance map.
    ``order``: ``depth_first`` (tiles by relative row position: streaming) or ``breadth_first``.
    """

    mode: Literal["layer_by_layer", "fused"] = "fused"
    tile_rows: int | None = 16
    allocation: Any = "auto"
    order: Literal["depth_first", "breadth_first"] = "depth_first"
    genetic_generations: int = 8
    genetic_population: int = 12
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("layer_by_layer", "fused"):
            raise ValueError(f"mode: expected 'layer_by_layer' or 'fused', got {self.mode!r}")
        if self.tile_rows is not None and self.tile_rows < 1:
            raise ValueError(f"tile_rows: expected a positive integer or null, got {self.tile_rows}")
        if isinstance(self.allocation, str) and self.allocation not in (*HEURISTICS, "genetic", "auto"):
            raise ValueError(f"allocation: expected one of {['auto', *HEURISTICS, 'genetic']} or a layer -> core "
                             f"map, got {self.allocation!r}")


def platform_of(cost_model: CostModel) -> Platform:
    """The platform of a cost model's system (built once per cost model)."""
    platform = getattr(cost_model, "_platform", None)
    if platform is None:
        platform = Platform(cost_model.system)
        cost_model._platform = platform  # type: ignore[attr-defined]
    return platform


def _tile_costs(tiles: list[Tile], cost_model: CostModel, fused: bool) -> list[dict[str, LayerCost | str]]:
    """Each ZigZag-costed tile's cost on every allowed core kind (interior tiles share one lookup);
    an empty dict for analytically costed pooling / add tiles."""
    unique: dict[tuple, int] = {}
    items: list[Any] = []
    index = []
    for tile in tiles:
        if not cost_model.zigzag_costed(tile.spec.op):
            index.append(-1)
            continue
        key = tile.shape_key()
        if key not in unique:
            unique[key] = len(items)
            items.append((tile.spec, tile.zigzag() if fused else None))
        index.append(unique[key])
    costs = cost_model.kind_costs(items, onchip=fused)
    return [costs[i] if i >= 0 else {} for i in index]


def layer_tiles(specs: list, cost_model: CostModel, settings: ScheduleSettings) -> list[tuple[Any, dict | None]]:
    """(spec, ZigZag dict) of every distinct tile the given layers split into under ``settings``
    (the whole layer, dict None, for layer-by-layer): what a schedule will ask the cache for."""
    if settings.mode != "fused":
        return [(spec, None) for spec in specs]
    weight_room = min((i.weight_bits for i in platform_of(cost_model).compute), default=None)
    out: dict[tuple, tuple[Any, dict]] = {}
    for spec in specs:
        graph = nx.DiGraph(exit_labels=[], exit_outputs=[])
        graph.add_node(spec.name or "layer", spec=spec)
        for tile in build_tiles(graph, settings.tile_rows, weight_room):
            out.setdefault(tile.shape_key(), (spec, tile.zigzag()))
    return list(out.values())


def _anchor(graph: nx.DiGraph, name: str) -> str | None:
    """For an exit-branch layer, the backbone layer its branch hangs off."""
    node = name
    while graph.nodes[node]["spec"].branch:
        node = next(iter(graph.predecessors(node)))
    return None if node == name else node


def _layer_infos(graph: nx.DiGraph, tiles: list[Tile], by_kind: list[dict[str, LayerCost | str]],
                 platform: Platform) -> list[LayerInfo]:
    per_layer: dict[str, dict[str, float]] = {}
    energy: dict[str, dict[str, float]] = {}
    reasons: dict[str, dict[str, str]] = {}
    for tile, costs in zip(tiles, by_kind):
        est = per_layer.setdefault(tile.layer, {})
        en = energy.setdefault(tile.layer, {})
        for kind, cost in costs.items():
            if isinstance(cost, LayerCost):
                est[kind] = est.get(kind, 0.0) + cost.latency_cycles
                en[kind] = en.get(kind, 0.0) + cost.energy_pj
            else:
                reasons.setdefault(tile.layer, {})[kind] = cost
    infos = []
    for name in nx.lexicographical_topological_sort(graph):
        spec = graph.nodes[name]["spec"]
        kinds = {k: v for k, v in per_layer.get(name, {}).items() if k not in reasons.get(name, {})}
        if name in reasons and not kinds:
            bad = reasons[name]
            raise MappingError(name, "/".join(bad), "; ".join(f"{k}: {r}" for k, r in bad.items()))
        allowed = tuple(i.name for i in platform.instances_of(list(kinds)))
        estimate = {i: kinds[platform.instances[i].kind] for i in allowed}
        edp = {i: kinds[platform.instances[i].kind] * energy[name][platform.instances[i].kind] for i in allowed}
        out_bits = spec.out_channels * spec.out_hw[0] * spec.out_hw[1] * spec.o_bits
        infos.append(LayerInfo(name, spec.op, allowed, estimate, edp, _anchor(graph, name), out_bits))
    return infos


def _costs_for(tiles: list[Tile], by_kind: list[dict[str, LayerCost | str]], allocation: dict[str, str],
               platform: Platform, cost_model: CostModel, fused: bool) -> list[TileCost]:
    out = []
    for tile, costs in zip(tiles, by_kind):
        inst = allocation[tile.layer]
        if costs:  # ZigZag-costed: keyed by core kind (pooling / simd for those cores)
            c = costs[platform.instances[inst].kind]
            assert isinstance(c, LayerCost)
            out.append(TileCost(c.latency_cycles, c.mac_energy_pj, c.mem_energy_pj - c.offchip_energy_pj,
                                c.offchip_energy_pj))
        elif fused:
            out.append(simple_tile_cost(tile, platform, inst))
        else:
            c = simple_core_cost(tile.spec, cost_model.system.simple_core(tile.spec.op)[1], cost_model.system, inst)
            out.append(TileCost(c.latency_cycles, c.mac_energy_pj, c.mem_energy_pj - c.offchip_energy_pj,
                                c.offchip_energy_pj))
    return out


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a schedule allocates thousands of small acyclic objects,
    and full collections triggered by them made 1 in 15 schedules 7x slower (refcounting frees them)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def schedule_network(graph: nx.DiGraph, cost_model: CostModel, settings: ScheduleSettings | None = None
                     ) -> Schedule:
    """Tile, allocate and list-schedule a layer graph on the cost model's system."""
    with _gc_paused():
        return _schedule_network(graph, cost_model, settings or ScheduleSettings())


def _schedule_network(graph: nx.DiGraph, cost_model: CostModel, settings: ScheduleSettings) -> Schedule:
    fused = settings.mode == "fused"
    platform = platform_of(cost_model)
    weight_room = min((i.weight_bits for i in platform.compute), default=None)
    tiles = build_tiles(graph, settings.tile_rows if fused else None, weight_room)
    by_kind = _tile_costs(tiles, cost_model, fused)
    infos = _layer_infos(graph, tiles, by_kind, platform)
    stage_of = {n: graph.nodes[n]["spec"].stage for n in graph.nodes}
    exits = list(graph.graph["exit_outputs"])

    def run(allocation: dict[str, str]) -> Schedule:
        costs = _costs_for(tiles, by_kind, allocation, platform, cost_model, fused)
        return list_schedule(tiles, platform, allocation, costs, mode=settings.mode, stage_of=stage_of,
                             exit_layers=exits, exit_labels=graph.graph["exit_labels"], tile_rows=settings.tile_rows
                             if fused else None, order=settings.order)

    if isinstance(settings.allocation, dict):
        allocation = check_allocation(settings.allocation, infos)
    elif settings.allocation == "genetic":
        def fitness(m: dict[str, str]) -> float:
            s = run(m)
            return s.energy_pj * s.makespan

        allocation, _score = genetic_allocation(infos, platform, fitness, generations=settings.genetic_generations,
                                                population=settings.genetic_population, seed=settings.seed)
    else:
        strategy = settings.allocation
        if strategy == "auto":
            strategy = "contiguous" if fused else "best_kind"
        allocation = heuristic_allocation(strategy, infos, platform)
    return run(allocation)
