"""Accelerator system descriptions: the YAML format, its validation and the registry of shipped files.

A system file (``accelerators/<name>/system.yaml``) lists compute cores (each a ZigZag 3.9 core
description plus a ZigZag mapping file of spatial-mapping hints, with its MAC-energy model and
optional precision scaling), a pooling core and a SIMD core for element-wise ops (each a ZigZag core
file with its hints, or an analytical throughput), the off-chip memory,
the interconnect, which compute cores may run which operator kind, the clock and optional DVFS
operating points. Paths are relative to the system file. Units: bandwidths in bit/cycle, energies
in pJ, clock in Hz, voltages in V, power in W. ``accelerators/README.md`` documents every key.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hwmodel.dvfs import DvfsSpec, OperatingPoint
from hwmodel.precision import MacEnergyModel, PrecisionScaling
from hwmodel.schema import INTERNAL, SchemaError, from_mapping, load_yaml, package_folder, to_mapping

ACCELERATORS_ENV = "EENAS_ACCELERATORS"
POOLING, SIMD = "pooling", "simd"  # names of the pooling and SIMD cores (reserved: no compute core may take them)
SIMPLE_OPS = ("maxpool", "add")  # the ops the pooling and SIMD cores run, in that order


@dataclass(frozen=True)
class ComputeCoreSpec:
    """A kind of compute core: ZigZag core file, ZigZag mapping-hint file, how many instances,
    how its MAC energy depends on operand bits, and optional precision scaling of its array."""

    name: str
    core: str
    mapping: str
    count: int = 1
    mac_energy: MacEnergyModel = field(default_factory=MacEnergyModel)
    precision_scaling: PrecisionScaling | None = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count: expected a positive integer, got {self.count}")


@dataclass(frozen=True)
class SimpleCoreSpec:
    """Pooling or SIMD core, given one of two ways.

    ``core`` and ``mapping``: a ZigZag 3.9 core file and its mapping-hint file (paths relative to the
    system file); its layers are then costed by ZigZag on that core's array and memories, like the
    compute layers. ``units`` and ``energy_per_op_pj``: the analytical model, ``units`` operations per
    cycle at ``energy_per_op_pj`` (pJ) each, data through off-chip memory (for systems whose pooling or
    SIMD hardware is not described).
    """

    units: int | None = None
    energy_per_op_pj: float | None = None
    core: str | None = None
    mapping: str | None = None

    def __post_init__(self) -> None:
        analytical = (self.units, self.energy_per_op_pj) != (None, None)
        if self.core is None and self.mapping is None:
            if self.units is None or self.energy_per_op_pj is None:
                raise ValueError("expected either core and mapping (a ZigZag core file and its mapping file) or "
                                 "units and energy_per_op_pj (the analytical model)")
        elif self.core is None or self.mapping is None:
            raise ValueError(f"{'mapping' if self.mapping is None else 'core'}: expected both core and mapping "
                             "(a ZigZag core file and its mapping-hint file)")
        elif analytical:
            raise ValueError("expected core and mapping (ZigZag) or units and energy_per_op_pj (analytical), "
                             "not both")
        if self.units is not None and self.units < 1:
            raise ValueError(f"units: expected a positive integer, got {self.units}")
        if self.energy_per_op_pj is not None and self.energy_per_op_pj < 0:
            raise ValueError(f"energy_per_op_pj: expected a non-negative number, got {self.energy_per_op_pj}")

    @property
    def zigzag(self) -> bool:
        """True when ZigZag costs this core's layers (a core file is given)."""
        return self.core is not None

    def analytical(self, name: str) -> tuple[int, float]:
        """(``units``, ``energy_per_op_pj``) of the analytical model; ValueError for a ZigZag-described
        core (``name`` names it in the message)."""
        if self.units is None or self.energy_per_op_pj is None:
            raise ValueError(f"{name} core: the analytical model needs units and energy_per_op_pj")
        return self.units, self.energy_per_op_pj


