"""How candidates are FOUND: ``data``, ``train`` (the QAT supernet), ``search`` (the Optuna study),
``export``, ``report``; ``api`` wires them once (:func:`nas.api.run`), ``cli`` and ``quickstart`` call it.

The names below load on first use (PEP 562), so ``import nas.config`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.api import cost_model, data_and_space, export, load, paths, run, search, train
    from nas.config import RunConfig, default_config, load_config

_API = ("cost_model", "data_and_space", "export", "load", "paths", "run", "search", "train")
_HOME = {**dict.fromkeys(_API, "nas.api"),
         **dict.fromkeys(("RunConfig", "default_config", "load_config"), "nas.config")}
__all__ = ["RunConfig", "cost_model", "data_and_space", "default_config", "export", "load", "load_config", "paths",
           "run", "search", "train"]  # = sorted(_HOME), written out for the linters


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
