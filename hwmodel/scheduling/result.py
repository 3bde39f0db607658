"""A schedule: every timed operation with its resource and energy, exit times and memory occupancy."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import networkx as nx

from hwmodel.accounting import LayerResult, NetworkCost
from hwmodel.zigzag_core import LayerCost

ENERGY_PARTS = ("mac", "onchip", "offchip", "interconnect")


@dataclass
class Op:
    """One timed operation. ``kind``: compute (a tile), transfer (over links) or offchip (DRAM).

    Times in cycles; ``energy_pj`` split into MAC, on-chip memory, off-chip and interconnect parts.
    """

    kind: str
    name: str
    resource: str
    start: float
    end: float
    energy_pj: dict[str, float]
    layer: str
    stage: int
    tile: int | None = None

    @property
    def total_pj(self) -> float:
        return sum(self.energy_pj.values())


@dataclass
class Schedule:
    """The result of scheduling one network on one platform."""

    mode: str
    system: str
    exit_labels: list[str]
    ops: list[Op]
    exit_times: list[float]
    allocation: dict[str, str]  # layer -> instance
    tile_rows: int | None
    tile_count: int
    stored: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)  # instance -> (from, to, bits)
    capacity: dict[str, int] = field(default_factory=dict)  # instance -> activation bits
    producers: dict[int, list[int]] = field(default_factory=dict)  # tile -> the tiles it reads

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (:meth:`from_dict` rebuilds the schedule, e.g. to redraw its plots)."""
        return {**asdict(self), "producers": {str(k): v for k, v in self.producers.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        return cls(**{**data, "ops": [Op(**op) for op in data["ops"]],
                      "stored": {k: [tuple(v) for v in spans] for k, spans in data.get("stored", {}).items()},
                      "producers": {int(k): v for k, v in data.get("producers", {}).items()}})

    @property
    def makespan(self) -> float:
        """When the last operation ends (cycles)."""
        return max((op.end for op in self.ops), default=0.0)

    @property
    def energy_pj(self) -> float:
        return sum(op.total_pj for op in self.ops)

    def breakdown(self) -> dict[str, float]:
        """Energy (pJ) per part."""
        out = dict.fromkeys(ENERGY_PARTS, 0.0)
        for op in self.ops:
            for part, value in op.energy_pj.items():
                out[part] += value
        return out

    def energy_until(self, t: float) -> float:
        """Energy (pJ) spent by time ``t``: operations that end by then in full, running ones pro rata."""
        total = 0.0
        for op in self.ops:
            if op.end <= t:
                total += op.total_pj
            elif op.start < t:
                total += op.total_pj * (t - op.start) / (op.end - op.start)
        return total

    def occupancy(self, instance: str) -> list[tuple[float, int]]:
        """Stored activation bits on ``instance`` as steps (time, bits from then on)."""
        events: dict[float, int] = defaultdict(int)
        for start, end, bits in self.stored.get(instance, []):
            events[start] += bits
            events[end] -= bits
        steps, level = [], 0
        for t in sorted(events):
            level += events[t]
            steps.append((t, level))
        return steps

    def peak_occupancy(self, instance: str) -> int:
        return max((bits for _t, bits in self.occupancy(instance)), default=0)

    def layer_results(self) -> list[LayerResult]:
        """Per layer: its compute tiles summed (energy pJ, busy cycles), for per-layer tables."""
        acc: dict[str, dict[str, Any]] = {}
        for op in self.ops:
            if op.kind != "compute":
                continue
            row = acc.setdefault(op.layer, {"energy": 0.0, "mac": 0.0, "mem": 0.0, "cycles": 0.0,
                                            "stage": op.stage, "core": op.resource})
            row["energy"] += op.total_pj
            row["mac"] += op.energy_pj.get("mac", 0.0)
            row["mem"] += op.total_pj - op.energy_pj.get("mac", 0.0)
            row["cycles"] += op.end - op.start
        return [LayerResult(name, "", r["stage"], False, 0,
                            LayerCost(r["energy"], r["cycles"], r["mac"], r["mem"], r["cycles"], 0.0, r["core"]))
                for name, r in acc.items()]

    def network_cost(self, clock_hz: float, graph: nx.DiGraph | None = None) -> NetworkCost:
        """Per-exit accounting read off the timeline: L_cum(i) = exit i's finish time, E_cum(i) = the
        energy spent by then; the whole schedule gives the full-path energy and latency. With the
        scheduled ``graph``, the per-layer rows carry its specs' op, stage, branch and MACs, in
        topological order; ``clock_hz``: the clock that turns cycles into seconds."""
        layers = self.layer_results()
        if graph is not None:
            busy = {r.name: r for r in layers}
            layers = []
            for name in nx.lexicographical_topological_sort(graph):
                spec = graph.nodes[name]["spec"]
                layers.append(LayerResult(name, spec.op, spec.stage, spec.branch, spec.macs, busy[name].cost))
        return NetworkCost(
            system=self.system,
            exit_labels=self.exit_labels,
            layers=layers,
            cumulative_energy_pj=[self.energy_until(t) for t in self.exit_times],
            cumulative_latency_cycles=list(self.exit_times),
            total_energy_pj=self.energy_pj,
            total_latency_cycles=self.makespan,
            mode=self.mode,
            clock_hz=clock_hz,
            schedule=self,
        )

    def summary_table(self) -> str:
        """Plain-text table: per resource busy time and energy, per exit finish time, energy parts."""
        busy: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
        for op in self.ops:
            row = busy[op.resource]
            row[0] += op.end - op.start
            row[1] += op.total_pj
            row[2] += 1
        span = self.makespan or 1.0
        lines = [f"schedule: {self.mode}, {self.tile_count} tiles (tile_rows={self.tile_rows}), "
                 f"makespan {self.makespan:,.0f} cycles, energy {self.energy_pj / 1e6:,.2f} uJ",
                 f"{'resource':24s} {'ops':>6s} {'busy cycles':>12s} {'busy %':>7s} {'energy uJ':>10s}"]
        for name in sorted(busy):
            cycles, energy, count = busy[name]
            lines.append(f"{name:24s} {count:6d} {cycles:12,.0f} {100 * cycles / span:6.1f}% {energy / 1e6:10.3f}")
        lines.append("exit finish times: " + ", ".join(f"{lbl}={t:,.0f}" for lbl, t in zip(self.exit_labels,
                                                                                          self.exit_times)))
        lines.append("energy: " + ", ".join(f"{k} {v / 1e6:.2f} uJ" for k, v in self.breakdown().items()))
        return "\n".join(lines)
