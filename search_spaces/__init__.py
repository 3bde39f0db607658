"""What a candidate IS: genotypes, search spaces, the weight-sharing supernet and layer graphs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from search_spaces import mobilenetv2 as _mobilenetv2  # noqa: F401  (registers the reference space)
from search_spaces import resnet as _resnet  # noqa: F401  (registers the ResNet space)
from search_spaces.base import Choose, SearchSpace
from search_spaces.genotype import FLOAT_BITS, Genotype, GenotypeError, HeadKey
from search_spaces.graph import LayerSpec, specs, stage_macs, total_macs
from search_spaces.registry import (
    create_space,
    list_spaces,
    register_space,
    same_space,
    space_class,
    space_from_config,
)

if TYPE_CHECKING:
    from search_spaces.modules.early_exit import EarlyExitNet, ExitHead, Supernet

_TORCH_NAMES = ("EarlyExitNet", "ExitHead", "Supernet")  # torch modules: loaded on first use


def __getattr__(name: str) -> object:
    """The torch-side names on first use (PEP 562), so that the genotype, graph and registry parts of
    this package, and everything that only reads configs, import without torch."""
    if name in _TORCH_NAMES:
        from search_spaces.modules import early_exit

        return getattr(early_exit, name)
    raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")


__all__ = [
    "FLOAT_BITS",
    "Choose",
    "EarlyExitNet",
    "ExitHead",
    "Genotype",
    "GenotypeError",
    "HeadKey",
    "LayerSpec",
    "SearchSpace",
    "Supernet",
    "create_space",
    "list_spaces",
    "register_space",
    "space_class",
    "same_space",
    "space_from_config",
    "specs",
    "stage_macs",
    "total_macs",
]
