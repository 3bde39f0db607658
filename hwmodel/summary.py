"""Human-readable summaries of accelerator systems: peak MAC/cycle, memories, bandwidths, DVFS.

``nas accelerators --validate FILE`` prints it; ``nas accelerators --write-readmes`` writes it as
each shipped system's README.md (a test checks they are up to date), so the tables never drift
from the YAML.
"""

from __future__ import annotations

import math
from typing import Any

from hwmodel.system import SystemSpec
from hwmodel.zigzag_core import core_description, port_bandwidths


def _bytes(bits: int) -> str:
    size = bits / 8
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:g} {unit}"
        size /= 1024
    return f"{size:g} GB"


def _core_file(path: Any) -> dict[str, Any]:
    """Array and memories of a ZigZag core file."""
    desc = core_description(path)
    array = desc["operational_array"]
    memories = []
    for name, mem in desc["memories"].items():
        read, write = port_bandwidths(mem)
        memories.append({"name": name, "operands": list(mem["operands"]), "size_bits": int(mem["size"]),
                         "read_bits_per_cycle": read, "write_bits_per_cycle": write,
                         "read_pj": mem["r_cost"], "write_pj": mem["w_cost"],
                         "served_dimensions": list(mem["served_dimensions"])})
    return {"array": dict(zip(array["dimensions"], array["sizes"])), "units": int(math.prod(array["sizes"])),
            "unit_energy_pj": array.get("unit_energy"), "memories": memories}


def _simple_core(spec: SystemSpec, op: str) -> dict[str, Any]:
    core = spec.simple_core(op)[1]
    if core.core is None:
        return {"model": "analytical", "units": core.units, "energy_per_op_pj": core.energy_per_op_pj}
    desc = _core_file(spec.resolve(core.core))
    return {"model": "zigzag", "core_file": core.core, "units": desc["units"], "energy_per_op_pj":
            desc["unit_energy_pj"], "array": desc["array"], "memories": desc["memories"]}


def summarize(spec: SystemSpec) -> dict[str, Any]:
    """Key figures of a system as plain data."""
    cores = []
    for core in spec.compute_cores:
        desc = _core_file(spec.resolve(core.core))
        pes = desc["units"]
        factors = core.precision_scaling.factors if core.precision_scaling else {}
        cores.append({
            "name": core.name, "count": core.count, "core_file": core.core,
            "array": desc["array"], "macs_per_cycle": pes,
            "peak_macs_per_cycle_low_precision": {b: pes * f for b, f in sorted(factors.items())},
            "mac_energy_pj": desc["unit_energy_pj"], "mac_energy_model": core.mac_energy.model,
            "mac_energy_reference_bits": core.mac_energy.reference_bits,
            "memories": desc["memories"],
        })
    point = spec.operating_point()
    return {
        "name": spec.name,
        "description": spec.description,
        "clock_hz": spec.clock_hz,
        "peak_macs_per_cycle": sum(c["macs_per_cycle"] * c["count"] for c in cores),
        "compute_cores": cores,
        "allocation": {k: list(getattr(spec.allocation, k)) or ["any"] for k in ("conv", "depthwise", "fc")},
        "pooling_core": _simple_core(spec, "maxpool"),
        "simd_core": _simple_core(spec, "add"),
        "offchip": {"bits_per_cycle": spec.offchip.bandwidth_bits_per_cycle,
                    "energy_per_access_pj": spec.offchip.energy_per_access_pj,
                    "access_bits": spec.offchip.access_bits},
        "interconnect": None if spec.interconnect is None else {
            "topology": spec.interconnect.topology, "rows": spec.interconnect.rows, "cols": spec.interconnect.cols,
            "link_bits_per_cycle": spec.interconnect.link_bandwidth_bits_per_cycle,
            "energy_per_bit_pj": spec.interconnect.energy_per_bit_pj},
        "dvfs": None if spec.dvfs is None else {
            "reference_voltage_v": spec.dvfs.reference_voltage_v, "default": point.name,
            "points": [{"name": p.name, "frequency_hz": p.frequency_hz, "voltage_v": p.voltage_v,
                        "static_power_w": p.static_power_w} for p in spec.dvfs.points]},
    }


