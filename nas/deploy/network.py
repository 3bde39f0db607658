"""Export a chosen candidate as a standalone early-exit network, and load it back.

An export folder holds:

- ``weights.pt``: the network's state dict (tensors only; loads with ``weights_only=True``);
- ``architecture.json``: the search space (name + options) and the genotype, enough to rebuild the
  modules without the supernet;
- ``metrics.json``: what the study measured (accuracy, exit ratios, costs, constraints, ...);
- ``modes.json``: operating modes, threshold -> validation accuracy, expected energy and latency
  (see :mod:`nas.study.modes`);
- ``model.onnx``: every exit's logits with the fake quantisation as explicit ops, per-layer
  precision in the metadata (see :mod:`nas.deploy.onnx`);
- ``ribbon.png`` and ``exit_costs.png``: the architecture ribbon and the per-exit-stage costs.

The folder is written under a temporary name and renamed into place (:mod:`nas.files`), so a crash
never leaves a half-written export, nor loses the export it was replacing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nas.files import remove_stale_temporaries, replace_folder, temporary_for
from nas.study.modes import Mode, named_modes, select_mode
from nas.supernet.training import CheckpointError, load_weights_only
from search_spaces import EarlyExitNet, Genotype, GenotypeError, SearchSpace, space_from_config

FORMAT_VERSION = 1


@dataclass
class ExportedNetwork:
    """A reloaded export: the network (eval mode) with its genotype, space, recorded metrics and its
    table of operating modes (threshold -> accuracy, expected energy and latency)."""

    network: EarlyExitNet
    genotype: Genotype
    space: SearchSpace
    metrics: dict[str, Any]
    path: Path
    modes: list[Mode] = field(default_factory=list)

    def named_modes(self) -> dict[str, Mode]:
        """The high-accuracy, balanced and energy-saving modes."""
        return named_modes(self.modes)

    def set_mode(self, mode: str | float | Mode) -> Mode:
        """Run at a named mode, a threshold of the table or a :class:`Mode`; returns the mode."""
        if isinstance(mode, str):
            chosen = self.named_modes()[mode]
        elif isinstance(mode, Mode):
            chosen = mode
        else:
            chosen = min(self.modes, key=lambda m: abs(m.threshold - float(mode)))
        self.network.threshold, self.network.thresholds = chosen.threshold, None
        return chosen

    def select_mode(self, energy_budget_j: float | None = None, latency_budget_s: float | None = None) -> Mode:
        """Run at the most accurate mode within the budgets (ValueError if none fits)."""
        return self.set_mode(select_mode(self.modes, energy_budget_j, latency_budget_s))


def export_network(space: SearchSpace, network: EarlyExitNet, genotype: Genotype, out_dir: str | Path,
                   metrics: dict[str, Any] | None = None, extras: Callable[[Path], None] | None = None) -> Path:
    """Write a genotype's standalone network (see :func:`nas.study.evaluator.candidate_network`) to
    ``out_dir``; ``extras(folder)`` may add files (ONNX, modes, plots) before the folder goes live."""
    out = Path(out_dir)
    network = network.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    tmp = temporary_for(out)
    tmp.mkdir()
    torch.save(network.state_dict(), tmp / "weights.pt")
    architecture = {"format_version": FORMAT_VERSION, "space": space.config, "genotype": genotype.to_dict(),
                    "exit_labels": space.exit_labels(genotype)}
    (tmp / "architecture.json").write_text(json.dumps(architecture, indent=2))
    (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2, default=float))
    if extras is not None:
        extras(tmp)
    replace_folder(tmp, out)
    return out


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: expected a JSON file of the export; it does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: expected valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def load_network(path: str | Path) -> ExportedNetwork:
    """Rebuild an exported network without the supernet; clear errors for a damaged export."""
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: expected an export folder (weights.pt, architecture.json, metrics.json)")
    arch_path = folder / "architecture.json"
    arch = _read_json(arch_path)
    for key in ("format_version", "space", "genotype"):
        if key not in arch:
            raise CheckpointError(f"{arch_path}: {key}: expected a key of an export's architecture")
    if arch["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{arch_path}: format_version: expected {FORMAT_VERSION}, got {arch['format_version']}")
    try:
        space = space_from_config(arch["space"])
        genotype = Genotype.from_dict(arch["genotype"])
        network = space.build_network(genotype)
    except (KeyError, TypeError, ValueError, GenotypeError) as exc:
        raise CheckpointError(f"{arch_path}: space/genotype: expected a buildable architecture ({exc})") from None
    weights = folder / "weights.pt"
    if not weights.is_file():
        raise CheckpointError(f"{weights}: expected the exported weights; the file does not exist")
    state = load_weights_only(weights, "the exported weights")
    try:
        network.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt or mismatched files
        raise CheckpointError(f"{weights}: expected weights matching {arch_path} "
                              f"({type(exc).__name__}: {exc})") from None
    metrics = _read_json(folder / "metrics.json") if (folder / "metrics.json").exists() else {}
    modes = []
    if (folder / "modes.json").exists():
        table = _read_json(folder / "modes.json")
        modes = [Mode(**{**m, "exit_ratios": tuple(m["exit_ratios"])}) for m in table.get("modes", [])]
    return ExportedNetwork(network.eval(), genotype, space, metrics, folder, modes)
