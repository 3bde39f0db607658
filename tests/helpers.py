"""Helpers shared by tests of several packages."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from hwmodel import SystemSpec, load_system
from search_spaces import Genotype


def record_attributes(accuracy: float, edp: float, *, feasible: bool = True, **extra: object) -> dict[str, object]:
    """The user attributes of a complete trial as the objective writes them (a two-exit candidate,
    one constraint satisfied or violated as ``feasible`` says), with ``extra`` keys added or replaced."""
    genotype = Genotype(exits=(3,), branch_depths=(1, 1), weight_bits=(8, 8), act_bits=(8, 8),
                        exit_weight_bits=(8, 8), exit_act_bits=(8, 8), threshold=0.9)
    return {"genotype": genotype.to_dict(), "exit_labels": ["D", "K"], "threshold": 0.9, "accuracy": accuracy,
            "exit_ratios": [0.6, 0.4], "expected_edp_j_cycles": edp, "expected_energy_j": 1e-6,
            "expected_latency_cycles": 1e4, "static_edp_j_cycles": 2 * edp, "reduction_factor": 2.0,
            "constraints": {"final_exit_ratio": -0.1 if feasible else 0.1}, "bits": {"stem": "W8A8"},
            "feasible": feasible, **extra}


def unmappable_system(folder: Path) -> Path:
    """A copy of edge_tpu_quad whose memory hierarchy is valid (inner to outer, each memory holds one
    access of its ports) but far too small for any real layer (4096 bits off-chip), and whose 8-bit
    output register cannot hold one 16-bit partial sum of an 8-bit layer: ZigZag cannot map such a
    layer on it, whole or as fused tiles. Returns its system.yaml."""
    system = load_system("edge_tpu_quad")
    core = yaml.safe_load(system.resolve(system.compute_cores[0].core).read_text())
    core["memories"]["output_reg"]["size"] = 8
    for port in core["memories"]["output_reg"]["ports"]:
        port["bandwidth_min"] = port["bandwidth_max"] = 8
    core["memories"]["weight_sram"]["size"] = 256
    core["memories"]["act_sram"]["size"] = 1024
    core["memories"]["dram_port"]["size"] = 4096
    (folder / "core.yaml").write_text(yaml.safe_dump(core, sort_keys=False))
    shutil.copy(system.resolve(system.compute_cores[0].mapping), folder / "mapping.yaml")
    data = system_data_elsewhere(system)
    data["compute_cores"][0].update(core="core.yaml", mapping="mapping.yaml")
    (folder / "system.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / "system.yaml"


def system_data_elsewhere(system: SystemSpec) -> dict[str, Any]:
    """A system file's data with its pooling / SIMD core files as absolute paths, so that it can be
    written to another folder."""
    data = yaml.safe_load(Path(system.path).read_text())
    for key, core in system.simple_cores().items():
        data[key] = {"core": str(system.resolve(core.core or "")), "mapping": str(system.resolve(core.mapping or ""))}
    return data


def running_trial(db: Path) -> int | None:
    """The number of a RUNNING trial that has sent a heartbeat, read directly from an Optuna SQLite
    file (a poll takes ~1 ms, so even a short first trial is seen). A worker killed before a trial's
    first heartbeat leaves a trial Optuna cannot tell from a live one."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            row = con.execute("SELECT t.number FROM trials t JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
                              "WHERE t.state = 'RUNNING' LIMIT 1").fetchone()
    except sqlite3.Error:  # the worker is still creating the tables
        return None
    return None if row is None else int(row[0])


def trained_like(module: nn.Module, bits: int, in_channels: int, seed: int = 0) -> nn.Module:
    """``module`` with random batch-norm statistics and affine parameters, its quantisers at ``bits``
    (steps initialised on a batch), in eval mode."""
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
        if hasattr(m, "set_bits"):
            m.set_bits(bits, bits)
    with torch.no_grad():
        module.train()(torch.randn(8, in_channels, 12, 12))
    return module.eval()