def _simple_line(core: dict[str, Any]) -> str:
    what = "ZigZag core file" if core["model"] == "zigzag" else "analytical model, data via off-chip"
    return f"{core['units']} ops/cycle, {core['energy_per_op_pj']:g} pJ/op ({what})"


def _memory_table(memories: list[dict[str, Any]]) -> list[str]:
    out = ["| memory | operands | size | read bit/cycle | write bit/cycle | read pJ | write pJ | shared over |",
           "|---|---|---|---|---|---|---|---|"]
    for m in memories:
        out.append(f"| {m['name']} | {', '.join(m['operands'])} | {_bytes(m['size_bits'])} | "
                   f"{m['read_bits_per_cycle']} | {m['write_bits_per_cycle']} | {m['read_pj']:g} | "
                   f"{m['write_pj']:g} | {', '.join(m['served_dimensions']) or '-'} |")
    return out


def markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown (also readable as plain text)."""
    s = summary
    cores = ", ".join(f"{c['count']} x {c['name']}" for c in s["compute_cores"])
    out = [f"# {s['name']}", "", s["description"] or "", "",
           "| | |", "|---|---|",
           f"| peak | {s['peak_macs_per_cycle']} MAC/cycle at {s['clock_hz'] / 1e6:g} MHz |",
           f"| compute cores | {cores} |",
           f"| allocation | conv: {', '.join(s['allocation']['conv'])}; depthwise: "
           f"{', '.join(s['allocation']['depthwise'])}; fc: {', '.join(s['allocation']['fc'])} |",
           f"| pooling core | {_simple_line(s['pooling_core'])} |",
           f"| SIMD core | {_simple_line(s['simd_core'])} |",
           f"| off-chip | {s['offchip']['bits_per_cycle']} bit/cycle, {s['offchip']['energy_per_access_pj']:g} pJ per "
           f"{s['offchip']['access_bits']}-bit access |"]
    ic = s["interconnect"]
    if ic:
        shape = f"{ic['rows']}x{ic['cols']} mesh" if ic["topology"] == "mesh" else "bus"
        out.append(f"| interconnect | {shape}, {ic['link_bits_per_cycle']} bit/cycle links, "
                   f"{ic['energy_per_bit_pj']:g} pJ/bit |")
    for c in s["compute_cores"]:
        array = " x ".join(f"{v} ({k})" for k, v in c["array"].items())
        low = ", ".join(f"{v} at <= {b} bit" for b, v in c["peak_macs_per_cycle_low_precision"].items())
        out += ["", f"## Compute core `{c['name']}` x {c['count']} (`{c['core_file']}`)", "",
                f"Array {array} = {c['macs_per_cycle']} MAC/cycle{f' ({low})' if low else ''}; "
                f"{c['mac_energy_pj']:g} pJ per MAC at {c['mac_energy_reference_bits']}-bit operands, "
                f"MAC-energy model `{c['mac_energy_model']}`.", "", *_memory_table(c["memories"])]
    for title, key in (("Pooling core", "pooling_core"), ("SIMD core", "simd_core")):
        c = s[key]
        if c["model"] == "zigzag":
            array = " x ".join(f"{v} ({k})" for k, v in c["array"].items())
            out += ["", f"## {title} (`{c['core_file']}`, costed by ZigZag)", "",
                    f"Array {array} = {c['units']} ops/cycle; {c['energy_per_op_pj']:g} pJ per op.", "",
                    *_memory_table(c["memories"])]
    if s["dvfs"]:
        d = s["dvfs"]
        out += ["", f"## DVFS (energies in the core files hold at {d['reference_voltage_v']:g} V; default "
                    f"`{d['default']}`)", "", "| point | frequency | voltage | static power |", "|---|---|---|---|"]
        out += [f"| {p['name']} | {p['frequency_hz'] / 1e6:g} MHz | {p['voltage_v']:g} V | "
                f"{p['static_power_w'] * 1e3:g} mW |" for p in d["points"]]
    return "\n".join(out) + "\n"
