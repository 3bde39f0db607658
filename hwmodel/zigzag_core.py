"""A lean ZigZag 3.9 evaluator for one compute core.

The core and mapping files are parsed once; each layer then runs only ZigZag's per-layer stages
(spatial-mapping generation from hints, LOMA temporal mapping, cost model), with no file output.
This is what ``zigzag.api.get_hardware_performance_zigzag`` does per layer, minus the parsing,
JSON/pickle/PNG dumps and logging.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from hwmodel.schema import SchemaError, load_yaml, short_repr

Kind = Literal["default", "depthwise", "fc"]


class MappingError(RuntimeError):
    """ZigZag could not map a layer onto a core."""

    def __init__(self, layer: str, core: str, reason: str) -> None:
        super().__init__(f"layer {layer!r} cannot be mapped on core {core!r}: {reason}")
        self.layer, self.core, self.reason = layer, core, reason


@dataclass(frozen=True)
class ZigZagSettings:
    """Search settings of ZigZag's per-layer mapper.

    ``lpf_limit``: LOMA's loop-prime-factor limit (higher = more temporal mappings, slower);
    ``optimize``: what the best mapping minimises; ``spatial_mappings``: how many spatial mappings
    are generated from the hints per layer (1 by default: against 3, it changes network EDP by well
    under 1 % at less than half the cold time, ``benchmarks/hwmodel_speed.py``).
    """

    lpf_limit: int = 4
    optimize: Literal["energy", "latency", "EDP"] = "EDP"
    spatial_mappings: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.lpf_limit <= 8:
            raise ValueError(f"lpf_limit: expected an integer in 1..8, got {self.lpf_limit}")
        if self.spatial_mappings < 1:
            raise ValueError(f"spatial_mappings: expected a positive integer, got {self.spatial_mappings}")


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer on one core. Energy in pJ (total = MAC + memory + static), latency in cycles."""

    energy_pj: float
    latency_cycles: float
    mac_energy_pj: float
    mem_energy_pj: float
    ideal_cycles: float
    spatial_utilization: float
    core: str
    static_energy_pj: float = 0.0
    offchip_energy_pj: float = 0.0  # part of mem_energy_pj spent at the off-chip level

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def quiet_zigzag() -> Iterator[None]:
    """Silence ZigZag's loggers (it logs every stage at INFO and validation failures at CRITICAL)."""
    logger = logging.getLogger("zigzag")
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)  # children at NOTSET inherit this level
    try:
        yield
    finally:
        logger.setLevel(previous)


class _OneMappingForWholeUnrolling:
    """Stands in for ZigZag's ``Mapping`` inside its cost model while a layer is costed.

    For every temporal mapping, ZigZag's ``CostModelEvaluation`` builds two ``Mapping`` objects: one
    from the spatial mapping as generated (unroll factors as floats, for energy) and one from its
    integer version (for latency), and building them is most of its time. When every factor is a
    whole number the two are built from equal inputs, so this builds the first and hands the same
    object for the second. The costs equal ZigZag's API exactly (tests/hwmodel/test_cost_model.py).
    """

    def __init__(self, mapping_class: Any) -> None:
        self.mapping_class = mapping_class
        self.last: tuple[tuple[Any, ...], Any] | None = None

    def __call__(self, accelerator: Any, spatial_mapping: Any, temporal_mapping: Any, layer_node: Any,
                 access_same_data_considered_as_no_access: bool = False) -> Any:
        unrolling = spatial_mapping if isinstance(spatial_mapping, dict) else spatial_mapping.mapping_dict_origin
        key = (accelerator, temporal_mapping, layer_node, access_same_data_considered_as_no_access)
        if self.last is not None:
            (*inputs, previous), mapping = self.last
            if all(a is b for a, b in zip(inputs, key)) and previous == unrolling:
                self.last = None  # the pair is complete
                return mapping
        mapping = self.mapping_class(accelerator, spatial_mapping, temporal_mapping, layer_node,
                                     access_same_data_considered_as_no_access)
        self.last = ((*key, unrolling), mapping)
        return mapping


@contextlib.contextmanager
def _one_mapping_per_evaluation() -> Iterator[None]:
    """ZigZag's cost model with :class:`_OneMappingForWholeUnrolling` in place of its ``Mapping``."""
    import zigzag.cost_model.cost_model as cost_model

    original = cost_model.Mapping
    cost_model.Mapping = _OneMappingForWholeUnrolling(original)  # type: ignore[assignment, misc]
    try:
        yield
    finally:
        cost_model.Mapping = original  # type: ignore[misc]


