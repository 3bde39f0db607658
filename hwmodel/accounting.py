"""Network-level costs of an early-exit network and the reference's exit accounting.

An EENN with exits e_1 < ... < e_N (e_N final) is cut into N stages: stage i = the backbone layers
after exit i-1 up to exit i's mounting point, plus classifier i. From one schedule:

- L_cum(i) = the time exit i's classifier finishes; E_cum(i) = the energy spent by then. In a
  layer-by-layer schedule these are the cumulative sums of stage latencies and energies; in a
  fused, multi-core schedule stages overlap and they are read off the timeline.
- ET_i = E_cum(i) * L_cum(i)                      (J x cycles)
- expected EDP = sum_i r_i * ET_i                  (r_i = fraction of samples leaving at exit i)
- static baseline = E_static * L_static of the same backbone with only its final exit
- reduction factor = static baseline / expected EDP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hwmodel.dvfs import OperatingPoint, voltage_scale
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
    """Costs of one network on one system under one schedule, with per-exit accounting.

    ``cumulative_energy_pj[i]`` is the dynamic energy spent by the time exit i's classifier
    finishes and ``cumulative_latency_cycles[i]`` is that time; ``total_*`` cover the whole
    schedule. Energies are stored at the system's reference voltage; :meth:`at` gives the same
    schedule at a DVFS operating point (dynamic energy x ``voltage_scale`` plus static power x time).
    For a layer-by-layer schedule (:meth:`from_layers`) the cumulative figures are stage sums.
    """

    system: str
    exit_labels: list[str]
    layers: list[LayerResult]
    cumulative_energy_pj: list[float]
    cumulative_latency_cycles: list[float]
    total_energy_pj: float
    total_latency_cycles: float
    mode: str = "layer_by_layer"
    clock_hz: float = 1.0e9
    voltage_scale: float = 1.0
    static_power_w: float = 0.0
    schedule: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_layers(cls, system: str, exit_labels: list[str], layers: list[LayerResult], clock_hz: float = 1.0e9,
                    mode: str = "layer_by_layer") -> NetworkCost:
        """One layer at a time, in stage order: E_cum and L_cum are cumulative stage sums."""
        n = len(exit_labels)
        energy, latency = [0.0] * n, [0.0] * n
        for layer in layers:
            energy[layer.stage] += layer.cost.energy_pj
            latency[layer.stage] += layer.cost.latency_cycles
        cum_e, cum_l = _cumsum(energy), _cumsum(latency)
        return cls(system, exit_labels, layers, cum_e, cum_l, cum_e[-1], cum_l[-1], mode, clock_hz)

    def _energy_j(self, dynamic_pj: float, cycles: float) -> float:
        static = self.static_power_w * cycles / self.clock_hz * 1e12
        return (dynamic_pj * self.voltage_scale + static) * PJ

    @property
    def energy_j(self) -> float:
        """Energy of the whole schedule, i.e. of a sample that runs every exit (J)."""
        return self._energy_j(self.total_energy_pj, self.total_latency_cycles)

    @property
    def latency_cycles(self) -> float:
        """Latency of the whole schedule (cycles)."""
        return self.total_latency_cycles

    @property
    def edp(self) -> float:
        """Energy-delay product of the whole schedule (J x cycles)."""
        return self.energy_j * self.latency_cycles

    @property
    def cumulative_energy_j(self) -> list[float]:
        """E_cum(i) in J: energy spent by the time exit i's classifier finishes."""
        return [self._energy_j(e, t) for e, t in zip(self.cumulative_energy_pj, self.cumulative_latency_cycles)]

    @property
    def stage_energy_pj(self) -> list[float]:
        """Energy between consecutive exits (pJ, at this operating point)."""
        cum = [e / PJ for e in self.cumulative_energy_j]
        return [b - a for a, b in zip([0.0, *cum], cum)]

    @property
    def stage_latency_cycles(self) -> list[float]:
        """Time between consecutive exits (cycles)."""
        cum = self.cumulative_latency_cycles
        return [b - a for a, b in zip([0.0, *cum], cum)]

    @property
    def et(self) -> list[float]:
        """ET_i = E_cum(i) * L_cum(i) in J x cycles."""
        return [e * lat for e, lat in zip(self.cumulative_energy_j, self.cumulative_latency_cycles)]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def branch_energy_share(self) -> list[float]:
        """Per exit: its classifier branch's share of its stage's layer energy (backbone + branch)."""
        n = len(self.exit_labels)
        branch, stage = [0.0] * n, [0.0] * n
        for layer in self.layers:
            stage[layer.stage] += layer.cost.energy_pj
            if layer.branch:
                branch[layer.stage] += layer.cost.energy_pj
        return [b / s if s else 0.0 for b, s in zip(branch, stage)]

    @property
    def latency_s(self) -> float:
        """Latency of the whole schedule in seconds at this cost's clock."""
        return self.latency_cycles / self.clock_hz

    def at(self, point: OperatingPoint, reference_voltage_v: float) -> NetworkCost:
        """The same schedule at a DVFS point: dynamic energy x (V/V_ref)^2, plus static power x time,
        with the point's clock (cycle counts unchanged). Idempotent. See :mod:`hwmodel.dvfs`."""
        return replace(self, clock_hz=point.frequency_hz, voltage_scale=voltage_scale(point, reference_voltage_v),
                       static_power_w=point.static_power_w)

    def summary(self) -> dict[str, Any]:
        """JSON-ready per-exit figures."""
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
            "branch_energy_share": self.branch_energy_share,
        }

    def layer_table(self) -> list[dict[str, Any]]:
        """One JSON-ready row per layer (energies at the reference voltage, static energy excluded)."""
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


def expectation(ratios: Sequence[float], per_exit: Sequence[float]) -> float:
    """sum_i r_i * x_i: the expected value of a per-exit quantity (cumulative energy, latency, ET,
    MACs up to exit i) when a share r_i of the samples leaves at exit i. The one place it is written."""
    if len(ratios) != len(per_exit):
        raise ValueError(f"expected one value per exit ({len(ratios)}), got {len(per_exit)}")
    return float(sum(r * x for r, x in zip(ratios, per_exit)))


def expected_cost(network: NetworkCost, static: NetworkCost, ratios: Sequence[float]) -> ExpectedCost:
    """Expected EDP, energy and latency of ``network`` for exit ratios, with the static baseline."""
    if len(ratios) != len(network.exit_labels):
        raise ValueError(f"expected {len(network.exit_labels)} exit ratios, got {len(ratios)}")
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"exit ratios must be non-negative and sum to 1, got {list(ratios)}")
    return ExpectedCost(
        ratios=tuple(float(r) for r in ratios),
        expected_edp=expectation(ratios, network.et),
        expected_energy_j=expectation(ratios, network.cumulative_energy_j),
        expected_latency_cycles=expectation(ratios, network.cumulative_latency_cycles),
        static_edp=static.edp,
        static_energy_j=static.energy_j,
        static_latency_cycles=static.latency_cycles,
        full_path_edp=network.edp,
    )
