"""Search-space structures declared in data (YAML files in this folder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SPECS_DIR = Path(__file__).resolve().parent


class SpecError(ValueError):
    """A space specification file with a missing, unknown or ill-typed key."""


@dataclass(frozen=True)
class BlockSpec:
    """One backbone block: expansion ratio, output channels, kernel, stride, optional exit label."""

    expansion: int
    channels: int
    kernel: int
    stride: int
    exit: str | None = None


@dataclass(frozen=True)
class SpaceSpec:
    """A backbone: stem, blocks (in order) and the exit-branch pooling size."""

    name: str
    stem: BlockSpec
    blocks: tuple[BlockSpec, ...]
    pool_to: int
    groups: tuple[int, ...] = ()  # ResNet-style specs: blocks per group


def _block(data: Any, where: str, path: Path, required: tuple[str, ...]) -> BlockSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{path}: {where}: expected a mapping, got {data!r}")
    allowed = {"expansion", "channels", "kernel", "stride", "exit"}
    unknown = sorted(set(data) - allowed)
    missing = sorted(set(required) - set(data))
    if unknown or missing:
        raise SpecError(f"{path}: {where}: unknown keys {unknown} / missing keys {missing}; expected {sorted(allowed)}")
    for key in ("expansion", "channels", "kernel", "stride"):
        if key in data and (not isinstance(data[key], int) or data[key] < 1):
            raise SpecError(f"{path}: {where}.{key}: expected a positive integer, got {data[key]!r}")
    return BlockSpec(data.get("expansion", 1), data["channels"], data.get("kernel", 3), data.get("stride", 1),
                     data.get("exit"))


def load_spec(name: str) -> SpaceSpec:
    """Read ``specs/<name>.yaml``."""
    path = SPECS_DIR / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "blocks" not in data or "stem" not in data:
        raise SpecError(f"{path}: expected a mapping with keys name, stem, blocks, exit_branch")
    blocks = tuple(_block(b, f"blocks[{i}]", path, ("channels",)) for i, b in enumerate(data["blocks"]))
    groups = tuple(data.get("groups", ()))
    return SpaceSpec(data.get("name", name), _block(data["stem"], "stem", path, ("channels",)), blocks,
                     int(data.get("exit_branch", {}).get("pool_to", 4)), groups)
