"""Network-level costs of an early-exit network and the reference's exit accounting.

An EENN with exits e_1 < ... < e_N (e_N final) is cut into N stages: stage i = the backbone layers
after exit i-1 up to exit i's mounting point, plus classifier i. With stage energies E_i (J) and
latencies L_i (cycles) from one schedule:

- E_cum(i) = sum_{j<=i} E_j, L_cum(i) = sum_{j<=i} L_j
- ET_i = E_cum(i) * L_cum(i)                      (J x cycles)
- expected EDP = sum_i r_i * ET_i                  (r_i = fraction of samples leaving at exit i)
- static baseline = E_static * L_static of the same backbone with only its final exit
- reduction factor = static baseline / expected EDP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hwmodel.dvfs import OperatingPoint, static_energy_pj, voltage_scale
from hwmodel.zigzag_core import LayerCost

PJ = 1e-12  # J per pJ


@dataclass(frozen=True)
class LayerResult:
    """One layer's cost within a network (energy pJ, latency cycles)."""

    name: str
    op: str
    stage: int
    branch: bool
    macs: int
    cost: LayerCost


@dataclass
class NetworkCost:
    """Per-layer and per-exit-stage costs of one network on one system (one schedule)."""

    system: str
    exit_labels: list[str]
    layers: list[LayerResult]
    mode: str = "layer_by_layer"
    clock_hz: float = 1.0e9
    stage_energy_pj: list[float] = field(init=False)
    stage_latency_cycles: list[float] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.exit_labels)
        self.stage_energy_pj = [0.0] * n
        self.stage_latency_cycles = [0.0] * n
        for layer in self.layers:
            self.stage_energy_pj[layer.stage] += layer.cost.energy_pj
            self.stage_latency_cycles[layer.stage] += layer.cost.latency_cycles

    @property
    def energy_j(self) -> float:
        """Energy of the path through every exit (J)."""
        return sum(self.stage_energy_pj) * PJ

    @property
    def latency_cycles(self) -> float:
        """Latency of the path through every exit (cycles)."""
        return sum(self.stage_latency_cycles)

    @property
    def edp(self) -> float:
        """Energy-delay product of the full path (J x cycles)."""
        return self.energy_j * self.latency_cycles

    @property
    def cumulative_energy_j(self) -> list[float]:
        """E_cum(i) in J."""
        return _cumsum([e * PJ for e in self.stage_energy_pj])

    @property
    def cumulative_latency_cycles(self) -> list[float]:
        """L_cum(i) in cycles."""
        return _cumsum(self.stage_latency_cycles)

    @property
    def et(self) -> list[float]:
        """ET_i = E_cum(i) * L_cum(i) in J x cycles."""
        return [e * lat for e, lat in zip(self.cumulative_energy_j, self.cumulative_latency_cycles)]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def latency_s(self) -> float:
        """Latency of the full path in seconds at this cost's clock."""
        return self.latency_cycles / self.clock_hz

    def at(self, point: OperatingPoint, reference_voltage_v: float) -> NetworkCost:
        """The same schedule at a DVFS point: dynamic energy x (V/V_ref)^2, plus static power x time,
        with the point's clock (cycle counts unchanged). See :mod:`hwmodel.dvfs`."""
        s = voltage_scale(point, reference_voltage_v)
        layers = []
        for r in self.layers:
            c = r.cost
            static = static_energy_pj(c.latency_cycles, point)
            dynamic = (c.energy_pj - c.static_energy_pj) * s
            cost = replace(c, energy_pj=dynamic + static, mac_energy_pj=c.mac_energy_pj * s,
                           mem_energy_pj=c.mem_energy_pj * s, static_energy_pj=static)
            layers.append(replace(r, cost=cost))
        return NetworkCost(self.system, self.exit_labels, layers, self.mode, point.frequency_hz)

    def summary(self) -> dict[str, Any]:
        """JSON-ready per-stage figures."""
        return {
            "system": self.system,
            "mode": self.mode,
            "exit_labels": self.exit_labels,
            "stage_energy_j": [e * PJ for e in self.stage_energy_pj],
            "stage_latency_cycles": self.stage_latency_cycles,
            "cumulative_energy_j": self.cumulative_energy_j,
            "cumulative_latency_cycles": self.cumulative_latency_cycles,
            "et_j_cycles": self.et,
            "energy_j": self.energy_j,
            "latency_cycles": self.latency_cycles,
            "latency_s": self.latency_s,
            "clock_hz": self.clock_hz,
            "macs": self.macs,
        }

    def layer_table(self) -> list[dict[str, Any]]:
        """One JSON-ready row per layer."""
        return [{"name": r.name, "op": r.op, "stage": r.stage, "branch": r.branch, "macs": r.macs, **asdict(r.cost)}
                for r in self.layers]


def _cumsum(values: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


@dataclass(frozen=True)
class ExpectedCost:
    """Expected costs of an early-exit network under exit ratios, against its static baseline."""

    ratios: tuple[float, ...]
    expected_edp: float  # sum_i r_i ET_i, J x cycles
    expected_energy_j: float  # sum_i r_i E_cum(i)
    expected_latency_cycles: float  # sum_i r_i L_cum(i)
    static_edp: float  # J x cycles
    static_energy_j: float
    static_latency_cycles: float
    full_path_edp: float  # E_cum(N) L_cum(N): a sample that runs every exit

    @property
    def reduction_factor(self) -> float:
        """static EDP / expected EDP (> 2 means more than 50 % lower)."""
        return self.static_edp / self.expected_edp

    @property
    def normalized_expected_edp(self) -> float:
        """expected EDP / static EDP."""
        return self.expected_edp / self.static_edp

    @property
    def expected_energy_x_latency(self) -> float:
        """E[energy] * E[latency] (J x cycles), reported beside the expectation of per-exit EDPs."""
        return self.expected_energy_j * self.expected_latency_cycles

    @property
    def exit_overhead(self) -> float:
        """Full-path EDP over static EDP, minus 1: what running every exit classifier adds."""
        return self.full_path_edp / self.static_edp - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ratios": list(self.ratios),
            "reduction_factor": self.reduction_factor,
            "normalized_expected_edp": self.normalized_expected_edp,
            "expected_energy_x_latency": self.expected_energy_x_latency,
            "exit_overhead": self.exit_overhead,
        }


def expected_cost(network: NetworkCost, static: NetworkCost, ratios: Sequence[float]) -> ExpectedCost:
    """Expected EDP, energy and latency of ``network`` for exit ratios, with the static baseline."""
    if len(ratios) != len(network.exit_labels):
        raise ValueError(f"expected {len(network.exit_labels)} exit ratios, got {len(ratios)}")
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"exit ratios must be non-negative and sum to 1, got {list(ratios)}")
    return ExpectedCost(
        ratios=tuple(float(r) for r in ratios),
        expected_edp=sum(r * et for r, et in zip(ratios, network.et)),
        expected_energy_j=sum(r * e for r, e in zip(ratios, network.cumulative_energy_j)),
        expected_latency_cycles=sum(r * lat for r, lat in zip(ratios, network.cumulative_latency_cycles)),
        static_edp=static.edp,
        static_energy_j=static.energy_j,
        static_latency_cycles=static.latency_cycles,
        full_path_edp=network.edp,
    )
