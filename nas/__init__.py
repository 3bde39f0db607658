"""How candidates are FOUND: data, QAT supernet training, calibration, the Optuna study, export, CLI."""

from __future__ import annotations

from nas.api import cost_model, data_and_space, export, load, paths, search, train
from nas.config import RunConfig, default_config, load_config

__all__ = ["RunConfig", "cost_model", "data_and_space", "default_config", "export", "load", "load_config", "paths",
           "search", "train"]
