"""The platform a schedule runs on: core instances, their on-chip capacities, links and routes.

Compute-core kinds expand to instances (``edge_tpu#0`` ...) placed row-major on the mesh; the
pooling and SIMD cores and the off-chip port hang off the interconnect through one link each. A
mesh routes XY (along the row, then the column), one link per hop, each link a FIFO resource of
``link_bandwidth_bits_per_cycle``; a bus is one shared link. Without an ``interconnect`` entry the
system is treated as a bus with the off-chip bandwidth and no energy per bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwmodel.system import POOLING, SIMD, SIMPLE_OPS, ComputeCoreSpec, SystemSpec
from hwmodel.zigzag_core import core_description, offchip_level, onchip_capacities, port_bandwidths

__all__ = ["POOLING", "SIMD", "Instance", "Platform"]


@dataclass(frozen=True)
class Instance:
    """One core instance: name, kind (compute-core spec name, or pooling / simd), mesh position."""

    name: str
    kind: str
    position: tuple[int, int] | None
    activation_bits: int = 0  # on-chip capacity for activations (outputs kept for consumers)
    weight_bits: int = 0  # on-chip capacity for weights
    act_read_pj_per_bit: float = 0.0  # reading activations out of on-chip memory (to a link / DRAM)
    act_write_pj_per_bit: float = 0.0  # writing arriving activations into on-chip memory
    weight_write_pj_per_bit: float = 0.0  # writing loaded weights into on-chip memory


def _onchip_access_costs(core_path: str) -> dict[str, float]:
    """pJ per bit of the outermost on-chip memories holding O (activations) and I2 (weights)."""
    core = core_description(core_path)
    top = offchip_level(core)
    out = {"act_read_pj_per_bit": 0.0, "act_write_pj_per_bit": 0.0, "weight_write_pj_per_bit": 0.0}
    for name, mem in core["memories"].items():
        if name == top:
            continue
        read, write = port_bandwidths(mem, default=1)
        if "O" in mem["operands"]:
            out["act_read_pj_per_bit"] = mem["r_cost"] / read
            out["act_write_pj_per_bit"] = mem["w_cost"] / write
        if "I2" in mem["operands"]:
            out["weight_write_pj_per_bit"] = mem["w_cost"] / write
    return out


class Platform:
    """Instances, capacities and routes of a system, for the scheduler."""

    def __init__(self, system: SystemSpec) -> None:
        self.system = system
        ic = system.interconnect
        self.topology = ic.topology if ic else "bus"
        self.link_bits_per_cycle = ic.link_bandwidth_bits_per_cycle if ic else system.offchip.bandwidth_bits_per_cycle
        self.link_pj_per_bit = ic.energy_per_bit_pj if ic else 0.0
        self.offchip_bits_per_cycle = system.offchip.bandwidth_bits_per_cycle
        self.offchip_pj_per_bit = system.offchip.energy_per_bit_pj
        compute: list[Instance] = []
        cols = ic.cols if ic and ic.topology == "mesh" else 1
        for core in system.compute_cores:
            caps = onchip_capacities(system.resolve(core.core))
            access = _onchip_access_costs(str(system.resolve(core.core)))
            for i in range(core.count):
                k = len(compute)
                pos = (k // cols, k % cols) if self.topology == "mesh" else None
                compute.append(Instance(f"{core.name}#{i}", core.name, pos, caps.get("O", 0), caps.get("I2", 0),
                                        **access))
        self.compute = compute
        simple = []
        for op in SIMPLE_OPS:  # ZigZag-described pooling / SIMD cores: their memories' access costs
            name, spec = system.simple_core(op)
            access = _onchip_access_costs(str(system.resolve(spec.core))) if spec.core else {}
            simple.append(Instance(name, name, None, act_read_pj_per_bit=access.get("act_read_pj_per_bit", 0.0),
                                   act_write_pj_per_bit=access.get("act_write_pj_per_bit", 0.0)))
        self.instances = {i.name: i for i in [*compute, *simple]}
        self.kinds: dict[str, ComputeCoreSpec] = {c.name: c for c in system.compute_cores}

    def instances_of(self, kinds: list[str]) -> list[Instance]:
        """Compute instances of the given core kinds."""
        return [i for i in self.compute if i.kind in kinds]

    def route(self, src: str, dst: str) -> list[str]:
        """Links (names) a transfer from instance ``src`` to ``dst`` occupies; [] on the same instance."""
        if src == dst:
            return []
        if self.topology == "bus":
            return ["bus"]
        a, b = self.instances[src], self.instances[dst]
        links: list[str] = []
        if a.position is None:
            links.append(f"port:{src}")
        if b.position is None:
            links.append(f"port:{dst}")
        if a.position is not None and b.position is not None:
            (r, c), (r2, c2) = a.position, b.position
            while c != c2:
                step = 1 if c2 > c else -1
                links.append(f"({r},{c})->({r},{c + step})")
                c += step
            while r != r2:
                step = 1 if r2 > r else -1
                links.append(f"({r},{c})->({r + step},{c})")
                r += step
        return links

    def link_cycles(self, bits: int) -> int:
        return math.ceil(bits / self.link_bits_per_cycle)

    def offchip_cycles(self, bits: int) -> int:
        return math.ceil(bits / self.offchip_bits_per_cycle)
