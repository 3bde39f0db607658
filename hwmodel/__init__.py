"""What a candidate COSTS: accelerator systems, per-layer costs (ZigZag), exit-stage accounting.

``hwmodel`` knows nothing about torch or Optuna: it reads layer graphs (networkx) whose nodes carry
a ``spec`` with the attributes of :class:`hwmodel.workload.LayerLike`.
"""

from __future__ import annotations

from hwmodel.accounting import ExpectedCost, NetworkCost, expected_cost
from hwmodel.cache import CacheError, CostCache, default_cache_path
from hwmodel.cost_model import CostModel
from hwmodel.schema import SchemaError
from hwmodel.system import SystemSpec, accelerators_dir, list_systems, load_system
from hwmodel.zigzag_core import LayerCost, MappingError, ZigZagSettings

__all__ = [
    "CacheError",
    "CostCache",
    "CostModel",
    "ExpectedCost",
    "LayerCost",
    "MappingError",
    "NetworkCost",
    "SchemaError",
    "SystemSpec",
    "ZigZagSettings",
    "accelerators_dir",
    "default_cache_path",
    "expected_cost",
    "list_systems",
    "load_system",
]
