"""List scheduling of tiles on a platform: one code path for layer-by-layer and layer-fused runs.

Tiles are taken from a ready list by priority (exit stage first, so classifiers finish early; then
depth-first by relative row position, or breadth-first by layer) and placed on their allocated
core at the earliest time its inputs, weights and the core itself are available.

Fused mode (tiles costed on the cores' on-chip variants; the scheduler accounts the rest):

- inputs: from the same core for free; from another core over the routed links (FIFO per link,
  so transfers contend); from off-chip if the producer's output was spilled; the network input is
  read from off-chip. Off-chip is one FIFO channel shared by every core;
- weights: loaded once per core and kept while they fit the core's weight memory (LRU); a layer
  whose weights exceed it re-streams them for every tile; a load may start once the core has started
  its previous tile (double-buffered weights);
- activation memory: a tile's output stays in its core's on-chip memory until its last consumer
  finishes; if it does not fit when produced, it is written to off-chip (and read back by consumers);
- exit logits are written to off-chip; an exit's time is when that write ends.

Layer-by-layer mode: one tile per layer costed with the full memory hierarchy (ZigZag already
includes every off-chip access), one layer at a time, no transfers: on one core this reproduces the
per-layer engine's sums exactly.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hwmodel.scheduling.platform import POOLING, SIMD, Instance, Platform
from hwmodel.scheduling.result import Op, Schedule
from hwmodel.scheduling.tiles import Tile


@dataclass(frozen=True)
class TileCost:
    """Cycles and energy (pJ, by part) of one tile on its allocated core."""

    cycles: float
    mac_pj: float
    onchip_pj: float
    offchip_pj: float = 0.0  # layer-by-layer tiles: off-chip traffic inside the per-layer cost


def _priority(tile: Tile, stage: int, order: str) -> tuple:
    position = tile.row0 / max(1, tile.spec.out_hw[0])
    if order == "depth_first":
        return (stage, position, tile.order, tile.row0)
    return (stage, tile.order, tile.row0)


class _Memory:
    """Activation bits stored on one core over time (conservative: unknown ends count as alive)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.live: dict[int, list[Any]] = {}  # tile -> [start (cycles), end or None, bits]
        self.done: list[tuple[float, float, int]] = []

    def used_at(self, t: float) -> int:
        return sum(b for s, e, b in self.live.values() if s <= t and (e is None or e > t))

    def store(self, tile: int, t: float, bits: int) -> bool:
        if self.used_at(t) + bits > self.capacity:
            return False
        self.live[tile] = [t, None, bits]
        return True

    def release(self, tile: int, t: float) -> None:
        start, _end, bits = self.live.pop(tile)
        self.done.append((start, t, bits))