@dataclass(frozen=True)
class OffChipSpec:
    """Off-chip DRAM: bandwidth (bit/cycle) and energy per access of ``access_bits`` bits (pJ)."""

    bandwidth_bits_per_cycle: int
    energy_per_access_pj: float
    access_bits: int = 64

    def __post_init__(self) -> None:
        if self.bandwidth_bits_per_cycle <= 0:
            raise ValueError("bandwidth_bits_per_cycle: expected a positive integer, "
                             f"got {self.bandwidth_bits_per_cycle}")
        if self.access_bits <= 0:
            raise ValueError(f"access_bits: expected a positive integer, got {self.access_bits}")
        if self.energy_per_access_pj < 0:
            raise ValueError(f"energy_per_access_pj: expected a non-negative number, got {self.energy_per_access_pj}")

    @property
    def energy_per_bit_pj(self) -> float:
        """pJ per bit moved."""
        return self.energy_per_access_pj / self.access_bits


@dataclass(frozen=True)
class InterconnectSpec:
    """Core-to-core network: a ``rows`` x ``cols`` mesh or a shared bus."""

    topology: Literal["mesh", "bus"]
    link_bandwidth_bits_per_cycle: int
    energy_per_bit_pj: float = 0.0
    rows: int = 1
    cols: int = 1

    def __post_init__(self) -> None:
        if self.link_bandwidth_bits_per_cycle <= 0:
            raise ValueError(
                f"link_bandwidth_bits_per_cycle: expected a positive integer, got {self.link_bandwidth_bits_per_cycle}"
            )
        if self.energy_per_bit_pj < 0:
            raise ValueError(f"energy_per_bit_pj: expected a non-negative number, got {self.energy_per_bit_pj}")
        if self.rows < 1 or self.cols < 1:
            raise ValueError(f"rows, cols: expected a mesh of at least 1 x 1, got {self.rows} x {self.cols}")


OPERATOR_KINDS = ("conv", "depthwise", "fc")


@dataclass(frozen=True)
class AllocationSpec:
    """Which compute cores (by name) may run each operator kind; an empty list means every core.

    Each layer goes to the allowed core kind that gives it the lowest energy-delay product.
    Pooling always runs on the pooling core and element-wise adds on the SIMD core.
    """

    conv: tuple[str, ...] = ()
    depthwise: tuple[str, ...] = ()
    fc: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemSpec:
    """A whole accelerator system (see the module docstring for the file format)."""

    name: str
    compute_cores: tuple[ComputeCoreSpec, ...]
    pooling_core: SimpleCoreSpec
    simd_core: SimpleCoreSpec
    offchip: OffChipSpec
    description: str = ""
    clock_hz: float = 1.0e9
    interconnect: InterconnectSpec | None = None
    allocation: AllocationSpec = field(default_factory=AllocationSpec)
    dvfs: DvfsSpec | None = None
    path: str = field(default="", compare=False, metadata=INTERNAL)

    def __post_init__(self) -> None:
        if not self.compute_cores:
            raise ValueError("compute_cores: expected at least one compute core")
        if self.clock_hz <= 0:
            raise ValueError(f"clock_hz: expected a positive number, got {self.clock_hz}")
        ic = self.interconnect
        if ic is not None and ic.topology == "mesh" and ic.rows * ic.cols < self.num_compute_cores:
            raise ValueError(f"interconnect: a {ic.rows} x {ic.cols} mesh has room for {ic.rows * ic.cols} cores, "
                             f"expected at least the {self.num_compute_cores} compute cores")
        names = [c.name for c in self.compute_cores]
        if len(set(names)) != len(names):
            raise ValueError(f"compute_cores: expected distinct core names, got {names}")
        reserved = sorted({POOLING, SIMD} & set(names))
        if reserved:
            raise ValueError(f"compute_cores: the names {reserved} are taken by the pooling and SIMD cores")
        for kind in OPERATOR_KINDS:
            unknown = [n for n in getattr(self.allocation, kind) if n not in names]
            if unknown:
                raise ValueError(f"allocation.{kind}: expected names of compute cores {names}, got {unknown}")

    def cores_for(self, kind: str) -> list[ComputeCoreSpec]:
        """Compute core kinds allowed to run an operator kind (``conv``, ``depthwise`` or ``fc``)."""
        allowed = getattr(self.allocation, kind)
        return [c for c in self.compute_cores if not allowed or c.name in allowed]

    def simple_cores(self) -> dict[str, SimpleCoreSpec]:
        """The pooling and SIMD cores that ZigZag costs (described by a core file), by system-file key."""
        return {key: core for key, core in (("pooling_core", self.pooling_core), ("simd_core", self.simd_core))
                if core.zigzag}

    def simple_core(self, op: str) -> tuple[str, SimpleCoreSpec]:
        """(name, spec) of the core that runs a ``maxpool`` (pooling core) or an ``add`` (SIMD core)."""
        if op == "maxpool":
            return POOLING, self.pooling_core
        if op == "add":
            return SIMD, self.simd_core
        raise ValueError(f"no pooling or SIMD core runs {op!r} layers")

    def operating_point(self, name: str | None = None) -> OperatingPoint:
        """A DVFS point by name (default point if None); without DVFS, the nominal clock."""
        if self.dvfs is None:
            if name not in (None, "nominal"):
                raise KeyError(f"unknown operating point {name!r}; system {self.name!r} declares no DVFS points "
                               f"(only 'nominal')")
            return OperatingPoint("nominal", self.clock_hz, 1.0, 0.0)
        return self.dvfs.point(name)

    @property
    def reference_voltage_v(self) -> float:
        """Voltage at which the core files' energies hold (1.0 when no DVFS is declared)."""
        return self.dvfs.reference_voltage_v if self.dvfs else 1.0

    @property
    def num_compute_cores(self) -> int:
        return sum(c.count for c in self.compute_cores)

    def resolve(self, relative: str) -> Path:
        """A path of the file, relative to the system file's folder."""
        return (Path(self.path).parent / relative).resolve()

    def fingerprint(self) -> str:
        """Hash of everything in the system that changes a cost (file contents included)."""
        h = hashlib.sha256(json.dumps(_plain(self), sort_keys=True, default=str).encode())
        files = [f for c in self.compute_cores for f in (c.core, c.mapping)]
        files += [f for c in self.simple_cores().values() for f in (c.core, c.mapping) if f]
        for name in files:
            h.update(self.resolve(name).read_bytes())
        return h.hexdigest()[:16]