def _flatten_errors(errors: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Cerberus error trees -> [(key path, message)]."""
    out: list[tuple[str, str]] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
            out += _flatten_errors(value, path)
    elif isinstance(errors, list):
        for item in errors:
            if isinstance(item, (dict, list)):
                out += _flatten_errors(item, prefix)
            else:
                out.append((prefix, str(item)))
    else:
        out.append((prefix, str(errors)))
    return out


def _validate(validator: Any, path: Path, what: str) -> tuple[Any, Callable[[], None]]:
    """Run a ZigZag validator quietly; raise its first schema error now.

    Returns the normalized data and a ``finish`` callable that raises ZigZag's remaining (rule)
    failures: call it after this project's own, more precise checks.
    """
    reasons: list[str] = []
    original = validator.invalidate

    def capture(message: str) -> None:
        reasons.append(message)
        original(message)

    validator.invalidate = capture
    crash: Exception | None = None
    with quiet_zigzag():
        try:
            normalized = validator.normalized_data
            ok = validator.validate()
        except Exception as exc:  # noqa: BLE001 - ZigZag's rule checks assume schema-valid data
            crash, normalized, ok = exc, None, False
    errors = _flatten_errors(getattr(validator.validator, "errors", {}) or {})
    if errors:
        key, message = errors[0]
        raise SchemaError(path, key, f"ZigZag 3.9 {what} schema: {message}")
    if crash is not None or not isinstance(normalized, (dict, list)):
        raise SchemaError(path, "", f"expected a valid ZigZag 3.9 {what} (ZigZag's checks failed on it: "
                          f"{type(crash).__name__}: {short_repr(str(crash))})")

    def finish() -> None:
        if not ok:
            raise SchemaError(path, "", f"a valid ZigZag 3.9 {what} ({'; '.join(reasons) or 'rejected by ZigZag'})")

    return normalized, finish


def _normalized_core(path: Path) -> dict[str, Any]:
    from zigzag.parser.accelerator_validator import AcceleratorValidator

    data = load_yaml(path)
    if not isinstance(data, dict):
        raise SchemaError(path, "", "a ZigZag core description (a mapping with name, memories, operational_array)")
    normalized, finish = _validate(AcceleratorValidator(copy.deepcopy(data)), path, "core")
    dims = set(normalized["operational_array"]["dimensions"])
    operands = {op for mem in normalized["memories"].values() for op in mem["operands"]}
    for operand in ("I1", "I2", "O"):
        if operand not in operands:
            raise SchemaError(path, "memories", f"a memory level holding operand {operand}; none does")
    array = normalized["operational_array"]
    if any(not isinstance(n, int) or n < 1 for n in array["sizes"]):
        raise SchemaError(path, "operational_array.sizes", f"expected a positive number of units per dimension, got "
                          f"{array['sizes']}")
    # ZigZag's validator lets costs be missing (its parser then raises KeyError): None is refused like a bad value
    _check_cost(path, "operational_array.unit_energy", array.get("unit_energy"))
    for name, mem in normalized["memories"].items():
        for key in ("r_cost", "w_cost", "area", "latency"):
            _check_cost(path, f"memories.{name}.{key}", mem.get(key))
        widest = max((port["bandwidth_min"] for port in mem["ports"]), default=1)
        if mem["size"] < max(widest, 1):
            raise SchemaError(path, f"memories.{name}.size",
                              f"expected at least one access of its ports ({widest} bits), got {mem['size']} bits")
    inner: dict[str, tuple[str, int]] = {}  # operand -> (innermost-so-far memory, its size)
    for name, mem in normalized["memories"].items():
        for operand in mem["operands"]:
            if operand in inner and mem["size"] < inner[operand][1]:
                raise SchemaError(path, f"memories.{name}",
                                  "memories listed from innermost to outermost (ZigZag reads "
                                  f"the order as the hierarchy), but {name} ({mem['size']} bits) comes after the "
                                  f"larger {inner[operand][0]} ({inner[operand][1]} bits) for operand {operand}")
            inner[operand] = (name, mem["size"])
    for name, mem in normalized["memories"].items():
        for i, port in enumerate(mem["ports"]):
            if port["bandwidth_min"] <= 0 or port["bandwidth_max"] < port["bandwidth_min"]:
                raise SchemaError(path, f"memories.{name}.ports[{i}]",
                                  "0 < bandwidth_min <= bandwidth_max (bit/cycle)")
        unknown = [d for d in mem["served_dimensions"] if d not in dims]
        if unknown:
            raise SchemaError(path, f"memories.{name}.served_dimensions",
                              f"dimensions of the operational array {sorted(dims)}, got {unknown}")
    finish()
    return normalized


def _check_cost(path: Path, key: str, value: Any) -> None:
    """An energy (pJ), area or latency (cycles) of a core file: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SchemaError(path, key, f"expected a non-negative number, got {value!r}")


def _normalized_mapping(path: Path, core: dict[str, Any]) -> list[dict[str, Any]]:
    from zigzag.parser.mapping_validator import MappingValidator

    data = load_yaml(path)
    if not isinstance(data, list):
        raise SchemaError(path, "", "a list of ZigZag mapping entries (name, spatial_mapping_hint, ...)")
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise SchemaError(path, f"[{i}].name", "every mapping entry to have a non-empty name")
    if "default" not in {entry["name"] for entry in data}:
        raise SchemaError(path, "name", "an entry named 'default'")
    normalized, finish = _validate(MappingValidator(copy.deepcopy(data)), path, "mapping")
    dims = set(core["operational_array"]["dimensions"])
    for i, entry in enumerate(normalized):
        for field_name in ("spatial_mapping", "spatial_mapping_hint"):
            for dim in entry.get(field_name) or {}:
                if dim not in dims:
                    raise SchemaError(path, f"[{i}].{field_name}.{dim}",
                                      f"an array dimension of the core {sorted(dims)}")
    finish()
    return normalized


def validate_core_files(core_path: Path, mapping_path: Path) -> None:
    """Check a core file and its mapping file; raise SchemaError naming file and key."""
    from zigzag.parser.accelerator_factory import AcceleratorFactory

    core = _normalized_core(core_path)
    _normalized_mapping(mapping_path, core)
    try:
        with quiet_zigzag():
            AcceleratorFactory(core).create()
    except Exception as exc:  # noqa: BLE001 - any ZigZag failure is a bad file, reported as such
        raise SchemaError(core_path, "", f"a core ZigZag can build ({type(exc).__name__}: {exc})") from None


def core_description(core_path: str | Path) -> dict[str, Any]:
    """A core file, validated and normalized by ZigZag's schema (defaults filled in)."""
    return _normalized_core(Path(core_path))


def array_dimensions(core_path: str | Path) -> list[str]:
    """Operational-array dimension names of a core file (validated)."""
    return list(core_description(core_path)["operational_array"]["dimensions"])


def port_bandwidths(memory: dict[str, Any], default: int = 0) -> tuple[int, int]:
    """(read, write) bits per cycle of a core file's memory: its widest port of each direction
    (``default`` where it has none)."""
    def widest(kinds: tuple[str, ...]) -> int:
        return max((p["bandwidth_max"] for p in memory["ports"] if p["type"] in kinds), default=default)

    return widest(("read", "read_write")), widest(("write", "read_write"))


UNBOUNDED_BITS = 2**40  # on-chip top levels in the fused-schedule variant: capacity is the scheduler's job


def offchip_level(core: dict[str, Any]) -> str:
    """The memory that stands for off-chip DRAM: the outermost level, which must hold I1, I2 and O."""
    name, mem = list(core["memories"].items())[-1]
    if set(mem["operands"]) != {"I1", "I2", "O"}:
        raise ValueError(f"core {core['name']!r}: the outermost memory {name!r} must hold I1, I2 and O to act as "
                         f"the off-chip port")
    return name


def onchip_capacities(core_path: str | Path) -> dict[str, int]:
    """On-chip capacity (bits) per operand: the size of the outermost on-chip level holding it."""
    core = core_description(core_path)
    top = offchip_level(core)
    caps: dict[str, int] = {}
    for name, mem in core["memories"].items():
        if name != top:
            for operand in mem["operands"]:
                caps[operand] = int(mem["size"])
    return caps


def _onchip_variant(core: dict[str, Any]) -> dict[str, Any]:
    """The core without its off-chip level, outermost on-chip levels unbounded (fused schedules)."""
    top = offchip_level(core)
    memories = {k: v for k, v in core["memories"].items() if k != top}
    outermost: dict[str, str] = {}
    for name, mem in memories.items():
        for operand in mem["operands"]:
            outermost[operand] = name
    for name in set(outermost.values()):
        memories[name]["size"] = UNBOUNDED_BITS
    return {**core, "memories": memories}


class ZigZagCore:
    """One compute core, parsed once, costing layers given as ZigZag layer dicts.

    ``widen=(dimension, factor)`` builds the variant whose array dimension is ``factor`` times larger:
    how a precision-scalable array is modelled at low operand precision. ``onchip=True`` builds the
    variant used by fused schedules: data starts and ends in on-chip memory; off-chip traffic,
    transfers and capacity are accounted by the scheduler.
    """

    def __init__(self, name: str, core_path: str | Path, mapping_path: str | Path, settings: ZigZagSettings,
                 widen: tuple[str, int] | None = None, onchip: bool = False) -> None:
        from zigzag.parser.accelerator_factory import AcceleratorFactory

        self.name = name if not widen or widen[1] == 1 else f"{name} (x{widen[1]} {widen[0]})"
        self.settings = settings
        core = _normalized_core(Path(core_path))
        if widen and widen[1] != 1:
            dims = core["operational_array"]["dimensions"]
            core["operational_array"]["sizes"][dims.index(widen[0])] *= widen[1]
        if onchip:
            core = _onchip_variant(core)
        try:
            self.has_offchip = not onchip and bool(offchip_level(core))
        except ValueError:
            self.has_offchip = False
        self.mapping = _normalized_mapping(Path(mapping_path), core)
        with quiet_zigzag():
            self.accelerator = AcceleratorFactory(core).create()

    def cost(self, layer: dict[str, Any], label: str) -> LayerCost:
        """Best mapping's cost for one layer dict (ZigZag workload form); MappingError on failure."""
        from zigzag.parser.workload_factory import LayerNodeFactory
        from zigzag.parser.workload_validator import WorkloadValidator

        try:
            with quiet_zigzag():
                validator = WorkloadValidator([copy.deepcopy(layer)])
                data = validator.normalized_data
                if not validator.validate():
                    raise ValueError(f"invalid ZigZag layer: {validator.validator.errors}")
                node = LayerNodeFactory(data[0], self.mapping).create()
        except Exception as exc:  # noqa: BLE001 - ZigZag's parser asserts on bad input
            raise MappingError(label, self.name, f"{type(exc).__name__}: {exc}") from None
        return self._cost_fresh_node(node, label)

    def cost_node(self, node: Any, label: str) -> LayerCost:
        """Best mapping's cost for a ZigZag ``LayerNode`` (e.g. from ZigZag's ONNX parser; not modified).

        Runs exactly the per-layer stages of ``zigzag.api.get_hardware_performance_zigzag``:
        reduce -> spatial-mapping generation -> reduce -> LOMA temporal mapping -> cost model.
        """
        return self._cost_fresh_node(copy.deepcopy(node), label)  # the spatial-mapping stage mutates it

    def _cost_fresh_node(self, node: Any, label: str) -> LayerCost:
        """:meth:`cost_node` on a node nobody else holds (it is mutated)."""
        from zigzag.mapping.temporal_mapping import TemporalMappingType
        from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
        from zigzag.stages.main import MainStage
        from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
        from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
        from zigzag.stages.results.reduce_stages import MinimalEDPStage, MinimalEnergyStage, MinimalLatencyStage

        reduce = {"energy": MinimalEnergyStage, "latency": MinimalLatencyStage, "EDP": MinimalEDPStage}[
            self.settings.optimize
        ]
        try:
            with quiet_zigzag(), _one_mapping_per_evaluation():
                stage = MainStage(
                    [reduce, SpatialMappingGeneratorStage, reduce, TemporalMappingGeneratorStage,  # type: ignore[list-item]
                     CostModelStage],  # type: ignore[list-item]
                    accelerator=self.accelerator,
                    layer=node,
                    loma_lpf_limit=self.settings.lpf_limit,
                    loma_show_progress_bar=False,
                    nb_mappings_generated=self.settings.spatial_mappings,
                    enable_mix_spatial_mapping_generation=False,
                    access_same_data_considered_as_no_access=True,
                    temporal_mapping_type=TemporalMappingType("uneven"),
                )
                (cme, _extra), *_ = stage.run()
        except Exception as exc:  # noqa: BLE001 - ZigZag raises asserts, StopIteration, ValueError...
            raise MappingError(label, self.name, f"{type(exc).__name__}: {exc}") from None
        offchip = sum(levels[-1] for levels in cme.mem_energy_breakdown.values()) if self.has_offchip else 0.0
        return LayerCost(
            energy_pj=float(cme.energy_total),
            latency_cycles=float(cme.latency_total2),
            mac_energy_pj=float(cme.mac_energy),
            mem_energy_pj=float(cme.mem_energy),
            ideal_cycles=float(cme.ideal_temporal_cycle),
            spatial_utilization=float(cme.mac_spatial_utilization),
            core=self.name,
            offchip_energy_pj=float(offchip),
        )