def list_schedule(
    tiles: Sequence[Tile],
    platform: Platform,
    allocation: dict[str, str],
    costs: Sequence[TileCost],
    *,
    mode: str,
    stage_of: dict[str, int],
    exit_layers: Sequence[str],
    exit_labels: Sequence[str],
    tile_rows: int | None,
    order: str = "depth_first",
) -> Schedule:
    """Schedule ``tiles`` (with ``costs`` on their allocated cores); see the module docstring."""
    fused = mode == "fused"
    ops: list[Op] = []
    core_free: dict[str, float] = dict.fromkeys(platform.instances, 0.0)
    last_start: dict[str, float] = dict.fromkeys(platform.instances, 0.0)
    link_free: dict[str, float] = {}
    offchip_free = 0.0
    serial_free = 0.0
    end: list[float] = [0.0] * len(tiles)
    spilled: dict[int, float] = {}  # tile -> time its output is in off-chip memory
    consumers_left = [len(t.succs) for t in tiles]
    consumed_by = [0.0] * len(tiles)  # latest end among the consumers scheduled so far
    memory = {i.name: _Memory(i.activation_bits) for i in platform.compute}
    resident: dict[str, OrderedDict[str, tuple[int, float]]] = {i.name: OrderedDict() for i in platform.compute}
    exit_set = {name: k for k, name in enumerate(exit_layers)}
    exit_times = [0.0] * len(exit_layers)

    def offchip(name: str, bits: int, ready: float, pj: float, tile: Tile) -> float:
        nonlocal offchip_free
        start = max(offchip_free, ready)
        finish = start + platform.offchip_cycles(bits)
        offchip_free = finish
        ops.append(Op("offchip", name, "offchip", start, finish, {"offchip": bits * platform.offchip_pj_per_bit,
                                                                  "onchip": pj}, tile.layer, stage_of[tile.layer],
                      tile.index))
        return finish

    def transfer(src: str, dst: str, bits: int, ready: float, tile: Tile) -> float:
        links = platform.route(src, dst)
        start = max([ready, *(link_free.get(link, 0.0) for link in links)])
        finish = start + platform.link_cycles(bits)
        for link in links:
            link_free[link] = finish
        a, b = platform.instances[src], platform.instances[dst]
        ops.append(Op("transfer", f"{tiles[tile.index].name} <- {src}", "+".join(links), start, finish,
                      {"interconnect": bits * len(links) * platform.link_pj_per_bit,
                       "onchip": bits * (a.act_read_pj_per_bit + b.act_write_pj_per_bit)},
                      tile.layer, stage_of[tile.layer], tile.index))
        return finish

    indegree = [len(t.preds) for t in tiles]
    ready_heap = [(_priority(t, stage_of[t.layer], order), t.index) for t in tiles if not t.preds]
    heapq.heapify(ready_heap)
    while ready_heap:
        _prio, idx = heapq.heappop(ready_heap)
        tile = tiles[idx]
        inst = allocation[tile.layer]
        instance = platform.instances[inst]
        ready = core_free[inst]
        if not fused:
            ready = max(ready, serial_free, *(end[d.src] for d in tile.preds))
        else:
            for dep in tile.preds:
                src_inst = allocation[tiles[dep.src].layer]
                if dep.src in spilled:
                    arrival = offchip(f"reload {tiles[dep.src].name}", dep.bits, spilled[dep.src],
                                      dep.bits * instance.act_write_pj_per_bit, tile)
                elif src_inst == inst:
                    arrival = end[dep.src]
                else:
                    arrival = transfer(src_inst, inst, dep.bits, end[dep.src], tile)
                ready = max(ready, arrival)
            if not tile.preds:  # reads the network input from off-chip
                ready = max(ready, offchip(f"input {tile.name}", tile.in_bits, 0.0,
                                           tile.in_bits * instance.act_write_pj_per_bit, tile))
            if tile.spec.op in ("conv", "fc") and tile.weight_bits:
                ready = max(ready, _weights(tile, inst, instance, resident[inst], last_start[inst], offchip))
        cost = costs[idx]
        start, finish = ready, ready + cost.cycles
        core_free[inst] = finish
        last_start[inst] = start
        serial_free = finish
        end[idx] = finish
        ops.append(Op("compute", tile.name, inst, start, finish, {"mac": cost.mac_pj, "onchip": cost.onchip_pj,
                                                                  "offchip": cost.offchip_pj},
                      tile.layer, stage_of[tile.layer], idx))
        if fused:
            for dep in tile.preds:  # inputs consumed: free producers once every consumer has finished
                consumers_left[dep.src] -= 1
                consumed_by[dep.src] = max(consumed_by[dep.src], finish)
                src_inst = allocation[tiles[dep.src].layer]
                if consumers_left[dep.src] == 0 and src_inst in memory and dep.src in memory[src_inst].live:
                    memory[src_inst].release(dep.src, consumed_by[dep.src])
            if tile.succs and inst in memory and not memory[inst].store(idx, finish, tile.out_bits):
                spilled[idx] = offchip(f"spill {tile.name}", tile.out_bits, finish,
                                       tile.out_bits * instance.act_read_pj_per_bit, tile)
        if tile.layer in exit_set and tile.row0 + tile.rows == tile.spec.out_hw[0]:
            done = finish
            if fused:
                done = offchip(f"logits {tile.layer}", tile.out_bits, finish,
                               tile.out_bits * instance.act_read_pj_per_bit, tile)
            exit_times[exit_set[tile.layer]] = done
        for dep in tile.succs:
            indegree[dep.dst] -= 1
            if indegree[dep.dst] == 0:
                succ = tiles[dep.dst]
                heapq.heappush(ready_heap, (_priority(succ, stage_of[succ.layer], order), dep.dst))
    if any(d > 0 for d in indegree):
        raise RuntimeError("tile graph has a cycle")
    stored = {name: mem.done + [(s, max(end), b) for s, _e, b in mem.live.values()]
              for name, mem in memory.items()}
    return Schedule(mode, platform.system.name, list(exit_labels), ops, exit_times, dict(allocation), tile_rows,
                    len(tiles), stored, {name: mem.capacity for name, mem in memory.items()},
                    {t.index: [d.src for d in t.preds] for t in tiles})


def _weights(tile: Tile, inst: str, instance: Instance, resident: OrderedDict[str, tuple[int, float]],
             prefetch_from: float, offchip: Callable[[str, int, float, float, Tile], float]) -> float:
    """When the tile's weights are on its core: resident (once per core), loaded (LRU) or streamed."""
    bits = tile.weight_bits
    pj = bits * instance.weight_write_pj_per_bit
    if bits > instance.weight_bits:  # does not fit: stream the layer's weights for this tile
        return offchip(f"weights {tile.layer} (streamed) -> {inst}", bits, prefetch_from, pj, tile)
    if tile.layer in resident:
        resident.move_to_end(tile.layer)
        return resident[tile.layer][1]
    while sum(b for b, _t in resident.values()) + bits > instance.weight_bits:
        resident.popitem(last=False)
    arrival = offchip(f"weights {tile.layer} -> {inst}", bits, prefetch_from, pj, tile)
    resident[tile.layer] = (bits, arrival)
    return arrival


def simple_tile_cost(tile: Tile, platform: Platform, instance: str) -> TileCost:
    """Pooling / SIMD tile in a fused schedule on a core without a core file (analytical):
    ``units`` ops per cycle at ``energy_per_op_pj``."""
    assert instance in (POOLING, SIMD)
    units, energy_per_op = platform.system.simple_core(tile.spec.op)[1].analytical(instance)
    return TileCost(float(math.ceil(tile.ops / units)), tile.ops * energy_per_op, 0.0)