def _plain(spec: SystemSpec) -> dict[str, Any]:
    data = to_mapping(spec)
    data.pop("path", None)
    data.pop("description", None)
    return data


def accelerators_dir() -> Path:
    """Folder of the shipped accelerator files: the installed ``accelerators`` data package
    (``$EENAS_ACCELERATORS`` overrides)."""
    env = os.environ.get(ACCELERATORS_ENV)
    return Path(env) if env else package_folder("accelerators")


def list_systems() -> list[str]:
    """Names of the shipped systems (folders of ``accelerators/`` holding a ``system.yaml``)."""
    root = accelerators_dir()
    return sorted(p.parent.name for p in root.glob("*/system.yaml"))


def system_path(name_or_path: str | Path) -> Path:
    """Resolve a shipped system name, a folder or a YAML file to the system file's path."""
    p = Path(name_or_path)
    if p.is_dir():
        p = p / "system.yaml"
    if p.is_file():
        return p.resolve()
    shipped = accelerators_dir() / str(name_or_path) / "system.yaml"
    if shipped.is_file():
        return shipped
    raise SchemaError(name_or_path, "accelerator", f"a system YAML file, a folder holding system.yaml, or one of "
                      f"the shipped systems {list_systems()}")


def load_system(name_or_path: str | Path) -> SystemSpec:
    """Load and validate a system file, including its ZigZag core and mapping files."""
    from hwmodel.zigzag_core import array_dimensions, validate_core_files

    path = system_path(name_or_path)
    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise SchemaError(path, "", f"expected a mapping with keys name, compute_cores, pooling_core, simd_core, "
                          f"offchip, ..., got {type(data).__name__}")
    spec = from_mapping(SystemSpec, data, file=path, internal={"path": str(path)})

    def check_files(key: str, core_file: str, mapping_file: str) -> None:
        for field_name, name in (("core", core_file), ("mapping", mapping_file)):
            target = spec.resolve(name)
            if not target.is_file():
                raise SchemaError(path, f"{key}.{field_name}", f"an existing file, {target} does not exist")
        validate_core_files(spec.resolve(core_file), spec.resolve(mapping_file))

    for i, core in enumerate(spec.compute_cores):
        check_files(f"compute_cores[{i}]", core.core, core.mapping)
        if core.precision_scaling is not None:
            dims = array_dimensions(spec.resolve(core.core))
            if core.precision_scaling.dimension not in dims:
                raise SchemaError(path, f"compute_cores[{i}].precision_scaling.dimension",
                                  f"an array dimension of {core.core} {dims}, got {core.precision_scaling.dimension!r}")
    for key, simple in spec.simple_cores().items():
        check_files(key, simple.core or "", simple.mapping or "")
    return spec
